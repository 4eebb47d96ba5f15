"""The blind rating flow (issue 24): raters get one post at a time from a shuffled mix of real
corpus posts held out from training and screened drafts of the active model (and of a retrained
model waiting for ratings), never told which is which, and answer two questions: does it read from
start to end, would they publish it. Each rater sees a post at most once; each answer is stored
with the rater, the post's source and the model version (corpus/store/ratings.py).

The held-out posts are the ones the nightly retrain never trains on: model.preprocess.post_split
puts a post in val or test by a hash of its text, with retrain.val_frac and retrain.test_frac.

`rating_shares` gives per model version (and for the real posts, the calibration) the shares of
"yes" with 95% Wilson intervals; `buhurt models list` prints them, and the moderators' /stats can.
With retrain.promote_min_ratings > 0 a retrained model that beat the active one waits as a
candidate (`awaiting_ratings` in its metrics) until its drafts have that many answers to
"readable", and is promoted only when its readable share is not lower than the active model's
(`settle_candidates`, after every answer and every pool run)."""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from corpus.db import write_transaction
from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import model_versions as model_rows
from corpus.store import ratings as rating_rows
from jobs.curation import reject_if_listed
from jobs.patience import DatabaseBusy, patiently
from jobs.pool import new_seeds, store_generated
from jobs.tune import resolve_options
from model.preprocess import post_split


class Service(Protocol):
    """What the rating flow uses of jobs.service.Service (which runs its pool and settling)."""

    db: sqlite_utils.Database
    plan: Any       # jobs.service.ServicePlan: rate, pool, sample, screen, held_out, promote_min_ratings
    drafting: Any   # jobs.drafting.Drafting: its stop-list
    rating_lock: asyncio.Lock   # one rating-pool fill at a time

    @property
    def holder(self) -> Any: ...   # jobs.generator.GeneratorHolder

    async def follow_active_model(self) -> str | None: ...

log = logging.getLogger(__name__)

RATING = "rating"       # drafts.purpose of the rating pool's drafts (status 'ready', reused across raters)
REAL_SHARE = 0.3        # the share of real posts in a rater's mix (the rest: drafts, split among versions)
Z95 = 1.959963984540054


@dataclass(frozen=True)
class RateOptions:
    """[rate]: who may rate, and how many drafts per rated model wait in the rating pool."""

    subscribers: bool = False   # /rate for any subscriber in a private chat (moderators always may)
    drafts: int = 20            # ready drafts kept per rated model version (raters share them)

    def problems(self) -> dict[str, str]:
        fits = 1 <= self.drafts <= 1000
        return {} if fits else {"drafts": "an integer from 1 to 1000 (drafts kept per rated model)"}


@dataclass(frozen=True)
class Share:
    """`yes` of `n` answers, with the 95% Wilson interval [low, high] (None when n = 0)."""

    yes: int
    n: int

    @property
    def share(self) -> float | None:
        return self.yes / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.yes, self.n)

    def __str__(self) -> str:
        if not self.n:
            return "- (0)"
        low, high = wilson(self.yes, self.n) or (0.0, 0.0)
        return f"{self.yes / self.n:.0%} [{low:.0%}-{high:.0%}] ({self.n})"


@dataclass(frozen=True)
class VersionShares:
    """The answers about one model version's drafts (version None: the real held-out posts)."""

    version: str | None
    readable: Share
    would_publish: Share

    @property
    def label(self) -> str:
        return self.version or "real posts"


def wilson(yes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% with the default z); None when n = 0."""
    if n <= 0:
        return None
    p = yes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rating_shares(db: sqlite_utils.Database) -> list[VersionShares]:
    """Per model version, the readable and would-publish shares of its drafts with their 95%
    intervals and counts; the real posts' shares first (version None), as calibration."""
    out = []
    for row in rating_rows.share_counts(db):
        version = row["model_version"] if row["source"] == rating_rows.DRAFT else None
        out.append(VersionShares(version, Share(row["readable_yes"], row["readable_n"]),
                                 Share(row["publish_yes"], row["publish_n"])))
    return sorted(out, key=lambda s: s.version is not None)


def shares_by_version(db: sqlite_utils.Database) -> dict[str | None, VersionShares]:
    return {s.version: s for s in rating_shares(db)}


# which models are rated


def awaiting(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Retrained models waiting for ratings before promotion (retrain.promote_min_ratings)."""
    return model_rows.awaiting_ratings(db)


def rated_versions(db: sqlite_utils.Database) -> list[tuple[str, Path]]:
    """(version, checkpoint) of the models whose drafts raters get: the active one and any waiting."""
    rows = [r for r in [model_rows.active_model(db), *awaiting(db)] if r is not None]
    return [(r["version"], Path(r["path"])) for r in rows]


def settle_candidates(db: sqlite_utils.Database, min_ratings: int) -> list[tuple[str, bool]]:
    """Decide the waiting candidates that have `min_ratings` readable answers: promoted when their
    readable share is not lower than the active model's (or the active model has none), else
    rejected. Returns (version, promoted) of those decided. One transaction, the write lock taken
    first (waited for): on the service's connection call it through `patiently`."""
    with write_transaction(db):
        return _settle(db, min_ratings)


def _settle(db: sqlite_utils.Database, min_ratings: int) -> list[tuple[str, bool]]:
    decided: list[tuple[str, bool]] = []
    active = model_rows.active_model(db)
    for row in awaiting(db):
        if any(version == row["version"] for version, _ in decided):   # rejected above as superseded
            continue
        compared = json.loads(row.get("metrics_json") or "{}").get("active_version")
        if compared and active is not None and compared != active["version"]:   # made active since: not compared
            model_rows.set_status(db, row["version"], "rejected")
            log.info("rated candidate %s: rejected: its retrain compared it with model %s, and model %s was made"
                     " active since", row["version"], compared, active["version"])
            decided.append((row["version"], False))
            continue
        yes, n = rating_rows.readable_counts(db, row["version"])
        if min_ratings <= 0 or n < min_ratings:
            continue
        share = yes / n
        a_yes, a_n = rating_rows.readable_counts(db, active["version"]) if active else (0, 0)
        promote = a_n == 0 or share >= a_yes / a_n
        if promote:
            model_rows.promote(db, row["version"])
            active = model_rows.get_model(db, row["version"])
        else:
            model_rows.set_status(db, row["version"], "rejected")
        log.info("rated candidate %s: readable %d of %d (active %d of %d): %s", row["version"], yes, n, a_yes, a_n,
                 "promoted" if promote else "rejected")
        decided.append((row["version"], promote))
        if promote:   # an earlier night's candidate, never compared with this one, is never promoted over it
            for older in awaiting(db):
                if older["created_at"] < row["created_at"]:
                    model_rows.set_status(db, older["version"], "rejected")
                    log.info("rated candidate %s: rejected, superseded by the newer candidate %s it was never"
                             " compared with", older["version"], row["version"])
                    decided.append((older["version"], False))
    return decided


# the rating pool


async def fill_rating_pool(service: Service, version: str | None = None, *, target: int | None = None) -> list[int]:
    """Top up the ready rating drafts of each rated model (or of `version`) to `rate.drafts`:
    generated in a worker thread by that model, screened and ranked as every draft is; one fill at
    a time (Service.rating_lock), whoever asks."""
    async with service.rating_lock:   # one fill at a time; a second one then finds the pool fuller
        return await _fill_rating_pool(service, version, target)


async def _fill_rating_pool(service: Service, version: str | None, target: int | None) -> list[int]:
    plan = service.plan
    target = plan.rate.drafts if target is None else target
    created: list[int] = []
    for name, checkpoint in rated_versions(service.db):
        if version is not None and name != version:
            continue
        request = resolve_options(service.db, name, plan.sample).request()
        for _ in range(plan.max_rounds):   # rounds, as the pool's: the screen may reject a whole batch
            missing = target - rating_rows.count_ready_drafts(service.db, name)
            if missing <= 0:
                break
            want = min(missing, plan.pool.batch_size)
            seeds = new_seeds(want * max(1, plan.pool.oversample))
            made, samples = await asyncio.to_thread(service.holder.generate_samples, seeds, request,
                                                    version=name, checkpoint=checkpoint)
            created += await patiently(store_generated, service.db, samples, seeds, version=made, request=request,
                                       purpose=RATING, ok_status=DraftStatus.READY,
                                       stoplist=service.drafting.stoplist, keep=want, screening=plan.screen)
    return created


# one rater's cards


@dataclass(frozen=True)
class Card:
    """A post shown to a rater: its rating row and text (never its source)."""

    rating_id: int
    text: str


def held_out_posts(db: sqlite_utils.Database, rater_id: Any, val_frac: float, test_frac: float,
                   stoplist: StopList | None = None, limit: int = 200,
                   rng: random.Random | None = None) -> list[dict]:
    """Corpus posts outside the training split (and, with `stoplist`, that it does not match) that
    this rater has not been shown (random order): chosen among those posts, however few are left."""
    def held_out(text: str) -> bool:
        return post_split(text, val_frac, test_frac) != "train"

    posts = rating_rows.unrated_posts(db, rater_id, limit=None, keep=held_out, rng=rng)   # shuffled
    # the stop-list (the slower test) only until `limit` posts pass it
    return list(itertools.islice((p for p in posts if not (stoplist and stoplist.match(p["text"]))), limit))


async def next_card(service: Service, rater_id: Any, rng: random.Random | None = None) -> Card | None:
    """The next post for this rater (recorded as shown to them), or None when they have seen every
    held-out post and no fresh draft can be made. Real posts come with probability REAL_SHARE
    (while any are left), drafts are split evenly among the rated models."""
    rng = rng or random.Random()
    db, plan, stoplist = service.db, service.plan, service.drafting.stoplist
    # a post kept before a word was listed (cleaning sees new posts only) is not shown either
    val_frac, test_frac = plan.held_out
    real = held_out_posts(db, rater_id, val_frac, test_frac, stoplist=stoplist, limit=1, rng=rng)
    versions = [v for v, _ in rated_versions(db)]
    rng.shuffle(versions)
    if real and (not versions or rng.random() < REAL_SHARE):
        return await _show(db, rater_id, rating_rows.CORPUS, real[0]["id"], None, real[0]["text"])
    for version in versions:
        drafts = _unrated_unlisted(db, rater_id, version, stoplist)
        if not drafts:
            await fill_rating_pool(service, version, target=rating_rows.count_ready_drafts(db, version)
                                   + plan.pool.batch_size)
            drafts = _unrated_unlisted(db, rater_id, version, stoplist)
        if drafts:
            draft = drafts[0]
            return await _show(db, rater_id, rating_rows.DRAFT, draft["id"], draft["model_version"], draft["text"])
    if real:
        return await _show(db, rater_id, rating_rows.CORPUS, real[0]["id"], None, real[0]["text"])
    return None


def _unrated_unlisted(db: sqlite_utils.Database, rater_id: Any, version: str, stoplist: StopList) -> list[dict]:
    """A ready rating draft of `version` this rater has not been shown ([] when none); one that a
    word listed since it was made matches becomes `rejected_auto`, as a queued draft does at publishing."""
    while drafts := rating_rows.unrated_drafts(db, rater_id, version):
        if not reject_if_listed(db, drafts[0], stoplist):
            return drafts
    return []


async def _show(db, rater_id, source, item_id, version, text) -> Card | None:
    """Record the post as shown to the rater (waiting off the loop while another process holds the
    database, jobs/patience.py); None when they were shown it before."""
    rating_id = await patiently(rating_rows.add_shown, db, rater_id=rater_id, source=source, item_id=item_id,
                                model_version=version)
    return None if rating_id is None else Card(rating_id, text)


async def card_sent(service: Service, card: Card, chat_id: Any, message_id: Any) -> None:
    """Record the message the card went out in (waited off the loop while another process holds the
    database); past the busy timeout the card still works: a press on a card without its message
    recorded is taken (`answer`)."""
    try:
        await patiently(rating_rows.set_message, service.db, card.rating_id, chat_id, message_id)
    except DatabaseBusy as exc:
        log.warning("rating card %s sent but its message not recorded: %s", card.rating_id, exc)


async def card_not_sent(service: Service, card: Card) -> None:
    try:
        await patiently(rating_rows.forget_shown, service.db, card.rating_id)
    except DatabaseBusy as exc:   # the rater is not shown that post again
        log.warning("rating card %s not sent, and still recorded as shown: %s", card.rating_id, exc)


class CardClosed(Exception):
    """Both questions of the card were answered already (a double tap on the last answer, a stale
    copy of the card): the press changes nothing, and no further card follows from it."""


async def answer(service: Service, rating_id: int, rater_id: Any, chat_id: Any, message_id: Any,
                 question: str, value: bool) -> dict[str, Any] | None:
    """Store a rater's answer to a card shown to them in that message; None when the card is not
    theirs (or not that message); CardClosed when both questions were answered already. When the
    answer completes a rating of a waiting candidate's draft, the candidates are settled and a
    promoted model is loaded."""
    row = rating_rows.get_rating(service.db, rating_id)
    if row is None or row["rater_id"] != str(rater_id):
        return None
    if row["message_id"] is not None and (row["chat_id"], row["message_id"]) != (str(chat_id), str(message_id)):
        return None   # (no message yet: pressed before the bot recorded the message it had just sent)
    row = await patiently(rating_rows.answer, service.db, rating_id, question, value)
    if row is None:
        raise CardClosed(rating_id)
    if question == "readable" and service.plan.promote_min_ratings > 0:
        try:
            settled = await patiently(settle_candidates, service.db, service.plan.promote_min_ratings)
        except DatabaseBusy as exc:   # the answer is stored: the next answer or pool run settles them
            log.warning("the waiting candidates were not settled after a rating: %s", exc)
            return row
        if any(promoted for _, promoted in settled):
            await service.follow_active_model()
    return row
