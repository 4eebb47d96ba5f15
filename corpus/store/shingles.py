"""Queries on `post_shingles`: the near-copy index over the corpus (corpus/nearcopy.py).

The index holds the shingles of every usable post (excluded_reason IS NULL) as the model learns it
(clean_text, or the text as imported until the post is cleaned). It is kept current where posts
change: `add_posts` indexes the posts it inserts, `set_cleaning` re-indexes the posts whose
cleaned text or exclusion changed (corpus/store/posts.py), in the same transactions.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlite_utils

from corpus.nearcopy import longest_shared, post_shingles, text_shingles

_CHUNK = 500  # ids or hashes per IN (...) query


def _chunks(values: Sequence, size: int = _CHUNK):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def reindex_posts(db: sqlite_utils.Database, post_ids: Iterable[int]) -> int:
    """Replace the index rows of these posts by their current text; returns the rows written.
    Call inside the caller's transaction."""
    ids = sorted(set(post_ids))
    written = 0
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        db.conn.execute(f"DELETE FROM post_shingles WHERE post_id IN ({marks})", chunk)
        rows = db.conn.execute(
            f"SELECT id, COALESCE(clean_text, text) FROM posts WHERE id IN ({marks})"
            " AND excluded_reason IS NULL", chunk).fetchall()
        batch = [(h, post_id, pos) for post_id, text in rows for h, pos in post_shingles(text or "")]
        db.conn.executemany("INSERT OR IGNORE INTO post_shingles (hash, post_id, pos) VALUES (?, ?, ?)", batch)
        written += len(batch)
    return written


def reindex_all(db: sqlite_utils.Database) -> int:
    """Rebuild the whole index (the migration that creates it; `buhurt corpus clean` does not need it)."""
    db.conn.execute("DELETE FROM post_shingles")
    ids = [row[0] for row in db.conn.execute("SELECT id FROM posts WHERE excluded_reason IS NULL")]
    return reindex_posts(db, ids)


def changed_by_cleaning(db: sqlite_utils.Database, results: Sequence[tuple[int, str | None, str | None]]) -> list[int]:
    """Ids among (post id, clean text, excluded reason) whose indexed text (none when excluded)
    would change: a post's first cleaning usually leaves it as imported, and costs nothing."""
    old: dict[int, tuple[str | None, str]] = {}
    ids = [r[0] for r in results]
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for post_id, text, clean, reason in db.conn.execute(
                f"SELECT id, text, clean_text, excluded_reason FROM posts WHERE id IN ({marks})", chunk):
            old[post_id] = (None if reason is not None else (clean if clean is not None else text), text)
    changed = []
    for post_id, clean, reason in results:
        indexed, text = old.get(post_id, (None, ""))
        if indexed != (None if reason is not None else (clean if clean is not None else text)):
            changed.append(post_id)
    return changed


def longest_shared_run(db: sqlite_utils.Database, text: str) -> tuple[int, int | None]:
    """(the longest run of characters `text` shares verbatim with a usable corpus post, that post's
    id): candidates come from the index, never from a scan of the corpus."""
    hashes = list(text_shingles(text))
    hits: list[tuple[int, int, int]] = []
    for chunk in _chunks(hashes):
        marks = ",".join("?" * len(chunk))
        hits += db.conn.execute(
            f"SELECT hash, post_id, pos FROM post_shingles WHERE hash IN ({marks})", chunk).fetchall()
    if not hits:
        return 0, None
    posts: dict[int, str] = {}
    candidates = sorted({post_id for _, post_id, _ in hits})
    for chunk in _chunks(candidates):
        marks = ",".join("?" * len(chunk))
        posts.update(db.conn.execute(
            f"SELECT id, COALESCE(clean_text, text) FROM posts WHERE id IN ({marks})", chunk).fetchall())
    return longest_shared(text, hits, posts)


def index_size(db: sqlite_utils.Database) -> int:
    return db.conn.execute("SELECT count(*) FROM post_shingles").fetchone()[0]
