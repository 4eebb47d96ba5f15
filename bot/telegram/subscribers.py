"""Handlers for subscribers (private chats): /start, /help, /generate, /meme N, /top. What they
ask for is done by jobs/on_request.py; these handlers check the input, apply the per-user limits
and reply."""
from __future__ import annotations

import logging
import math
import re

from telegram import LinkPreviewOptions, Message, Update, User
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from bot import texts
from bot.telegram.bot_data import BotData, Context
from bot.telegram.start_text import check_start_text, unknown_chars_reply
from jobs import on_request
from jobs.patience import DatabaseBusy
from model.errors import ModelError

log = logging.getLogger(__name__)

MEME_NUMBER = re.compile(r"[0-9]{1,12}")


async def flood_gate(update: Update, context: Context) -> None:
    """Before every handler: drop a private-chat command past the sender's flood limit (one
    notice per window), so one user's flood never queues replies in front of everyone else's."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None \
            or update.effective_chat.type != ChatType.PRIVATE:
        return
    limits = context.bot_data.limits
    admitted, notify = limits.admit(user.id)
    if admitted:
        return
    if notify:
        await message.reply_text(texts.FLOOD.format(seconds=math.ceil(limits.window_seconds)))
    raise ApplicationHandlerStop


async def start(update: Update, context: Context) -> None:
    """Greet a subscriber and list the commands."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(with_training_note(texts.START, context))


async def help_command(update: Update, context: Context) -> None:
    """List the commands."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(with_training_note(texts.HELP, context))


def with_training_note(text: str, context: Context) -> str:
    """`text`, and while the first model trains, the note that the bundled model writes meanwhile."""
    if context.bot_data.service.training_first_model:
        return f"{text}\n\n{texts.FIRST_MODEL_TRAINING}"
    return text


async def generate(update: Update, context: Context) -> None:
    """Serve a post from the ready pool, or continue the user's start text on demand."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    bot_data = context.bot_data
    limits = bot_data.limits
    wait = limits.cooldown_left(user.id)
    if wait:
        if limits.cooldown_notice(user.id):  # one notice per cooldown, then silence
            await message.reply_text(texts.COOLDOWN.format(seconds=wait))
        return
    parts = (message.text or "").split(maxsplit=1)
    if len(parts) > 1:
        start_text, problem = check_start_text(parts[1], bot_data.settings.telegram.start_text_max_chars)
        if problem:
            await message.reply_text(problem)
            return
        start_text, missing = on_request.fit_to_vocab(bot_data.holder, start_text)
        if missing:
            await message.reply_text(unknown_chars_reply(missing))
            return
        await _on_demand(message, user, context, start_text)
        return
    try:
        draft = await on_request.take_ready(bot_data.service)   # waits off the loop while the database is held
    except DatabaseBusy as exc:
        log.warning("/generate answered 'busy': %s", exc)
        await message.reply_text(texts.DATABASE_BUSY)
        return
    if draft is None:
        await _on_demand(message, user, context, "")
        schedule_refill(context)  # after the on-demand post: the refill would hold the model first
        return
    limits.touch(user.id)
    await message.reply_text(texts.MEME.format(id=draft["id"], text=draft["text"]))
    schedule_refill(context)


async def _on_demand(message: Message, user: User, context: Context, start_text: str) -> None:
    """Generate one post now in a worker thread, if a generation slot is free."""
    limits = context.bot_data.limits
    if not limits.try_acquire():
        await message.reply_text(texts.BUSY)
        return
    limits.touch(user.id)
    try:
        draft = await on_request.generate_for_subscriber(context.bot_data.service, start_text)
    except ModelError as exc:
        log.info("start text refused by the model: %s", exc)
        await message.reply_text(texts.START_REFUSED if start_text else texts.GENERATOR_FAILED)
        return
    except DatabaseBusy as exc:
        log.warning("/generate answered 'busy': %s", exc)
        await message.reply_text(texts.DATABASE_BUSY)
        return
    except Exception:  # noqa: BLE001 - the user gets a reply; the log gets the traceback
        log.exception("on-demand generation failed")
        await message.reply_text(texts.GENERATOR_FAILED)
        return
    finally:
        limits.release()
    if draft is None:
        await message.reply_text(texts.NOTHING_GOOD)
        return
    await message.reply_text(texts.MEME.format(id=draft["id"], text=draft["text"]))


def schedule_refill(context: Context) -> None:
    """Top the /generate pool up in the background; at most one refill runs at a time."""
    limits = context.bot_data.limits
    if not context.application.running or (limits.refill_task is not None and not limits.refill_task.done()):
        return
    limits.refill_task = context.application.create_task(refill_pool(context.bot_data), name="refill-pool")


async def refill_pool(bot_data: BotData) -> list[int]:
    """Generate subscriber drafts until the pool is full again (generation in a worker thread)."""
    try:
        return await bot_data.service.fill_subscriber_pool()
    except Exception:  # noqa: BLE001 - the next refill or the pool job tries again
        log.exception("refilling the /generate pool failed")
        return []


async def meme(update: Update, context: Context) -> None:
    """Show meme N again, regenerated from its seed, model version and options."""
    message, user, bot_data = update.effective_message, update.effective_user, context.bot_data
    if message is None or user is None:
        return
    args = context.args or []
    if len(args) != 1 or not MEME_NUMBER.fullmatch(args[0]):  # str.isdigit() accepts '²' and '٣'
        await message.reply_text(texts.MEME_USAGE)
        return
    meme_id = int(args[0])
    service = bot_data.service
    draft = on_request.shown_meme(service, meme_id)
    if draft is None:
        await message.reply_text(texts.MEME_NOT_FOUND.format(id=meme_id))
        return
    if draft["final_text"]:  # published as a moderator edited it
        if on_request.screen_shown(service, draft, draft["final_text"]):
            await message.reply_text(texts.MEME_WITHHELD.format(id=meme_id))
            return
        await message.reply_text(texts.MEME.format(id=meme_id, text=draft["final_text"]))
        return
    limits = bot_data.limits
    wait = limits.cooldown_left(user.id)
    if wait:
        if limits.cooldown_notice(user.id):
            await message.reply_text(texts.COOLDOWN.format(seconds=wait))
        return
    if not limits.try_acquire():
        await message.reply_text(texts.BUSY)
        return
    limits.touch(user.id)
    try:
        text, regenerated = await on_request.regenerate(service.db, service.holder, draft)
    finally:
        limits.release()
    reason = on_request.screen_shown(service, draft, text)
    if reason:
        log.info("meme %s withheld: %s", meme_id, reason)
        await message.reply_text(texts.MEME_WITHHELD.format(id=meme_id))
        return
    reply = texts.MEME.format(id=meme_id, text=text)
    if not regenerated:
        reply += "\n\n" + texts.MEME_FROM_ARCHIVE
    await message.reply_text(reply)


async def top(update: Update, context: Context) -> None:
    """Show the best published posts of the last 7 days by reactions."""
    message = update.effective_message
    if message is None:
        return
    lines = []
    for place, row in enumerate(on_request.top_of_week(context.bot_data.service), start=1):
        preview = " / ".join(line for line in row["text"].splitlines() if line.strip() and line.strip() != "@")
        preview = preview if len(preview) <= 120 else preview[:119] + "…"
        line = texts.TOP_LINE.format(place=place, id=row["draft_id"], score=row["score"], preview=preview)
        if row["network"] == "telegram" and str(row["chat_id"]).startswith("@"):
            line += f"\nhttps://t.me/{str(row['chat_id'])[1:]}/{row['message_id']}"
        lines.append(line)
    if not lines:
        await message.reply_text(texts.TOP_EMPTY)
        return
    await message.reply_text("\n\n".join([texts.TOP_HEADER, *lines]),
                             link_preview_options=LinkPreviewOptions(is_disabled=True))
