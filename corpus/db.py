"""Open the project's SQLite database: WAL mode, versioned migrations, clear errors."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from corpus.errors import CorpusError
from corpus.migrations import MIGRATIONS


def open_db(path: str | Path, *, migrate: bool = True, busy_timeout: float = 10.0) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the latest schema.

    Each migration runs in its own transaction together with its record, so a failure leaves the
    database at the previous version, never half-migrated. Connections belong to the thread that
    opened them: worker threads call open_db themselves. `busy_timeout`: seconds a write waits
    for another process's lock before "database is locked".
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a SQLite database file")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite_utils.Database(path)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, no fsync per commit
        if migrate:
            MIGRATIONS.apply(db)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise locked_error(path, busy_timeout) from None
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc
    return db


def locked_error(path: str | Path, busy_timeout: float) -> CorpusError:
    return CorpusError(f"{path}: the database is locked by another process (waited {busy_timeout:g} s,"
                       " paths.busy_timeout_seconds); stop the other writer (fuser shows it) and start again")


def check_writable(db: sqlite_utils.Database, path: str | Path, busy_timeout: float) -> None:
    """Take and release the write lock once (at start-up): CorpusError when another process holds
    it longer than the busy timeout, before any work starts half-way."""
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise locked_error(path, busy_timeout) from None
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc


def schema_version(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations applied to `db`, oldest first."""
    return [m.name for m in MIGRATIONS.applied(db)]
