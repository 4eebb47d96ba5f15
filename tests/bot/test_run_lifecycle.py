"""The long-running service's life cycle (issue 14, points 6 and 7): a 401 on getUpdates mid-run,
401s that persist, one `buhurt run` per data folder, SIGTERM, and the one lifecycle (`started`)
that `run` and `run --once` share releasing what they hold whatever happened, through the real
python-telegram-bot client against the fake Bot API server (and real processes for the last two)."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from bot.errors import BotError
from tests.fakes.telegram_app import bot_running, make_settings, reply_to
from tests.helpers import PATIENCE
from tests.helpers import ROOT as REPO_ROOT


pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
ROOT = str(REPO_ROOT)   # the repository, for the child's PYTHONPATH
USER = 4242


def test_a_single_401_on_get_updates_mid_run_is_retried(tmp_path, server, monkeypatch):
    monkeypatch.setattr("bot.telegram.runner.BACKOFF_FIRST_SECONDS", 0.05, raising=False)
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings):
            await reply_to(server, USER, "/start", user_id=USER)
            server.fail("getUpdates", 401)  # the next long poll is refused once
            before = len(server.calls_of("getUpdates", ok_only=False))
            await asyncio.to_thread(server.wait_for, lambda: any(
                c.status == 401 for c in server.calls_of("getUpdates", ok_only=False)[before:]))
            return await reply_to(server, USER, "/help", user_id=USER)  # still answering

    assert asyncio.run(main())["chat_id"] in (USER, str(USER))


def test_401s_in_a_row_end_the_service_with_one_line(tmp_path, server, monkeypatch):
    from bot.telegram.runner import TOKEN_RETRIES, build_application, serve

    monkeypatch.setattr("bot.telegram.runner.BACKOFF_FIRST_SECONDS", 0.01)
    settings = make_settings(tmp_path, server)
    server.fail("getUpdates", 401, times=1000)  # the token was revoked

    with pytest.raises(BotError) as raised:
        asyncio.run(serve(build_application(settings), schedule=False, poll_timeout=1))
    message = str(raised.value)
    assert "401" in message and "restarts" in message and "\n" not in message and server.token not in message
    assert len([c for c in server.calls_of("getUpdates", ok_only=False) if c.status == 401]) == TOKEN_RETRIES


def start(config, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("BUHURT_TELEGRAM_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("once", [True, False])
def test_both_lifecycles_release_what_they_hold_when_get_me_is_refused(tmp_path, server, once):
    from bot.telegram.runner import build_application, run_cycle, serve

    settings = make_settings(tmp_path, server)
    server.fail("getMe", 403, times=1000, description="Forbidden: bot was blocked")
    application = build_application(settings)
    db, posting = application.bot_data.db, application.channel_bot
    assert posting is not None   # make_settings configures a channel: its posts have their own Bot
    with pytest.raises(BotError, match="refused getMe"):
        asyncio.run(run_cycle(application) if once else serve(application, schedule=False, poll_timeout=1))
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.execute("SELECT 1")
    assert posting.request._client.is_closed   # the channel posts' HTTP client too


def test_one_service_per_data_folder_a_401_is_survived_and_sigterm_ends_cleanly(tmp_path, server):
    make_settings(tmp_path, server, schedule={"retrain": False, "pool_every_minutes": 600.0})  # writes config.toml
    config = tmp_path / "config.toml"
    first = start(config)
    try:
        server.wait_for(lambda: server.calls_of("getUpdates"))  # polling
        server.send_text("/start", user_id=USER)
        server.wait_sent(USER, 1)

        server.fail("getUpdates", 401)  # one 401 mid-run: retried, the bot keeps answering
        server.wait_for(lambda: any(c.status == 401 for c in server.calls_of("getUpdates", ok_only=False)))
        server.send_text("/help", user_id=USER)
        server.wait_sent(USER, 2)

        second = start(config)  # a second service on the same data folder
        out, err = second.communicate(timeout=PATIENCE)
        assert second.returncode == 2, err[-2000:]
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and "buhurt.lock" in lines[0], err
        assert first.poll() is None  # the first one is unaffected

        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=PATIENCE)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=PATIENCE)
    assert first.returncode == 0, err[-3000:]
    assert "Traceback" not in err and server.token not in out + err
    assert "401 Unauthorized" in err  # the retried 401 was logged


def test_dropped_connections_and_an_outage_on_get_updates_are_retried(tmp_path, server, monkeypatch):
    from tests.fakes.telegram_server import DROPPED

    monkeypatch.setattr("bot.telegram.runner.BACKOFF_FIRST_SECONDS", 0.05, raising=False)
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings):
            await reply_to(server, USER, "/start", user_id=USER)
            before = len(server.calls_of("getUpdates", ok_only=False))
            server.drop("getUpdates", times=2)          # two polls: the connection closes unanswered
            server.fail("getUpdates", 502, times=2)     # then a short outage of the Bot API
            await asyncio.to_thread(server.wait_for, lambda: [
                c.status for c in server.calls_of("getUpdates", ok_only=False)[before:]
            ].count(502) == 2)
            statuses = [c.status for c in server.calls_of("getUpdates", ok_only=False)[before:]]
            assert statuses.count(DROPPED) == 2
            return await reply_to(server, USER, "/help", user_id=USER)  # still answering afterwards

    assert asyncio.run(main())["chat_id"] in (USER, str(USER))
