"""`message_reaction_count` updates: a channel post's reaction totals, stored as a time series."""
from __future__ import annotations

import logging

from telegram import ReactionTypeCustomEmoji, ReactionTypeEmoji, Update
from telegram.ext import ContextTypes

from corpus.store.publications import find_publication
from corpus.store.reactions import latest_counts, record_counts

log = logging.getLogger(__name__)
NETWORK = "telegram"


def kind_of(reaction_type) -> str:
    """An emoji itself, 'custom:<id>' for a custom emoji, else the type name ('paid')."""
    if isinstance(reaction_type, ReactionTypeEmoji):
        return reaction_type.emoji
    if isinstance(reaction_type, ReactionTypeCustomEmoji):
        return f"custom:{reaction_type.custom_emoji_id}"
    return str(reaction_type.type)


def chat_keys(chat, channels: list[int | str]) -> list[str]:
    """How a channel may be written in publications: its id, or the configured @username."""
    keys = [str(chat.id)]
    if chat.username:
        wanted = f"@{chat.username}".lower()
        keys += [str(c) for c in channels if str(c).lower() == wanted] + [f"@{chat.username}"]
    return keys


async def on_reaction_count(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Store one observation of every reaction kind of a channel post (unknown posts too)."""
    counted = update.message_reaction_count
    db = context.bot_data["db"]
    channels = context.bot_data["settings"].telegram.channels
    chat_id, publication = str(counted.chat.id), None
    for key in chat_keys(counted.chat, channels):
        publication = find_publication(db, NETWORK, key, counted.message_id)
        if publication is not None:
            chat_id = key
            break
    counts = {kind_of(r.type): r.total_count for r in counted.reactions}
    if publication is not None:  # a kind that disappeared is now zero, not its last count
        counts = {**{kind: 0 for kind in latest_counts(db, publication["id"])}, **counts}
    record_counts(db, NETWORK, chat_id, counted.message_id, counts)
    log.debug("reactions of %s/%s: %s", chat_id, counted.message_id, counts)
