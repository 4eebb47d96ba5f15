"""Start-up of the Telegram side: reach the Bot API (getMe) with a back-off while the network is
down or flood control asks to wait, and turn a refusal (a rejected token, 403, 409, ...) into one
line (PTB's own message would print the token)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application

from bot.errors import BotError
from bot.secrets import REDACTOR
from bot.telegram.requests import telegram_request

log = logging.getLogger(__name__)
FIRST_DELAY, MAX_DELAY = 0.25, 30.0


def retry_seconds(exc: RetryAfter) -> float:
    """A flood control's wait in seconds (PTB gives an int or a timedelta)."""
    wait = exc.retry_after
    return float(wait) if isinstance(wait, (int, float)) else wait.total_seconds()


async def check_bot_api(token: str, *, base_url: str, wait_seconds: float) -> None:
    """getMe with a bare Bot, as `initialize` retries it, before the service is built: a rejected
    token or a Bot API out of reach is one line at once, not after the model has loaded (or, with no
    bundled model, after the first model's minutes of training)."""
    request = telegram_request(connection_pool_size=1)   # one getMe at a time: one client serves both
    bot = Bot(token, base_url=base_url, request=request, get_updates_request=request)
    try:
        await _reach(bot.initialize, base_url=base_url, wait_seconds=wait_seconds)
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()


async def initialize(application: Application, *, base_url: str, wait_seconds: float) -> None:
    """`application.initialize()`, retried with a doubling back-off for up to `wait_seconds` while
    the Bot API is unreachable; BotError (one line, no token) when it never answers or refuses."""
    await _reach(application.initialize, base_url=base_url, wait_seconds=wait_seconds)


async def _reach(connect: Callable[[], Awaitable[None]], *, base_url: str, wait_seconds: float) -> None:
    """`connect()` (which sends getMe) with the retries and the one-line refusals of `initialize`."""
    delay, waited, attempt = FIRST_DELAY, 0.0, 0
    while True:
        attempt += 1
        try:
            await connect()
            if attempt > 1:
                log.info("reached the Telegram Bot API after %d tries", attempt)
            return
        except InvalidToken:
            raise BotError(f"the Bot API at {base_url} rejected the bot token (HTTP 401/404): check "
                           "telegram.token (or BUHURT_TELEGRAM_TOKEN) and telegram.base_url") from None
        except BadRequest as exc:
            raise BotError(f"the Bot API at {base_url} refused getMe: {REDACTOR.redact(str(exc))}") from None
        except NetworkError as exc:  # connection refused, DNS, timeouts, 5xx
            reason = REDACTOR.redact(f"{type(exc).__name__}: {exc}")
            if waited + delay > wait_seconds:
                raise BotError(f"cannot reach the Telegram Bot API at {base_url} ({reason}) after {attempt} "
                               f"tries in {waited:.0f} s (telegram.startup_wait_seconds = {wait_seconds:g}); "
                               "check the network and telegram.base_url") from None
            log.warning("the Telegram Bot API at %s is unreachable (%s): try %d, retrying in %.2f s",
                        base_url, reason, attempt, delay)
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, MAX_DELAY)
        except RetryAfter as exc:  # 429 (PTB's rate limiter has already waited and retried)
            wait = retry_seconds(exc)
            if waited + wait > wait_seconds:
                raise BotError(f"the Bot API at {base_url} answered getMe with flood control (429, retry after "
                               f"{wait:g} s) after {attempt} tries in {waited:.0f} s (telegram.startup_wait_seconds"
                               f" = {wait_seconds:g}): start the bot again later") from None
            log.warning("flood control on getMe at %s: try %d, retrying in %g s", base_url, attempt, wait)
            await asyncio.sleep(wait)
            waited += wait
        except (KeyError, TypeError, ValueError) as exc:   # JSON without a getMe result: another service
            raise BotError(f"the Bot API at {base_url} answered getMe with JSON that is not a Bot API answer"
                           f" ({type(exc).__name__}: {REDACTOR.redact(str(exc))[:200]}): check telegram.base_url"
                           ) from None
        except TelegramError as exc:  # 403 Forbidden, 409 Conflict, ...: waiting does not help
            raise BotError(f"the Bot API at {base_url} refused getMe ({type(exc).__name__}: "
                           f"{REDACTOR.redact(str(exc))}): check telegram.token and telegram.base_url") from None
