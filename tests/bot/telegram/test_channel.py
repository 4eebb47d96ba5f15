"""The channel publisher end to end: flood control, a removed bot, a migrated or missing chat, and
at-most-once publishing when the process dies between sending and recording."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys

import pytest

from corpus.db import open_db
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, bot_running, make_settings, until
from tests.helpers import PATIENCE
from tests.helpers import ROOT as REPO_ROOT


pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
ROOT = str(REPO_ROOT)   # the repository, for the child's PYTHONPATH


def queue_draft(settings, text: str = "ПРИХОДИШЬ В КАНАЛ\n@\nТАМ ПОСТ") -> int:
    db = open_db(settings.database)
    try:
        return draft_rows.add_draft(db, text=text, model_version="v", temperature=0.8, seed=1,
                                    max_length=120, status="queued")
    finally:
        db.close()


def state(settings, draft_id: int) -> tuple[str, list[str]]:
    db = open_db(settings.database)
    try:
        return draft_rows.get_draft(db, draft_id)["status"], [p["status"] for p in pubs.publications_of(db, draft_id)]
    finally:
        db.close()


def test_429_is_retried_after_retry_after_and_the_post_goes_out_once(tmp_path, server):
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    server.fail("sendMessage", 429, retry_after=1, chat_id=CHANNEL)

    async def main():
        async with bot_running(settings) as app:
            return await app.bot_data.service.publish()

    published = asyncio.run(main())
    assert published["status"] == "published"
    attempts = server.calls_of("sendMessage", ok_only=False)
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # retry_after honoured
    assert len(server.sent(CHANNEL)) == 1 and state(settings, draft_id) == ("published", ["sent"])


def test_flood_control_longer_than_the_retries_keeps_the_post_queued(tmp_path, server, monkeypatch):
    monkeypatch.setattr("bot.telegram.channel.RETRIES_ON_429", 1)
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    server.fail("sendMessage", 429, retry_after=1, chat_id=CHANNEL, times=2)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.publish()
            first = state(settings, draft_id)
            await service.publish()
            return first

    assert asyncio.run(main()) == ("queued", ["failed"])
    assert state(settings, draft_id) == ("published", ["sent"])
    assert len(server.sent(CHANNEL)) == 1
    assert any("ограничил частоту отправки" in m["text"] for m in server.sent(MODERATORS_CHAT))


def test_a_stop_while_waiting_out_flood_control_keeps_the_post_for_the_next_start(tmp_path, server, caplog):
    """SIGTERM while a channel post waits out a 429 (the job cancelled after the grace time): nothing
    was sent, so the post is retried after the restart; it was left `sending`, became `unknown` at
    the next start, was never sent and the draft counted as published."""
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    server.fail("sendMessage", 429, retry_after=600, chat_id=CHANNEL)

    async def stopped_during_the_wait():
        async with bot_running(settings) as app:
            job = asyncio.create_task(app.bot_data.service.publish())
            # the 429 answered and its wait begun (a cancel while the request is out leaves it in doubt)
            await until(lambda: any("flood control on" in r.getMessage() for r in caplog.records))
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job

    async def restarted():
        async with bot_running(settings) as app:
            await app.bot_data.service.publish()

    with caplog.at_level(logging.INFO):
        asyncio.run(stopped_during_the_wait())
    assert server.sent(CHANNEL) == [] and state(settings, draft_id) == ("queued", ["failed"])
    asyncio.run(restarted())
    assert state(settings, draft_id) == ("published", ["sent"])
    assert len(server.sent(CHANNEL)) == 1


@pytest.mark.parametrize("status, kwargs, words", [
    (403, {}, "удалили из канала или он не администратор"),
    (400, {"migrate_to": -1009876543210}, "-1009876543210"),
    (400, {"description": "Bad Request: chat not found"}, "chat not found"),
])
def test_refusals_tell_the_moderators_and_keep_the_queue(tmp_path, server, status, kwargs, words):
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    server.fail("sendMessage", status, chat_id=CHANNEL, **kwargs)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.publish()
            refused = state(settings, draft_id)
            await service.publish()  # the next scheduled run, once the operator fixed it
            return refused

    assert asyncio.run(main()) == ("queued", ["failed"])
    (notice,) = [m["text"] for m in server.sent(MODERATORS_CHAT)]
    assert f"Мем #{draft_id} не опубликован" in notice and words in notice.lower() and "Очередь сохранена" in notice
    assert state(settings, draft_id) == ("published", ["sent"]) and len(server.sent(CHANNEL)) == 1


def test_an_ambiguous_failure_is_never_resent(tmp_path, server):
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    server.fail("sendMessage", 500, chat_id=CHANNEL)  # the post may or may not be out

    second = queue_draft(settings)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.publish()  # the 500: in doubt, so marked unknown and never re-sent
            await service.publish()  # the queue moves on to the next draft

    asyncio.run(main())
    assert state(settings, draft_id) == ("published", ["unknown"])
    assert state(settings, second) == ("published", ["sent"])
    assert len(server.sent(CHANNEL)) == 1  # only the second draft
    assert any("проверьте канал" in m["text"] for m in server.sent(MODERATORS_CHAT))


def run_once(config, timeout: float = 120) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("BUHURT_TELEGRAM_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "run", "--once"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_between_sending_and_recording_is_never_published_twice(tmp_path, server):
    settings = make_settings(tmp_path, server)
    draft_id = queue_draft(settings)
    release = server.hold("sendMessage", CHANNEL)  # Telegram has the post; the answer never arrives
    process = run_once(tmp_path / "config.toml")
    try:
        server.wait_for(lambda: server.calls_of("sendMessage") and server.sent(CHANNEL))
    finally:
        process.kill()
        process.communicate(timeout=PATIENCE)
    release.set()
    assert state(settings, draft_id) == ("queued", ["sending"])

    restarted = run_once(tmp_path / "config.toml")
    out, err = restarted.communicate(timeout=PATIENCE)
    assert restarted.returncode == 0, err[-2000:]
    assert len(server.sent(CHANNEL)) == 1  # the one the killed process sent; never again
    assert state(settings, draft_id) == ("published", ["unknown"])
    warned = [m["text"] for m in server.sent(MODERATORS_CHAT) if f"Мем #{draft_id} мог не дойти" in m["text"]]
    assert len(warned) == 1 and "проверьте канал" in warned[0]
    assert server.token not in out + err


def test_the_moderators_read_why_a_post_was_refused_or_may_be_lost_in_russian(tmp_path, server):
    """A channel that removed the bot was told as 'Мем #1 не опубликован в telegram @chan: the bot
    may not post there (removed, or not an admin): Forbidden: bot is not a member. Очередь...', and a
    post that may be lost as '... мог не дойти до ... (NetworkError: Internal Server Error)': English
    and Python's names in a Russian line, 'Forbidden' twice. They say in Russian what happened and
    what to do, with Telegram's own words once; publications.error keeps the technical line."""
    from bot import texts
    from jobs import notices

    settings = make_settings(tmp_path, server)
    refused = queue_draft(settings)   # refused, still queued: the next slot's try meets the 500
    server.fail("sendMessage", 403, chat_id=CHANNEL, description="Forbidden: bot is not a member of the channel chat")

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.publish()
            server.fail("sendMessage", 500, chat_id=CHANNEL, description="Internal Server Error")
            await app.bot_data.service.publish()

    asyncio.run(main())
    first, second = [m["text"] for m in server.sent(MODERATORS_CHAT)]
    assert first == notices.PUBLISH_REFUSED.format(
        id=refused, where=f"telegram {CHANNEL}",
        error=texts.CHANNEL_FORBIDDEN.format(said="bot is not a member of the channel chat"))
    assert second == notices.PUBLISH_IN_DOUBT.format(
        id=refused, where=f"telegram {CHANNEL}", error=texts.CHANNEL_NO_ANSWER.format(said="Internal Server Error"))
    assert "Forbidden" not in first and "NetworkError" not in second and "the bot" not in first
    db = open_db(settings.database)
    try:
        (row,) = pubs.publications_of(db, refused)
    finally:
        db.close()
    assert row["error"] == "NetworkError: Internal Server Error"   # the technical line, as before
