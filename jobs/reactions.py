"""Collect reaction counts of recent publications from networks that are polled (VK likes).
Telegram pushes its counts as `message_reaction_count` updates, stored by the bot's handler."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

import sqlite_utils

from corpus.store import publications as pubs
from corpus.store import reactions as reaction_rows
from corpus.store.clock import ago
from jobs.patience import DatabaseBusy, patiently

log = logging.getLogger(__name__)


class ReactionSource(Protocol):
    network: str
    chat_id: str   # the destination polled (as its publisher records it): only its posts are asked for

    def fetch(self, message_ids: list[str]) -> dict[str, dict[str, int]]:
        """Blocking: {message id: {kind: count}} for the given messages."""


async def collect_reactions(db: sqlite_utils.Database, sources: Sequence[ReactionSource],
                            days: int = 7) -> int:
    """Poll every source for the publications of the last `days`; returns observations stored.
    While another process holds the database past the busy timeout (or the disk is full) the run
    stops with one WARNING, keeping what it stored: the next run polls the counts again."""
    stored = 0
    for source in sources:
        # one wall's posts: after vk.publish_group_id changed, the old wall's post ids are other posts here
        recent = pubs.recent_publications(db, source.network, source.chat_id, ago(days=days))
        if not recent:
            continue
        by_message = {row["message_id"]: row for row in recent}
        try:
            counts = await asyncio.to_thread(source.fetch, list(by_message))
        except Exception as exc:  # noqa: BLE001 - a failed poll is retried at the next run
            log.warning("could not collect reactions from %s: %s", source.network, exc)
            continue
        updated = 0
        try:
            for message_id, kinds in counts.items():
                row = by_message.get(str(message_id))
                if row is not None:
                    await patiently(reaction_rows.record_counts, db, source.network, row["chat_id"], message_id,
                                    kinds)
                    updated += 1
        except DatabaseBusy as exc:
            log.warning("reactions from %s %s not stored: %s; %d of %d recent posts updated, the next run"
                        " tries again", source.network, source.chat_id, exc, updated, len(recent))
            return stored + updated
        log.info("reactions from %s: %d of %d recent posts updated", source.network, updated, len(recent))
        stored += updated
    return stored


def record_pushed_counts(db: sqlite_utils.Database, network: str, chat_keys: Sequence[str], message_id: int | str,
                         counts: dict[str, int]) -> tuple[str, dict[str, int]]:
    """Store one observation a network pushed (Telegram's message_reaction_count): the post's
    publication is looked up under each of `chat_keys` (its chat id first, then the names it may
    have been published under); for a known publication a kind that disappeared is now zero, not
    its last count. Unknown posts are stored too. Returns (the chat id stored, the counts stored)."""
    chat_id, publication = chat_keys[0], None
    for key in chat_keys:
        publication = pubs.find_publication(db, network, key, message_id)
        if publication is not None:
            chat_id = key
            break
    if publication is not None:
        counts = {**{kind: 0 for kind in reaction_rows.latest_counts(db, publication["id"])}, **counts}
    reaction_rows.record_counts(db, network, chat_id, message_id, counts)
    return chat_id, counts
