"""`message_reaction_count` updates: a channel post's reaction totals, stored as a time series
(jobs.reactions.record_pushed_counts)."""
from __future__ import annotations

import logging

from telegram import Chat, ReactionType, ReactionTypeCustomEmoji, ReactionTypeEmoji, Update

from bot.telegram.bot_data import Context
from jobs.patience import DatabaseBusy, patiently
from jobs.reactions import record_pushed_counts

log = logging.getLogger(__name__)
NETWORK = "telegram"


def kind_of(reaction_type: ReactionType) -> str:
    """An emoji itself, 'custom:<id>' for a custom emoji, else the type name ('paid')."""
    if isinstance(reaction_type, ReactionTypeEmoji):
        return reaction_type.emoji
    if isinstance(reaction_type, ReactionTypeCustomEmoji):
        return f"custom:{reaction_type.custom_emoji_id}"
    return str(reaction_type.type)


def chat_keys(chat: Chat, channels: list[int | str]) -> list[str]:
    """How a channel may be written in publications: its id, or the configured @username."""
    keys = [str(chat.id)]
    if chat.username:
        wanted = f"@{chat.username}".lower()
        keys += [str(c) for c in channels if str(c).lower() == wanted] + [f"@{chat.username}"]
    return keys


async def on_reaction_count(update: Update, context: Context) -> None:
    """Store one observation of every reaction kind of a channel post (unknown posts too). While
    another process holds the database past the busy timeout (or the disk is full) it is one
    WARNING: the post's next count, pushed at its next change, brings its totals."""
    counted, bot_data = update.message_reaction_count, context.bot_data
    if counted is None:
        return
    keys = chat_keys(counted.chat, bot_data.settings.telegram.channels)
    counts = {kind_of(r.type): r.total_count for r in counted.reactions}
    try:
        chat_id, counts = await patiently(record_pushed_counts, bot_data.db, NETWORK, keys, counted.message_id,
                                          counts)
    except DatabaseBusy as exc:
        log.warning("reactions of %s %s message %s not stored: %s", NETWORK, keys[-1], counted.message_id, exc)
        return
    log.debug("reactions of %s/%s: %s", chat_id, counted.message_id, counts)
