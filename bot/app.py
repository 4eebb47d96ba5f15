"""The composition root: reads Settings once and builds the store, the model, the publishers and the
jobs (`build_services`); bot/serve.py runs them, on Telegram (bot/telegram/runner.py) or the local channel."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.context import TrainPaths
from corpus.backup import nightly_backup
from corpus.db import check_writable, open_db
from corpus.outputs import remove_leftover_temps
from corpus.stoplist import StopList
from jobs.errors import JobError
from jobs.first_run import FirstTraining, seed_empty_corpus
from jobs.generator import GeneratorHolder
from jobs.local_channel import LocalChannel
from jobs.model_registry import (
    activate_bundled, active_checkpoint_path, active_version_row, fallback_checkpoints, first_model_kept_out,
    install_bundled, is_bundled, relocate_moved,
)
from jobs.moderation import AutoApprove
from jobs.patience import on_the_loop
from jobs.publish import PublishOptions
from jobs.retrain import FIRST_MODEL_MINUTES, RetrainPlan, bootstrap, retrain, train_in_child
from jobs.scheduler import NightWindow
from jobs.service import Service, ServicePlan
from model.train_config import TrainConfig

if TYPE_CHECKING:  # imported where they are built: `buhurt --help` imports none of them
    import sqlite_utils

    from jobs.first_run import FirstTraining
    from jobs.generator import GeneratorHolder
    from corpus.vk import ScrapeReport
    from jobs.service import Service

log = logging.getLogger(__name__)

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "data" / "sample_corpus.txt"


@dataclass
class Services:
    """Everything built from Settings that the runners share."""

    settings: Settings
    db: sqlite_utils.Database
    holder: GeneratorHolder
    service: Service
    paths: TrainPaths


def training_threads(settings: Settings) -> int:
    """train.threads, else the usable cores minus one (the bot's own work needs a core), at least one."""
    from model.train import usable_cores

    return settings.train.threads or max(1, usable_cores() - 1)


def training_config(settings: Settings):
    """[model] and [train] as the service's training run (first start, nightly retrain): the device
    resolved, threads 0 -> `training_threads`, no progress bar (the service's log)."""
    from model.distributed import device_name

    t = settings.train
    return TrainConfig(**{**asdict(settings.model), **asdict(t), "device": device_name(t.device),
                          "threads": training_threads(settings), "progress": False})


def stoplist(settings: Settings):
    return StopList(settings.filter.words, settings.filter.patterns)


def retrain_plan(settings: Settings, paths: TrainPaths):
    c, s = settings.corpus, settings.schedule
    return RetrainPlan(
        train_txt=paths.train_txt, train_h5=paths.train_h5, train_json=paths.train_json,
        checkpoint_dir=paths.checkpoint_dir, models_dir=paths.models_dir,
        training=training_config(settings), shape=settings.model,
        export_options={"gap_lines": c.gap_lines, "seed": c.shuffle_seed, "clean": settings.clean,
                        "stoplist": stoplist(settings), "weighting": settings.popularity},
        window=NightWindow(s.retrain_at, s.retrain_until, s.timezone), sample=settings.sample,
        screen=settings.screen,
        **asdict(settings.retrain),
    )


def ensure_corpus(settings: Settings, db: sqlite_utils.Database) -> None:
    if settings.corpus.seed_with_sample:
        added = seed_empty_corpus(db, SAMPLE_CORPUS)
        if added:
            log.info("the corpus was empty: imported %d posts of the bundled sample corpus", added)


def ensure_model(settings: Settings, db, paths: TrainPaths) -> Path:
    """The active model's checkpoint, its first training (if one is needed) done here and now."""
    checkpoint, first = prepare_model(settings, db, paths, meanwhile=False)
    if first is not None:
        first.run()
    return checkpoint or active_checkpoint_path(db, allow_bundled=settings.startup.use_bundled_model)


def prepare_model(settings: Settings, db, paths: TrainPaths, *,
                  meanwhile: bool = True) -> tuple[Path | None, FirstTraining | None]:
    """(the checkpoint to generate with now, None until `first` ran; the first training still to
    run, or None). The bundled
    model on a fresh install (startup.use_bundled_model); with use_bundled_model = false (or an active bundled
    model that it replaces) a first model must be trained on the corpus: with `meanwhile` the
    service generates with the bundled model while a FirstTraining runs in the background."""
    version = activate_bundled(db, paths.models_dir) if settings.startup.use_bundled_model else None
    if version:
        log.info("using the bundled model %s (trained on the sample corpus)", version)
    row = active_version_row(db)
    if row is not None and not settings.startup.use_bundled_model and is_bundled(row):
        kept = first_model_kept_out(db)
        if kept is not None:   # not trained again at every start: the nightly retrain may beat the bundled model
            log.info("startup.use_bundled_model = false: the first model trained on your corpus (%s) was kept out"
                     " (its drafts pass the screen less often); the bundled model %s writes until the nightly"
                     " retrain, or `buhurt retrain`, beats it", kept["version"], row["version"])
        else:
            log.info("startup.use_bundled_model = false: the active model %s is the bundled one; training a model "
                     "on your corpus to replace it", row["version"])
            row = None
    if row is not None:
        return active_checkpoint_path(db, allow_bundled=settings.startup.use_bundled_model), None
    minutes = settings.train.max_minutes or FIRST_MODEL_MINUTES
    first = FirstTraining(functools.partial(_train_first_model, settings, paths), minutes)
    bundled = install_bundled(db, paths.models_dir) if meanwhile else None
    if bundled is None:
        log.info("no model yet: training one on the corpus (at most %.1f minutes)", minutes)
        return None, first
    log.info("no model trained on your corpus yet: the first one trains in the background (at most %.1f "
             "minutes); drafts come from the bundled model meanwhile", minutes)
    return bundled, first


def _train_first_model(settings: Settings, paths: TrainPaths, stop) -> str:
    """FirstTraining.train: its own connection (a worker thread), the run stopped when `stop` is set."""
    db = open_db(settings.database, busy_timeout=settings.paths.busy_timeout_seconds)
    try:
        version = bootstrap(db, retrain_plan(settings, paths), functools.partial(train_in_child, stop=stop),
                            stop=stop)
        row = active_version_row(db)
    finally:
        db.close()
    if row is not None and row["version"] == version and not is_bundled(row):   # kept out, or another made
        log.info("trained and activated model %s", version)   # active meanwhile: bootstrap's line says so
    return version


def remove_leftovers(settings: Settings, paths: TrainPaths) -> None:
    """At start: the temp files that killed copies left (atomic writes cut short: checkpoints being
    installed or trained, training text, backups), one INFO line per folder."""
    checkpoints = paths.checkpoint_dir
    runs = sorted(p for p in checkpoints.glob("run-*") if p.is_dir()) if checkpoints.is_dir() else []
    remove_leftover_temps([settings.data_dir, paths.models_dir, paths.train_txt.parent, checkpoints, *runs,
                           settings.backup_dir])


def load_model(settings: Settings, db, paths: TrainPaths,
               device: str) -> tuple[GeneratorHolder, FirstTraining | None]:
    """The Generator the service starts with, and the first model's training still to run (or
    None): the active model's; while a first model must be trained on the corpus, the bundled one
    (`prepare_model`; with no bundled model, the first one is trained here and now). When a model is
    active but its checkpoint is missing or cannot be loaded, the version active before it (the
    latest that loads), with a WARNING; never the bundled model in silence. JobError when none loads."""
    try:
        checkpoint, first = prepare_model(settings, db, paths)
        if checkpoint is None:   # no bundled model to generate with meanwhile: the first one trains now
            assert first is not None
            first.run()
            checkpoint, first = active_checkpoint_path(db, allow_bundled=settings.startup.use_bundled_model), None
        return GeneratorHolder(checkpoint, device=device), first
    except Exception as exc:  # noqa: BLE001 - a missing, damaged or refused file: the earlier versions
        row = active_version_row(db)
        if row is None:
            raise
        problem = str(exc) if isinstance(exc, JobError) else (
            f"the active model {row['version']}'s checkpoint {row['path']} cannot be loaded: {exc}")
    for version, path in fallback_checkpoints(db):
        try:
            holder = GeneratorHolder(path, device=device)
        except Exception as exc:  # noqa: BLE001 - try the version before it
            log.warning("the earlier model %s cannot be loaded either: %s", version, exc)
            continue
        log.warning("%s; generating with the version active before it, %s (%s), and saying so at every pool run",
                    problem, version, path)
        return holder, None
    raise JobError(f"{problem}; no earlier model version can be loaded")


def build_services(settings: Settings, *, publishers=(), moderation=None) -> Services:
    """Open the database, make sure there is a corpus and a model, and assemble the Service.

    `publishers` are the Telegram channels (built by bot/telegram); a VK wall is added when
    vk.publish_group_id is set; with no publisher at all, posts go to the local channel."""
    paths = TrainPaths.under(settings.data_dir)
    busy = settings.paths.busy_timeout_seconds
    db = open_db(settings.database, busy_timeout=busy)
    check_writable(db, settings.database, busy)
    remove_leftovers(settings, paths)
    relocate_moved(db, paths.models_dir)
    ensure_corpus(settings, db)
    from model.distributed import device_name  # loads torch: after the database's checks, which need none

    holder, first_training = load_model(settings, db, paths, device_name(settings.train.device))
    on_the_loop(db, busy)  # from here on the event loop's: a lock is waited out off the loop (jobs/patience.py)
    log.info("generating with model %s", holder.version)
    plan = ServicePlan(
        sample=settings.sample, pool=settings.pool, screen=settings.screen, schedule=settings.schedule,
        moderation=settings.moderation, alerts=settings.alerts,
        publish=PublishOptions(footer=settings.publish.footer, alert_failures=settings.alerts.failures,
                               stoplist=stoplist(settings)),
        backup_at=settings.backup.at or None, heartbeat_file=str(settings.data_dir / "heartbeat"),
        rate=settings.rate, held_out=(settings.retrain.val_frac, settings.retrain.test_frac),
        promote_min_ratings=settings.retrain.promote_min_ratings, ranker=settings.ranker, generate=settings.generate,
    )
    publishers = list(publishers)
    reaction_sources = []
    if settings.vk.publish_group_id:
        from bot.vk.wall import vk_wall_publishing

        wall = vk_wall_publishing(settings.vk)
        publishers.append(wall.publisher)
        reaction_sources.append(wall.likes)
    if not publishers:
        publishers = [LocalChannel(db, settings.data_dir / "local_channel.txt")]
    service = Service(
        db, holder, plan=plan, publishers=publishers, moderation=moderation or AutoApprove(),
        stoplist=stoplist(settings), reaction_sources=reaction_sources, scraper=_scraper(settings),
        retrainer=_retrainer(settings, paths), backuper=_backuper(settings), first_training=first_training,
    )
    return Services(settings, db, holder, service, paths)


def _scraper(settings: Settings) -> Callable[[], ScrapeReport | None] | None:
    """The scrape job's callable (jobs/scrape.py: worker thread, own connection); None without vk.groups."""
    if not settings.vk.groups:
        return None
    from jobs.scrape import scrape_new_posts

    return functools.partial(scrape_new_posts, settings.database, settings.vk, settings.clean, stoplist(settings),
                             busy_timeout=settings.paths.busy_timeout_seconds)


def _backuper(settings: Settings):
    """A callable for the nightly backup job: a dated copy in backup.folder, keeping backup.keep."""
    def run():
        return nightly_backup(settings.database, settings.backup_dir, settings.backup.keep,
                              busy_timeout=settings.paths.busy_timeout_seconds)

    return run


def _retrainer(settings: Settings, paths: TrainPaths):
    """A callable for the retrain job: runs in a worker thread with its own connection; setting
    `stop` (the service stops) ends its training child early."""
    def run(stop):
        db = open_db(settings.database, busy_timeout=settings.paths.busy_timeout_seconds)
        try:
            return retrain(db, retrain_plan(settings, paths), functools.partial(train_in_child, stop=stop), stop=stop)
        finally:
            db.close()

    return run


SHUTDOWN_GRACE_SECONDS = 25.0  # docker stop waits 10 s by default: docker-compose.yml sets 30 s
