"""`context.bot_data`, typed: python-telegram-bot builds it through `ContextTypes(bot_data=BotData)`
(a class it instantiates without arguments); `build_application` fills it once with `wire`, before
any handler runs. Handlers take a `Context` and read attributes, never string keys."""
from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from telegram import Bot
from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot.app import Services
from bot.config import Settings
from bot.telegram.limits import Limits
from bot.telegram.moderators_chat import TelegramModeration
from jobs.generator import GeneratorHolder
from jobs.service import Service

if TYPE_CHECKING:
    import sqlite_utils

    from bot.vk.messages import VkMessages


class BotData:
    """What every handler shares: the settings, the jobs' Service (with its database and model),
    the moderators' seam, the per-user limits, and the running process's polling state."""

    settings: Settings
    services: Services
    moderation: TelegramModeration
    limits: Limits

    def __init__(self) -> None:
        self.schedule = True                        # start the jobs in post_init (False: `run --once`, tests)
        self.channel_bot: Bot | None = None         # the channel posts' own Bot (closed at shutdown)
        self.stop: asyncio.Event | None = None      # set to end the polling (bot.telegram.runner.running)
        self.poller: asyncio.Task[None] | None = None
        self.last_error_report = -math.inf          # when the error handler last told the moderators
        self.vk_messages: VkMessages | None = None  # the VK community's messages (vk.messages_group_id)

    def wire(self, settings: Settings, services: Services, moderation: TelegramModeration, limits: Limits, *,
             schedule: bool, channel_bot: Bot | None) -> None:
        self.settings, self.services, self.moderation, self.limits = settings, services, moderation, limits
        self.schedule, self.channel_bot = schedule, channel_bot

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
