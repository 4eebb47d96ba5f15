"""The service's jobs in one object: pool, moderation dispatch, reminders, publishing, reactions,
scraping and retraining, scheduled on one APScheduler (or run once in a row with `run_once`)."""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlite_utils

from corpus.db import database_file, is_locked
from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import model_versions as model_rows
from corpus.store.clock import ago, utcnow
from corpus.store.state import get_state, set_state
from corpus.store import publications as pubs
from jobs import desk, notices
from jobs import scheduler as sched
from jobs.alerts import AlertOptions, once
from jobs.drafting import Drafting
from jobs.generator import GeneratorHolder
from jobs.health import DatabaseHealth
from jobs.model_registry import active_file_problem, checkpoint_problem, is_bundled, registered_file_problem
from jobs.moderation import Moderation, ModerationOptions, ModerationUnavailable
from jobs.pool import PoolOptions, ScreenOptions
from model.sample_options import SampleOptions
from jobs.patience import DatabaseBusy, busy_seconds, patiently
from jobs.publish import (Publisher, PublishError, PublishInDoubt, PublishOptions, PublishState, close_finished,
                          destination, publish_next, reconcile, resolve_stale)
from jobs.curation import GenerateOptions, digest_text
from jobs.ranker import RankerOptions, maybe_train_in
from jobs.rating import RateOptions, fill_rating_pool, settle_candidates
from jobs.tune import DEFAULT_K, tuned_temperature
from jobs.reactions import ReactionSource, collect_reactions

if TYPE_CHECKING:  # the scrape and retrain jobs' modules import vk_api and torch: only where they run
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from corpus.vk import ScrapeReport
    from jobs.first_run import FirstTraining
    from jobs.retrain import RetrainResult
    from jobs.tune import TuneResult

log = logging.getLogger(__name__)
PUBLISH_COVERED = "publish_covered_until"  # state: publishing times up to this one ran or were caught up
MODERATION_ERROR = "moderation_error"      # state: why drafts cannot reach the moderators (empty: fine)
RETRAIN_ENDED = "retrain_ended_at"         # state: when the last nightly retrain ended (not stopped with the service)
BACKUP_COVERED = "backup_covered_until"   # state: nightly backups up to this time were written (or not yet due)
BACKUP_CATCH_UP_SECONDS = 24 * 3600.0      # a backup.at missed while down is written at the next start
DIGEST_TRIES = 3            # a best-of a destination refused is tried there this many times in all ...
DIGEST_RETRY_MINUTES = 30   # ... this long apart
DIGEST_COVERED = "digest_covered_until"   # state: weekly best-ofs up to this time were posted (or not yet due)
PUBLISH_RETRY_SECONDS = 60.0              # a publishing run deferred by a lock is tried again this soon


def moderation_problem(db: sqlite_utils.Database) -> str:
    """Why drafts cannot reach the moderators' chat, with the time it was seen ("" when they can)."""
    return get_state(db, MODERATION_ERROR, "")


@dataclass(frozen=True)
class ServicePlan:
    """What the service does and when; built by the bot from its settings (each field's defaults
    live once, in its options dataclass)."""

    sample: SampleOptions = field(default_factory=SampleOptions)
    pool: PoolOptions = field(default_factory=PoolOptions)
    screen: ScreenOptions = field(default_factory=ScreenOptions)
    schedule: sched.ScheduleOptions = field(default_factory=sched.ScheduleOptions)
    moderation: ModerationOptions = field(default_factory=ModerationOptions)
    publish: PublishOptions = field(default_factory=PublishOptions)
    alerts: AlertOptions = field(default_factory=AlertOptions)
    max_rounds: int = 3  # generation rounds per pool run when screening rejects drafts
    tune_posts: int = DEFAULT_K  # posts per temperature when a promoted model is tuned (jobs/tune.py)
    backup_at: str | None = None         # HH:MM of the nightly database backup (needs a backuper)
    heartbeat_file: str | None = None    # touched every minute while the schedule runs (HEALTHCHECK)
    rate: RateOptions = field(default_factory=RateOptions)   # the blind rating flow (jobs/rating.py)
    held_out: tuple[float, float] = (0.1, 0.1)  # retrain.val_frac, retrain.test_frac: the posts never trained on
    promote_min_ratings: int = 0         # retrain.promote_min_ratings: a retrained model waits for these
    ranker: RankerOptions = field(default_factory=RankerOptions)        # jobs/ranker.py
    generate: GenerateOptions = field(default_factory=GenerateOptions)  # jobs/curation.py


class Service:
    def __init__(self, db: sqlite_utils.Database, holder: GeneratorHolder, *, plan: ServicePlan,
                 publishers: Sequence[Publisher], moderation: Moderation, stoplist: StopList,
                 reaction_sources: Sequence[ReactionSource] = (),
                 scraper: Callable[[], ScrapeReport | None] | None = None,
                 retrainer: Callable[[threading.Event], RetrainResult] | None = None,
                 backuper: Callable[[], Path] | None = None,
                 first_training: FirstTraining | None = None) -> None:
        self.db, self.plan = db, plan
        self.drafting = Drafting(db, holder, stoplist, sample=plan.sample, screen=plan.screen, pool=plan.pool,
                                 max_rounds=plan.max_rounds)
        self.publishers, self.moderation = list(publishers), moderation
        self.reaction_sources, self.scraper, self.retrainer = list(reaction_sources), scraper, retrainer
        self.backuper, self.first_training = backuper, first_training
        self.first_training_task: asyncio.Task | None = None
        # set by `stop`: a job running in a worker thread (the nightly retrain's training child) ends early
        self.stopping = threading.Event()
        self.running_jobs: set[asyncio.Task] = set()
        self._tunes: set[asyncio.Task] = set()   # background tunes (_tune_soon), held until they end
        self._dispatching = asyncio.Lock()   # one dispatch at a time: the pool job and a 🔄 never show a draft twice
        # one rating-pool fill at a time (jobs.rating.fill_rating_pool): raters who ran out of drafts
        # together, and the pool job, never start several generations on the bot's cores
        self.rating_lock = asyncio.Lock()
        self.scheduler: AsyncIOScheduler | None = None
        self.publish_state = PublishState()  # this process's own sends (jobs/publish.py)
        self.publish_retry_seconds = PUBLISH_RETRY_SECONDS
        self.health = DatabaseHealth(db, lambda text: self.moderation.notify(text))

    @property
    def holder(self) -> GeneratorHolder:
        """The loaded model (the drafting's), which the service swaps after a promotion or activation."""
        return self.drafting.holder

    async def startup(self) -> None:
        """Reconcile interrupted publications and start the first model's training, if one is due."""
        await reconcile(self.db, self.moderation.notify, self.publishers)
        if not self.moderation.enabled:
            log.info("no moderators configured: drafts are auto-approved")
        if self.first_training is not None and self.first_training_task is None:
            self.first_training_task = asyncio.get_running_loop().create_task(
                self._train_first_model(self.first_training), name="buhurt:first-model")

    @property
    def training_first_model(self) -> bool:
        """The first model on the corpus is training (drafts come from the bundled model meanwhile)."""
        return self.first_training_task is not None and not self.first_training_task.done()

    async def first_model_trained(self) -> str | None:
        """Wait for the first model's training, if one runs (`run --once` makes its drafts with it)."""
        return await self.first_training_task if self.first_training_task is not None else None

    async def _train_first_model(self, first: FirstTraining) -> str | None:
        """The first model trains in a child process (a worker thread waits on it): the event loop
        keeps answering; the new model is loaded when it is done."""
        log.info("the first model is training (at most %.3g minutes, in a child process); drafts come from the"
                 " bundled model %s meanwhile", first.minutes, self.holder.version)
        try:
            version = await asyncio.to_thread(first.run)
        except Exception as exc:  # noqa: BLE001 - the service goes on with the bundled model
            if first.stop.is_set():
                log.info("the first model's training stopped with the service; it starts again at the next start")
            else:
                log.error("training the first model failed (%s); still generating with the bundled model %s;"
                          " it is tried again at the next start", exc, self.holder.version)
            return None
        row = model_rows.active_model(self.db)
        if row is not None:
            await asyncio.to_thread(self.holder.reload, Path(row["path"]))
        if row is not None and is_bundled(row):   # kept out for its drafts (jobs.retrain.bootstrap's line says why)
            log.info("the first model was kept out: the bundled model %s goes on writing until a retrain beats it",
                     version)
        elif row is not None and row["version"] != version:   # made active by hand while it trained
            log.info("the first model %s is installed beside model %s, made active while it trained: drafts come"
                     " from %s", version, row["version"], row["version"])
        else:
            log.info("the first model %s is trained and active: drafts come from it now", version)
        # a trained model made active is tuned, as a retrain's promotion is (not the bundled one kept instead)
        if row is not None and row["version"] == self.holder.version == version and not is_bundled(row):
            await self.tune()
        return version

    async def follow_active_model(self) -> str | None:
        """Load the model the database marks active when that changed under us (`buhurt models
        activate` from another process). Returns the new version, or None when nothing changed."""
        row = model_rows.active_model(self.db)
        if row is None:
            return None
        if row["version"] == self.holder.version:
            problem = checkpoint_problem(row["path"])
            if problem is not None:   # the file went after it was loaded
                log.warning("%s; still generating with it, as loaded before its file went", active_file_problem(row))
            await self._alert_model_file(row, problem)
            return None
        path = Path(row["path"])
        problem = await asyncio.to_thread(registered_file_problem, row)   # hashes it: off the loop
        await self._alert_model_file(row, problem)
        if problem is not None:   # never loaded to be refused at every pool run
            log.warning("%s; still generating with %s", active_file_problem(row, problem), self.holder.version)
            return None
        try:
            version = await asyncio.to_thread(self.holder.reload, path, row["version"])
        except Exception as exc:  # noqa: BLE001 - keep generating with the loaded model
            log.warning("could not load the active model %s from %s: %s; still generating with %s",
                        row["version"], path, exc, self.holder.version)
            return None
        log.info("now generating with model %s (made active in the database)", version)
        self._tune_soon(version)
        return version

    async def _alert_model_file(self, row: dict, problem: str | None) -> None:
        """Tell the moderators once that the active model's file is gone or not its version (drafts
        come from the model loaded before, or from the version active before it)."""
        try:
            why = notices.model_file_problem(problem or "")
            text = notices.ALERT_MODEL_FILE.format(version=row["version"], problem=f"{row['path']}: {why}",
                                                   using=self.holder.version)
            await once(self.db, "model_file", problem is not None, self.moderation.notify, text)
        except Exception as exc:  # noqa: BLE001 - an alert's bookkeeping never stops the pool
            log.warning("could not check the model file's alert (%s: %s)", type(exc).__name__, exc)

    def _tune_soon(self, version: str) -> None:
        """Tune a model the service now generates with, in the background, when no temperature is
        stored for it: one promoted by the moderators' ratings or activated by `buhurt models
        activate` wrote at the fallback temperature for good. In the background: the ratings'
        promotion runs in a moderator's answer, and a tune takes minutes."""
        if tuned_temperature(self.db, version) is not None:
            return
        task: asyncio.Task = asyncio.ensure_future(self._tracked(self.tune)())
        self._tunes.add(task)
        task.add_done_callback(self._tunes.discard)

    async def tune(self) -> TuneResult | None:
        """`buhurt tune` for the loaded model, stored with its version (after a promotion)."""
        return await self.drafting.tune(self.plan.tune_posts)

    async def fill_pools(self) -> list[int]:
        await self.follow_active_model()
        try:
            created = await self.drafting.fill(draft_rows.CHANNEL, moderated=self.moderation.enabled)
            created += await self.fill_subscriber_pool()
        except DatabaseBusy as exc:   # a full disk, or another process's long lock: one line, not a traceback
            log.warning("the pool run stored no drafts: %s; tried again at the next pool run", exc)
            return []
        if self.moderation.enabled:
            await self.dispatch_moderation()
            await self.alert_low_queue()
        if self.rating_enabled:
            try:
                if self.plan.promote_min_ratings > 0 and any(promoted for _, promoted in await patiently(
                        settle_candidates, self.db, self.plan.promote_min_ratings)):
                    await self.follow_active_model()
                await fill_rating_pool(self)
            except DatabaseBusy as exc:   # another process's long lock, or a full disk: tried at the next run
                log.warning("the rating pool run stopped: %s; tried again at the next pool run", exc)
        return created

    @property
    def rating_enabled(self) -> bool:
        """Whether anyone can /rate: the moderators, or subscribers with rate.subscribers."""
        return bool(getattr(self.moderation, "enabled", False)) or self.plan.rate.subscribers

    async def fill_subscriber_pool(self) -> list[int]:
        """Top the /generate pool up to `subscriber_size` ready drafts (the pool job, and the
        refill after a subscriber took one)."""
        return await self.drafting.fill(draft_rows.SUBSCRIBER)

    async def dispatch_moderation(self) -> int:
        """Show pending drafts that the moderators have not seen yet (one dispatch at a time: a
        second one waits, then finds them shown)."""
        async with self._dispatching:
            return await self._dispatch_moderation()

    async def _dispatch_moderation(self) -> int:
        sent = 0
        for draft in draft_rows.unsent_for_moderation(self.db):
            try:
                chat_id, message_id = await self.moderation.submit(draft)
            except Exception as exc:  # noqa: BLE001 - retried at the next pool run
                # the drafts stay pending (never auto-approved); the problem is an ERROR line at
                # every pool run and a state `buhurt doctor` shows, until a draft gets through
                waiting = draft_rows.count_by_status(self.db).get(DraftStatus.PENDING, 0)
                # stored: the chat's words as the bot scrubbed them, of anything else only its type
                # (the log line's filter scrubs what it prints)
                scrubbed = isinstance(exc, ModerationUnavailable)
                log.error("cannot show drafts to the moderators (telegram.moderators_chat): %s; %d drafts wait,"
                          " retried at every pool run", exc if scrubbed else f"{type(exc).__name__}: {exc}", waiting)
                problem = str(exc) if scrubbed else type(exc).__name__
                set_state(self.db, MODERATION_ERROR, f"{utcnow()} {problem}"[:500])
                break
            try:
                await patiently(draft_rows.set_moderation_message, self.db, draft["id"], chat_id, message_id)
            except DatabaseBusy as exc:  # shown, not recorded: shown once more at the next pool run
                log.warning("draft %s shown to the moderators but not recorded: %s", draft["id"], exc)
                break
            log.info("draft %s sent to the moderators (message %s)", draft["id"], message_id)
            sent += 1
        if sent and get_state(self.db, MODERATION_ERROR):
            log.info("the moderators' chat answers again: %d drafts shown", sent)
            try:
                await patiently(set_state, self.db, MODERATION_ERROR, "")
            except DatabaseBusy as exc:   # cleared at the next dispatch that shows a draft
                log.warning("the moderators' chat's old problem is not cleared yet: %s", exc)
        return sent

    async def remind_if_idle(self) -> bool:
        """Remind the moderators when nothing was approved for `remind_after_hours`."""
        if not self.moderation.enabled:
            return False
        hours = self.plan.schedule.remind_after_hours
        pending = draft_rows.count_by_status(self.db).get(DraftStatus.PENDING, 0)
        last_decision = draft_rows.last_action_at(self.db, ["approve", "edit"]) or ""
        last_reminder = get_state(self.db, "last_reminder_at") or ""
        threshold = ago(hours=hours)
        if pending == 0 or last_decision >= threshold or last_reminder >= threshold:
            return False
        await self.moderation.remind(pending)
        await patiently(set_state, self.db, "last_reminder_at", utcnow())
        return True

    async def publish(self) -> dict | None:
        """A publishing time: each destination not paused sends its next approved draft; a
        destination with nothing to send is an alert (once, until it publishes again).
        Destinations that found the database held by another process for longer than the busy
        timeout are tried again after `publish_retry_seconds` (again and again while the lock
        lasts), so the slot is kept, not skipped to the next one hours later."""
        return await self._publish(self.publishers)

    async def _publish(self, publishers: Sequence[Publisher]) -> dict | None:
        """Publish to those of `publishers` not paused (all of `self.publishers` count for closing
        a draft that every destination has)."""
        state = self.publish_state
        state.deferred.clear()
        try:
            await patiently(set_state, self.db, PUBLISH_COVERED, utcnow())  # this time is accounted for
            active = await patiently(desk.active_publishers, self.db, publishers)
        except DatabaseBusy as exc:
            state.deferred.update(destination(p) for p in publishers)
            log.warning("publishing deferred: %s", exc)
            result = None
        else:
            await self._alert_empty_slots(active)
            result = await publish_next(self.db, self.publishers, self.moderation.notify, state,
                                        options=self.plan.publish, only=active)
            await self.alert_low_queue()
        if state.deferred or state.unrecorded:
            self._retry_publishing_later()
        return result

    async def _alert_empty_slots(self, active: Sequence[Publisher]) -> None:
        try:
            for publisher in active:
                empty = pubs.next_for(self.db, publisher.network, publisher.chat_id) is None
                name = desk.where(publisher)
                held = pubs.next_for(self.db, publisher.network, publisher.chat_id, now="9999") if empty else None
                text = notices.ALERT_EMPTY_SLOT.format(where=name)
                if held is not None:   # approved, but held (+N h) past this slot
                    when = dt.datetime.fromisoformat(held["not_before"]).astimezone(
                        ZoneInfo(self.plan.schedule.timezone)).strftime("%d.%m %H:%M")
                    text = notices.ALERT_EMPTY_SLOT_HELD.format(where=name, when=when)
                await once(self.db, f"empty:{name}", empty, self.moderation.notify, text)
        except Exception as exc:  # noqa: BLE001 - an alert's bookkeeping never stops publishing
            log.warning("could not check the slot's alerts (%s: %s)", type(exc).__name__, exc)

    async def retry_publishing(self) -> dict | None:
        """The deferred part of a publishing run: its destinations (those paused meanwhile stay
        paused), and outcomes not yet recorded."""
        targets = [p for p in self.publishers if destination(p) in self.publish_state.deferred]
        if targets:
            log.info("publishing again to %s (deferred: the database was locked)",
                     ", ".join(f"{p.network} {p.chat_id}" for p in targets))
            return await self._publish(targets)
        try:
            await resolve_stale(self.db, self.moderation.notify, self.publish_state)
            await patiently(close_finished, self.db, self.publishers)
        except Exception as exc:  # noqa: BLE001 - tried again soon
            log.warning("could not record the last publishing run's outcomes yet (%s: %s)", type(exc).__name__, exc)
            self._retry_publishing_later()
        return None

    def _retry_publishing_later(self) -> None:
        if self.scheduler is None:  # `run --once`: the next run resolves it
            log.warning("publishing deferred: the next run publishes it")
            return
        when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.publish_retry_seconds)
        log.warning("publishing is tried again at %s", when.replace(microsecond=0).isoformat())
        self.scheduler.add_job(self._tracked(self.retry_publishing), "date", run_date=when, id="publish-retry",
                               name="publish-retry", replace_existing=True)

    async def alert_low_queue(self) -> bool:
        """The approved queue fills fewer than `alerts.min_queue` slots: tell the moderators once."""
        least = self.plan.alerts.min_queue
        if not least or not self.moderation.enabled:
            return False
        try:
            slots = desk.slots_covered(self.db, self.publishers)
            return await once(self.db, "low_queue", slots < least, self.moderation.notify,
                              notices.ALERT_LOW_QUEUE.format(slots=slots, least=least))
        except Exception as exc:  # noqa: BLE001 - checked again at the next pool run
            log.warning("could not check the queue's length (%s: %s)", type(exc).__name__, exc)
            return False

    async def collect(self) -> int:
        return await collect_reactions(self.db, self.reaction_sources)

    async def scrape(self) -> ScrapeReport | None:
        if self.scraper is None:
            return None
        return await asyncio.to_thread(self.scraper)

    async def retrain(self) -> RetrainResult | None:
        if self.retrainer is None:
            return None
        if self.training_first_model:   # it holds the training lock: the night's retrain would fail on it
            log.info("the nightly retrain is skipped: the first model is training, the night's training")
            await self._record_covered(RETRAIN_ENDED)
            return None
        try:
            result = await asyncio.to_thread(self.retrainer, self.stopping)
        except Exception as exc:  # noqa: BLE001 - the service goes on with the old model; tomorrow retries
            if self.stopping.is_set():
                log.info("the nightly retrain stopped with the service (%s); the active model stays", exc)
                return None
            await self._record_covered(RETRAIN_ENDED)   # failed: a restart in the window leaves it be
            log.exception("the nightly retrain failed")
            await self._tell(notices.ALERT_RETRAIN_FAILED.format(error=notices.reason(exc)))
            return None
        await self._record_covered(RETRAIN_ENDED)   # promoted or kept: likewise
        if getattr(result, "awaiting_ratings", 0):
            await self._tell(notices.ALERT_RETRAIN_AWAITS.format(version=result.candidate_version,
                                                                 ratings=result.awaiting_ratings,
                                                                 line=notices.retrain_figures(result)))
        elif not getattr(result, "promoted", False) and getattr(result, "candidate_bpc", None) is not None:
            await self._tell(self._kept_text(result))
        checkpoint = getattr(result, "checkpoint", None)
        if getattr(result, "promoted", False) and checkpoint is not None:
            version = await asyncio.to_thread(self.holder.reload, checkpoint)
            log.info("now generating with model %s", version)
            await self.tune()
        return result

    def _catch_up_retrain(self, scheduler) -> None:
        """A start inside the night window whose retrain has not ended since the window began (the
        service was down at retrain_at, or a stop interrupted the night's run) runs it now, for what is
        left of the window; the first model's training, when one runs, is the night's instead."""
        when = self.plan.schedule
        window = sched.NightWindow(when.retrain_at, when.retrain_until, when.timezone).around()
        if window is None or self.first_training is not None:
            return
        ended = get_state(self.db, RETRAIN_ENDED)
        if ended and dt.datetime.fromisoformat(ended) >= window[0]:
            return
        log.warning("the night window began at %s without a retrain since: retraining now",
                    window[0].isoformat())
        scheduler.get_job("retrain-0").modify(next_run_time=dt.datetime.now(dt.timezone.utc))

    def _kept_text(self, result: Any) -> str:
        """The alert of a night whose candidate is not active: not better than the model it was
        compared with, or kept out because another model was made active while it trained."""
        compared, row = getattr(result, "active_version", None), model_rows.active_model(self.db)
        if compared and row is not None and row["version"] != compared:
            return notices.ALERT_RETRAIN_SUPERSEDED.format(version=result.candidate_version, active=row["version"],
                                                           compared=compared)
        return notices.ALERT_RETRAIN_KEPT.format(line=notices.retrain_figures(result))

    async def _tell(self, text: str) -> None:
        try:
            await self.moderation.notify(text)
        except Exception as exc:  # noqa: BLE001 - a notice that cannot go out is a log line
            log.warning("could not tell the moderators (%s): %s", exc, text)

    async def train_ranker(self) -> object:
        """The nightly ranker job: trained on the moderators' decisions once `ranker.min_labels`
        exist (jobs/ranker.py); the pool ranks with it only when it beats the hand-set score. In a
        worker thread: the chats are answered while it fits."""
        return await asyncio.to_thread(maybe_train_in, database_file(self.db), self.plan.ranker,
                                       busy_timeout=busy_seconds(self.db))

    async def digest(self, only: frozenset[str] | None = None, tried: int = 1) -> int:
        """The weekly best-of: each channel not paused (/pause) gets its week's top posts by
        reactions per view, with their meme numbers (jobs/curation.py). A destination that refuses it
        is tried again alone (`only`, by jobs.desk.where) DIGEST_RETRY_MINUTES later, DIGEST_TRIES
        times in all, and the moderators are told each time. Returns how many channels got one."""
        sent, refused = 0, {}
        active = await patiently(desk.active_publishers, self.db, self.publishers)
        for publisher in self.publishers:
            name = desk.where(publisher)
            if only is not None and name not in only:
                continue
            if publisher not in active:
                log.info("weekly best-of: %s %s is paused; not sent there", publisher.network, publisher.chat_id)
                continue
            text = digest_text(self.db, publisher.network, publisher.chat_id, self.drafting.stoplist)
            if text is None:
                log.info("weekly best-of: no post with reactions this week in %s %s", publisher.network,
                         publisher.chat_id)
                continue
            try:
                await publisher.send(text)
            except Exception as exc:  # noqa: BLE001 - the other channels still get theirs
                log.warning("weekly best-of not sent to %s %s: %s", publisher.network, publisher.chat_id, exc)
                told = exc.told if isinstance(exc, (PublishError, PublishInDoubt)) else notices.reason(exc)
                refused[name] = told[:300]
                continue
            sent += 1
        if only is None:
            await self._record_covered(DIGEST_COVERED)
        if refused:
            await self._digest_refused(refused, tried)
        return sent

    async def _digest_refused(self, refused: dict[str, str], tried: int) -> None:
        """Try the best-of again where it was refused (in memory: a restart in between drops it), or
        give up after DIGEST_TRIES; the moderators are told either way, one line a destination."""
        again = self.scheduler is not None and tried < DIGEST_TRIES
        if again:
            assert self.scheduler is not None
            when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=DIGEST_RETRY_MINUTES)
            retry = functools.partial(self.digest, frozenset(refused), tried + 1)
            self.scheduler.add_job(self._tracked(retry), "date", run_date=when, id="digest-retry",
                                   name="digest-retry", replace_existing=True)
        for name, error in refused.items():
            text = notices.DIGEST_RETRY if again else notices.DIGEST_GIVEN_UP
            await self._tell(text.format(where=name, error=error, minutes=DIGEST_RETRY_MINUTES))

    async def backup(self) -> Path | None:
        """The nightly copy of the database (in a worker thread); a failure is one log line."""
        if self.backuper is None:
            return None
        try:
            path = await asyncio.to_thread(self.backuper)
        except Exception as exc:  # noqa: BLE001 - tomorrow's run tries again
            log.warning("nightly backup failed: %s", exc)
            self.health.check_soon()   # a copy refused for damaged pages: the heartbeat says so
            return None
        log.info("nightly backup written to %s", path)
        await self._record_covered(BACKUP_COVERED)
        return path

    async def _record_covered(self, key: str) -> None:
        """A daily or weekly job ran (the nightly retrain: ended, not stopped): a start after now does
        not run it again (`_catch_up`, `_catch_up_retrain`)."""
        try:
            await patiently(set_state, self.db, key, utcnow())
        except (DatabaseBusy, sqlite3.OperationalError) as exc:   # the next start may run it once more
            log.warning("could not record that the job ran (%s): %s", key, exc)

    def _catch_up(self, scheduler, job_id: str, key: str, grace_seconds: float) -> None:
        """A job's time (`job_id`, a daily or weekly one) that passed while the service was down runs
        now, once: APScheduler's jobs live in memory and the next one was its next time. `key` holds
        the time up to which it ran; the first start has nothing to catch up."""
        job, now = scheduler.get_job(job_id), dt.datetime.now(dt.timezone.utc)
        covered = get_state(self.db, key)
        if not covered:
            try:
                set_state(self.db, key, now.replace(microsecond=0).isoformat())
            except sqlite3.OperationalError as exc:   # the job's next run records it
                log.warning("could not record the start time for the %s's catch-up: %s", job.name, exc)
            return
        missed = sched.missed_run(job.trigger, covered_until=dt.datetime.fromisoformat(covered), now=now,
                                  grace_seconds=grace_seconds)
        if missed is not None:
            log.warning("the %s time %s passed while the bot was down: running it now", job.name, missed.isoformat())
            job.modify(next_run_time=now)

    async def heartbeat(self) -> None:
        """Rewrite the heartbeat file: the event loop is alive and the schedule runs; it says
        `unhealthy:` when the database's pages are damaged (jobs/health.py)."""
        if self.plan.heartbeat_file:
            await self.health.beat(Path(self.plan.heartbeat_file))

    async def run_once(self) -> dict:
        """One full cycle, in order: pool (and moderation), publish, reactions, reminder."""
        created = await self.fill_pools()
        published = await self.publish()
        observed = await self.collect()
        reminded = await self.remind_if_idle()
        return {"drafts": created, "published": published, "reactions": observed, "reminded": reminded}

    def start_schedule(self) -> None:
        """Register every job on an AsyncIOScheduler running on the current event loop."""
        plan, when = self.plan, self.plan.schedule
        scheduler = sched.build_scheduler(when.timezone)
        sched.add_interval(scheduler, self.fill_pools, job_id="pool", minutes=when.pool_every_minutes, run_now=True)
        sched.add_interval(scheduler, self.remind_if_idle, job_id="remind", minutes=30)
        sched.add_daily(scheduler, self.publish, job_id="publish", times=when.publish_times, timezone=when.timezone)
        if self.reaction_sources:
            sched.add_interval(scheduler, self.collect, job_id="reactions", minutes=when.reactions_every_minutes)
        if self.scraper is not None:
            sched.add_interval(scheduler, self.scrape, job_id="scrape", minutes=when.scrape_every_hours * 60)
        if self.retrainer is not None and when.retrain:
            sched.add_daily(scheduler, self.retrain, job_id="retrain", times=[when.retrain_at], timezone=when.timezone)
            self._catch_up_retrain(scheduler)
        if getattr(self.moderation, "enabled", False):   # the moderators decide: decisions to learn from
            sched.add_daily(scheduler, self.train_ranker, job_id="ranker", times=[when.retrain_at],
                            timezone=when.timezone)
        if when.digest:
            sched.add_weekly(scheduler, self.digest, job_id="digest", when=when.digest, timezone=when.timezone)
            self._catch_up(scheduler, "digest", DIGEST_COVERED, sched.MISFIRE_GRACE_SECONDS)
        self._catch_up_publishing(scheduler)
        if self.backuper is not None and plan.backup_at:
            sched.add_daily(scheduler, self.backup, job_id="backup", times=[plan.backup_at], timezone=when.timezone)
            self._catch_up(scheduler, "backup-0", BACKUP_COVERED, BACKUP_CATCH_UP_SECONDS)
        if plan.heartbeat_file:
            sched.add_interval(scheduler, self.heartbeat, job_id="heartbeat", minutes=1, run_now=True)
        for job in scheduler.get_jobs():  # every run is tracked, so that `stop` can let it finish
            job.modify(func=self._tracked(job.func))
        scheduler.start()
        self.scheduler = scheduler
        for job in scheduler.get_jobs():
            log.info("scheduled %s: next run %s", job.name, job.next_run_time)

    def _tracked(self, func: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        running = self.running_jobs

        async def run() -> object:
            task = asyncio.current_task()
            assert task is not None   # a coroutine always runs in a task
            running.add(task)
            try:
                return await func()
            except sqlite3.DatabaseError as exc:
                self.health.failed(exc)   # damaged pages, say: the next heartbeat checks at once
                raise
            finally:
                running.discard(task)

        run.__name__ = run.__qualname__ = getattr(func, "__name__", "job")
        return run

    async def stop(self, grace: float) -> None:
        """A clean stop (SIGTERM): start no new job, let the running ones finish (at most `grace`
        seconds, then they are cancelled), and shut the scheduler down. The nightly retrain's
        training child is stopped at once (`stopping`): the night's run cannot finish in the grace
        time, and its worker thread, left running, kept the process from exiting."""
        self.stopping.set()
        task = self.first_training_task
        if self.first_training is not None and task is not None and not task.done():
            self.first_training.stop.set()
            await asyncio.wait({task}, timeout=grace)
        if self.scheduler is not None:
            self.scheduler.pause()
            if self.running_jobs:
                log.info("waiting for %d running job(s) to finish", len(self.running_jobs))
                _, late = await asyncio.wait(set(self.running_jobs), timeout=grace)
                for task in late:
                    log.warning("a job still running after %.0f s is cancelled", grace)
                    task.cancel()
        self.stop_schedule()

    def _catch_up_publishing(self, scheduler) -> None:
        """A publishing time that passed while the bot was down runs now (once). The start time is
        recorded as accounted for only when nothing was missed: a missed time is accounted for by
        its run (`_publish` records it), so a stop or crash before that run leaves it missed for
        the next start."""
        now = dt.datetime.now(dt.timezone.utc)
        covered = get_state(self.db, PUBLISH_COVERED)
        missed = sched.missed_slot(self.plan.schedule.publish_times, self.plan.schedule.timezone,
                                   covered_until=dt.datetime.fromisoformat(covered), now=now) if covered else None
        if missed is None:   # the first start, or nothing missed (or missed too long ago to publish now)
            try:
                set_state(self.db, PUBLISH_COVERED, now.replace(microsecond=0).isoformat())
            except sqlite3.OperationalError as exc:  # the next publishing run records it
                if not is_locked(exc):
                    raise
                log.warning("could not record the start time for publishing catch-up: the database is locked")
            return
        log.warning("the publishing time %s passed while the bot was down: publishing now", missed.isoformat())
        scheduler.add_job(self.publish, id="publish-missed", name="publish", next_run_time=now, replace_existing=True)

    def stop_schedule(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
