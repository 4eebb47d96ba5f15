"""`context.bot_data`, typed: python-telegram-bot builds it through `ContextTypes(bot_data=BotData)`
(a class it instantiates without arguments); `build_application` fills it once with `wire`, before
any handler runs. Handlers take a `Context` and read attributes, never string keys."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.app import Services
from bot.config import Settings
from bot.telegram.limits import Limits
from bot.telegram.moderators_chat import TelegramModeration
from jobs.generator import GeneratorHolder
from jobs.service import Service

if TYPE_CHECKING:
    import sqlite_utils


class BotData:
    """What the handlers read: the settings, the jobs' Service (with its database and model), the
    moderators' seam, the per-user limits and when the error handler last spoke. What only the
    lifecycle touches (the channel posts' Bot, the VK messages, the poller) is not here
    (bot/telegram/runner.py)."""

    settings: Settings
    services: Services
    moderation: TelegramModeration
    limits: Limits

    def __init__(self) -> None:
        self.last_error_report = -math.inf          # when the error handler last told the moderators

    def wire(self, settings: Settings, services: Services, moderation: TelegramModeration, limits: Limits) -> None:
        self.settings, self.services, self.moderation, self.limits = settings, services, moderation, limits

    @property
    def service(self) -> Service:
        return self.services.service

    @property
    def db(self) -> sqlite_utils.Database:
        return self.services.db

    @property
    def holder(self) -> GeneratorHolder:
        return self.services.holder


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
CONTEXT_TYPES = ContextTypes(bot_data=BotData)
