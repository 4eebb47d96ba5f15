"""Handlers for subscribers (private chats): /start, /help, /generate, /meme N, /top. The answers
(input checks, per-user limits, jobs/on_request.py's use-cases) are bot/answers.py's, shared with
the VK community's messages; these handlers pass the command on and reply."""
from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, filters

from bot import answers, texts
from bot.telegram.bot_data import BotData, Context

log = logging.getLogger(__name__)


async def flood_gate(update: Update, context: Context) -> None:
    """Before every handler: drop a private-chat command past the sender's flood limit (one
    notice per window), so one user's flood never queues replies in front of everyone else's. A
    button press is not a command: it answers a card the bot sent (/rate's two taps per card); nor
    is a message edited afterwards (no command acts on it), nor a message without a command (a
    forwarded post, an album of photos: nothing answers them)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or update.effective_chat is None \
            or update.effective_chat.type != ChatType.PRIVATE or update.message is None:
        return
    if not filters.COMMAND.check_update(update):   # forwarded posts, photos, stickers: no handler answers them
        return
    admitted, notice = answers.flood_notice(context.bot_data.limits, user.id)
    if admitted:
        return
    if notice:
        await message.reply_text(notice)
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
    return answers.with_training_note(text, context.bot_data.service)


async def generate(update: Update, context: Context) -> None:
    """Serve a liked published post (generate.popular_share of the time), else a post from the
    ready pool that this subscriber has not had, or continue the user's start text on demand."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    parts = (message.text or "").split(maxsplit=1)
    reply, refill = await answers.generate_answer(context.bot_data, user.id, parts[1] if len(parts) > 1 else "")
    if reply:
        await message.reply_text(reply)
    if refill:
        schedule_refill(context)


def schedule_refill(context: Context) -> None:
    """Top the /generate pool up in the background; at most one refill runs at a time."""
    limits = context.bot_data.limits
    if not context.application.running or (limits.refill_task is not None and not limits.refill_task.done()):
        return
    limits.refill_task = context.application.create_task(refill_pool(context.bot_data), name="refill-pool")


async def refill_pool(bot_data: BotData) -> list[int]:
    """Generate subscriber drafts until the pool is full again (generation in a worker thread)."""
    return await answers.refill_pool(bot_data.service)


async def meme(update: Update, context: Context) -> None:
    """Show meme N again, regenerated from its seed, model version and options."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    reply = await answers.meme_answer(context.bot_data, user.id, list(context.args or []))
    if reply:
        await message.reply_text(reply)


async def top(update: Update, context: Context) -> None:
    """Show the best published posts of the last 7 days by reactions."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(answers.top_answer(context.bot_data.service),
                                                  link_preview_options=LinkPreviewOptions(is_disabled=True))
