"""Database writes on the event loop that wait out another process's lock without freezing it.

The service's own connection (the one its handlers and jobs use on the event loop) waits at most
LOOP_BUSY_SECONDS inside SQLite for a lock (`on_the_loop`); `patiently` retries a store call that
met "database is locked" with `await asyncio.sleep` between tries, for as long as the configured
busy timeout (paths.busy_timeout_seconds), so that while a `buhurt` command or a backup holds the
database, /start and every other handler keep being answered. A call that still finds the lock then
raises DatabaseBusy (one line; the publishing job retries its slot within minutes, /generate says
politely it cannot now). A full disk ("database or disk is full") is the same to them at once:
nothing written, tried again later (the slot within minutes), and the line names the file and what
to do. A store call is one transaction: a failed try leaves nothing half-written
(sqlite_utils rolls it back), so trying again is safe. Connections never registered here (the CLI's,
worker threads') keep SQLite's own busy wait: `patiently` calls them once."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import sqlite_utils

from corpus.db import database_error, database_file, is_full, is_locked, set_busy_timeout
from jobs.errors import JobError

log = logging.getLogger(__name__)
T = TypeVar("T")

LOOP_BUSY_SECONDS = 0.05      # the most one try blocks the event loop
FIRST_PAUSE, MAX_PAUSE = 0.05, 1.0
_patience: weakref.WeakKeyDictionary[sqlite_utils.Database, float] = weakref.WeakKeyDictionary()


class DatabaseBusy(JobError):
    """Another process held the database for longer than the busy timeout (or the disk is full)."""


def on_the_loop(db: sqlite_utils.Database, busy_timeout: float) -> None:
    """`db` is used on the event loop: SQLite itself waits only LOOP_BUSY_SECONDS for a lock, and
    `patiently` waits the rest (`busy_timeout` seconds in all) off the loop."""
    set_busy_timeout(db, LOOP_BUSY_SECONDS)
    _patience[db] = busy_timeout


def busy_seconds(db: sqlite_utils.Database) -> float:
    """How long a write of `db`'s may wait for another process's lock: what `on_the_loop` registered,
    else SQLite's own busy timeout (a worker thread's own connection to the same file waits as long)."""
    wait = _patience.get(db)
    return wait if wait is not None else db.execute("PRAGMA busy_timeout").fetchone()[0] / 1000


async def patiently(call: Callable[..., T], db: sqlite_utils.Database, *args: Any, **kwargs: Any) -> T:
    """`call(db, *args, **kwargs)`, tried again while another process holds the database, for up
    to the busy timeout registered with `on_the_loop`; DatabaseBusy when the lock outlasts it."""
    wait = _patience.get(db)
    if wait is None:
        return call(db, *args, **kwargs)
    deadline, pause, waited = time.monotonic() + wait, FIRST_PAUSE, False
    while True:
        try:
            result = call(db, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if is_full(exc):
                raise DatabaseBusy(str(database_error(database_file(db), exc))) from None
            if not is_locked(exc):
                raise
            if time.monotonic() >= deadline:
                raise DatabaseBusy(f"{database_file(db)}: locked by another process for {wait:g} s"
                                   " (paths.busy_timeout_seconds)") from None
            if not waited:
                log.info("the database is locked by another process: %s waits up to %g s",
                         getattr(call, "__name__", "a write"), wait)
                waited = True
            await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, MAX_PAUSE)
            continue
        if waited:
            log.info("the database is free again: %s done", getattr(call, "__name__", "a write"))
        return result
