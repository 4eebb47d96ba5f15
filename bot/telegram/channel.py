"""The channel publisher (jobs.publish.Publisher): one configured Telegram channel.

Channel posts go through their own `telegram.Bot` (`channel_bot`), not the Application's: PTB's
AIORateLimiter halts *every* request of its bot while it waits out a 429, so a flood-control wait
on a channel post would freeze the replies to subscribers and moderators. Here the wait
(`retry_after`, up to RETRIES_ON_429 times) happens inside this channel's send only, in the
publish job, off the update-handling path; the other destinations publish meanwhile.

Definite refusals become PublishError, so jobs/publish.py keeps the draft queued, records the
failure and tells the moderators: flood control that outlasts the retries (429), the bot removed
from the channel (403), a migrated chat, a chat that does not exist. A timeout or a 5xx answer is
NOT definite (the post may be out): it is PublishInDoubt, the publication becomes `unknown`, and it
is never re-sent (at-most-once). A stop during a 429's wait is definite too (nothing was sent): a
PublishError, so the post is retried after the restart. The Bot API's words are stored scrubbed of
the token.
"""
from __future__ import annotations

import asyncio
import logging

from telegram.constants import MessageLimit
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError

from bot import texts
from bot.telegram.error_handler import telegram_said
from jobs.publish import PublishError, PublishInDoubt

log = logging.getLogger(__name__)

RETRIES_ON_429 = 5  # waits of retry_after (+0.1 s) before giving up on this publishing time
RETRY_SLACK = 0.1


class TelegramChannel:
    network = "telegram"
    max_text = MessageLimit.MAX_TEXT_LENGTH   # a footer that would pass it is left out (jobs/publish.py)

    def __init__(self, bot, chat_id: int | str) -> None:
        self.bot = bot
        self.chat_id = str(chat_id)

    async def send(self, text: str) -> str:
        waits = 0
        while True:
            try:
                return await self._send_once(text)
            except RetryAfter as exc:
                if waits >= RETRIES_ON_429:
                    raise PublishError(f"flood control: still 429 after {RETRIES_ON_429} waits",
                                       texts.CHANNEL_FLOOD.format(waits=RETRIES_ON_429)) from exc
                waits += 1
                retry_after = exc.retry_after
                seconds = retry_after if isinstance(retry_after, (int, float)) else retry_after.total_seconds()
                log.info("flood control on %s: waiting %.1f s before retrying (wait %d of %d)", self.chat_id,
                         seconds, waits, RETRIES_ON_429)
                try:
                    await asyncio.sleep(seconds + RETRY_SLACK)
                except asyncio.CancelledError:   # a stop (SIGTERM) in the wait: nothing was sent, retried later
                    raise PublishError("stopped while waiting out flood control (429): not sent",
                                       texts.CHANNEL_STOPPED) from None

    async def _send_once(self, text: str) -> str:
        try:
            message = await self.bot.send_message(self.chat_id, text)
        except RetryAfter:
            raise
        except Forbidden as exc:
            raise PublishError(f"the bot may not post there (removed, or not an admin): {telegram_said(exc)}",
                               texts.CHANNEL_FORBIDDEN.format(said=telegram_said(exc))) from exc
        except ChatMigrated as exc:
            raise PublishError(f"the chat migrated to {exc.new_chat_id}: put that id in telegram.channels",
                               texts.CHANNEL_MIGRATED.format(chat_id=exc.new_chat_id)) from exc
        except InvalidToken as exc:
            raise PublishError(f"the bot token was refused: {telegram_said(exc)}", texts.CHANNEL_TOKEN) from exc
        except BadRequest as exc:
            raise PublishError(f"Telegram refused the post: {telegram_said(exc)}",
                               texts.CHANNEL_REFUSED.format(said=telegram_said(exc))) from exc
        except TelegramError as exc:  # TimedOut, NetworkError (a 5xx, a dropped connection): maybe out
            raise PublishInDoubt(f"{type(exc).__name__}: {telegram_said(exc)}",
                                 texts.CHANNEL_NO_ANSWER.format(said=telegram_said(exc))) from exc
        return str(message.message_id)


def channel_bot(token: str, base_url: str):
    """The Bot that channel posts go through: its own connection pool and no rate limiter
    (RetryAfter is handled per channel in TelegramChannel.send)."""
    from telegram import Bot

    from bot.telegram.requests import telegram_request

    request = telegram_request(connection_pool_size=8)
    return Bot(token, base_url=base_url, request=request, get_updates_request=request)
