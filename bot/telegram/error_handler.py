"""The error handler: log the error (with its traceback) and tell the moderators' chat, with every
known secret and anything shaped like a token redacted."""
from __future__ import annotations

import logging
import time
import traceback

from telegram import Update
from telegram.constants import ChatType
from telegram.error import Forbidden

from bot import texts
from bot.secrets import REDACTOR
from bot.telegram.bot_data import Context

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
    if error is not None:
        bot_data.service.health.failed(error)   # damaged pages: the next heartbeat checks at once
    now = time.monotonic()
    if now - bot_data.last_error_report < REPORT_EVERY_SECONDS:
        return
    bot_data.last_error_report = now
    summary = REDACTOR.redact(f"{type(error).__name__}: {error}")[:500]
    await bot_data.moderation.notify(texts.ERROR_REPORT.format(error=summary))
