"""The channel publisher (jobs.publish.Publisher): one configured Telegram channel.

Definite refusals become PublishError, so jobs/publish.py keeps the draft queued, records the
failure and tells the moderators: flood control that outlasts the retries (429), the bot removed
from the channel (403), a migrated chat, a chat that does not exist. A timeout or a 5xx answer is
NOT definite (the post may be out): it propagates, the publication row stays `sending`, and it is
never re-sent (at-most-once).
"""
from __future__ import annotations

import logging

from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter

from jobs.publish import PublishError

log = logging.getLogger(__name__)

RETRIES_ON_429 = 5  # AIORateLimiter sleeps retry_after (+0.1 s) before each retry


class TelegramChannel:
    network = "telegram"

    def __init__(self, bot, chat_id: int | str) -> None:
        self.bot = bot
        self.chat_id = str(chat_id)

    async def send(self, text: str) -> str:
        try:
            message = await self.bot.send_message(self.chat_id, text, rate_limit_args=RETRIES_ON_429)
        except RetryAfter as exc:
            raise PublishError(f"flood control: still 429 after {RETRIES_ON_429} waits") from exc
        except Forbidden as exc:
            raise PublishError(f"the bot may not post there (removed, or not an admin): {exc.message}") from exc
        except ChatMigrated as exc:
            raise PublishError(f"the chat migrated to {exc.new_chat_id}: put that id in telegram.channels") from exc
        except InvalidToken as exc:
            raise PublishError(f"the bot token was refused: {exc.message}") from exc
        except BadRequest as exc:
            raise PublishError(f"Telegram refused the post: {exc.message}") from exc
        return str(message.message_id)
