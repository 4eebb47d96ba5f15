"""The database's health as the running service sees it: SQLite's `quick_check` in a worker thread
at the first heartbeat, then every DB_CHECK_EVERY_SECONDS, and at the next heartbeat after any
operation met a database error other than a lock, or the nightly backup failed. Damage found makes
the heartbeat file say `unhealthy:` (so `buhurt doctor --quick`, the Docker health check, fails)
and tells the moderators once, until a check finds the pages sound again."""
from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlite_utils

from corpus.db import database_file, is_locked, quick_check
from corpus.store.clock import utcnow
from jobs import notices

log = logging.getLogger(__name__)
DB_CHECK_EVERY_SECONDS = 600.0   # quick_check reads the whole file: 3.5 s of a worker thread for 350 MiB
UNHEALTHY = "unhealthy:"         # a heartbeat file line that fails `doctor --quick`


class DatabaseHealth:
    def __init__(self, db: sqlite_utils.Database, notify: Callable[[str], Awaitable[None]]) -> None:
        self.db, self.notify = db, notify
        self.every = DB_CHECK_EVERY_SECONDS
        self.problem = ""            # what the last quick_check found ("": sound)
        self.unwritten = ""          # why the last heartbeat could not be written ("": it was)
        self._checked = -math.inf

    def failed(self, exc: BaseException) -> None:
        """An operation met a database error: unless it was a lock, check at the next heartbeat."""
        if isinstance(exc, sqlite3.DatabaseError) and not is_locked(exc):
            self.check_soon()

    def check_soon(self) -> None:
        """Check at the next heartbeat (within a minute), not at the schedule's next time."""
        self._checked = -math.inf

    async def check(self) -> str:
        """The damage found ("" when none), checking again when due."""
        if time.monotonic() - self._checked < self.every:
            return self.problem
        self._checked = time.monotonic()
        path = database_file(self.db)
        problem = await asyncio.to_thread(quick_check, path)
        if problem and not self.problem:
            log.error("the database %s is damaged (quick_check: %s): restore the newest backup", path, problem)
            await self.notify(notices.DATABASE_DAMAGED.format(problem=problem[:300]))
        elif self.problem and not problem:
            log.info("the database %s passes quick_check again", path)
        self.problem = problem
        return problem

    async def beat(self, heartbeat_file: Path) -> None:
        """Rewrite the heartbeat file (the time, and the damage when there is some)."""
        problem = await self.check()
        lines = [utcnow()]
        if problem:
            lines.append(f"{UNHEALTHY} the database is damaged ({problem}); stop the bot and restore the newest"
                         " backup (docs/operating.md, Backups)")
        try:
            await asyncio.to_thread(_write_atomic, heartbeat_file, "\n".join(lines) + "\n")
        except OSError as exc:   # a full disk, say: one line while it lasts, no traceback every minute
            reason = str(exc.strerror or exc)
            if reason != self.unwritten:
                log.warning("the heartbeat file %s cannot be written (%s): `buhurt doctor --quick` and the Docker"
                            " health check fail until it can", heartbeat_file, reason)
            self.unwritten = reason
            return
        if self.unwritten:
            log.info("the heartbeat file %s is written again", heartbeat_file)
            self.unwritten = ""


def _write_atomic(path: Path, text: str) -> None:
    """A reader (`doctor --quick`) sees the old file or the new one, never half of it."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
