"""Queries on `ratings` (the blind rating flow, jobs/rating.py) and `served` (what each subscriber
got from /generate).

A rating row is written when a post is shown to a rater (both answers NULL), so one rater never
gets the same post twice (UNIQUE rater, source, item), and filled in as they press the buttons.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, cast

import sqlite_utils

from corpus.store.clock import utcnow

CORPUS, DRAFT = "corpus", "draft"
QUESTIONS = ("readable", "would_publish")


def unrated_posts(db: sqlite_utils.Database, rater_id: Any, limit: int | None = 200,
                  keep: Callable[[str], bool] | None = None, rng: random.Random | None = None) -> list[dict[str, Any]]:
    """Up to `limit` (None: all) usable corpus posts (id, text as the model learns it) this rater has
    not been shown, in random order; with `keep`, drawn among the posts whose text it keeps, so the
    few such posts left among many others are found (a random sample filtered afterwards missed them)."""
    if keep is None:
        return list(db.query(f"{_UNRATED_POSTS} ORDER BY random() LIMIT ?",
                             [str(rater_id), -1 if limit is None else limit]))
    kept = [{"id": post_id, "text": text} for post_id, text in db.execute(_UNRATED_POSTS, [str(rater_id)])
            if keep(text)]
    (rng or random.Random()).shuffle(kept)
    return kept if limit is None else kept[:limit]


_UNRATED_POSTS = ("SELECT id, COALESCE(clean_text, text) AS text FROM posts WHERE excluded_reason IS NULL"
                  " AND id NOT IN (SELECT item_id FROM ratings WHERE rater_id = ? AND source = 'corpus')")


def unrated_drafts(db: sqlite_utils.Database, rater_id: Any, version: str, limit: int = 1) -> list[dict[str, Any]]:
    """Ready rating drafts of model `version` this rater has not been shown, in random order."""
    return list(db.query(
        "SELECT * FROM drafts WHERE purpose = 'rating' AND status = 'ready' AND model_version = ?"
        " AND id NOT IN (SELECT item_id FROM ratings WHERE rater_id = ? AND source = 'draft')"
        " ORDER BY random() LIMIT ?", [version, str(rater_id), limit]))


def count_ready_drafts(db: sqlite_utils.Database, version: str) -> int:
    return db.execute("SELECT count(*) FROM drafts WHERE purpose = 'rating' AND status = 'ready'"
                      " AND model_version = ?", [version]).fetchone()[0]


def add_shown(db: sqlite_utils.Database, *, rater_id: Any, source: str, item_id: int,
              model_version: str | None) -> int | None:
    """Record that `item_id` is shown to the rater; None when they were shown it before."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO ratings (rater_id, source, item_id, model_version, shown_at) VALUES (?, ?, ?, ?, ?)",
        [str(rater_id), source, item_id, model_version, utcnow()])
    return cast(int, cursor.lastrowid) if cursor.rowcount == 1 else None


def set_message(db: sqlite_utils.Database, rating_id: int, chat_id: Any, message_id: Any) -> None:
    db.execute("UPDATE ratings SET chat_id = ?, message_id = ? WHERE id = ?",
               [str(chat_id), str(message_id), rating_id])


def forget_shown(db: sqlite_utils.Database, rating_id: int) -> None:
    """Undo `add_shown` when the post could not be sent (the rater may get it later)."""
    db.execute("DELETE FROM ratings WHERE id = ? AND readable IS NULL AND would_publish IS NULL", [rating_id])


def get_rating(db: sqlite_utils.Database, rating_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM ratings WHERE id = ?", [rating_id]))
    return rows[0] if rows else None


def answer(db: sqlite_utils.Database, rating_id: int, question: str, value: bool) -> dict[str, Any] | None:
    """Store one answer (`question` in QUESTIONS) while the card is open (not both questions
    answered yet); returns the row as it is now, or None when nothing was stored (the card was
    closed already, or there is no such rating)."""
    if question not in QUESTIONS:
        raise ValueError(f"unknown rating question {question!r}")
    cursor = db.execute(f"UPDATE ratings SET {question} = ?, rated_at = ? WHERE id = ?"
                        " AND (readable IS NULL OR would_publish IS NULL)", [int(value), utcnow(), rating_id])
    return get_rating(db, rating_id) if cursor.rowcount == 1 else None


def share_counts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Per (source, model version): answers given and "yes" answers to each question."""
    return list(db.query(
        "SELECT source, model_version, count(readable) AS readable_n, COALESCE(sum(readable), 0) AS readable_yes,"
        " count(would_publish) AS publish_n, COALESCE(sum(would_publish), 0) AS publish_yes"
        " FROM ratings GROUP BY source, model_version ORDER BY source, model_version"))


def readable_counts(db: sqlite_utils.Database, version: str) -> tuple[int, int]:
    """(yes, answered) to "reads from start to end" for the drafts of `version`."""
    row = db.execute("SELECT COALESCE(sum(readable), 0), count(readable) FROM ratings"
                     " WHERE source = 'draft' AND model_version = ?", [version]).fetchone()
    return int(row[0]), int(row[1])


def mark_served(db: sqlite_utils.Database, user_id: Any, draft_id: int, text_hash: str) -> None:
    db.execute("INSERT OR IGNORE INTO served (user_id, draft_id, text_hash, at) VALUES (?, ?, ?, ?)",
               [str(user_id), draft_id, text_hash, utcnow()])


def was_served(db: sqlite_utils.Database, user_id: Any, draft_id: int, text_hash: str) -> bool:
    """Whether this subscriber got this draft, or a post with the same text, before."""
    return db.execute("SELECT 1 FROM served WHERE user_id = ? AND (draft_id = ? OR text_hash = ?) LIMIT 1",
                      [str(user_id), draft_id, text_hash]).fetchone() is not None
