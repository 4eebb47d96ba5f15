"""Queries on `publications`: at-most-once publishing per (draft, network, chat).

A row is written as `sending` BEFORE the network call (`begin_publication`) and becomes `sent`
after it (`finish_publication`). A row left `sending` by a crash is marked `unknown` at start-up
(`reconcile_interrupted`) and never re-sent: a lost post is surfaced, a duplicate is impossible.
Each destination has its own queue position (`next_for`); `finished_drafts` are the queued drafts
every destination has.
"""
from __future__ import annotations

from typing import Any

import sqlite_utils

from corpus.store.clock import utcnow


def begin_publication(db: sqlite_utils.Database, draft_id: int, network: str, chat_id: Any) -> int | None:
    """Claim the right to send draft to (network, chat). None if it was claimed before (sent,
    sending, or unknown) — the caller must not send. A `failed` row is reclaimed for a retry."""
    chat = str(chat_id)
    with db.atomic():
        row = db.execute(
            "SELECT id, status FROM publications WHERE draft_id = ? AND network = ? AND chat_id = ?",
            [draft_id, network, chat],
        ).fetchone()
        if row is None:
            return db.table("publications").insert({
                "draft_id": draft_id, "network": network, "chat_id": chat, "status": "sending",
                "created_at": utcnow(),
            }).last_pk
        if row[1] != "failed":
            return None
        db.execute("UPDATE publications SET status = 'sending', error = NULL WHERE id = ?", [row[0]])
        return row[0]


def finish_publication(db: sqlite_utils.Database, publication_id: int, message_id: Any) -> None:
    db.execute(
        "UPDATE publications SET status = 'sent', message_id = ?, published_at = ? WHERE id = ?",
        [str(message_id), utcnow(), publication_id],
    )


def fail_publication(db: sqlite_utils.Database, publication_id: int, error: str) -> None:
    """The network call failed for sure (an error answer): the post may be retried later."""
    db.execute("UPDATE publications SET status = 'failed', error = ? WHERE id = ?", [error[:500], publication_id])


def mark_unknown(db: sqlite_utils.Database, publication_id: int, error: str) -> None:
    """The call failed in a way that may still have published (timeout, 5xx): never re-send."""
    db.execute("UPDATE publications SET status = 'unknown', error = ? WHERE id = ?", [error[:500], publication_id])


def reconcile_interrupted(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Mark rows left `sending` by a dead process as `unknown`; return them for a warning."""
    with db.atomic():
        rows = list(db.query("SELECT * FROM publications WHERE status = 'sending'"))
        db.execute(
            "UPDATE publications SET status = 'unknown',"
            " error = 'process stopped between sending and recording' WHERE status = 'sending'"
        )
    return rows


def publications_of(db: sqlite_utils.Database, draft_id: int) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM publications WHERE draft_id = ? ORDER BY id", [draft_id]))


def find_publication(db: sqlite_utils.Database, network: str, chat_id: Any, message_id: Any) -> dict | None:
    rows = list(db.query(
        "SELECT * FROM publications WHERE network = ? AND chat_id = ? AND message_id = ?",
        [network, str(chat_id), str(message_id)],
    ))
    return rows[0] if rows else None


# a draft row (aliased `drafts`) some destination has started: any publication but a failed one to retry
STARTED = "EXISTS (SELECT 1 FROM publications p WHERE p.draft_id = drafts.id AND p.status != 'failed')"


def under_way(db: sqlite_utils.Database, draft_id: int) -> bool:
    """Whether the draft is queued and some destination has started it (sent, sending, in doubt, skipped)."""
    return db.execute(f"SELECT 1 FROM drafts WHERE id = ? AND status = 'queued' AND {STARTED}",
                      [draft_id]).fetchone() is not None


def recent_publications(db: sqlite_utils.Database, network: str, chat_id: Any, since: str) -> list[dict[str, Any]]:
    """This destination's posts sent since `since`."""
    return list(db.query(
        "SELECT * FROM publications WHERE network = ? AND chat_id = ? AND status = 'sent' AND published_at >= ?"
        " ORDER BY id", [network, str(chat_id), since],
    ))


def next_for(db: sqlite_utils.Database, network: str, chat_id: Any, now: str | None = None) -> dict[str, Any] | None:
    """This destination's queue position: the first queued channel draft in queue order (its id,
    unless a moderator moved it: `drafts.queue_order`) that it has not had yet (no publication row,
    or only a `failed` one to retry) and that is not held past `now` (`drafts.not_before`). Each
    channel and the VK wall has its own."""
    rows = list(db.query(
        "SELECT * FROM drafts d WHERE d.status = 'queued' AND d.purpose = 'channel'"
        " AND (d.not_before IS NULL OR d.not_before <= ?) AND NOT EXISTS ("
        " SELECT 1 FROM publications p WHERE p.draft_id = d.id AND p.network = ? AND p.chat_id = ?"
        " AND p.status != 'failed') ORDER BY COALESCE(d.queue_order, d.id), d.id LIMIT 1",
        [now or utcnow(), network, str(chat_id)],
    ))
    return rows[0] if rows else None


def stale_sending(db: sqlite_utils.Database, in_flight: set[int]) -> list[dict[str, Any]]:
    """Rows `sending` that no send of this process is working on: left by a failure inside it."""
    return [row for row in db.query("SELECT * FROM publications WHERE status = 'sending' ORDER BY id")
            if row["id"] not in in_flight]


def finished_drafts(db: sqlite_utils.Database, destinations: list[tuple[str, str]]) -> list[int]:
    """Queued drafts that every destination has (`sent`, or `unknown`: never re-sent) or skipped
    (`skipped`: a near-copy of a post already published there)."""
    if not destinations:
        return []
    done: dict[int, set[tuple[str, str]]] = {}
    for row in db.query(
        "SELECT p.draft_id, p.network, p.chat_id FROM publications p JOIN drafts d ON d.id = p.draft_id"
        " WHERE d.status = 'queued' AND p.status IN ('sent', 'unknown', 'skipped')"
    ):
        done.setdefault(row["draft_id"], set()).add((row["network"], row["chat_id"]))
    wanted = {(network, str(chat)) for network, chat in destinations}
    return sorted(draft_id for draft_id, have in done.items() if wanted <= have)


def count_queued_unstarted(db: sqlite_utils.Database) -> int:
    """Queued channel drafts that no destination has published (or is publishing) yet."""
    return db.execute(
        "SELECT count(*) FROM drafts d WHERE d.status = 'queued' AND d.purpose = 'channel' AND NOT EXISTS ("
        " SELECT 1 FROM publications p WHERE p.draft_id = d.id AND p.status != 'failed')"
    ).fetchone()[0]


def skip_publication(db: sqlite_utils.Database, draft_id: int, network: str, chat_id: Any, reason: str) -> None:
    """This destination never gets the draft (`skipped`, with the reason); its queue moves on."""
    db.execute(
        "INSERT INTO publications (draft_id, network, chat_id, status, error, created_at)"
        " VALUES (?, ?, ?, 'skipped', ?, ?)"
        " ON CONFLICT (draft_id, network, chat_id) DO UPDATE SET status = 'skipped', error = excluded.error"
        " WHERE publications.status = 'failed'",
        [draft_id, network, str(chat_id), reason[:500], utcnow()])


def skip_reason(db: sqlite_utils.Database, draft_id: int) -> str | None:
    """Why some destination skipped the draft (the first recorded), or None."""
    row = db.execute("SELECT error FROM publications WHERE draft_id = ? AND status = 'skipped' ORDER BY id LIMIT 1",
                     [draft_id]).fetchone()
    return row[0] if row else None


def sent_anywhere(db: sqlite_utils.Database, draft_id: int) -> bool:
    """Whether some destination has the draft (`sent`, or `unknown`: maybe sent)."""
    return db.execute("SELECT 1 FROM publications WHERE draft_id = ? AND status IN ('sent', 'unknown') LIMIT 1",
                      [draft_id]).fetchone() is not None
