"""Handlers of the blind rating flow (jobs/rating.py): /rate in the moderators' chat (moderators)
and, with rate.subscribers = true, in any private chat; the card's buttons.

A card is one post (never saying whether it is a real post or a draft) with two questions, each a
row of two buttons. Callback data is `v:<rating id>:<r|p>:<1|0>` (r: reads from start to end,
p: would publish), checked against the rater and the card's message. When both questions are
answered the card shows the answers and the rater gets the next post.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType
from telegram.error import BadRequest

from bot import texts
from bot.fit import LIMIT, fit, shorten_again
from bot.telegram.bot_data import BotData, Context
from bot.telegram.error_handler import busy_text
from jobs import rating
from jobs.patience import DatabaseBusy

log = logging.getLogger(__name__)

CALLBACK = re.compile(r"v:([1-9][0-9]{0,11}):([rp]):([01])")
QUESTIONS = {"r": "readable", "p": "would_publish"}
YES = {"readable": texts.RATE_READABLE_YES, "would_publish": texts.RATE_PUBLISH_YES}


def _who(user: User) -> str:
    return f"@{user.username}" if user.username else user.full_name


def keyboard(rating_id: int, row: dict[str, Any] | None = None) -> InlineKeyboardMarkup:
    """Two rows (reads from start to end / no; would publish / no), the given answers ticked."""
    rows = []
    for code, question in QUESTIONS.items():
        given = None if row is None else row.get(question)
        buttons = []
        for value, label in ((1, YES[question]), (0, texts.RATE_NO)):
            shown = texts.RATE_CHOSEN.format(label=label) if given == value else label
            buttons.append(InlineKeyboardButton(shown, callback_data=f"v:{rating_id}:{code}:{value}"))
        rows.append(buttons)
    return InlineKeyboardMarkup(rows)


def may_rate(bot_data: BotData, user: User | None, chat_type: str) -> bool:
    """Moderators may rate (in their chat or a private one); subscribers in a private chat when
    rate.subscribers is on."""
    if bot_data.moderation.allowed(user):
        return True
    return user is not None and chat_type == ChatType.PRIVATE and bot_data.settings.rate.subscribers


async def rate(update: Update, context: Context) -> None:
    """/rate: the next post for this rater."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None:
        return
    if not may_rate(context.bot_data, user, update.effective_chat.type):
        await message.reply_text(texts.RATE_NOT_ALLOWED)
        return
    await send_card(context.bot_data, message, user)


async def send_card(bot_data: BotData, message: Message, user: User) -> None:
    """Show the rater their next post in the chat of `message` (or say they have seen them all)."""
    service = bot_data.service
    try:
        card = await rating.next_card(service, user.id)
    except Exception:  # noqa: BLE001 - the rater gets a reply; the log gets the traceback
        log.exception("choosing a post to rate failed")
        await message.reply_text(texts.RATE_FAILED)
        return
    if card is None:
        await message.reply_text(texts.RATE_DONE)
        return
    try:
        sent = await message.chat.send_message(fit(texts.RATE_CARD, card.text, who=_who(user)),
                                               reply_markup=keyboard(card.rating_id))
    except Exception:
        await rating.card_not_sent(service, card)
        raise
    await rating.card_sent(service, card, sent.chat_id, sent.message_id)


def closed_card(shown: str, thanks: str) -> str:
    """The answered card: the card as shown, then `thanks`; a post that filled the card is
    shortened further (the marker counting all that is left out), so the whole stays within
    Telegram's limit and the header and the thanks always show."""
    header, _, body = shown.partition("\n\n")
    tail = f"\n\n{thanks}"
    return f"{header}\n\n{shorten_again(body, LIMIT - len(header) - 2 - len(tail))}{tail}"


async def on_rate_button(update: Update, context: Context) -> None:
    """One answer on a card; the last one thanks the rater and shows the next post."""
    query, bot_data = update.callback_query, context.bot_data
    if query is None:
        return
    match = CALLBACK.fullmatch(query.data or "")
    message = query.message
    if match is None or message is None or not isinstance(message, Message):
        await query.answer(texts.STALE_BUTTON)
        return
    question = QUESTIONS[match.group(2)]
    try:
        row = await rating.answer(bot_data.service, int(match.group(1)), query.from_user.id, message.chat.id,
                                  message.message_id, question, match.group(3) == "1")
    except rating.CardClosed:   # a double tap on the last answer: the next card went out already
        await query.answer(texts.RATE_ALREADY)
        return
    except DatabaseBusy as exc:   # another process's long lock, or a full disk: nothing stored, press again
        log.warning("a rating answer answered 'busy': %s", exc)
        await query.answer(busy_text(exc))
        return
    if row is None:
        await query.answer(texts.RATE_NOT_YOURS)
        return
    await query.answer(texts.ANSWER_DONE)
    try:
        if row["readable"] is None or row["would_publish"] is None:
            await message.edit_reply_markup(reply_markup=keyboard(row["id"], row))
            return
        readable = texts.RATE_READABLE_YES if row["readable"] else texts.RATE_NO
        publish = texts.RATE_PUBLISH_YES if row["would_publish"] else texts.RATE_NO
        await message.edit_text(closed_card(message.text or "", texts.RATE_THANKS.format(readable=readable,
                                                                                       publish=publish)),
                                reply_markup=None)
    except BadRequest as exc:  # the same markup again, or the message is gone
        log.info("could not edit rating card %s: %s", row["id"], exc)
        if row["readable"] is None or row["would_publish"] is None:
            return
    await send_card(bot_data, message, query.from_user)
