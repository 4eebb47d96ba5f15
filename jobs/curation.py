"""Fresh posts and serving what people liked (issue 24, part 3).

- A channel never gets a post that shares NEAR_COPY_CHARS characters verbatim with a post the bot
  already published there (the near-copy rule of jobs/pool.py, against that channel's posts):
  jobs/publish.py skips such a draft for that destination (`publications.status = 'skipped'`).
- A subscriber's /generate never returns a post that subscriber already got (`served`: the draft,
  or the same text).
- /generate serves, with probability `generate.popular_share`, a published post whose reactions
  per view are in its channel's top tenth (corpus/popularity.py), labelled with its meme number.
- The weekly best-of (`schedule.digest`): each channel gets its week's top posts by reactions per
  view, with their meme numbers.
"""
from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from corpus.db import write_transaction
from corpus.nearcopy import longest_shared_with
from corpus.popularity import publication_scores
from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import ratings as rating_rows
from corpus.store.clock import ago
from corpus.store.posts import text_hash
from corpus.store.reactions import publication_counts, published_texts
from jobs.pool import NEAR_COPY_CHARS

TOP_FRACTION = 0.1        # "popular": the channel's top tenth by reactions per view
DIGEST_DAYS, DIGEST_PLACES = 7, 5
MESSAGE_LIMIT = 4096      # a Telegram message's characters (a digest is cut to fit)
DIGEST_HEADER = "🏆 Лучшее за неделю"
DIGEST_ITEM = "{place}. Мем #{id}\n{text}"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateOptions:
    """[generate]: what /generate serves besides fresh drafts."""

    popular_share: float = 0.25   # the chance of a liked published post instead of a fresh draft

    def problems(self) -> dict[str, str]:
        if not 0 <= self.popular_share <= 1:
            return {"popular_share": "a number from 0 to 1 (a probability)"}
        return {}


def text_of(draft: dict[str, Any]) -> str:
    return draft.get("final_text") or draft["text"]


def repeat_in_channel(db: sqlite_utils.Database, network: str, chat_id: Any, draft: dict[str, Any]) -> str | None:
    """Why `draft` must not go to this destination (it shares NEAR_COPY_CHARS characters with a
    post the bot published there), or None."""
    published = published_texts(db, network, chat_id)
    published.pop(draft["id"], None)
    shared, other = longest_shared_with(text_of(draft), published)
    if shared >= NEAR_COPY_CHARS:
        return f"near-copy: {shared} characters shared with meme {other}, already published there"
    return None


# subscribers


def mark_served(db: sqlite_utils.Database, user_id: Any, draft: dict[str, Any]) -> None:
    rating_rows.mark_served(db, user_id, draft["id"], text_hash(text_of(draft)))


def was_served(db: sqlite_utils.Database, user_id: Any, draft: dict[str, Any]) -> bool:
    return rating_rows.was_served(db, user_id, draft["id"], text_hash(text_of(draft)))


def claim_for(db: sqlite_utils.Database, user_id: Any, draft: dict[str, Any]) -> bool:
    """Record `draft` as served to this subscriber; False (nothing recorded) when they already got it."""
    if was_served(db, user_id, draft):
        return False
    mark_served(db, user_id, draft)
    return True


def next_for_subscriber(db: sqlite_utils.Database, user_id: Any, *, popular: bool,
                        stoplist: StopList) -> tuple[dict | None, bool]:
    """/generate without a start text: (a draft recorded as served to this subscriber, whether it
    is a popular published post). `popular` (drawn with generate.popular_share): a liked post they
    have not had, when there is one; else the oldest ready pool draft they have not had; (None,
    False) when neither is left (the caller generates one now). Neither matches `stoplist` as it is
    now: a word listed after a draft was made or a post published keeps it from subscribers too.
    One transaction, the write lock taken first: a draft taken from the pool is recorded as this
    subscriber's, or stays ready (another process's lock between the two lost it to nobody)."""
    with write_transaction(db):
        if popular:
            liked = popular_for(db, user_id, stoplist=stoplist)
            if liked is not None:
                mark_served(db, user_id, liked)
                return liked, True
        draft = take_ready_for(db, user_id, stoplist)
        if draft is not None:
            mark_served(db, user_id, draft)
        return draft, False


def take_ready_for(db: sqlite_utils.Database, user_id: Any, stoplist: StopList | None = None) -> dict[str, Any] | None:
    """The oldest ready draft of the /generate pool this subscriber has not had (same text
    included), served exactly once; None when there is none. A ready draft `stoplist` now matches
    becomes `rejected_auto` (the stop-list's reason, as at publishing) and is never served."""
    for draft in draft_rows.with_status(db, DraftStatus.READY, purpose=draft_rows.SUBSCRIBER, limit=50):
        if (stoplist is not None and reject_if_listed(db, draft, stoplist)) or was_served(db, user_id, draft):
            continue
        if draft_rows.transition(db, draft["id"], from_status=[DraftStatus.READY], to_status=DraftStatus.SERVED):
            return draft_rows.get_draft(db, draft["id"])
    return None


def reject_if_listed(db: sqlite_utils.Database, draft: dict[str, Any], stoplist: StopList) -> bool:
    """Whether `stoplist` now matches a ready draft (a /generate or /rate pool's) as it would be
    shown: a word listed after it was made. It then becomes `rejected_auto` with the stop-list's
    reason, as a queued draft is skipped at publishing, and is never shown."""
    fragment = stoplist.match(text_of(draft))
    if fragment and draft_rows.transition(db, draft["id"], from_status=[DraftStatus.READY],
                                          to_status=DraftStatus.REJECTED_AUTO, reason=f"stop-list: {fragment!r}"):
        log.info("ready draft %s rejected: stop-list: %r", draft["id"], fragment)
    return bool(fragment)


def popular_posts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Published posts in their channel's top tenth by reactions per view (at least the best one
    of a channel whose posts got reactions), best first; one row per draft."""
    rows = publication_counts(db)
    scores = publication_scores(rows)
    by_channel: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_channel[(row["network"], str(row["chat_id"]))].append(row)
    best: dict[int, tuple[float, dict]] = {}
    for members in by_channel.values():
        ranked = sorted(members, key=lambda r: (-scores[r["publication_id"]], r["publication_id"]))
        for row in ranked[:max(1, math.ceil(len(ranked) * TOP_FRACTION))]:
            score = scores[row["publication_id"]]
            if row["reactions"] > 0 and score > best.get(row["draft_id"], (-1.0, row))[0]:
                best[row["draft_id"]] = (score, row)
    return [row for _, row in sorted(best.values(), key=lambda sr: (-sr[0], sr[1]["draft_id"]))]


def popular_for(db: sqlite_utils.Database, user_id: Any, rng: random.Random | None = None, *,
                stoplist: StopList | None = None) -> dict[str, Any] | None:
    """A popular published post this subscriber has not had and `stoplist` does not match (drawn at
    random), or None."""
    fresh = []
    for row in popular_posts(db):
        draft = draft_rows.get_draft(db, row["draft_id"])
        if draft is None or (stoplist is not None and stoplist.match(text_of(draft))):
            continue
        if not was_served(db, user_id, draft):
            fresh.append(draft)
    return (rng or random.Random()).choice(fresh) if fresh else None


# the weekly best-of


def digest_text(db: sqlite_utils.Database, network: str, chat_id: Any, stoplist: StopList,
                days: int = DIGEST_DAYS, places: int = DIGEST_PLACES) -> str | None:
    """This channel's best posts of the last `days` days by reactions per view, with their meme
    numbers, as one message (None when none got a reaction); a post `stoplist` now matches is left
    out."""
    rows = [r for r in publication_counts(db, ago(days=days))
            if r["network"] == network and str(r["chat_id"]) == str(chat_id) and r["reactions"] > 0
            and not stoplist.match(r["text"])]
    scores = publication_scores(rows)
    ranked = sorted(rows, key=lambda r: (-scores[r["publication_id"]], r["publication_id"]))
    parts = [DIGEST_HEADER]
    for row in ranked:   # a post too long for what is left of the message gives its place to the next
        item = DIGEST_ITEM.format(place=len(parts), id=row["draft_id"], text=row["text"].strip())
        if len("\n\n".join([*parts, item])) <= MESSAGE_LIMIT:
            parts.append(item)
        if len(parts) > places:
            break
    return "\n\n".join(parts) if len(parts) > 1 else None
