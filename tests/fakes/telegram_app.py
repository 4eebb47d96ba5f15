"""Helpers for the Telegram end-to-end tests and the latency benchmark: the tiny real model (trained
once per process), a config file pointing at the fake Bot API server, and a running bot."""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from tests.fakes.telegram_server import FakeBotApi
from tests.helpers import PATIENCE
from tests.tiny_model import tiny_model

MODERATORS_CHAT = -1001234567890
MODERATOR = 111
STRANGER = 222
CHANNEL = "@buhurt_test"


def tiny_checkpoint() -> Path:
    """The suite's one tiny model (tests/tiny_model.py), trained once per process."""
    return tiny_model().checkpoint


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(tmp_path: Path, server: FakeBotApi, **overrides: dict[str, Any]) -> Path:
    """A config.toml for a bot talking to `server`; `overrides` are tables: telegram={...}."""
    tables: dict[str, dict[str, Any]] = {
        "paths": {"data_dir": str(tmp_path / "data")},
        "corpus": {"seed_with_sample": False},
        "sample": {"max_length": 120},
        "pool": {"channel_size": 2, "subscriber_size": 3, "batch_size": 4},
        "schedule": {"retrain": False},
        "log": {"level": "INFO"},
        # the low-queue alert would add a line to the moderators' chat that most tests count;
        # tests/bot/telegram/test_desk.py turns it on where it is the subject
        "alerts": {"min_queue": 0},
        "telegram": {"token": server.token, "base_url": server.base_url, "channels": [CHANNEL],
                     "moderators_chat": MODERATORS_CHAT, "moderators": [MODERATOR],
                     "cooldown_seconds": 0.0, "max_concurrent_generations": 2},
    }
    for table, values in overrides.items():
        tables.setdefault(table, {}).update(values)
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
        lines.append("")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def install_model(settings, checkpoint: Path | None = None) -> str:
    """Make the tiny model the database's active one (so no training happens at start-up)."""
    from corpus.db import open_db
    from corpus.store.model_versions import promote
    from jobs.model_registry import install_checkpoint

    db = open_db(settings.database)
    try:
        version = install_checkpoint(db, checkpoint or tiny_checkpoint(), settings.data_dir / "models", val_bpc=None)
        promote(db, version)
    finally:
        db.close()
    return version


def make_settings(tmp_path: Path, server: FakeBotApi, *, checkpoint: Path | None = None,
                  **overrides: dict[str, Any]):
    """Settings read from a config file written for `server`, with a model already active."""
    from bot.config import load_settings

    settings = load_settings(write_config(tmp_path, server, **overrides), environ={})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_model(settings, checkpoint)
    return settings


@contextlib.contextmanager
def another_writer_at(database: Path, conn: Any, takes: Callable[[str], bool]) -> Iterator[list[str]]:
    """Another process's write lock on `database` (a backup, `buhurt corpus clean` holding it for a
    moment), taken the moment `conn` runs a statement `takes` matches, once, and released when the
    block ends. Yields the statements at which it was taken: empty, never (nor when `conn` holds the
    write lock itself then: the other gives up at once rather than wait on the thread holding it)."""
    other = sqlite3.connect(database, isolation_level=None)
    taken: list[str] = []

    def trace(sql: str) -> None:
        if not taken and takes(sql):
            other.execute("PRAGMA busy_timeout = 0" if conn.in_transaction else "PRAGMA busy_timeout = 5000")
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:   # `conn` writes in its own transaction: nobody can come between
                return
            taken.append(sql)

    conn.set_trace_callback(trace)
    try:
        yield taken
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        conn.set_trace_callback(None)
        other.close()


def waits_logged(caplog: Any, what: str) -> Callable[[], bool]:
    """Whether jobs.patience has logged that `what` (a function's name) waits for the database."""
    caplog.set_level("INFO", logger="jobs.patience")
    return lambda: any(f"{what} waits" in r.getMessage() for r in caplog.records)


async def until(predicate: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """Wait inside the event loop (the bot runs on it) until `predicate()` is truthy.

    `timeout` only bounds a test that would otherwise hang; it is generous so that a loaded
    machine cannot fail a test that is merely slow (tests.helpers.PATIENCE)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.01)


async def settled(server: FakeBotApi, app: Any) -> None:
    """Every injected update fetched, confirmed and handled (none queued, no handler still running):
    what a negative assert ("the bot sent nothing") waits for instead of a fixed sleep."""
    await until(lambda: server.pending_updates() == 0)   # the updater queued every update
    # python-telegram-bot marks a queued update done after its handlers ran (and the error handler)
    await asyncio.wait_for(app.update_queue.join(), timeout=PATIENCE)


@contextlib.asynccontextmanager
async def bot_running(settings) -> AsyncIterator[Any]:
    """The long-running bot (polling the fake server), without the scheduler."""
    from bot.telegram.runner import build_application, running

    application = build_application(settings)
    async with running(application, schedule=False, poll_timeout=1) as app:
        yield app


async def reply_to(server: FakeBotApi, in_chat: int | str, text: str, **kwargs: Any) -> dict:
    """Inject `text` (send_text's keywords: user_id, chat_id, reply_to) and wait for the bot's
    next message in `in_chat`."""
    before = len(server.sent(in_chat))
    server.send_text(text, **kwargs)
    sent = await until(lambda: len(server.sent(in_chat)) > before and server.sent(in_chat))
    return sent[before]


async def press(server: FakeBotApi, data: str, *, user_id: int, message: dict) -> dict:
    """Press an inline button under `message`; wait for the bot's answerCallbackQuery."""
    before = len(server.calls_of("answerCallbackQuery"))
    server.press(data, user_id=user_id, message=message)
    answers = await until(lambda: len(server.calls_of("answerCallbackQuery")) > before
                          and server.calls_of("answerCallbackQuery"))
    return answers[before].params


def button_data(message: dict, label: str) -> str:
    """The callback data of the button labelled `label` under `message`: what pressing it sends."""
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button["text"] == label:
                return button["callback_data"]
    raise AssertionError(f"no button {label!r} under the message")


def draft_messages(server: FakeBotApi) -> list[dict]:
    """The draft messages in the moderators' chat, as they are now (after edits)."""
    chat = server.chat(MODERATORS_CHAT)["id"]
    return [m for (c, _), m in sorted(server.messages.items()) if c == chat and m["text"].startswith("Черновик")]


def add_pending(db, n: int) -> list[int]:
    """`n` pending drafts, as the pool would leave them for the moderators."""
    from corpus.store import drafts as draft_rows

    return [draft_rows.add_draft(db, text=f"ПРИХОДИШЬ НА РАБОТУ {i}\n@\nТАМ ПЯТНИЦА", model_version="v",
                                 temperature=0.8, seed=i, max_length=120, status="pending") for i in range(n)]


def draft_message(server: FakeBotApi, db, draft_id: int) -> dict:
    """The message that shows draft `draft_id` in the moderators' chat, as it is now."""
    from corpus.store import drafts as draft_rows

    row = draft_rows.get_draft(db, draft_id)
    return server.message(MODERATORS_CHAT, int(row["moderation_message_id"]))


async def one_shown(server: FakeBotApi, app: Any) -> tuple[Any, int, dict]:
    """One pending draft shown in the moderators' chat: (the database, its id, its message)."""
    db = app.bot_data.db
    (draft_id,) = add_pending(db, 1)
    await app.bot_data.service.dispatch_moderation()
    return db, draft_id, draft_message(server, db, draft_id)


def draft_id_of(message: dict) -> int:
    return int(message["text"].split("#")[1].split()[0])
