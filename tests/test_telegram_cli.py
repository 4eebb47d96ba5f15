"""`buhurt run --once` with a token and telegram.base_url pointing at the fake server: the way an
operator runs it from cron. Run 1 shows drafts to the moderators; a moderator approves one; run 2
handles that decision and publishes it."""
from __future__ import annotations

import os
import subprocess
import sys


from bot import texts
from corpus.db import open_db
from corpus.store import drafts as draft_rows
from tests.fakes.telegram_app import CHANNEL, MODERATOR, MODERATORS_CHAT, make_settings


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def buhurt(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("BUHURT_TELEGRAM_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


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
