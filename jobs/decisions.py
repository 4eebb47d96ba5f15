"""The moderators' decisions, as use-cases the chat handlers call: approve, reject or regenerate a
draft from its message's buttons, approve an edited text, and generate a replacement draft. Each
decision is one transition with its audit record (a draft decided twice changes nothing); while
another process holds the database it waits off the event loop (jobs/patience.py).

With `moderation.votes` = N > 1 a button is a vote (`moderation_votes`, one per moderator, the
last press counts): the draft is approved when N distinct moderators voted to approve, rejected
when N voted to reject (🔄 is a vote to reject and, when it decides, asks for a replacement). A
moderator in `moderation.fast_approvers` decides alone. An edit by reply is its author's vote to
approve the edited text."""
from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlite_utils

from common.text import fold
from corpus.nearcopy import edit_distance
from corpus.rules import normalise, separator_count
from corpus.statuses import DraftStatus
from corpus.store import desk as desk_rows
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs.moderation import ModerationOptions
from jobs.drafting import Drafting
from jobs.patience import DatabaseBusy, patiently
from jobs.pool import content_lines
from model.words import words_of

if TYPE_CHECKING:
    from jobs.service import Service

log = logging.getLogger(__name__)
ACTIONS = ("approve", "reject", "regenerate")
# An edit by reply without the post's "@" lines keeps at least this share of the draft's words (`looks_like_edit`)
EDIT_WORDS_KEPT = 0.5
EDITED = "approved with an edit"   # the detail of an approved edit (moderation_actions, drafts.status_reason)
DONE = {"approve": "approved", "reject": "rejected", "regenerate": "rejected (regenerate)",
        "edit": "approved with an edit"}   # the log line's verb per action


@dataclass(frozen=True)
class VoteOutcome:
    """A press's result: `decided` is the action taken ("approve", "reject", "regenerate", "edit")
    or None while the quorum is not reached; `votes` are the draft's votes now."""

    decided: str | None
    votes: list[dict]
    already_decided: bool = False


@dataclass(frozen=True)
class Moderator:
    """Who decided: their chat id and the name shown under the draft."""

    id: int
    name: str


class EditOutcome(enum.Enum):
    DONE = "done"
    VOTED = "voted"                  # the text is stored, the edit is its author's vote; the quorum decides
    REFUSED = "refused"              # the screen refused the text (the reason comes with it)
    ALREADY_DECIDED = "already decided"
    UNDER_WAY = "under way"          # a queued draft some destination already has: its text stays as sent
    NEEDS_QUORUM = "needs the quorum"  # a queued draft the quorum approved: one moderator alone may not rewrite it


def draft_shown_in(db: sqlite_utils.Database, draft_id: int, chat_id: Any, message_id: Any) -> dict[str, Any] | None:
    """Draft `draft_id` when `chat_id`/`message_id` is its moderation message, else None (a tampered
    or stale button changes nothing)."""
    draft = draft_rows.get_draft(db, draft_id)
    if draft is None or (draft["moderation_chat_id"], draft["moderation_message_id"]) != (
            str(chat_id), str(message_id)):
        return None
    return draft


def draft_for_reply(db: sqlite_utils.Database, chat_id: Any, message_id: Any,
                    named: int | None = None) -> dict[str, Any] | None:
    """The draft whose moderation message is `chat_id`/`message_id` (a reply to it is an edit);
    else draft `named` (the one an older message of the bot's shows: /queue or ↩️ showed it anew
    since) when it was shown in that chat."""
    draft = draft_rows.find_by_moderation_message(db, chat_id, message_id)
    if draft is None and named is not None:
        draft = draft_rows.get_draft(db, named)
        if draft is None or draft["moderation_chat_id"] != str(chat_id):
            return None
    return draft


def looks_like_edit(draft: dict[str, Any], text: str) -> bool:
    """Whether a moderator's reply `text` to `draft` is an edit of it, not a comment on it ("лол",
    "не смешно, давай другой"): it has the post's shape (a line, an "@" line, a line; or "ЛИНИЯ @ ЛИНИЯ"
    in one line), or it has several lines (as many as the draft, two at most counted) and keeps at
    least EDIT_WORDS_KEPT of the words of the draft as generated or as last edited. On the real
    channel's 6,321 posts: every post has the shape; a post without its "@" lines and with a fifth of
    its words replaced keeps half of them in 98% of posts; a one-line comment quoting a post's
    longest line would keep half in 20% (hence the lines), "не смешно, давай другой" in none."""
    if separator_count(normalise(text)) >= 1:
        return True
    kept = {fold(word) for word in words_of(text)}
    for shown in {draft["text"], draft.get("final_text") or draft["text"]}:
        words = {fold(word) for word in words_of(shown)}
        if len(content_lines(text)) >= min(2, len(content_lines(shown))) and words \
                and len(words & kept) >= EDIT_WORDS_KEPT * len(words):
            return True
    return False


def votes(db: sqlite_utils.Database, draft_id: int) -> list[dict[str, Any]]:
    """The draft's votes (who, what, why), in the order they were cast."""
    return desk_rows.votes_for(db, draft_id)


async def decide(db: sqlite_utils.Database, draft_id: int, action: str, by: Moderator,
                 detail: str | None = None) -> bool:
    """Approve (the draft is queued; "edit": with the moderators' text it holds), reject or
    regenerate (rejected; the caller asks for a replacement) a pending draft; False when it was
    decided already. `detail`: a rejection's reason."""
    if action not in (*ACTIONS, "edit"):
        raise ValueError(f"unknown moderation action {action!r}")
    decided = await patiently(draft_rows.decide, db, draft_id, action=action,
                              to_status=DraftStatus.QUEUED if action in ("approve", "edit") else DraftStatus.REJECTED,
                              actor_id=by.id, actor_name=by.name, detail=detail)
    if decided:
        log_decision(draft_id, action, by, detail)
    return decided


async def forget_former_moderators(db: sqlite_utils.Database, moderators: Collection[int]) -> int:
    """Drop the votes on pending drafts of anyone no longer among `moderators` (the config changed
    since they pressed): a quorum counts only those who may vote now, and the message shows only
    their votes. Decided drafts keep their votes as cast. Returns how many were dropped."""
    dropped = await patiently(desk_rows.drop_pending_votes_except, db, sorted(moderators))
    if dropped:
        log.info("%d votes on pending drafts by people no longer in telegram.moderators no longer count", dropped)
    return dropped


async def review_auto_approved(db: sqlite_utils.Database) -> list[int]:
    """Drafts auto-approved while no moderators were configured (`make demo`, a first run on the
    local channel), still queued and started by no destination, go back to pending: now that there
    are moderators, they decide them before any channel gets one. Returns their ids."""
    ids = await patiently(_unqueue_auto_approved, db)
    if ids:
        log.info("drafts %s were auto-approved before moderators were configured: back to the moderators", ids)
    return ids


def _unqueue_auto_approved(db: sqlite_utils.Database) -> list[int]:
    with db.atomic():
        ids = [n for n in desk_rows.auto_approved_queued(db) if desk_rows.unqueue(db, n)]
        for n in ids:
            draft_rows.record_action(db, n, "unapprove", detail="auto-approved before moderators were configured")
    return ids


async def show_in(db: sqlite_utils.Database, chat_id: Any) -> int:
    """The pending drafts shown in another chat than `chat_id` (telegram.moderators_chat changed
    since: a new group, or a group that became a supergroup) are shown there at the next dispatch;
    their old messages' buttons are out of date. Returns how many."""
    moved = await patiently(desk_rows.forget_messages_elsewhere, db, chat_id)
    if moved:
        log.info("%d pending drafts shown in a former moderators' chat are shown again in %s", moved, chat_id)
    return moved


def log_decision(draft_id: int, action: str, by: Moderator, detail: str | None = None) -> None:
    log.info("draft %s %s by %s (%s)%s", draft_id, DONE.get(action, action), by.name, by.id,
             f": {detail}" if detail else "")


def _side(vote: str) -> str:
    return "approve" if vote in ("approve", "edit") else "reject"


def _quorum(options: ModerationOptions, by: Moderator, votes: list[dict], side: str) -> bool:
    return by.id in options.fast_approvers or sum(_side(v["vote"]) == side for v in votes) >= options.votes


async def vote(db: sqlite_utils.Database, options: ModerationOptions, draft_id: int, action: str, by: Moderator,
               reason: str | None = None) -> VoteOutcome:
    """A moderator's press of ✅ / ❌ / 🔄 (with a rejection's reason): their vote is stored, and
    the draft is decided when the quorum of `options` (or a fast approver) says so."""
    if action not in ACTIONS:
        raise ValueError(f"unknown moderation action {action!r}")
    draft = draft_rows.get_draft(db, draft_id)
    if draft is None or draft["status"] != DraftStatus.PENDING:
        return VoteOutcome(None, desk_rows.votes_for(db, draft_id), already_decided=True)
    await patiently(desk_rows.cast_vote, db, draft_id, actor_id=by.id, actor_name=by.name, vote=action,
                    reason=reason if action != "approve" else None)
    votes = desk_rows.votes_for(db, draft_id)
    side = _side(action)
    if not _quorum(options, by, votes, side):
        return VoteOutcome(None, votes)
    if side == "approve":   # a text a moderator edited is approved as an edit, as when one edits alone
        edited = draft["final_text"] is not None and draft["final_text"] != draft["text"]
        decided, detail = ("edit", EDITED) if edited else ("approve", None)
    else:
        same = [v for v in votes if _side(v["vote"]) == side]
        decided = "regenerate" if action == "regenerate" or any(v["vote"] == "regenerate" for v in same) else "reject"
        detail = reason or next((v["reason"] for v in same if v["reason"]), None)
    if not await decide(db, draft_id, decided, by, detail=detail):
        return VoteOutcome(None, votes, already_decided=True)
    if decided == "edit":
        await _measure_edit(db, draft_id, draft["text"], draft["final_text"])
    return VoteOutcome(decided, votes)


async def _measure_edit(db: sqlite_utils.Database, draft_id: int, text: str, edited: str) -> None:
    """A label for the ranker (jobs/ranker.py): how much the moderators changed the draft."""
    # quadratic in pure Python (a second or more for a long edit): off the event loop, subscribers wait on it
    distance = await asyncio.to_thread(edit_distance, text, edited)
    try:   # the decision is made: a lock that outlasts the wait costs only this label's weight
        await patiently(draft_rows.set_edit_distance, db, draft_id, distance)
    except DatabaseBusy as exc:
        log.warning("the edit distance of draft %s was not stored: %s", draft_id, exc)


def _edit_vote(db: Any, draft_id: int, text: str, by: Moderator) -> bool:
    """Store a pending draft's edited text and its author's vote to approve it, in one transaction;
    False when the draft was decided meanwhile. A text that changes drops the others' votes to
    approve: they approved the text shown to them, and only the quorum decides a new one."""
    with db.atomic():
        before = draft_rows.get_draft(db, draft_id)
        if not draft_rows.transition(db, draft_id, from_status=[DraftStatus.PENDING], to_status=DraftStatus.PENDING,
                                     final_text=text):
            return False
        if before is not None and (before["final_text"] or before["text"]) != text:
            desk_rows.clear_approvals(db, draft_id, but=by.id)
        desk_rows.cast_vote(db, draft_id, actor_id=by.id, actor_name=by.name, vote="edit")
    return True


async def approve_edit(drafting: Drafting, options: ModerationOptions, draft_id: int, text: str,
                       by: Moderator) -> tuple[EditOutcome, str | None]:
    """Approve a pending or queued draft with a moderator's text, when the screen for edits lets
    it through: (DONE, None), (REFUSED, the screen's reason), (ALREADY_DECIDED, None) or, for a
    queued draft that some destination already has (Telegram took it, VK refused and retries),
    (UNDER_WAY, None): the same meme never goes out with two texts; with a quorum (votes > 1), a
    queued draft is not rewritten by one moderator who is not a fast approver: (NEEDS_QUORUM, None)."""
    refused = drafting.screen_edit(text)
    if refused:
        return EditOutcome.REFUSED, refused
    db = drafting.db
    draft = draft_rows.get_draft(db, draft_id)
    if draft is not None and draft["status"] == DraftStatus.QUEUED and options.votes > 1 \
            and by.id not in options.fast_approvers:   # back to pending (↩️ in /queue) and the quorum decides
        return EditOutcome.NEEDS_QUORUM, None
    if draft is not None and draft["status"] == DraftStatus.PENDING and options.votes > 1 \
            and by.id not in options.fast_approvers:
        if not await patiently(_edit_vote, db, draft_id, text, by):
            return EditOutcome.ALREADY_DECIDED, None
        if not _quorum(options, by, desk_rows.votes_for(db, draft_id), "approve"):
            return EditOutcome.VOTED, None
    decided = await patiently(draft_rows.decide, db, draft_id, action="edit", to_status=DraftStatus.QUEUED,
                              from_status=(DraftStatus.PENDING, DraftStatus.QUEUED), actor_id=by.id, actor_name=by.name,
                              detail=EDITED, final_text=text, unstarted=True)
    if not decided and await patiently(pubs.under_way, db, draft_id):
        return EditOutcome.UNDER_WAY, None
    if decided and draft is not None:
        await _measure_edit(db, draft_id, draft["text"], text)
        log_decision(draft_id, "edit", by)
    return (EditOutcome.DONE if decided else EditOutcome.ALREADY_DECIDED), None


async def replace_draft(service: Service) -> dict | None:
    """A replacement channel draft (generated in a worker thread, screened and ranked), shown to
    the moderators; None when every candidate failed the screen."""
    draft = await service.drafting.make_one(purpose=draft_rows.CHANNEL, ok_status=DraftStatus.PENDING)
    if draft is not None:
        await service.dispatch_moderation()
    return draft
