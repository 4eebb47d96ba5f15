"""The moderators' desk, as use-cases the chat's commands call: the queue with the slot and
destination each approved draft will take, moving a draft in it (publish now, later, a hold of
some hours, back to pending), and pausing publishing to every destination or one.

A destination is named by its `network chat_id` ("telegram @channel", "vk -123", "local local");
`/pause` accepts that, the chat id alone (with or without @) or the network alone. Pauses are kept
in the `state` table (`publish_paused`: JSON {destination: {"by": name, "at": time}}), so they
outlive a restart and `buhurt doctor` reads them from another process.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlite_utils

from corpus.store import desk as desk_rows
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.clock import utcnow
from corpus.store.state import get_state, set_state
from jobs.publish import Publisher, publish_draft
from jobs.scheduler import clock_time

PAUSED = "publish_paused"
HOLD_HOURS = (1, 6, 24)          # the "+1 h / +6 h / +24 h" buttons
PLAN_DAYS = 60                   # how far ahead /queue looks for a held draft's slot


def where(publisher: Publisher) -> str:
    return f"{publisher.network} {publisher.chat_id}"


# ---- pause / resume ----------------------------------------------------------------------------------
def paused(db: sqlite_utils.Database) -> dict[str, dict]:
    """Paused destinations: {destination: {"by": who, "at": when (UTC)}}."""
    try:
        value = json.loads(get_state(db, PAUSED, "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


EVERY = ("", "all", "все", "всё")   # /pause and /resume without a destination, or with one of these words


def match_destinations(publishers: Sequence[Publisher], name: str) -> list[str]:
    """The destinations `name` means ("" or "all": every one); [] when none matches."""
    name = name.strip().lower()
    every = [where(p) for p in publishers]
    if name in EVERY:
        return every
    bare = name.lstrip("@")
    return [where(p) for p in publishers
            if name in (where(p).lower(), p.network.lower()) or bare == str(p.chat_id).lower().lstrip("@")]


def pause(db: sqlite_utils.Database, destinations: Sequence[str], by: str) -> None:
    state = paused(db)
    for name in destinations:
        state.setdefault(name, {"by": by, "at": utcnow()})
    set_state(db, PAUSED, json.dumps(state, ensure_ascii=False))


def resume(db: sqlite_utils.Database, destinations: Sequence[str]) -> None:
    state = {name: info for name, info in paused(db).items() if name not in destinations}
    set_state(db, PAUSED, json.dumps(state, ensure_ascii=False))


def active_publishers(db: sqlite_utils.Database, publishers: Sequence[Publisher]) -> list[Publisher]:
    stopped = paused(db)
    return [p for p in publishers if where(p) not in stopped]


# ---- what /queue shows ---------------------------------------------------------------------------------
def waiting(db: sqlite_utils.Database) -> tuple[list[dict], list[dict]]:
    """(pending drafts oldest first, approved drafts in publishing order)."""
    return desk_rows.pending_in_order(db, limit=1000), desk_rows.queued_in_order(db, limit=1000)


def draft(db: sqlite_utils.Database, draft_id: int) -> dict | None:
    return draft_rows.get_draft(db, draft_id)


def votes(db: sqlite_utils.Database, draft_id: int) -> list[dict]:
    return desk_rows.votes_for(db, draft_id)


def approval(db: sqlite_utils.Database, draft_id: int) -> int:
    """Which approval of the draft a /queue message shows (the id of its last approve, approved
    edit or auto-approval; 0 when none was recorded): the message's buttons carry it, and act only
    while it is still the draft's, so a press from before the draft went back to pending, or before
    its text was edited, is refused instead of acting on a text the moderator did not see."""
    return desk_rows.last_approval(db, draft_id)


def shown_at(db: sqlite_utils.Database, draft_id: int, chat_id, message_id) -> None:
    """A pending draft was shown again (by /queue): its buttons now live under that message."""
    draft_rows.set_moderation_message(db, draft_id, chat_id, message_id)


def record(db: sqlite_utils.Database, draft_id: int, action: str, *, actor_id: int, actor_name: str,
           detail: str | None = None) -> None:
    """The audit line of a queue action ("publish_now", "later", "hold")."""
    draft_rows.record_action(db, draft_id, action, actor_id=actor_id, actor_name=actor_name, detail=detail)


# ---- the plan: which slot each approved draft takes where -------------------------------------------
def upcoming_slots(times: Sequence[str], timezone: str, after: dt.datetime, days: int = PLAN_DAYS):
    """The daily publishing `times` (in `timezone`) strictly after `after`, in order, as UTC."""
    tz = ZoneInfo(timezone)
    start = after.astimezone(tz).date()
    clock = sorted(clock_time(t) for t in times)
    for offset in range(days + 1):
        day = start + dt.timedelta(days=offset)
        for hour, minute in clock:
            slot = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(dt.timezone.utc)
            if slot > after:
                yield slot


@dataclass(frozen=True)
class Placement:
    """Where and when an approved draft goes: `at` None while that destination is paused (or the
    draft has no slot within PLAN_DAYS); `had`: the destination has it already."""

    where: str
    at: dt.datetime | None
    paused: bool = False
    had: bool = False


def plan(db: sqlite_utils.Database, publishers: Sequence[Publisher], times: Sequence[str], timezone: str,
         now: dt.datetime, queued: list[dict] | None = None) -> dict[int, list[Placement]]:
    """draft id -> one Placement per destination, for the approved drafts in queue order, as the
    publish job will take them (each destination its own position; a held draft waits for the
    first slot at or after its hold, the ones behind it go first)."""
    queued = desk_rows.queued_in_order(db) if queued is None else queued
    had = desk_rows.had_by(db, [d["id"] for d in queued])
    stopped = paused(db)
    placements: dict[int, list[Placement]] = {d["id"]: [] for d in queued}
    for publisher in publishers:
        name = where(publisher)
        key = (publisher.network, str(publisher.chat_id))
        waiting = [d for d in queued if key not in had[d["id"]]]
        for d in queued:
            if key in had[d["id"]]:
                placements[d["id"]].append(Placement(name, None, had=True))
        if name in stopped:
            for d in waiting:
                placements[d["id"]].append(Placement(name, None, paused=True))
            continue
        for slot in upcoming_slots(times, timezone, now):
            if not waiting:
                break
            moment = slot.replace(microsecond=0).isoformat()
            ready = next((d for d in waiting if not d["not_before"] or d["not_before"] <= moment), None)
            if ready is not None:
                waiting.remove(ready)
                placements[ready["id"]].append(Placement(name, slot))
        for d in waiting:
            placements[d["id"]].append(Placement(name, None))
    return placements


def slots_covered(db: sqlite_utils.Database, publishers: Sequence[Publisher]) -> int:
    """How many publishing slots the approved queue fills for the destination that has the fewest
    (paused destinations aside): what the low-queue alert compares with `alerts.min_queue`."""
    active = active_publishers(db, publishers)
    if not active:
        return 0
    queued = desk_rows.queued_in_order(db, limit=10_000)
    had = desk_rows.had_by(db, [d["id"] for d in queued])
    return min(sum(1 for d in queued if (p.network, str(p.chat_id)) not in had[d["id"]]) for p in active)


# ---- moving a draft in the queue ---------------------------------------------------------------------
def hold(db: sqlite_utils.Database, draft_id: int, hours: int, placed_at: dt.datetime | None,
         now: dt.datetime) -> dt.datetime | None:
    """Hold a queued draft `hours` past its planned slot (or now): it takes the first slot at or
    after that. Returns the hold, or None when the draft is not queued any more."""
    base = max(placed_at or now, now)
    moment = (base + dt.timedelta(hours=hours)).replace(microsecond=0)
    return moment if desk_rows.hold_until(db, draft_id, moment.isoformat()) else None


def later(db: sqlite_utils.Database, draft_id: int) -> bool:
    """Put a queued draft after all the others (it takes the next slot after theirs)."""
    return desk_rows.move_to_end(db, draft_id)


def back_to_pending(db: sqlite_utils.Database, draft_id: int, *, actor_id: int, actor_name: str) -> bool:
    """An approved draft no destination has started goes back to the moderators (shown anew)."""
    with db.atomic():
        if not desk_rows.unqueue(db, draft_id):
            return False
        draft_rows.record_action(db, draft_id, "unapprove", actor_id=actor_id, actor_name=actor_name)
    return True


async def publish_now(db: sqlite_utils.Database, draft: dict, publishers: Sequence[Publisher], notify,
                      state, options) -> dict[str, str]:
    """Send an approved draft to every destination not paused that has not had it, at once (the
    same at-most-once path as the slots). Returns what became of it at each destination it was
    for, by name: "sent"; "failed" (refused, the moderators are told), "unknown" (no answer: never
    re-sent), "stop-list" or "near-copy" (skipped there), "busy" (the database held: not tried);
    {} when there was none (every one paused or has it)."""
    active = active_publishers(db, publishers)
    before = desk_rows.had_by(db, [draft["id"]])[draft["id"]]
    wanted = [p for p in active if (p.network, str(p.chat_id)) not in before]
    if not wanted:
        return {}
    await publish_draft(db, draft, publishers, notify, state, options=options, only=active)
    rows = {(r["network"], r["chat_id"]): r for r in pubs.publications_of(db, draft["id"])}
    return {where(p): _outcome(rows.get((p.network, str(p.chat_id)))) for p in wanted}


def _outcome(row: dict | None) -> str:
    """publish_now's word for a destination's publication row after the send."""
    if row is None:
        return "busy"
    if row["status"] == "skipped":
        return "stop-list" if (row["error"] or "").startswith("stop-list") else "near-copy"
    return row["status"] if row["status"] in ("sent", "failed") else "unknown"
