"""The moderators' decisions, as use-cases the chat handlers call: approve, reject or regenerate a
draft from its message's buttons, approve an edited text, and generate a replacement draft. Each
decision is one transition with its audit record (a draft decided twice changes nothing); while
another process holds the database it waits off the event loop (jobs/patience.py)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from corpus.store import drafts as draft_rows
from jobs.on_request import generate_draft
from jobs.patience import patiently
from jobs.pool import screen_edit
from jobs.service import Service

ACTIONS = ("approve", "reject", "regenerate")


@dataclass(frozen=True)
class Moderator:
    """Who decided: their chat id and the name shown under the draft."""

    id: int
    name: str


class EditOutcome(enum.Enum):
    DONE = "done"
    REFUSED = "refused"              # the screen refused the text (the reason comes with it)
    ALREADY_DECIDED = "already decided"


def draft_shown_in(service: Service, draft_id: int, chat_id: Any, message_id: Any) -> dict[str, Any] | None:
    """Draft `draft_id` when `chat_id`/`message_id` is its moderation message, else None (a tampered
    or stale button changes nothing)."""
    draft = draft_rows.get_draft(service.db, draft_id)
    if draft is None or (draft["moderation_chat_id"], draft["moderation_message_id"]) != (
            str(chat_id), str(message_id)):
        return None
    return draft


def draft_for_reply(service: Service, chat_id: Any, message_id: Any) -> dict[str, Any] | None:
    """The draft whose moderation message is `chat_id`/`message_id` (a reply to it is an edit)."""
    return draft_rows.find_by_moderation_message(service.db, chat_id, message_id)


async def decide(service: Service, draft_id: int, action: str, by: Moderator) -> bool:
    """Approve (the draft is queued), reject or regenerate (rejected; the caller asks for a
    replacement) a pending draft; False when it was decided already."""
    if action not in ACTIONS:
        raise ValueError(f"unknown moderation action {action!r}")
    return await patiently(draft_rows.decide, service.db, draft_id, action=action,
                             to_status="queued" if action == "approve" else "rejected",
                             actor_id=by.id, actor_name=by.name)


async def approve_edit(service: Service, draft_id: int, text: str, by: Moderator) -> tuple[EditOutcome, str | None]:
    """Approve a pending or queued draft with a moderator's text, when the screen for edits lets
    it through: (DONE, None), (REFUSED, the screen's reason) or (ALREADY_DECIDED, None)."""
    refused = screen_edit(service.db, text, service.stoplist)
    if refused:
        return EditOutcome.REFUSED, refused
    decided = await patiently(draft_rows.decide, service.db, draft_id, action="edit", to_status="queued",
                              from_status=("pending", "queued"), actor_id=by.id, actor_name=by.name,
                              detail="approved with an edit", final_text=text)
    return (EditOutcome.DONE if decided else EditOutcome.ALREADY_DECIDED), None


async def replace_draft(service: Service) -> dict | None:
    """A replacement channel draft (generated in a worker thread, screened and ranked), shown to
    the moderators; None when every candidate failed the screen."""
    draft = await generate_draft(service, start_text="", purpose=draft_rows.CHANNEL, ok_status="pending")
    if draft is not None:
        await service.dispatch_moderation()
    return draft
