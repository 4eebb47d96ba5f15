"""`buhurt run --once` with a token and telegram.base_url pointing at the fake server: the way an
operator runs it from cron. Run 1 shows drafts to the moderators; a moderator approves one; run 2
handles that decision and publishes it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot import texts
from corpus.db import open_db
from corpus.store import drafts as draft_rows
from tests.fakes.telegram_app import CHANNEL, MODERATOR, MODERATORS_CHAT, make_settings
from tests.helpers import PATIENCE
from tests.helpers import ROOT as REPO_ROOT


ROOT = str(REPO_ROOT)   # the repository, for the child's PYTHONPATH


def buhurt(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("BUHURT_TELEGRAM_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=PATIENCE)


def test_run_once_cycle_against_the_fake_server(tmp_path, server):
    settings = make_settings(tmp_path, server)
    config = str(tmp_path / "config.toml")
    server.send_text("/start", user_id=5001)  # waiting since before the run

    first = buhurt("--config", config, "run", "--once")
    assert first.returncode == 0, first.stderr[-3000:]
    assert server.sent(5001)[0]["text"] == texts.START
    polls = server.calls_of("getUpdates")
    assert "message_reaction_count" in polls[0].params["allowed_updates"]
    drafts = [m for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("Черновик")]
    assert len(drafts) == 2 and server.sent(CHANNEL) == []  # nothing approved yet
    assert server.pending_updates() == 0  # the /start was confirmed, not handled twice

    db = open_db(settings.database)
    pending = draft_rows.with_status(db, "pending")
    db.close()
    message = server.message(MODERATORS_CHAT, int(pending[0]["moderation_message_id"]))
    server.press(f"d:a:{pending[0]['id']}", user_id=MODERATOR, message=message)

    second = buhurt("--config", config, "run", "--once")
    assert second.returncode == 0, second.stderr[-3000:]
    (post,) = server.sent(CHANNEL)
    assert post["text"] == f"{pending[0]['text']}\n\n#{pending[0]['id']}"   # publish.footer
    assert len(server.sent(5001)) == 1
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, pending[0]["id"])["status"] == "published"
    db.close()
    assert "cycle done" in second.stderr and "published meme #" in second.stderr
    assert server.token not in first.stderr + second.stderr + first.stdout + second.stdout


def test_drafts_auto_approved_before_moderators_were_set_go_to_the_moderators_not_the_channel(tmp_path, server):
    """README's path: `make demo` (no token, no moderators: drafts auto-approved), then the same data
    folder goes live with moderators. The demo's queued drafts went to the real channel at the first
    publishing time, never shown to a moderator."""
    settings = make_settings(tmp_path, server)
    demo = tmp_path / "demo.toml"
    demo.write_text(f"[paths]\ndata_dir = '{settings.data_dir}'\n[corpus]\nseed_with_sample = false\n"
                    "[sample]\nmax_length = 120\n[pool]\nchannel_size = 3\nsubscriber_size = 1\nbatch_size = 4\n"
                    "[schedule]\nretrain = false\n", encoding="utf-8")
    first = buhurt("--config", str(demo), "run", "--once")
    assert first.returncode == 0 and "auto-approved" in first.stderr, first.stderr[-3000:]
    db = open_db(settings.database)
    left = [d["id"] for d in draft_rows.with_status(db, "queued")]
    db.close()
    assert left, first.stderr[-3000:]

    live = buhurt("--config", str(tmp_path / "config.toml"), "run", "--once")
    assert live.returncode == 0, live.stderr[-3000:]
    assert server.sent(CHANNEL) == []
    shown = " ".join(m["text"].split("\n", 1)[0] for m in server.sent(MODERATORS_CHAT))
    assert all(f"Черновик #{n}" in shown for n in left), shown
    db = open_db(settings.database)
    assert {draft_rows.get_draft(db, n)["status"] for n in left} == {"pending"}
    db.close()


# ---- getUpdates failing in `run --once` (issue 26, point 11) ---------------------------------------

def _queue_draft(settings) -> int:
    db = open_db(settings.database)
    try:
        return draft_rows.add_draft(db, text="ОЧЕРЕДЬ\n@\nЖДЁТ КАНАЛА", model_version="v", temperature=0.8, seed=1,
                                    max_length=120, status="queued")
    finally:
        db.close()


@pytest.mark.parametrize("fault, warning", [
    ({"status": 500}, "cannot reach Telegram (NetworkError: Internal Server Error)"),
    ({"status": 409, "description": "Conflict: terminated by other getUpdates request"}, "409 Conflict"),
    ({"status": 429, "retry_after": 1}, "flood control on getUpdates"),
    (None, "cannot reach Telegram"),  # the connection closed without an answer
])
def test_run_once_survives_get_updates_failing(tmp_path, server, fault, warning):
    settings = make_settings(tmp_path, server)
    queued = _queue_draft(settings)
    server.send_text("/start", user_id=5001)  # cannot be fetched this time: waits for the next run
    if fault is None:
        server.drop("getUpdates", times=1000)
    else:
        server.fail("getUpdates", times=1000, **fault)

    result = buhurt("--config", str(tmp_path / "config.toml"), "run", "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert warning in result.stderr and "left for the next run" in result.stderr
    assert [m["text"] for m in server.sent(CHANNEL)] == [f"ОЧЕРЕДЬ\n@\nЖДЁТ КАНАЛА\n\n#{queued}"]  # publishing ran
    assert [m for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("Черновик")]  # so did the pool
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, queued)["status"] == "published"
    db.close()
    assert server.pending_updates() == 1 and server.sent(5001) == []
    if fault is not None:
        return
    server.recover("getUpdates")  # the Bot API is back
    again = buhurt("--config", str(tmp_path / "config.toml"), "run", "--once")
    assert again.returncode == 0, again.stderr[-3000:]
    assert server.sent(5001)[0]["text"] == texts.START and server.pending_updates() == 0


def test_run_once_with_a_revoked_token_on_get_updates_is_one_line(tmp_path, server):
    settings = make_settings(tmp_path, server)
    _queue_draft(settings)
    server.fail("getUpdates", 401, times=1000)
    result = buhurt("--config", str(tmp_path / "config.toml"), "run", "--once")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [row for row in result.stderr.splitlines() if row.startswith("error: ")]
    assert "rejected the bot token (401 Unauthorized) on getUpdates" in line and "telegram.token" in line
    assert server.sent(CHANNEL) == [] and server.token.split(":")[1] not in result.stderr


def test_a_get_updates_that_never_answers_is_given_up_after_the_wait(tmp_path, server, caplog):
    """A hung Bot API (or a flood wait PTB's limiter sleeps through) holds `run --once` for at most
    `wait_seconds` per getUpdates, then the cycle goes on without the updates."""
    import asyncio
    import logging

    from bot.telegram.runner import build_application, process_pending

    settings = make_settings(tmp_path, server)
    server.send_text("/start", user_id=5001)
    release = server.hold("getUpdates", "None")  # getUpdates carries no chat_id

    async def main():
        application = build_application(settings)
        await application.initialize()
        try:
            return await process_pending(application, wait_seconds=0.5)
        finally:
            release.set()
            await application.shutdown()
            application.bot_data.db.close()

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(main()) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert "getUpdates did not answer within 0.5 s" in messages
    assert any("left for the next run" in m for m in messages)
