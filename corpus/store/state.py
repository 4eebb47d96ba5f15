"""Queries on `state`: small named values jobs keep between runs (cursors, last reminder)."""
from __future__ import annotations

from typing import overload

import sqlite_utils

from corpus.store.clock import utcnow


@overload
def get_state(db: sqlite_utils.Database, key: str) -> str | None: ...


@overload
def get_state(db: sqlite_utils.Database, key: str, default: str) -> str: ...


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
    return default if row is None else row[0]


def set_state(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        [key, value, utcnow()],
    )
