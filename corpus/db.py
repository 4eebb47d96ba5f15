"""Open the project's SQLite database: WAL mode, versioned migrations, clear errors."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from corpus.errors import CorpusError
from corpus.migrations import MIGRATIONS


def open_db(path: str | Path, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the latest schema.

    Each migration runs in its own transaction together with its record, so a failure leaves the
    database at the previous version, never half-migrated. Connections belong to the thread that
    opened them: worker threads call open_db themselves.
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a SQLite database file")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA foreign_keys = ON")
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, no fsync per commit
        if migrate:
            MIGRATIONS.apply(db)
    except sqlite3.DatabaseError as exc:
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc
    return db


def schema_version(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations applied to `db`, oldest first."""
    return [m.name for m in MIGRATIONS.applied(db)]
