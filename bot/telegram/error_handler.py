"""The error handler: log the error (with its traceback) and tell the moderators' chat, with every
known secret and anything shaped like a token redacted."""
from __future__ import annotations

import logging
import time
import traceback

from telegram import Update
from telegram.ext import ContextTypes

from bot import texts
from bot.secrets import REDACTOR

log = logging.getLogger(__name__)
REPORT_EVERY_SECONDS = 30.0  # a storm of errors becomes one notice per 30 s, not a flood


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log an error raised while handling an update and tell the moderators (token redacted)."""
    error = context.error
    where = f"update {update.update_id}" if isinstance(update, Update) else "a background task"
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__)) if error else ""
    log.error("error while handling %s:\n%s", where, REDACTOR.redact(trace))
    moderation = context.bot_data.get("moderation")
    if moderation is None:
        return
    now = time.monotonic()
    if now - context.bot_data.get("last_error_report", -REPORT_EVERY_SECONDS) < REPORT_EVERY_SECONDS:
        return
    context.bot_data["last_error_report"] = now
    summary = REDACTOR.redact(f"{type(error).__name__}: {error}")[:500]
    await moderation.notify(texts.ERROR_REPORT.format(error=summary))
