"""The error handler: log the error (with its traceback) and tell the moderators' chat, with every
known secret and anything shaped like a token redacted; the one whose command or button met the
error gets a polite answer."""
from __future__ import annotations

import logging
import time
import traceback

from telegram import Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import texts
from bot.secrets import REDACTOR
from bot.telegram.bot_data import Context
from jobs import notices

log = logging.getLogger(__name__)
REPORT_EVERY_SECONDS = 30.0  # a storm of errors becomes one notice per 30 s, not a flood


async def on_error(update: object, context: Context) -> None:
    """Log an error raised while handling an update and tell the moderators (token redacted)."""
    error = context.error
    chat = update.effective_chat if isinstance(update, Update) else None
    if isinstance(error, Forbidden) and chat is not None and chat.type == ChatType.PRIVATE:
        # a subscriber who blocked the bot (or deleted the chat) meanwhile: nothing to fix, no report
        log.info("no reply to private chat %s: the user blocked the bot or deleted the chat (%s)",
                 chat.id, REDACTOR.redact(str(error)))
        return
    where = f"update {update.update_id}" if isinstance(update, Update) else "a background task"
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)) if error else ""
    log.error("error while handling %s:\n%s", where, REDACTOR.redact(trace))
    bot_data = context.bot_data
    await answer_politely(update, texts.HANDLER_FAILED, texts.DESK_FAILED)
    if error is not None:
        bot_data.service.health.failed(error)   # damaged pages: the next heartbeat checks at once
    now = time.monotonic()
    if now - bot_data.last_error_report < REPORT_EVERY_SECONDS:
        return
    bot_data.last_error_report = now
    await bot_data.moderation.notify(report(error))


def report(error: BaseException | None) -> str:
    """The moderators' report of an error: what happened, in Russian, then one short technical line
    (the exception's type and words, Telegram's without the status word it repeats, redacted)."""
    if isinstance(error, TelegramError):
        said = telegram_said(error)
        if isinstance(error, Forbidden):
            what = texts.REPORT_FORBIDDEN
        elif isinstance(error, RetryAfter):
            what = texts.REPORT_FLOOD
        elif isinstance(error, NetworkError) and not isinstance(error, BadRequest):   # TimedOut too
            what = texts.REPORT_NETWORK
        else:   # BadRequest, ChatMigrated, Conflict, ...
            what = texts.REPORT_BAD_REQUEST
    else:
        said = REDACTOR.redact(" ".join(str(error).split()))
        what = notices.reason(error) if error is not None else notices.REASON_OTHER
        if what == notices.REASON_OTHER:
            what = texts.REPORT_UNEXPECTED
    detail = f"{type(error).__name__}: {said}" if said else type(error).__name__
    return texts.ERROR_REPORT.format(what=what, detail=detail[:300])


def busy_text(exc: BaseException) -> str:
    """The moderators' answer when a write of theirs met DatabaseBusy: the database held (try again
    in a minute), or a full disk (nothing changes until space is freed)."""
    return texts.DESK_DISK_FULL if notices.reason(exc) == notices.REASON_DISK_FULL else texts.DESK_BUSY


def telegram_said(exc: TelegramError) -> str:
    """Telegram's own words of a refusal, one line, scrubbed of the token, without the status word it
    starts with ("Forbidden: ", "Bad Request: "): the text the moderators read names it already."""
    said = REDACTOR.redact(" ".join(exc.message.split()))
    for prefix in ("Forbidden: ", "Bad Request: ", "Unauthorized: ", "Conflict: "):
        said = said.removeprefix(prefix)
    return said


async def answer_politely(update: object, to_subscriber: str, to_moderators: str) -> None:
    """Answer the update that met an error: a button press with an alert (buttons are the
    moderators'), a message in a private chat with `to_subscriber`, one in the moderators' chat (the
    only group served) with `to_moderators`. A failure to answer is a log line."""
    if not isinstance(update, Update):
        return
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(to_moderators, show_alert=True)
            return
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or chat.type == ChatType.CHANNEL:
            return
        await message.reply_text(to_subscriber if chat.type == ChatType.PRIVATE else to_moderators)
    except TelegramError as exc:   # already answered, the user blocked the bot, Telegram unreachable
        log.warning("could not answer update %s after its error (%s)", update.update_id,
                    REDACTOR.redact(f"{type(exc).__name__}: {exc}"))
