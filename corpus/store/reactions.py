"""Queries on `reactions`: counts per publication and kind, as a time series."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils

from corpus.store.clock import utcnow
from corpus.store.publications import find_publication


# A kind's latest count is that of its newest observation: the row stored last (max(id); SQLite's
# bare columns come from that row). observed_at has second precision, and a backlog of Telegram's
# updates after a restart is stored within one second: the newest observed_at alone would pick one
# of them at random, or count them all.


def record_counts(
    db: sqlite_utils.Database, network: str, chat_id: Any, message_id: Any, counts: Mapping[str, int],
    observed_at: str | None = None,
) -> int | None:
    """Store one observation of every reaction kind of a message. A message we did not publish
    is stored with publication_id NULL (it may be ours from before the database was reset).
    Returns the publication id, or None when the message is unknown."""
    publication = find_publication(db, network, chat_id, message_id)
    publication_id = publication["id"] if publication else None
    at = observed_at or utcnow()
    rows = [
        {"publication_id": publication_id, "network": network, "chat_id": str(chat_id),
         "message_id": str(message_id), "kind": kind, "count": int(count), "observed_at": at}
        for kind, count in counts.items()
    ]
    with db.atomic():
        if rows:
            db.table("reactions").insert_all(rows)
    return publication_id


def latest_counts(db: sqlite_utils.Database, publication_id: int) -> dict[str, int]:
    """The newest count of each reaction kind of one publication."""
    rows = db.execute(
        "SELECT kind, count FROM reactions r WHERE publication_id = ? AND id = ("
        " SELECT max(id) FROM reactions WHERE publication_id = r.publication_id AND kind = r.kind)",
        [publication_id],
    ).fetchall()
    return {kind: count for kind, count in rows}


def top_publications(db: sqlite_utils.Database, since: str, limit: int | None = 5,
                     exclude_kinds: tuple[str, ...] = ("view",)) -> list[dict[str, Any]]:
    """Publications since `since` (a draft sent to several destinations has a row for each),
    ranked by their latest total of reactions; every one with `limit` None."""
    marks = ",".join("?" * len(exclude_kinds)) or "''"
    return list(db.query(
        f"""
        WITH latest AS (
            SELECT publication_id, kind, count, max(id) FROM reactions   -- the newest observation (see above)
            WHERE publication_id IS NOT NULL AND kind NOT IN ({marks})
            GROUP BY publication_id, kind
        )
        SELECT d.id AS draft_id, COALESCE(d.final_text, d.text) AS text, p.network, p.chat_id,
               p.message_id, p.published_at, COALESCE(sum(latest.count), 0) AS score
        FROM publications p JOIN drafts d ON d.id = p.draft_id
        LEFT JOIN latest ON latest.publication_id = p.id
        WHERE p.status = 'sent' AND p.published_at >= ?
        GROUP BY p.id ORDER BY score DESC, p.published_at DESC LIMIT ?
        """,
        [*exclude_kinds, since, -1 if limit is None else limit],
    ))


def publication_counts(db: sqlite_utils.Database, since: str = "", first_days: int = 7) -> list[dict[str, Any]]:
    """Every sent publication since `since` with its reactions (all kinds but views) and views
    (None when the network gives none: Telegram bots), each kind's latest count within the
    publication's first `first_days` days, so that old posts compare with new ones at one age."""
    return list(db.query(
        """
        WITH latest AS (
            SELECT r.publication_id, r.kind, r.count, max(r.id)   -- the newest in its first days
            FROM reactions r JOIN publications p ON p.id = r.publication_id
            WHERE r.observed_at <= strftime('%Y-%m-%dT%H:%M:%S+00:00', p.published_at, ?)
            GROUP BY r.publication_id, r.kind
        )
        SELECT p.id AS publication_id, p.draft_id, p.network, p.chat_id, p.message_id, p.published_at,
               COALESCE(d.final_text, d.text) AS text,
               COALESCE(sum(CASE WHEN latest.kind != 'view' THEN latest.count END), 0) AS reactions,
               max(CASE WHEN latest.kind = 'view' THEN latest.count END) AS views
        FROM publications p JOIN drafts d ON d.id = p.draft_id
        LEFT JOIN latest ON latest.publication_id = p.id
        WHERE p.status = 'sent' AND p.published_at >= ?
        GROUP BY p.id ORDER BY p.id
        """,
        [f"+{int(first_days)} days", since],
    ))


def published_texts(db: sqlite_utils.Database, network: str, chat_id: Any) -> dict[int, str]:
    """{draft id: text as published} of every post sent (or maybe sent) to one destination."""
    return dict(db.execute(
        "SELECT d.id, COALESCE(d.final_text, d.text) FROM publications p JOIN drafts d ON d.id = p.draft_id"
        " WHERE p.network = ? AND p.chat_id = ? AND p.status IN ('sent', 'unknown', 'sending')",
        [network, str(chat_id)]).fetchall())
