"""The Telegram composition: the PTB Application, the moderation and channel publishers, the
Service from bot.app.build_services, every handler in one block, and start/stop of the jobs on
PTB's own event loop (post_init / post_shutdown)."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from telegram import BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
    MessageHandler, MessageReactionHandler, TypeHandler, filters,
)

from bot import texts
from bot.config import Settings
from bot.secrets import REDACTOR
from bot.telegram import moderation as mod
from bot.telegram import subscribers as sub
from bot.telegram.channel import TelegramChannel
from bot.telegram.errors import on_error
from bot.telegram.limits import Limits
from bot.telegram.reactions import on_reaction_count

log = logging.getLogger(__name__)

# message_reaction_count is sent only when asked for by name (and only to a channel admin).
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION_COUNT]
POLL_TIMEOUT_SECONDS = 10


def build_application(settings: Settings, *, schedule: bool = True) -> Application:
    """The Application with its services in bot_data; `schedule`: start the jobs in post_init."""
    from bot.app import build_services

    tg = settings.telegram
    REDACTOR.add(tg.token.reveal())
    application = (
        ApplicationBuilder().token(tg.token.reveal()).base_url(tg.base_url)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .job_queue(None)  # jobs/ owns the one APScheduler, on this same event loop
        .post_init(_post_init).post_shutdown(_post_shutdown)
        .build()
    )
    moderation = mod.TelegramModeration(application.bot, tg.moderators_chat, tg.moderators)
    publishers = [TelegramChannel(application.bot, chat) for chat in tg.channels]
    services = build_services(settings, publishers=publishers, moderation=moderation)
    application.bot_data.update(
        settings=settings, db=services.db, holder=services.holder, service=services.service,
        moderation=moderation, limits=Limits(tg.cooldown_seconds, tg.max_concurrent_generations,
                                             burst=tg.user_burst, window_seconds=tg.user_window_seconds),
        schedule=schedule,
    )
    register_handlers(application, settings)
    return application


def _chat_filter(chat: int | str) -> filters.BaseFilter:
    text = str(chat)
    if text.lstrip("-").isdigit():
        return filters.Chat(chat_id=int(text))
    return filters.Chat(username=text.lstrip("@"))


def register_handlers(application: Application, settings: Settings) -> None:
    """Every handler in one block. Subscribers are served in private chats; the moderators' chat
    gets the moderation handlers; any other group is ignored."""
    private = filters.ChatType.PRIVATE
    handlers = [
        CommandHandler("start", sub.start, filters=private),
        CommandHandler("help", sub.help_command, filters=private),
        CommandHandler("generate", sub.generate, filters=private),
        CommandHandler("meme", sub.meme, filters=private),
        CommandHandler("top", sub.top, filters=private),
        CallbackQueryHandler(mod.on_button),
        MessageReactionHandler(on_reaction_count,
                               message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED),
    ]
    chat = settings.telegram.moderators_chat
    if chat:
        moderators_chat = _chat_filter(chat)
        handlers += [
            CommandHandler(["start", "help"], mod.moderator_help, filters=moderators_chat),
            MessageHandler(moderators_chat & filters.REPLY & filters.TEXT & ~filters.COMMAND, mod.on_edit_reply),
        ]
    application.add_handler(TypeHandler(Update, sub.flood_gate), group=-1)  # before every handler
    application.add_handlers(handlers)
    application.add_error_handler(on_error)


async def _post_init(application: Application) -> None:
    """Reconcile interrupted publications, publish the command list, start the schedule."""
    service = application.bot_data["service"]
    await service.startup()
    with contextlib.suppress(TelegramError):
        await application.bot.set_my_commands([BotCommand(*c) for c in texts.COMMANDS],
                                              scope=BotCommandScopeAllPrivateChats())
    if application.bot_data.get("schedule", True):
        service.start_schedule()


async def _post_shutdown(application: Application) -> None:
    application.bot_data["service"].stop_schedule()
    task = application.bot_data["limits"].refill_task
    if task is not None and not task.done():
        task.cancel()
    application.bot_data["db"].close()


@contextlib.asynccontextmanager
async def running(application: Application, *, poll_timeout: float = POLL_TIMEOUT_SECONDS) -> AsyncIterator[Application]:
    """The long-running bot inside an existing event loop (tests, the benchmark): what
    `run_polling` does, without owning the loop or the signals."""
    await _initialize(application)
    try:
        await _post_init(application)
        await application.updater.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
        await application.start()
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
    finally:
        await _post_shutdown(application)
        await application.shutdown()


async def _initialize(application: Application) -> None:
    from bot.telegram.startup import initialize

    tg = application.bot_data["settings"].telegram
    await initialize(application, base_url=tg.base_url, wait_seconds=tg.startup_wait_seconds)


async def process_pending(application: Application, max_rounds: int = 20) -> int:
    """Handle the updates waiting at Telegram (decisions, reactions since the last run) and
    confirm them; returns how many were handled."""
    offset, handled = None, 0
    for _ in range(max_rounds):
        updates = await application.bot.get_updates(offset=offset, timeout=0, allowed_updates=ALLOWED_UPDATES)
        if not updates:
            break
        for update in updates:
            await application.process_update(update)
        handled += len(updates)
        offset = updates[-1].update_id + 1
    if offset is not None:
        await application.bot.get_updates(offset=offset, timeout=0, limit=1)  # confirms them
    return handled


async def run_cycle(application: Application) -> dict:
    """`buhurt run --once`: pending updates, then pool -> moderators -> publish -> reactions."""
    await _initialize(application)
    try:
        await _post_init(application)
        handled = await process_pending(application)
        result = await application.bot_data["service"].run_once()
        task = application.bot_data["limits"].refill_task
        if task is not None:
            await task
        return {**result, "updates": handled}
    finally:
        await _post_shutdown(application)
        await application.shutdown()


def run_telegram(settings: Settings, *, once: bool) -> None:
    """`buhurt run` with a token: one cycle and exit, or poll until SIGINT/SIGTERM."""
    import asyncio

    application = build_application(settings, schedule=not once)
    if once:
        result = asyncio.run(run_cycle(application))
        published = result["published"]
        log.info("cycle done: %d updates handled, %d new drafts, published %s", result["updates"],
                 len(result["drafts"]), f"meme #{published['id']}" if published else "nothing (the queue is empty)")
        return
    # getMe (with its retries) on the loop run_polling then uses: its own initialize is a no-op
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_initialize(application))
    except BaseException:
        loop.run_until_complete(_post_shutdown(application))
        loop.close()
        raise
    log.info("polling Telegram for %s", ", ".join(ALLOWED_UPDATES))
    application.run_polling(allowed_updates=ALLOWED_UPDATES, timeout=POLL_TIMEOUT_SECONDS)
