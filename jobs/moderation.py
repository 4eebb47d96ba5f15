"""The moderation seam jobs/ talks to; the bot implements it for Telegram, `AutoApprove` without."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

REJECT_REASONS = ["не смешно", "бессмыслица", "повтор"]


@dataclass(frozen=True)
class ModerationOptions:
    """[moderation]: how many distinct moderators decide a draft, who may decide alone, and the
    canned reasons offered as buttons under each draft (a reply "/reject TEXT" gives any other)."""

    votes: int = 1                      # distinct moderators' presses that decide a draft (1: the first decides)
    fast_approvers: list[int] = field(default_factory=list)   # user ids whose press decides alone
    # canned rejection reasons, buttons under each draft (at most 6, up to 40 characters)
    reject_reasons: list[str] = field(default_factory=lambda: list(REJECT_REASONS))

    def problems(self) -> dict[str, str]:
        problems = {}
        if not 1 <= self.votes <= 50:
            problems["votes"] = "an integer from 1 to 50"
        if len(self.reject_reasons) > 6 or any(not r.strip() or len(r) > 40 for r in self.reject_reasons):
            problems["reject_reasons"] = "at most 6 reasons of 1 to 40 characters each"
        return problems


class ModerationUnavailable(Exception):
    """The moderators' chat did not take a draft; the message is the chat's own words, already
    scrubbed of secrets by the implementation (it is stored for `buhurt doctor`)."""


class Moderation(Protocol):
    enabled: bool  # False: drafts are auto-approved

    async def submit(self, draft: dict) -> tuple[str, str]:
        """Show a draft to the moderators; returns (chat id, message id) of the message. Raises
        ModerationUnavailable when the chat refuses it or cannot be reached."""

    async def notify(self, text: str) -> None:
        """Tell the moderators (or the operator's log) something that needs attention."""

    async def remind(self, pending: int) -> None:
        """Nothing was approved for a while and `pending` drafts are waiting."""


class AutoApprove:
    """No moderators configured: drafts go straight to the queue; warnings go to the log."""

    enabled = False

    async def submit(self, draft: dict) -> tuple[str, str]:  # pragma: no cover - never called
        raise RuntimeError("AutoApprove does not show drafts to anyone")

    async def notify(self, text: str) -> None:
        log.warning("%s", text)

    async def remind(self, pending: int) -> None:
        log.info("%d drafts wait for approval", pending)
