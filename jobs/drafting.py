"""How drafts are made: the database, the model holder, the stop-list and the [sample], [screen] and
[pool] options in one object, used by the pool job and the tune after a promotion (jobs/service.py,
which composes it), the subscribers' requests (jobs/on_request.py) and the moderators' replacement
drafts (jobs/decisions.py). The pieces it puts together (measure, screen, rank, store) are
jobs/pool.py's. Generation runs in a worker thread; the database is touched on the caller's thread
(sqlite connections belong to the thread that opened them)."""
from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import sqlite_utils

from corpus.rules import tidy_generated
from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs.errors import JobError
from jobs.generator import GeneratorHolder
from jobs.model_registry import checkpoint_for_version
from jobs.patience import patiently
from jobs.pool import (SCREEN, Measures, PoolOptions, ScreenOptions, new_seeds, screen, screen_edit,
                       store_generated, stored_request)
from jobs.tune import FALLBACK_TEMPERATURE, resolve_options, sample_grid, score_grid, store_tuned
from model.errors import ModelError
from model.sample_options import SampleOptions

if TYPE_CHECKING:
    from jobs.tune import TuneResult

log = logging.getLogger(__name__)

SEEDS_PER_REQUEST = 4  # one batch; the best-scoring text that passes the screen is served
_REASON_KIND = re.compile(r"[^:(0-9]+")


def pool_run_line(purpose: str, outcomes: Sequence[tuple[str, str | None]], kept: int) -> str:
    """A pool run in one line for the operator: drafts made, passed the screen, kept (the
    best-scoring), and the rest by reason ("stop-list: WORD" counts as "stop-list")."""
    reasons: Counter[str] = Counter()
    for status, reason in outcomes:
        if status == DraftStatus.REJECTED_AUTO:
            match = _REASON_KIND.match(reason or "")
            reasons[match.group().strip() if match else "screened out"] += 1
    outranked = reasons.pop("outranked", 0)
    rejected = sum(reasons.values())
    line = f"pool run ({purpose}): made {len(outcomes)}, passed {kept + outranked}, kept {kept}, outranked {outranked}"
    if rejected:
        line += f"; rejected {rejected}: " + ", ".join(f"{why} {n}" for why, n in reasons.most_common())
    return line


@dataclass(frozen=True)
class Drafting:
    """Drafts made, screened and stored: `fill` tops a pool up, `make_one` makes one draft now,
    `regenerate` makes meme N again, `screen_shown` / `screen_edit` say why a text must not be
    shown, `tune` chooses the loaded model's temperature."""

    db: sqlite_utils.Database
    holder: GeneratorHolder
    stoplist: StopList
    sample: SampleOptions = field(default_factory=SampleOptions)
    screen: ScreenOptions = SCREEN
    pool: PoolOptions = field(default_factory=PoolOptions)
    max_rounds: int = 3  # generation rounds per pool run when screening rejects drafts

    def options(self) -> SampleOptions:
        """The sampling options for the loaded model: temperature "auto" is its tuned one."""
        return resolve_options(self.db, self.holder.version, self.sample)

    async def fill(self, purpose: str, *, moderated: bool = True) -> list[int]:
        """Top the pool of `purpose` (channel or subscriber) up to its [pool] size and log the run
        (`pool_run_line`) when it made drafts. Each round wants up to `batch_size` drafts, generates
        `oversample` candidates per wanted draft in one batch and keeps the best-scoring that pass
        the screen. Channel drafts become `pending` when moderated, else `queued` (auto-approved, logged)."""
        count_statuses: tuple[str, ...]
        if purpose == draft_rows.CHANNEL:
            ok_status = DraftStatus.PENDING if moderated else DraftStatus.QUEUED
            count_statuses, target = (DraftStatus.PENDING, DraftStatus.QUEUED), self.pool.channel_size
        else:
            ok_status, count_statuses, target = DraftStatus.READY, (DraftStatus.READY,), self.pool.subscriber_size
        db, request = self.db, self.options().request()
        since = draft_rows.last_id(db)
        created: list[int] = []
        for _ in range(self.max_rounds):
            counts = draft_rows.count_by_status(db, purpose)
            missing = target - sum(counts.get(s, 0) for s in count_statuses)
            if purpose == draft_rows.CHANNEL:  # a queued draft some destinations already have is spent for
                # them: it does not count, so a refusing destination's backlog never starves the others
                missing += counts.get(DraftStatus.QUEUED, 0) - pubs.count_queued_unstarted(db)
            if missing <= 0:
                break
            want = min(self.pool.batch_size, missing)
            seeds = new_seeds(want * max(1, self.pool.oversample))
            version, samples = await asyncio.to_thread(self.holder.generate_samples, seeds, request)
            auto = purpose == draft_rows.CHANNEL and not moderated
            ids = await patiently(store_generated, db, samples, seeds, version=version, request=request,
                                  purpose=purpose, ok_status=ok_status, stoplist=self.stoplist,
                                  screening=self.screen, auto_approve=auto, keep=want)
            if auto and ids:
                log.info("auto-approved drafts %s: no moderators are configured", ids)
            created.extend(ids)
        outcomes = draft_rows.outcomes_since(db, since, purpose, (*count_statuses, DraftStatus.REJECTED_AUTO))
        if outcomes:
            log.info("%s", pool_run_line(purpose, outcomes, len(created)))
        return created

    async def make_one(self, *, purpose: str, ok_status: str, start_text: str = "") -> dict | None:
        """Generate SEEDS_PER_REQUEST candidates (continuing `start_text`) in a worker thread; store
        them all through the pool's screen and ranking (jobs.pool.store_generated) and return the
        best-scoring one that passed, as a draft (`purpose`, `ok_status`); None when none passed.
        Raises ModelError for input the model refuses."""
        options = self.options()
        seeds = new_seeds(SEEDS_PER_REQUEST)
        request = options.request(start_text=start_text)
        version, samples = await asyncio.to_thread(self.holder.generate_samples, seeds, request)
        ids = await patiently(store_generated, self.db, samples, seeds, version=version, request=request,
                              purpose=purpose, ok_status=ok_status, stoplist=self.stoplist,
                              screening=self.screen, keep=1)
        return draft_rows.get_draft(self.db, ids[0]) if ids else None

    async def regenerate(self, draft: dict) -> tuple[str, bool]:
        """Meme `draft` again from its seed, model version and options: (text, regenerated). Falls
        back to the stored text (regenerated=False) only when that model is gone."""
        try:
            checkpoint = checkpoint_for_version(self.db, draft["model_version"])
        except JobError:
            return draft["text"], False
        try:
            _, (text,) = await asyncio.to_thread(
                self.holder.generate, [draft["seed"]], stored_request(draft), version=draft["model_version"],
                checkpoint=checkpoint)
        except (LookupError, ModelError, OSError) as exc:
            log.warning("meme %s: model %s could not be loaded (%s); showing the stored text",
                        draft["id"], draft["model_version"], exc)
            return draft["text"], False
        if text != draft["text"] and text != tidy_generated(draft["text"]):   # drafts stored before tidying
            log.warning("meme %s regenerated differently from the stored text; showing the stored one", draft["id"])
            return draft["text"], True
        return text, True

    def screen_shown(self, draft: dict, text: str) -> str | None:
        """Why meme N must not show `text` now (the same screen as every draft: a word stop-listed or
        a post imported since it was made), or None. A moderator's edit is screened as an edit; a
        regenerated draft with the measures stored when it was made."""
        if draft["final_text"]:
            return self.screen_edit(text)
        return screen(self.db, text, self.stoplist, replace(Measures.of_row(draft), shared_chars=None),
                      screening=self.screen)

    def screen_edit(self, text: str) -> str | None:
        """Why a moderator's text must not be published (jobs.pool.screen_edit), or None."""
        return screen_edit(self.db, text, self.stoplist)

    async def tune(self, k: int) -> TuneResult | None:
        """`buhurt tune` for the loaded model with `k` posts per temperature (generation in a worker
        thread, the screen on this one), stored with its version; a failure is a log line, not an
        error (run after a promotion: the model stays usable at the fallback temperature)."""
        holder = self.holder
        version = holder.version   # the model tuned: another loaded meanwhile makes the grid a mix of two
        try:
            grid = await asyncio.to_thread(sample_grid, holder, options=self.sample, k=k)
            if holder.version != version:
                log.warning("tune of model %s dropped: model %s was loaded while it sampled", version, holder.version)
                return None
            result = score_grid(self.db, grid, self.stoplist, options=self.sample, screening=self.screen)
            store_tuned(self.db, version, result)
        except Exception as exc:  # noqa: BLE001
            log.warning("tune of model %s failed: %s; sampling at %s", version, exc, FALLBACK_TEMPERATURE)
            return None
        log.info("tuned model %s: temperature %s", version, result.temperature)
        return result
