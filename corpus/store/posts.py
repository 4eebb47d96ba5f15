"""Queries on `posts`: the corpus the model learns from."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import sqlite_utils

from corpus.db import write_transaction
from corpus.store.clock import utcnow
from corpus.store.shingles import changed_by_cleaning, reindex_posts

POST_FIELDS = (
    "source", "community", "external_id", "date", "text", "likes", "reposts", "views", "comments",
    "reactions", "reactions_json", "is_ad", "is_pinned", "is_repost", "has_attachments", "origin",
)
METRIC_FIELDS = ("likes", "reposts", "views", "comments", "reactions", "reactions_json")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def has_text(db: sqlite_utils.Database, text: str) -> bool:
    """Whether a corpus post has exactly this (normalised) text, as imported or as cleaning left it
    (what the model learned: a hashtag line or a signature gone). Both lookups use an index."""
    return db.execute("SELECT 1 FROM posts WHERE text_hash = ? UNION ALL SELECT 1 FROM posts WHERE clean_text = ?"
                      " LIMIT 1", [text_hash(text), text]).fetchone() is not None


class Stored(NamedTuple):
    """What `add_posts` did: posts added, posts whose counters were refreshed, posts whose text
    was replaced by the source's newer one; and for each post kept out, the origin of the post of
    its community that holds its external id with another text (another Telegram channel imported
    under the same label: message ids start at 1 in every channel)."""

    added: int
    updated: int
    edited: int = 0
    kept_out: tuple[str, ...] = ()


def add_posts(db: sqlite_utils.Database, posts: Iterable[dict[str, Any]], *, batch: int = 2000,
              batch_chars: int = 1_000_000) -> Stored:
    """Insert posts in one transaction, `batch` rows or `batch_chars` characters of text at a time,
    whichever comes first (posts may be a generator: memory stays one batch, however large a hostile
    file's messages are); a post already stored (same source, community, external_id; for a post with
    an `origin`, the same source, origin, external_id under any community) only gets its metrics
    refreshed, and its text replaced when it differs (edited upstream: its cleaning is undone, so the
    next cleaning decides on the new text). A post whose community holds the same external id from
    another origin is that post only with the same text (the channel, renamed since: counters
    refreshed); with another text it is another channel's, kept out, the stored post untouched (the
    schema keys posts by source, community, external_id), and named in `kept_out`.
    Returns Stored(added, updated, edited, kept_out). Plain executemany: ~30,000 rows/s."""
    added = updated = edited = 0
    kept_out: list[str] = []
    now = utcnow()
    columns = [*POST_FIELDS, "text_hash", "imported_at"]
    insert = (f"INSERT INTO posts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})")
    with write_transaction(db):   # it reads which posts are stored, then writes: the lock first
        rows: list[dict[str, Any]] = []
        chars = 0
        for post in posts:
            rows.append(_row(post))
            chars += len(rows[-1]["text"] or "")
            if len(rows) >= batch or chars >= batch_chars:
                a, u, e = _store(db, rows, insert, columns, now, kept_out)
                added, updated, edited, rows, chars = added + a, updated + u, edited + e, [], 0
        a, u, e = _store(db, rows, insert, columns, now, kept_out)
    return Stored(added + a, updated + u, edited + e, tuple(kept_out))


def _row(post: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {key: post.get(key) for key in POST_FIELDS}
    row["community"] = row["community"] or ""
    for flag in ("is_ad", "is_pinned", "is_repost", "has_attachments"):
        row[flag] = int(bool(row[flag]))
    row["text_hash"] = text_hash(row["text"])
    if row["external_id"] is None:
        row["external_id"] = row["text_hash"]
    row["external_id"] = str(row["external_id"])
    return row


def _key(row: dict[str, Any]) -> tuple:
    return row["source"], row["community"], row["origin"], row["external_id"]


def _stored_query(source: str, community: str, origin: str | None, part: list[str]) -> tuple[str, list]:
    """The stored posts that may be the same as rows of (source, community, origin) with these
    external ids: with an origin (a Telegram channel), that origin's, whatever their community,
    rows stored before origins were kept under the channel's name or this label, and this label's
    posts of another origin (the same post only with the same text: `_store`); without one,
    (source, community)'s."""
    marks = ", ".join("?" * len(part))
    if origin is None:
        return (f"SELECT id, external_id, text_hash, origin FROM posts WHERE source = ? AND community = ?"
                f" AND external_id IN ({marks})",
                [source, community, *part])
    return (f"SELECT id, external_id, text_hash, origin FROM posts WHERE source = ? AND external_id IN ({marks})"
            " AND (origin = ? OR community = ? OR (origin IS NULL AND community = ?)) ORDER BY id DESC",
            [source, *part, origin, community, origin])


def _store(db, rows: list[dict[str, Any]], insert: str, columns: list[str], now: str,
           kept_out: list[str]) -> tuple[int, int, int]:
    added = updated = 0
    known: dict[tuple, tuple[int, str | None]] = {}   # key -> (post id, its text's hash; None: not its origin's)
    taken: dict[tuple, str] = {}   # key -> the origin of another channel's post holding its id, another text
    for source, community, origin in {_key(r)[:3] for r in rows}:
        hashes: dict[str, set[str]] = {}   # external id -> the hashes of the rows' texts
        for r in rows:
            if _key(r)[:3] == (source, community, origin):
                hashes.setdefault(r["external_id"], set()).add(r["text_hash"])
        wanted = sorted(hashes)
        renamed: dict[tuple, tuple[int, str | None]] = {}
        for i in range(0, len(wanted), 500):
            for post_id, external_id, stored_hash, stored_origin in db.execute(
                    *_stored_query(source, community, origin, wanted[i:i + 500])):
                key = (source, community, origin, external_id)
                if stored_origin is None or stored_origin == origin:
                    known[key] = (post_id, stored_hash)
                elif stored_hash in hashes[external_id]:
                    # this channel's post under its former name: found again, never rewritten by this text
                    renamed[key] = (post_id, None)
                else:   # another channel's message under the same label (ids start at 1 in every channel)
                    taken[key] = stored_origin
        known = {**renamed, **known}
    inserted: list[int] = []
    edited: list[int] = []
    for row in rows:
        key = _key(row)
        if key not in known and key in taken:   # its id is held by another channel's post: left as it is
            kept_out.append(taken[key])
            continue
        if key not in known:
            row["imported_at"] = now
            known[key] = (db.conn.execute(insert, [row[c] for c in columns]).lastrowid, row["text_hash"])
            inserted.append(known[key][0])
            added += 1
            continue
        post_id, stored_hash = known[key]
        if row["origin"] is not None:   # a row stored before origins were kept learns its own
            db.conn.execute("UPDATE posts SET origin = ? WHERE id = ? AND origin IS NULL", [row["origin"], post_id])
        if stored_hash is not None and row["text_hash"] != stored_hash:   # edited upstream: cleaned again
            db.conn.execute("UPDATE posts SET text = ?, text_hash = ?, clean_text = NULL, excluded_reason = NULL,"
                            " updated_at = ? WHERE id = ?", [row["text"], row["text_hash"], now, post_id])
            known[key] = (post_id, row["text_hash"])
            edited.append(post_id)
        metrics = {k: row[k] for k in METRIC_FIELDS if row[k] is not None}
        if metrics:
            sets = ", ".join(f"{k} = ?" for k in metrics)
            db.conn.execute(f"UPDATE posts SET {sets}, updated_at = ? WHERE id = ?",
                            [*metrics.values(), now, post_id])
            updated += 1
    reindex_posts(db, inserted + edited)  # the near-copy index (corpus/store/shingles.py)
    return added, updated, len(set(edited))


def count_posts(db: sqlite_utils.Database, *, usable_only: bool = False) -> int:
    where = " WHERE excluded_reason IS NULL" if usable_only else ""
    return db.execute(f"SELECT count(*) FROM posts{where}").fetchone()[0]


def set_cleaning(db: sqlite_utils.Database, results: Iterable[tuple[int, str | None, str | None]]) -> None:
    """Store (post id, clean text, excluded reason) for many posts in one transaction; the near-copy
    index follows the posts whose text or exclusion changed."""
    results = list(results)
    with write_transaction(db):   # reads the old texts, then writes: the lock first
        changed = changed_by_cleaning(db, results)
        db.conn.executemany(
            "UPDATE posts SET clean_text = ?, excluded_reason = ? WHERE id = ?",
            [(clean, reason, post_id) for post_id, clean, reason in results],
        )
        reindex_posts(db, changed)


def posts_for_cleaning(db: sqlite_utils.Database, *, only_new: bool = False) -> Iterator[dict[str, Any]]:
    """Every post (or every post never cleaned) with what the cleaning rules look at, oldest first
    (the first of duplicates wins), streamed."""
    where = " WHERE clean_text IS NULL AND excluded_reason IS NULL" if only_new else ""
    return db.query(
        "SELECT id, source, community, text, is_ad, is_repost, has_attachments FROM posts"
        f"{where} ORDER BY COALESCE(date, imported_at), id"
    )


def community_texts(db: sqlite_utils.Database, community: str) -> Iterator[str]:
    """The received texts of one community's posts, streamed (signature learning)."""
    for (text,) in db.execute("SELECT text FROM posts WHERE community = ?", [community]):
        yield text


def uncleaned_communities(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT DISTINCT community FROM posts WHERE clean_text IS NULL AND excluded_reason IS NULL")]


def kept_clean_texts(db: sqlite_utils.Database) -> Iterator[tuple[int, str]]:
    """(id, clean text) of every kept post, oldest first, streamed."""
    yield from db.execute(
        "SELECT id, clean_text FROM posts WHERE excluded_reason IS NULL AND clean_text IS NOT NULL"
        " ORDER BY COALESCE(date, imported_at), id")


def kept_containing(db: sqlite_utils.Database, needles: list[str], limit: int = 200) -> list[str]:
    """Clean texts of kept posts holding any of `needles` (as written), at most `limit`, oldest first."""
    if not needles:
        return []
    where = " OR ".join("instr(clean_text, ?) > 0" for _ in needles)
    return [r[0] for r in db.execute(
        f"SELECT clean_text FROM posts WHERE excluded_reason IS NULL AND clean_text IS NOT NULL AND ({where})"
        " ORDER BY COALESCE(date, imported_at), id LIMIT ?", [*needles, limit]).fetchall()]


def kept_clean_count(db: sqlite_utils.Database) -> int:
    """How many posts `kept_clean_texts` yields."""
    return db.execute(
        "SELECT count(*) FROM posts WHERE excluded_reason IS NULL AND clean_text IS NOT NULL").fetchone()[0]


def post_clean_text(db: sqlite_utils.Database, post_id: int) -> str:
    row = db.execute("SELECT clean_text FROM posts WHERE id = ?", [post_id]).fetchone()
    return row[0] if row else ""


def uncleaned_count(db: sqlite_utils.Database) -> int:
    """Posts that were never cleaned (imported since the last cleaning)."""
    return db.execute(
        "SELECT count(*) FROM posts WHERE clean_text IS NULL AND excluded_reason IS NULL"
    ).fetchone()[0]


def generated_texts(db: sqlite_utils.Database) -> list[str]:
    """Every text this bot generated (drafts, and moderators' edits of them): never training data."""
    rows = db.execute("SELECT text, final_text FROM drafts").fetchall()
    return sorted({t for row in rows for t in row if t})


def exclusion_counts(db: sqlite_utils.Database) -> dict[str, int]:
    """How many posts each cleaning rule excluded ('' = kept)."""
    rows = db.execute("SELECT COALESCE(excluded_reason, ''), count(*) FROM posts GROUP BY 1").fetchall()
    return dict(rows)


def posts_with_metrics(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Trainable posts with their community and counters (popularity weighting, stats): `likes`
    is a Telegram post's reactions (an export has no likes), as for the published posts' scores."""
    return list(db.query(
        "SELECT id, community, COALESCE(likes, reactions) AS likes, views, COALESCE(clean_text, text) AS text"
        " FROM posts"
        " WHERE excluded_reason IS NULL ORDER BY id"
    ))


def holds_only(db: sqlite_utils.Database, source: str, community: str) -> bool:
    """Whether the corpus has posts and every one is of (`source`, `community`)."""
    total, theirs = db.execute(
        "SELECT count(*), count(CASE WHEN source = ? AND community = ? THEN 1 END) FROM posts",
        [source, community]).fetchone()
    return total > 0 and total == theirs


def delete_community(db: sqlite_utils.Database, source: str, community: str) -> int:
    """Delete the posts of (`source`, `community`) and their near-copy index rows; returns how many."""
    with write_transaction(db):   # reads, then deletes: the lock first
        ids = [row[0] for row in db.execute(
            "SELECT id FROM posts WHERE source = ? AND community = ?", [source, community])]
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            db.conn.execute(f"DELETE FROM post_shingles WHERE post_id IN ({marks})", part)
            db.conn.execute(f"DELETE FROM posts WHERE id IN ({marks})", part)
    return len(ids)
