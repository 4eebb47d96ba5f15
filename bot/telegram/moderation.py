"""Moderation over Telegram: drafts in the moderators' chat with Approve / Reject / Regenerate
buttons, approval of an edited text by replying to a draft, reminders and notices.

Callback data is `d:<a|r|g>:<draft id>` (at most 16 bytes), validated against the draft's stored
moderation message, so tampered or stale buttons change nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot import texts
from bot.secrets import REDACTOR
from corpus.store import drafts as draft_rows
from jobs.pool import screen_edit

log = logging.getLogger(__name__)

CALLBACK = re.compile(r"d:([arg]):([1-9][0-9]{0,11})")
Context = ContextTypes.DEFAULT_TYPE


def keyboard(draft_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(texts.BUTTON_APPROVE, callback_data=f"d:a:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REJECT, callback_data=f"d:r:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REGENERATE, callback_data=f"d:g:{draft_id}"),
    ]])


def draft_message(draft: dict) -> str:
    """The draft, then its score in one line when it was measured (jobs.pool.score)."""
    message = texts.DRAFT.format(id=draft["id"], text=draft["text"])
    if draft.get("score") is None:
        return message
    known = "—" if draft.get("known_share") is None else f"{draft['known_share']:.0%}"
    line = texts.DRAFT_SCORE.format(score=draft["score"], known=known, shared=draft.get("shared_chars") or 0)
    return f"{message}\n\n{line}"


def edit_refusal(reason: str) -> str:
    """The reply to a moderator whose edit the screen refused (jobs.pool.screen_edit's reason)."""
    if reason.startswith("stop-list: "):
        return texts.EDIT_REFUSED.format(why=texts.EDIT_STOPLIST.format(found=reason.removeprefix("stop-list: ")))
    return texts.EDIT_REFUSED.format(why=texts.EDIT_COPY)


class TelegramModeration:
    """jobs.moderation.Moderation for Telegram. Enabled when moderators and their chat are set."""

    def __init__(self, bot, chat_id: int | str, moderators: list[int]) -> None:
        self.bot, self.chat_id = bot, chat_id
        self.moderators = frozenset(int(m) for m in moderators)
        self.enabled = bool(self.moderators and chat_id)

    async def submit(self, draft: dict) -> tuple[str, str]:
        message = await self.bot.send_message(self.chat_id, draft_message(draft), reply_markup=keyboard(draft["id"]))
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

    def allowed(self, user) -> bool:
        return user is not None and user.id in self.moderators


def _who(user) -> str:
    return f"@{user.username}" if user.username else user.full_name


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%d.%m %H:%M UTC")


async def _show_decision(bot, draft: dict, line: str) -> None:
    """Edit the draft's message: the draft, then who decided and when; no buttons left."""
    try:
        await bot.edit_message_text(f"{draft_message(draft)}\n\n{line}", chat_id=draft["moderation_chat_id"],
                                    message_id=int(draft["moderation_message_id"]), reply_markup=None)
    except BadRequest as exc:  # deleted meanwhile, or already showing it
        log.info("could not edit the message of draft %s: %s", draft["id"], exc)


async def on_button(update: Update, context: Context) -> None:
    """Approve, reject or regenerate a draft from its inline buttons (moderators only)."""
    query, bot_data = update.callback_query, context.bot_data
    moderation: TelegramModeration = bot_data["moderation"]
    if not moderation.allowed(query.from_user):
        await query.answer(texts.NOT_ALLOWED, show_alert=True)
        return
    match = CALLBACK.fullmatch(query.data or "")
    draft = draft_rows.get_draft(bot_data["db"], int(match.group(2))) if match else None
    message = query.message
    if draft is None or message is None or (draft["moderation_chat_id"], draft["moderation_message_id"]) != (
            str(message.chat.id), str(message.message_id)):
        await query.answer(texts.STALE_BUTTON)
        return
    action = {"a": "approve", "r": "reject", "g": "regenerate"}[match.group(1)]
    user = query.from_user
    decided = draft_rows.decide(
        bot_data["db"], draft["id"], action=action, to_status="queued" if action == "approve" else "rejected",
        actor_id=user.id, actor_name=_who(user))
    if not decided:
        await query.answer(texts.ALREADY_DECIDED)
        return
    await query.answer(texts.ANSWER_DONE)
    line = {"approve": texts.DECIDED_APPROVE, "reject": texts.DECIDED_REJECT,
            "regenerate": texts.DECIDED_REGENERATE}[action].format(who=_who(user), when=_now())
    await _show_decision(context.bot, draft, line)
    if action == "regenerate":
        await replace_draft(bot_data)


async def replace_draft(bot_data: dict) -> None:
    """Generate a replacement channel draft (worker thread) and show it to the moderators."""
    from bot.telegram.generation import generate_draft

    moderation: TelegramModeration = bot_data["moderation"]
    try:
        draft = await generate_draft(bot_data, start_text="", purpose=draft_rows.CHANNEL, ok_status="pending")
    except Exception as exc:  # noqa: BLE001 - the moderators are told; the pool job fills later
        log.exception("regenerating a draft failed")
        await moderation.notify(texts.REGENERATE_FAILED.format(error=type(exc).__name__))
        return
    if draft is None:
        await moderation.notify(texts.REGENERATE_FAILED.format(error="все варианты отсеяны фильтром"))
        return
    await bot_data["service"].dispatch_moderation()


async def on_edit_reply(update: Update, context: Context) -> None:
    """Approve the edited version when a moderator replies to a draft with corrected text."""
    message, bot_data = update.effective_message, context.bot_data
    db = bot_data["db"]
    draft = draft_rows.find_by_moderation_message(db, message.chat_id, message.reply_to_message.message_id)
    if draft is None:
        return  # a reply to something that is not a draft: ordinary chat
    moderation: TelegramModeration = bot_data["moderation"]
    user = update.effective_user
    if not moderation.allowed(user):
        await message.reply_text(texts.NOT_ALLOWED)
        return
    text = (message.text or "").replace("\r\n", "\n").strip()
    if not text:
        await message.reply_text(texts.EDIT_EMPTY)
        return
    if len(text) > MessageLimit.MAX_TEXT_LENGTH:
        await message.reply_text(texts.EDIT_TOO_LONG.format(length=len(text)))
        return
    refused = screen_edit(db, text, bot_data["service"].stoplist)
    if refused:
        log.info("edit of draft %s by %s refused: %s", draft["id"], user.id, refused)
        await message.reply_text(edit_refusal(refused))
        return
    decided = draft_rows.decide(db, draft["id"], action="edit", to_status="queued",
                                from_status=("pending", "queued"), actor_id=user.id, actor_name=_who(user),
                                detail="approved with an edit", final_text=text)
    if not decided:
        await message.reply_text(texts.ALREADY_DECIDED)
        return
    await _show_decision(context.bot, draft, texts.DECIDED_EDIT.format(who=_who(user), when=_now()))
    await message.reply_text(texts.EDIT_DONE.format(id=draft["id"]))


async def moderator_help(update: Update, context: Context) -> None:
    """Explain the buttons and the edit-by-reply in the moderators' chat."""
    await update.effective_message.reply_text(texts.MODERATOR_HELP)
