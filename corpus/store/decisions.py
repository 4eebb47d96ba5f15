"""Queries on the TEMP table `cleaning_decisions`: one cleaning run's decisions (post id, clean
text, excluded reason), held in SQLite's temporary file of this connection instead of in memory
between the per-post rules, the duplicate pass and the final write (corpus/cleaning.py).

Rows are numbered in the order they were decided (`seq` 0, 1, ...: oldest post first). The table
lives in the temporary database, so writing it takes no lock on the corpus; SQLite deletes the
file when the table is dropped or the connection closes.
"""
from __future__ import annotations

from collections.abc import Iterator

import sqlite_utils

_BATCH = 2000


class Decisions:
    """One cleaning run's decisions; use as a context manager (the table is dropped at the end)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.count = 0
        self._pending: list[tuple[int, int, str | None, str | None]] = []

    def __enter__(self) -> "Decisions":
        self.db.execute("DROP TABLE IF EXISTS temp.cleaning_decisions")
        self.db.execute("CREATE TEMP TABLE cleaning_decisions (seq INTEGER PRIMARY KEY, post_id INTEGER NOT NULL,"
                        " clean_text TEXT, reason TEXT)")
        return self

    def __exit__(self, *exc) -> None:
        self._pending = []
        self.db.execute("DROP TABLE IF EXISTS temp.cleaning_decisions")

    def add(self, post_id: int, clean: str | None, reason: str | None) -> int:
        """Record one decision (written in batches); returns its seq."""
        self._pending.append((self.count, post_id, clean, reason))
        self.count += 1
        if len(self._pending) >= _BATCH:
            self.flush()
        return self.count - 1

    def flush(self) -> None:
        if self._pending:
            with self.db.atomic():
                self.db.conn.executemany("INSERT INTO cleaning_decisions VALUES (?, ?, ?, ?)", self._pending)
            self._pending = []

    def kept_texts(self) -> Iterator[str]:
        """The clean texts of the posts kept so far, in seq order, streamed."""
        self.flush()
        for (text,) in self.db.execute(
                "SELECT clean_text FROM cleaning_decisions WHERE reason IS NULL ORDER BY seq"):
            yield text

    def clean_text(self, seq: int) -> str:
        row = self.db.execute("SELECT clean_text FROM cleaning_decisions WHERE seq = ?", [seq]).fetchone()
        return row[0] if row else ""

    def set_reasons(self, reasons: dict[int, str]) -> None:
        """seq -> excluded reason, for decisions taken later (the duplicate pass)."""
        self.flush()
        with self.db.atomic():
            self.db.conn.executemany("UPDATE cleaning_decisions SET reason = ? WHERE seq = ?",
                                     [(reason, seq) for seq, reason in reasons.items()])

    def reason_counts(self) -> dict[str, int]:
        self.flush()
        return dict(self.db.execute(
            "SELECT reason, count(*) FROM cleaning_decisions WHERE reason IS NOT NULL GROUP BY reason").fetchall())

    def post_ids(self) -> list[int]:
        self.flush()
        return [row[0] for row in self.db.execute("SELECT post_id FROM cleaning_decisions ORDER BY seq")]

    def slices(self, size: int) -> Iterator[list[tuple[int, str | None, str | None]]]:
        """(post id, clean text, reason) of every decision, `size` at a time, in seq order."""
        self.flush()
        for start in range(0, self.count, size):
            yield self.db.execute(
                "SELECT post_id, clean_text, reason FROM cleaning_decisions WHERE seq >= ? AND seq < ? ORDER BY seq",
                [start, start + size]).fetchall()
