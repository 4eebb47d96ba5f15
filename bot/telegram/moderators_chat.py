"""The moderators' chat as jobs/'s Moderation seam: drafts sent with Approve / Reject / Regenerate
buttons, notices and reminders (the handlers for the buttons and replies: bot/telegram/moderation.py).

Callback data is `d:<a|r|g>:<draft id>` (at most 16 bytes), validated against the draft's stored
moderation message, so tampered or stale buttons change nothing.
"""
from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, User
from telegram.constants import MessageLimit
from telegram.error import TelegramError

from bot import texts
from bot.secrets import REDACTOR
from jobs.moderation import ModerationUnavailable

log = logging.getLogger(__name__)


def keyboard(draft_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(texts.BUTTON_APPROVE, callback_data=f"d:a:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REJECT, callback_data=f"d:r:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REGENERATE, callback_data=f"d:g:{draft_id}"),
    ]])


def draft_message(draft: dict[str, Any]) -> str:
    """The draft, then its score in one line when it was measured (jobs.pool.score)."""
    message = texts.DRAFT.format(id=draft["id"], text=draft["text"])
    if draft.get("score") is None:
        return message
    grammar = "—" if draft.get("grammar") is None else f"{draft['grammar']:.0%}"
    line = texts.DRAFT_SCORE.format(score=draft["score"], grammar=grammar, shared=draft.get("shared_chars") or 0)
    return f"{message}\n\n{line}"


class TelegramModeration:
    """jobs.moderation.Moderation for Telegram. Enabled when moderators and their chat are set."""

    def __init__(self, bot: Bot, chat_id: int | str, moderators: list[int]) -> None:
        self.bot, self.chat_id = bot, chat_id
        self.moderators = frozenset(int(m) for m in moderators)
        self.enabled = bool(self.moderators and chat_id)

    async def submit(self, draft: dict[str, Any]) -> tuple[str, str]:
        try:
            message = await self.bot.send_message(self.chat_id, draft_message(draft),
                                                  reply_markup=keyboard(draft["id"]))
        except TelegramError as exc:  # its words may quote the request's URL, token and all
            raise ModerationUnavailable(f"{type(exc).__name__}: {REDACTOR.redact(str(exc))}") from exc
        return str(message.chat_id), str(message.message_id)

    async def notify(self, text: str) -> None:
        text = REDACTOR.redact(text)  # reports quote exception texts, which may quote a URL with the token
        if not self.chat_id:
            log.warning("%s", text)
            return
        try:
            await self.bot.send_message(self.chat_id, text[:MessageLimit.MAX_TEXT_LENGTH])
        except TelegramError as exc:
            log.warning("could not tell the moderators (%s): %s", exc, text)

    async def remind(self, pending: int) -> None:
        await self.notify(texts.REMIND.format(pending=pending))

    def allowed(self, user: User | None) -> bool:
        return user is not None and user.id in self.moderators
