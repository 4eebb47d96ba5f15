"""Queries of the moderators' desk: votes on drafts (`moderation_votes`), the approved queue's order
and holds (`drafts.queue_order`, `drafts.not_before`), and the figures `/stats` draws."""
from __future__ import annotations

from typing import Any

import sqlite_utils

from corpus.store.clock import utcnow
from corpus.store.publications import STARTED

QUEUE_KEY = "COALESCE(d.queue_order, d.id)"   # an approved draft's place: its id unless moved


# ---- votes -------------------------------------------------------------------------------------
def cast_vote(db: sqlite_utils.Database, draft_id: int, *, actor_id: Any, actor_name: str | None, vote: str,
              reason: str | None = None) -> None:
    """Record (or change) one moderator's vote on a draft."""
    db.execute(
        "INSERT INTO moderation_votes (draft_id, actor_id, actor_name, vote, reason, at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(draft_id, actor_id) DO UPDATE SET actor_name = excluded.actor_name, vote = excluded.vote,"
        " reason = excluded.reason, at = excluded.at",
        [draft_id, str(actor_id), actor_name, vote, reason, utcnow()],
    )


def votes_for(db: sqlite_utils.Database, draft_id: int) -> list[dict[str, Any]]:
    """The draft's votes, in the order they were (last) cast."""
    return list(db.query("SELECT * FROM moderation_votes WHERE draft_id = ? ORDER BY at, rowid", [draft_id]))


def clear_approvals(db: sqlite_utils.Database, draft_id: int, *, but: Any) -> None:
    """Drop the votes to approve (or edits) of every moderator but `but`: they were for a text the
    draft no longer has."""
    db.execute("DELETE FROM moderation_votes WHERE draft_id = ? AND vote IN ('approve', 'edit') AND actor_id != ?",
               [draft_id, str(but)])


def drop_pending_votes_except(db: sqlite_utils.Database, actor_ids: list[Any]) -> int:
    """Delete the votes on pending drafts of everyone not in `actor_ids`; how many went."""
    marks = ",".join("?" * len(actor_ids))
    cursor = db.execute(f"DELETE FROM moderation_votes WHERE actor_id NOT IN ({marks})"
                        " AND draft_id IN (SELECT id FROM drafts WHERE status = 'pending')",
                        [str(a) for a in actor_ids])
    return cursor.rowcount


def forget_messages_elsewhere(db: sqlite_utils.Database, chat_id: Any) -> int:
    """Pending channel drafts shown in another chat than `chat_id` lose their message there, so
    they are shown anew (their votes stay); how many."""
    cursor = db.execute("UPDATE drafts SET moderation_chat_id = NULL, moderation_message_id = NULL, updated_at = ?"
                        " WHERE status = 'pending' AND purpose = 'channel' AND moderation_chat_id IS NOT NULL"
                        " AND moderation_chat_id != ?", [utcnow(), str(chat_id)])
    return cursor.rowcount


def clear_votes(db: sqlite_utils.Database, draft_id: int) -> None:
    db.execute("DELETE FROM moderation_votes WHERE draft_id = ?", [draft_id])


# ---- the approved queue ----------------------------------------------------------------------------
def queued_in_order(db: sqlite_utils.Database, limit: int = 100) -> list[dict[str, Any]]:
    """Approved channel drafts in publishing order (each destination skips those it has had)."""
    return list(db.query(
        f"SELECT d.* FROM drafts d WHERE d.status = 'queued' AND d.purpose = 'channel'"
        f" ORDER BY {QUEUE_KEY}, d.id LIMIT ?", [limit]))


def pending_in_order(db: sqlite_utils.Database, limit: int = 100) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM drafts WHERE status = 'pending' AND purpose = 'channel' ORDER BY id"
                         " LIMIT ?", [limit]))


def had_by(db: sqlite_utils.Database, draft_ids: list[int]) -> dict[int, set[tuple[str, str]]]:
    """draft id -> the destinations (network, chat) that have it or are sending it (not `failed`)."""
    if not draft_ids:
        return {}
    marks = ",".join("?" * len(draft_ids))
    had: dict[int, set[tuple[str, str]]] = {i: set() for i in draft_ids}
    for row in db.query(f"SELECT draft_id, network, chat_id FROM publications WHERE draft_id IN ({marks})"
                        " AND status != 'failed'", draft_ids):
        had[row["draft_id"]].add((row["network"], row["chat_id"]))
    return had


def last_approval(db: sqlite_utils.Database, draft_id: int) -> int:
    """The id of the moderation action that last approved the draft (approve, an approved edit or
    auto_approve); 0 when none is recorded."""
    row = db.execute("SELECT max(id) FROM moderation_actions WHERE draft_id = ?"
                     " AND action IN ('approve', 'edit', 'auto_approve')", [draft_id]).fetchone()
    return row[0] or 0


def move_to_end(db: sqlite_utils.Database, draft_id: int) -> bool:
    """Put a queued draft after every other queued one ("later"). False when it is not queued."""
    with db.atomic():
        last = db.execute(f"SELECT max({QUEUE_KEY}) FROM drafts d WHERE d.status = 'queued'"
                          " AND d.purpose = 'channel'").fetchone()[0]
        cursor = db.execute("UPDATE drafts SET queue_order = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                            [float(last or 0) + 1, utcnow(), draft_id])
    return cursor.rowcount == 1


def hold_until(db: sqlite_utils.Database, draft_id: int, moment: str) -> bool:
    """Publish a queued draft at no slot before `moment` (ISO 8601 UTC). False when it is not queued."""
    cursor = db.execute("UPDATE drafts SET not_before = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                        [moment, utcnow(), draft_id])
    return cursor.rowcount == 1


def unqueue(db: sqlite_utils.Database, draft_id: int) -> bool:
    """A queued draft that no destination has started goes back to `pending` (shown anew, votes
    cleared, its place and hold forgotten). False when it is not queued or already under way."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE drafts SET status = 'pending', queue_order = NULL, not_before = NULL,"
            " moderation_chat_id = NULL, moderation_message_id = NULL, updated_at = ?"
            f" WHERE id = ? AND status = 'queued' AND NOT {STARTED}",
            [utcnow(), draft_id])
        if cursor.rowcount != 1:
            return False
        clear_votes(db, draft_id)
    return True


def auto_approved_queued(db: sqlite_utils.Database) -> list[int]:
    """Queued drafts that no destination has started whose approval was the automatic one (no
    moderators were configured when they were made), oldest first."""
    return [row[0] for row in db.execute(
        f"SELECT id FROM drafts WHERE status = 'queued' AND NOT {STARTED} AND (SELECT a.action FROM"
        " moderation_actions a WHERE a.draft_id = drafts.id AND a.action IN ('approve', 'edit', 'auto_approve')"
        " ORDER BY a.id DESC LIMIT 1) = 'auto_approve' ORDER BY id").fetchall()]


def latest_publication_status(db: sqlite_utils.Database, network: str, chat_id: Any) -> str | None:
    row = db.execute("SELECT status FROM publications WHERE network = ? AND chat_id = ? ORDER BY id DESC LIMIT 1",
                     [network, str(chat_id)]).fetchone()
    return None if row is None else row[0]


# ---- the figures of /stats ---------------------------------------------------------------------------
def drafts_made_per_day(db: sqlite_utils.Database, since: str) -> dict[str, int]:
    """Channel drafts made per day (UTC date -> count), screened-out ones included."""
    return dict(db.execute("SELECT substr(created_at, 1, 10), count(*) FROM drafts WHERE purpose = 'channel'"
                           " AND created_at >= ? GROUP BY 1", [since]).fetchall())


def decisions_per_day(db: sqlite_utils.Database, since: str) -> dict[tuple[str, str], int]:
    """(UTC date, 'approved' | 'rejected') -> drafts whose last decision since `since` was that,
    counted on its day, each draft once: approved, sent back (↩️) and rejected is rejected; approved
    one day and edited the next counts on the day of the edit; approved then sent back (pending
    again) is not counted. By moderators, or auto-approved."""
    rows = db.execute(
        "WITH last AS (SELECT draft_id, action, at, ROW_NUMBER() OVER (PARTITION BY draft_id ORDER BY at DESC, id DESC)"
        " AS n FROM moderation_actions WHERE at >= ?"
        " AND action IN ('approve', 'edit', 'auto_approve', 'reject', 'regenerate', 'unapprove'))"
        " SELECT substr(at, 1, 10), CASE WHEN action IN ('approve', 'edit', 'auto_approve') THEN 'approved'"
        " ELSE 'rejected' END, count(*) FROM last WHERE n = 1 AND action != 'unapprove' GROUP BY 1, 2",
        [since]).fetchall()
    return {(day, kind): count for day, kind, count in rows}


def rejection_reasons(db: sqlite_utils.Database, since: str) -> dict[str, int]:
    """A moderator's rejection reason -> how many drafts were rejected with it ('' when none was given)."""
    return dict(db.execute(
        "SELECT COALESCE(detail, ''), count(*) FROM moderation_actions WHERE at >= ?"
        " AND action IN ('reject', 'regenerate') GROUP BY 1 ORDER BY 2 DESC", [since]).fetchall())


def publications_per_day(db: sqlite_utils.Database, since: str) -> dict[tuple[str, str], int]:
    """(UTC date, 'network chat') -> posts sent there that day."""
    rows = db.execute("SELECT substr(published_at, 1, 10), network || ' ' || chat_id, count(*) FROM publications"
                      " WHERE status = 'sent' AND published_at >= ? GROUP BY 1, 2", [since]).fetchall()
    return {(day, where): count for day, where, count in rows}


def reactions_and_views(db: sqlite_utils.Database, since: str) -> list[dict[str, Any]]:
    """Each post published since `since`: when, where, its latest total of reactions (every kind
    but views) and its latest view count (None when the network reported none)."""
    return list(db.query(
        """
        WITH latest AS (
            SELECT r.publication_id, r.kind, r.count FROM reactions r
            WHERE r.publication_id IS NOT NULL AND r.id = (   -- the row stored last (corpus/store/reactions.py)
                SELECT max(id) FROM reactions WHERE publication_id = r.publication_id AND kind = r.kind)
        )
        SELECT p.id, p.draft_id, p.network || ' ' || p.chat_id AS destination, p.published_at,
               (SELECT COALESCE(sum(count), 0) FROM latest WHERE publication_id = p.id AND kind != 'view')
                   AS reactions,
               (SELECT max(count) FROM latest WHERE publication_id = p.id AND kind = 'view') AS views
        FROM publications p WHERE p.status = 'sent' AND p.published_at >= ? ORDER BY p.published_at, p.id
        """, [since]))
