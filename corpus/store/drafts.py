"""Queries on `drafts` and `moderation_actions`: the draft state machine (docs/architecture.md).

channel drafts:    generated -> rejected_auto (screened out or outranked: jobs/pool.py)
                             | pending -> rejected | queued -> published
                                          queued -> pending (back to the moderators: corpus/store/desk.py)
                                          queued -> rejected_auto (skipped by every destination: jobs/publish.py)
subscriber drafts: ready -> served (the /generate pool); rejected_auto
rating drafts:     ready (shown to raters again and again: jobs/rating.py); rejected_auto
request drafts:    served (generated on demand for `/generate START TEXT`)

The statuses are corpus.statuses.DraftStatus. A publication that failed is `publications.status`
'failed' (corpus/store/publications.py); its draft stays queued and is sent again.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlite_utils

from corpus.statuses import DraftStatus
from corpus.store.clock import utcnow
from corpus.store.publications import STARTED

CHANNEL, SUBSCRIBER, REQUEST = "channel", "subscriber", "request"
# a draft's measures (migrations m003, m004; NULL for drafts made before), its decoding's stored
# name, and the learned ranker's score (m007)
MEASURE_COLUMNS = ("known_share", "reached_gap", "shared_chars", "line_count", "logprob_per_char", "grammar",
                   "decoding", "score", "ranker_score")


def add_draft(
    db: sqlite_utils.Database, *, text: str, model_version: str, temperature: float, seed: int,
    max_length: int, start_text: str = "", top_k: int = 0, purpose: str = CHANNEL,
    status: str = DraftStatus.GENERATED, status_reason: str | None = None, measures: dict[str, Any] | None = None,
) -> int:
    """Store a draft; `measures` are its MEASURE_COLUMNS (jobs/pool.py measures them)."""
    now = utcnow()
    row = {
        "text": text, "model_version": model_version, "temperature": temperature, "seed": seed,
        "start_text": start_text, "top_k": top_k, "max_length": max_length, "purpose": purpose,
        "status": status, "status_reason": status_reason, "created_at": now, "updated_at": now,
    }
    for key, value in (measures or {}).items():
        if key not in MEASURE_COLUMNS:
            raise ValueError(f"drafts has no measure column {key!r}")
        row[key] = value
    return cast(int, db.table("drafts").insert(row).last_pk)


def get_draft(db: sqlite_utils.Database, draft_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM drafts WHERE id = ?", [draft_id]))
    return rows[0] if rows else None


def transition(
    db: sqlite_utils.Database, draft_id: int, *, from_status: Iterable[str], to_status: str,
    reason: str | None = None, final_text: str | None = None, unstarted: bool = False,
) -> bool:
    """Move a draft to `to_status` only if it is in one of `from_status` (with `unstarted`, a
    queued one also only while no destination has started it: no publication but failed ones);
    False if it was not (already decided by someone else, under way, or deleted). Atomic: a single
    UPDATE."""
    allowed = list(from_status)
    marks = ",".join("?" * len(allowed))
    sets = "status = ?, updated_at = ?, status_reason = COALESCE(?, status_reason)"
    params: list[Any] = [to_status, utcnow(), reason]
    if final_text is not None:
        sets += ", final_text = ?"
        params.append(final_text)
    started = f" AND (status != 'queued' OR NOT {STARTED})" if unstarted else ""
    cursor = db.execute(
        f"UPDATE drafts SET {sets} WHERE id = ? AND status IN ({marks}){started}", [*params, draft_id, *allowed]
    )
    return cursor.rowcount == 1


def record_action(
    db: sqlite_utils.Database, draft_id: int, action: str, *, actor_id: Any = None,
    actor_name: str | None = None, detail: str | None = None,
) -> None:
    db.table("moderation_actions").insert(
        {
            "draft_id": draft_id, "action": action,
            "actor_id": None if actor_id is None else str(actor_id),
            "actor_name": actor_name, "detail": detail, "at": utcnow(),
        }
    )


def decide(
    db: sqlite_utils.Database, draft_id: int, *, action: str, to_status: str,
    from_status: Iterable[str] = (DraftStatus.PENDING,), actor_id: Any = None, actor_name: str | None = None,
    detail: str | None = None, final_text: str | None = None, unstarted: bool = False,
) -> bool:
    """A moderation decision: the transition and its audit record in one transaction."""
    with db.atomic():
        if not transition(db, draft_id, from_status=from_status, to_status=to_status,
                          reason=detail, final_text=final_text, unstarted=unstarted):
            return False
        record_action(db, draft_id, action, actor_id=actor_id, actor_name=actor_name, detail=detail)
    return True


def actions_for(db: sqlite_utils.Database, draft_id: int) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM moderation_actions WHERE draft_id = ? ORDER BY id", [draft_id]))


def count_by_status(db: sqlite_utils.Database, purpose: str = CHANNEL) -> dict[str, int]:
    rows = db.execute(
        "SELECT status, count(*) FROM drafts WHERE purpose = ? GROUP BY status", [purpose]
    ).fetchall()
    return dict(rows)


def with_status(db: sqlite_utils.Database, status: str, *, purpose: str = CHANNEL,
                limit: int = 100) -> list[dict[str, Any]]:
    return list(db.query(
        "SELECT * FROM drafts WHERE status = ? AND purpose = ? ORDER BY id LIMIT ?",
        [status, purpose, limit],
    ))


def unsent_for_moderation(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    """Pending channel drafts not yet shown in the moderators' chat."""
    return list(db.query(
        "SELECT * FROM drafts WHERE status = 'pending' AND purpose = 'channel'"
        " AND moderation_message_id IS NULL ORDER BY id LIMIT ?", [limit],
    ))


def set_moderation_message(db: sqlite_utils.Database, draft_id: int, chat_id: Any, message_id: Any) -> None:
    db.table("drafts").update(draft_id, {"moderation_chat_id": str(chat_id),
                                         "moderation_message_id": str(message_id), "updated_at": utcnow()})


def find_by_moderation_message(db: sqlite_utils.Database, chat_id: Any, message_id: Any) -> dict | None:
    rows = list(db.query(
        "SELECT * FROM drafts WHERE moderation_chat_id = ? AND moderation_message_id = ?",
        [str(chat_id), str(message_id)],
    ))
    return rows[0] if rows else None


def take_ready(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """Serve the oldest ready subscriber draft (the /generate pool) exactly once."""
    with db.atomic():
        row = db.execute(
            "SELECT id FROM drafts WHERE status = 'ready' AND purpose = 'subscriber' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        transition(db, row[0], from_status=[DraftStatus.READY], to_status=DraftStatus.SERVED)
    return get_draft(db, row[0])


def last_action_at(db: sqlite_utils.Database, actions: Iterable[str]) -> str | None:
    wanted = list(actions)
    marks = ",".join("?" * len(wanted))
    return db.execute(f"SELECT max(at) FROM moderation_actions WHERE action IN ({marks})", wanted).fetchone()[0]


def decisions(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every channel draft a moderator decided, with its last decision (`action`: approve, edit,
    reject or regenerate; `decided_at`), in the order of those decisions. An approval sent back to
    pending (↩️, 'unapprove') is no decision until the draft is decided again."""
    return list(db.query(
        "WITH last AS (SELECT max(id) AS action_id FROM moderation_actions"
        " WHERE action IN ('approve', 'edit', 'reject', 'regenerate', 'unapprove') GROUP BY draft_id)"
        " SELECT d.*, a.action, a.at AS decided_at FROM last JOIN moderation_actions a ON a.id = last.action_id"
        " JOIN drafts d ON d.id = a.draft_id WHERE d.purpose = 'channel' AND a.action != 'unapprove'"
        " ORDER BY a.at, a.id"))


def set_edit_distance(db: sqlite_utils.Database, draft_id: int, distance: int) -> None:
    db.execute("UPDATE drafts SET edit_distance = ? WHERE id = ?", [distance, draft_id])


def last_id(db: sqlite_utils.Database) -> int:
    """The newest draft's id (0 with none): what a pool run's rows come after."""
    return db.execute("SELECT coalesce(max(id), 0) FROM drafts").fetchone()[0]


def outcomes_since(db: sqlite_utils.Database, after_id: int, purpose: str,
                   statuses: Iterable[str]) -> list[tuple[str, str | None]]:
    """(status, status_reason) of the drafts of `purpose` stored after `after_id` whose status
    was one of `statuses` when made (a pool run's: its ok status and rejected_auto)."""
    wanted = list(statuses)
    marks = ",".join("?" * len(wanted))
    return [tuple(r) for r in db.execute(
        f"SELECT status, status_reason FROM drafts WHERE id > ? AND purpose = ? AND status IN ({marks})"
        " ORDER BY id", [after_id, purpose, *wanted]).fetchall()]
