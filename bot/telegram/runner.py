"""The Telegram composition: the PTB Application, the moderation and channel publishers, the
Service from bot.app.build_services, every handler in one block, and one lifecycle (`started`):
getMe and the jobs' start-up on the way in, the schedule, the database and the Application
released on the way out, whatever happened. `running` (the long-running bot) and `run_cycle`
(`run --once`) both run inside it.

Updates come from our own getUpdates loop (`Poller`) rather than PTB's Updater, whose loop
gives up for good on a 401 and leaves a process that is alive and answers nothing: here a 401 is
retried with back-off, and TOKEN_RETRIES of them in a row end the process with one line (exit 2)
so that the supervisor restarts it; a network error or a 5xx is retried with back-off for ever.
SIGTERM and SIGINT stop the loop, finish the updates being handled, confirm them and exit 0."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from telegram import Bot, BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat, Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
    MessageHandler, MessageReactionHandler, TypeHandler, filters,
)

from bot import texts
from bot.answers import subscriber_limits
from bot.app import SHUTDOWN_GRACE_SECONDS, build_services
from bot.config import Settings
from bot.errors import BotError
from bot.secrets import REDACTOR
from bot.telegram import desk
from bot.telegram import moderation as mod
from bot.telegram import rating as rate
from bot.telegram import subscribers as sub
from bot.telegram.channel import TelegramChannel, channel_bot
from bot.telegram.bot_data import CONTEXT_TYPES, BotData
from bot.telegram.error_handler import on_error
from bot.telegram.moderators_chat import TelegramModeration
from bot.telegram.reactions import on_reaction_count
from bot.telegram.requests import UPDATES_POOL_SIZE, telegram_request
from bot.telegram.startup import check_bot_api, initialize, retry_seconds
from jobs import decisions

if TYPE_CHECKING:
    from bot.vk.messages import VkMessages

log = logging.getLogger(__name__)

# message_reaction_count is sent only when asked for by name (and only to a channel admin);
# edited_message: a moderator's reply with an edit that they correct in Telegram (commands act only when sent)
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION_COUNT]
POLL_TIMEOUT_SECONDS = 10
TOKEN_RETRIES = 5            # 401s in a row on getUpdates before the process gives up (exit 2)
BACKOFF_FIRST_SECONDS = 1.0  # then doubling, up to BACKOFF_MAX_SECONDS
BACKOFF_MAX_SECONDS = 60.0
UPDATES_WAIT_SECONDS = 60.0  # `run --once`: the longest wait on one getUpdates (flood control, a hung Bot API)


def _without_traceback(record: logging.LogRecord) -> bool:
    record.exc_info, record.exc_text = None, None
    return True


# PTB's rate limiter logs the RetryAfter it re-raises after its retries with a traceback; the
# callers here handle that error and say so in one line.
logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_without_traceback)


class BotApplication(Application):
    """PTB's Application (built by `build_application` through ApplicationBuilder.application_class)
    with what runs beside it in this process and only the lifecycle touches: the channel posts' own
    Bot, closed at the end, and the VK community's messages, answered while the bot polls. What the
    handlers read is its `bot_data` (a BotData)."""

    def __init__(self, *, channel_bot: Bot | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel_bot = channel_bot
        self.vk_messages: VkMessages | None = None   # vk.messages_group_id


def build_application(settings: Settings) -> BotApplication:
    """The Application with its services in bot_data and every handler registered."""
    tg = settings.telegram
    REDACTOR.add(tg.token.reveal())
    # channel posts through their own Bot: a 429 on a post never pauses replies (bot/telegram/channel.py)
    posting = channel_bot(tg.token.reveal(), tg.base_url) if tg.channels else None
    application = cast(BotApplication, (
        ApplicationBuilder().token(tg.token.reveal()).base_url(tg.base_url)
        .request(telegram_request()).get_updates_request(telegram_request(UPDATES_POOL_SIZE))
        .application_class(BotApplication, {"channel_bot": posting})
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)
        .job_queue(None)  # jobs/ owns the one APScheduler, on this same event loop
        .context_types(CONTEXT_TYPES)  # context.bot_data is a BotData
        .build()
    ))
    moderation = TelegramModeration(application.bot, tg.moderators_chat, tg.moderators,
                                    reasons=settings.moderation.reject_reasons, need=settings.moderation.votes)
    publishers = [TelegramChannel(posting, chat) for chat in tg.channels]
    services = build_services(settings, publishers=publishers, moderation=moderation)
    data = bot_data(application)
    data.wire(settings, services, moderation, subscriber_limits(settings))
    if settings.vk.messages_group_id:   # the VK community's messages, served beside Telegram
        from bot.vk.messages import VkMessages

        application.vk_messages = VkMessages(settings.vk, data)
    register_handlers(application, settings)
    return application


def bot_data(application: Application) -> BotData:
    """The application's typed bot_data (built by CONTEXT_TYPES)."""
    data = application.bot_data
    if not isinstance(data, BotData):
        raise TypeError("the Application was not built with context_types(CONTEXT_TYPES)")
    return data


def _chat_filter(chat: int | str) -> filters.BaseFilter:
    text = str(chat)
    if text.lstrip("-").isdigit():
        return filters.Chat(chat_id=int(text))
    return filters.Chat(username=text.lstrip("@"))


def register_handlers(application: Application, settings: Settings) -> None:
    """Every handler in one block. Subscribers are served in private chats; the moderators' chat
    gets the moderation handlers; any other group is ignored."""
    sent = filters.UpdateType.MESSAGE   # a command edited afterwards is not sent again
    private = filters.ChatType.PRIVATE & sent
    handlers = [
        CommandHandler("start", sub.start, filters=private),
        CommandHandler("help", sub.help_command, filters=private),
        CommandHandler("generate", sub.generate, filters=private),
        CommandHandler("meme", sub.meme, filters=private),
        CommandHandler("top", sub.top, filters=private),
        CallbackQueryHandler(desk.on_queue_button, pattern=r"^q:"),
        CommandHandler("rate", rate.rate, filters=private),
        CallbackQueryHandler(rate.on_rate_button, pattern=r"^v:"),   # before the drafts' buttons
        CallbackQueryHandler(mod.on_button),
        MessageReactionHandler(on_reaction_count,
                               message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED),
    ]
    chat = settings.telegram.moderators_chat
    if chat:
        moderators_chat = _chat_filter(chat)
        commands = moderators_chat & sent
        handlers += [
            CommandHandler(["start", "help"], mod.moderator_help, filters=commands),
            CommandHandler("queue", desk.queue, filters=commands),
            CommandHandler("pause", desk.pause, filters=commands),
            CommandHandler("resume", desk.resume, filters=commands),
            CommandHandler("stats", desk.stats, filters=commands),
            CommandHandler("reject", mod.reject_command, filters=commands),
            CommandHandler("rate", rate.rate, filters=commands),
            # sent or edited: an edit corrected in Telegram is the moderator's new edit
            MessageHandler(moderators_chat & filters.REPLY & filters.TEXT & ~filters.COMMAND, mod.on_edit_reply),
        ]
    application.add_handler(TypeHandler(Update, sub.flood_gate), group=-1)  # before every handler
    application.add_handlers(handlers)
    application.add_error_handler(on_error)


@contextlib.asynccontextmanager
async def started(application: BotApplication, *, schedule: bool) -> AsyncIterator[BotData]:
    """The application ready for work: the Bot API reached (getMe, retried with back-off), the jobs'
    start-up (interrupted publications reconciled, the first model's training started), the command
    menus published and, with `schedule`, the jobs scheduled. On the way out, whatever happened
    (getMe refused included): the schedule stopped, a /generate refill cancelled, the channel posts'
    Bot closed, the database closed and the Application shut down."""
    data = bot_data(application)
    try:
        tg = data.settings.telegram
        await initialize(application, base_url=tg.base_url, wait_seconds=tg.startup_wait_seconds)
        await data.service.startup()
        if data.moderation.enabled:   # votes of those since removed from telegram.moderators no longer count
            await decisions.forget_former_moderators(data.db, data.moderation.moderators)
            await decisions.review_auto_approved(data.db)   # what no moderator saw goes to them first
            chat_id = await _chat_id(application.bot, tg.moderators_chat)
            if chat_id is not None:   # drafts waiting in a former moderators' chat are shown in this one
                await decisions.show_in(data.db, chat_id)
        await _publish_commands(application.bot, tg.moderators_chat, rate=data.settings.rate.subscribers)
        if schedule:
            data.service.start_schedule()
        yield data
    finally:
        data.service.stop_schedule()
        task = data.limits.refill_task
        if task is not None and not task.done():
            task.cancel()
        posting = application.channel_bot
        if posting is not None:  # never initialize()d (no second getMe): close its HTTP client here
            with contextlib.suppress(Exception):
                await posting.request.shutdown()
        data.db.close()
        await application.shutdown()


async def _chat_id(bot: Bot, chat: int | str) -> int | None:
    """The numeric id of `chat` (an id, or a public group's @username: getChat); None when the Bot
    API does not say."""
    text = str(chat)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return (await bot.get_chat(chat)).id
    except TelegramError as exc:
        log.warning("could not read the id of telegram.moderators_chat %s: %s", text, REDACTOR.redact(str(exc)))
        return None


async def _publish_commands(bot: Bot, moderators_chat: int | str | None, *, rate: bool) -> None:
    """The command menus: the subscribers' in private chats (with /rate when they may rate), the
    desk's in the moderators' chat."""
    commands = [*texts.COMMANDS[:-1], texts.RATE_COMMAND, texts.COMMANDS[-1]] if rate else texts.COMMANDS
    with contextlib.suppress(TelegramError):
        await bot.set_my_commands([BotCommand(*c) for c in commands], scope=BotCommandScopeAllPrivateChats())
    if moderators_chat:
        with contextlib.suppress(TelegramError):
            await bot.set_my_commands([BotCommand(*c) for c in texts.MODERATOR_COMMANDS],
                                      scope=BotCommandScopeChat(moderators_chat))


def _backoff(attempt: int) -> float:
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(attempt - 1, 0), BACKOFF_MAX_SECONDS)


class Poller:
    """getUpdates in a loop, into the Application's update queue (what PTB's Updater does, with
    the failure policy of this module's docstring). `offset` confirms what was fetched."""

    def __init__(self, application: Application, *, timeout: float, stop: asyncio.Event) -> None:
        self.application, self.timeout, self.stop = application, timeout, stop
        self.offset: int | None = None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def run(self) -> None:
        bot, rejected, failures, webhook_cleared = self.application.bot, 0, 0, False
        while not self.stop.is_set():
            try:
                if not webhook_cleared:  # getUpdates answers 409 while a webhook is set
                    await bot.delete_webhook()
                    webhook_cleared = True
                updates = await bot.get_updates(offset=self.offset, timeout=self.timeout,
                                                allowed_updates=ALLOWED_UPDATES)
            except InvalidToken:
                rejected += 1
                if rejected >= TOKEN_RETRIES:
                    raise BotError(f"Telegram rejected the bot token (401 Unauthorized) {rejected} times in a row"
                                   " while polling: stopping so that the supervisor restarts the bot; check"
                                   " telegram.token") from None
                wait = _backoff(rejected)
                log.error("Telegram answered 401 Unauthorized to getUpdates (%d of %d in a row); retrying in %.1f s",
                          rejected, TOKEN_RETRIES, wait)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                log.warning("flood control on getUpdates: waiting %.1f s", wait)
            except TimedOut:
                wait = 0.0  # the long poll outlived the HTTP timeout: ask again
            except TelegramError as exc:
                failures += 1
                wait = _backoff(failures)
                kind = "cannot reach Telegram" if isinstance(exc, NetworkError) else "getUpdates failed"
                log.warning("%s (%s: %s); retrying in %.1f s", kind, type(exc).__name__, exc, wait)
            else:
                rejected = failures = 0
                for update in updates:
                    await self.application.update_queue.put(update)
                if updates:
                    self.offset = updates[-1].update_id + 1
                continue
            if wait:
                await self._pause(wait)

    async def confirm(self) -> None:
        """Mark what was fetched as read, so that a restart does not handle it again."""
        if self.offset is not None:
            with contextlib.suppress(TelegramError):
                await self.application.bot.get_updates(offset=self.offset, timeout=0, limit=1)


@contextlib.asynccontextmanager
async def _polling(application: BotApplication, *, timeout: float, stop: asyncio.Event) -> AsyncIterator[asyncio.Task]:
    """Inside `started`: the Application handling updates, the Poller feeding it (its task is
    yielded) and the VK messages answered. On the way out: the polling ends, the VK answers and the
    running jobs finish (at most SHUTDOWN_GRACE_SECONDS), then the updates being handled, and what
    was fetched is confirmed."""
    data = bot_data(application)
    poller = Poller(application, timeout=timeout, stop=stop)
    log.info("polling Telegram for %s", ", ".join(ALLOWED_UPDATES))
    await application.start()
    task = asyncio.create_task(poller.run(), name="buhurt:poll_updates")
    messages = application.vk_messages
    if messages is not None:
        messages.start()
    try:
        yield task
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task  # its failure, if any, was raised by `serve`
        if messages is not None:
            await messages.stop(SHUTDOWN_GRACE_SECONDS)
        await data.service.stop(SHUTDOWN_GRACE_SECONDS)  # running jobs finish
        await application.stop()  # the updates being handled are finished
        await poller.confirm()


@contextlib.asynccontextmanager
async def running(application: BotApplication, *, schedule: bool = True, poll_timeout: float = POLL_TIMEOUT_SECONDS,
                  stop: asyncio.Event | None = None) -> AsyncIterator[BotApplication]:
    """The long-running bot inside an existing event loop (tests, the benchmark): `started`, then
    polling until the block ends or `stop` is set."""
    async with (started(application, schedule=schedule),
                _polling(application, timeout=poll_timeout, stop=stop or asyncio.Event())):
        yield application


async def serve(application: BotApplication, *, schedule: bool = True, poll_timeout: float = POLL_TIMEOUT_SECONDS,
                stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (SIGTERM/SIGINT in `run_telegram`) or the polling gives up; in the
    latter case its error (one line, a BotError) is raised after a clean shutdown."""
    stop = stop or asyncio.Event()
    async with (started(application, schedule=schedule),
                _polling(application, timeout=poll_timeout, stop=stop) as task):
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({stopped, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        error = task.exception() if task.done() and not task.cancelled() else None
        if error is not None:
            raise error
    log.info("stopped")


async def process_pending(application: Application, max_rounds: int = 20, *,
                          wait_seconds: float = UPDATES_WAIT_SECONDS) -> int:
    """Handle the updates waiting at Telegram (decisions, reactions since the last run) and
    confirm them; returns how many were handled. A 401 is one line (BotError, exit 2); any other
    failure of getUpdates (a 5xx, a 409, flood control, the network, no answer within
    `wait_seconds`) is one WARNING: what was handled is confirmed, the rest waits for the next run,
    and the cycle goes on to the pool and publishing."""
    offset, handled = None, 0
    for _ in range(max_rounds):
        updates = await _pending_updates(application.bot, wait_seconds, offset=offset,
                                         allowed_updates=ALLOWED_UPDATES)
        if updates is None:
            log.warning("the updates still waiting at Telegram (decisions, reactions, commands) are left for "
                        "the next run; going on with the pool and publishing")
            break
        if not updates:
            break
        for update in updates:
            await application.process_update(update)
        handled += len(updates)
        offset = updates[-1].update_id + 1
    if offset is not None:  # confirms them
        if await _pending_updates(application.bot, wait_seconds, offset=offset, limit=1) is None:
            log.warning("the %d updates handled were not confirmed: the next run may handle them again", handled)
    return handled


async def _pending_updates(bot: Bot, wait_seconds: float, **kwargs: object) -> tuple[Update, ...] | None:
    """One getUpdates of `run --once` (no long poll); None, with a WARNING, when it failed."""
    try:
        return await asyncio.wait_for(bot.get_updates(timeout=0, **kwargs), wait_seconds)  # type: ignore[arg-type]
    except InvalidToken:
        raise BotError("Telegram rejected the bot token (401 Unauthorized) on getUpdates: check "
                       "telegram.token (or BUHURT_TELEGRAM_TOKEN)") from None
    except TimeoutError:
        log.warning("getUpdates did not answer within %g s", wait_seconds)
    except Conflict as exc:
        log.warning("getUpdates refused (409 Conflict: %s): another copy of the bot is polling with this token, "
                    "or a webhook is set", REDACTOR.redact(str(exc)))
    except RetryAfter as exc:
        log.warning("flood control on getUpdates (retry after %g s)", retry_seconds(exc))
    except TelegramError as exc:
        kind = "cannot reach Telegram" if isinstance(exc, NetworkError) else "getUpdates failed"
        log.warning("%s (%s: %s)", kind, type(exc).__name__, REDACTOR.redact(str(exc)))
    return None


async def run_cycle(application: BotApplication) -> dict:
    """`buhurt run --once`: pending updates, then pool -> moderators -> publish -> reactions."""
    async with started(application, schedule=False) as data:
        await data.service.first_model_trained()   # the cycle's drafts come from it
        handled = await process_pending(application)
        result = await data.service.run_once()
        task = data.limits.refill_task
        if task is not None:
            await task
        return {**result, "updates": handled}


def run_telegram(settings: Settings, *, once: bool) -> None:
    """`buhurt run` with a token: one cycle and exit, or poll until SIGINT/SIGTERM. The Bot API is
    reached first (check_bot_api), so a bad token is said before the model loads."""
    tg = settings.telegram
    asyncio.run(check_bot_api(tg.token.reveal(), base_url=tg.base_url, wait_seconds=tg.startup_wait_seconds))
    application = build_application(settings)
    if once:
        result = asyncio.run(run_cycle(application))
        published = result["published"]
        log.info("cycle done: %d updates handled, %d new drafts, published %s", result["updates"],
                 len(result["drafts"]), f"meme #{published['id']}" if published else "nothing (the queue is empty)")
        return
    asyncio.run(_serve_with_signals(application))  # getMe with its start-up retries, then polling


async def _serve_with_signals(application: BotApplication) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(application, stop=stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
