"""Overnight retraining: export -> preprocess -> a training child process -> compare -> promote.

Each night continues from the active model (a warm start: `--init-from`, the vocabulary may have
grown) unless the configured architecture differs from the active model's or the operator asks for
a run from scratch. The warm start's rate rises over a short ramp (`warmup_frac`: Adam's moments
start afresh, and its first steps are the largest) to `warm_lr_scale` x the learning rate, then
follows the configured schedule ("hold": lowered in the last 25% of the night), so every night ends
annealed. Re-warming to the full rate measured better than half of it, and each warm night
scored better than the model it started from on the same held-out posts (benchmarks/nights.py).
The budget is the night window (`window`: from schedule.retrain_at to schedule.retrain_until,
less a margin for export and scoring) unless `max_minutes` is set; by hand, MANUAL_MINUTES.

The held-out posts are the same every night (model.preprocess splits by a hash of each post). A
candidate is promoted only when its bits per character on them beat the active model's on the same
posts by more than `min_improvement` (with 0, the default: strictly lower; an equal model is not worth a
new version) AND its drafts are not worse: of `readability_drafts` drafts made
as the product makes them (its decoding, the same seeds and temperature for both models), the share
that pass the pool's screen (jobs.pool.screen: two lines, ended at the gap, known words, grammar,
no copy of a corpus post) may fall by at most `readability_tolerance`. The first model on a corpus
(`bootstrap`) is held to the same: it replaces the bundled model only when its drafts pass as often.
Every run trains into its own folder `<checkpoint_dir>/run-YYYYmmdd-HHMMSS-ffffff`; after a run,
all but the newest `keep_runs` folders are deleted (promoted models were copied to models_dir, so
nothing the service uses is lost).

Training runs in a child process, `python -m model.run RUN.json` (model/run.py): the run's
TrainConfig is written to the run folder, so the job needs no bot CLI and a crash or the run's
threads and memory stay in the child. The service's runs have the progress bar off (no bar in its log).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlite_utils

from common.locks import LockHeld, exclusive, held_descriptor
from corpus.export import export_training_text
from corpus.outputs import atomic_write_text
from corpus.store import model_versions as model_rows
from jobs.errors import JobError
from jobs.model_registry import (
    activate_bundled, active_checkpoint_path, bundled_checkpoint, install_checkpoint, is_bundled,
)
from model.errors import ModelError
from model.files import file_version
from jobs.pool import ScreenOptions, measure, screen
from jobs.scheduler import NightWindow
from model.run import PARENT_ENV
from model.sample_options import SampleOptions, resolved_temperature
from model.train_config import ModelShape, TrainConfig
from model.vocab import Vocab
from corpus.stoplist import StopList
from model.preprocess import preprocess

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"   # <checkpoint_dir>.lock beside the folder: one training at a time (one_training)
FIRST_MODEL_MINUTES = 10.0   # the first model on a corpus, when train.max_minutes leaves it to the window
MANUAL_MINUTES = 10.0        # `buhurt retrain` by hand without --minutes or train.max_minutes
WARM_START_WARMUP = 0.05     # a warm start's ramp: the fraction of the night the rate rises from 0 over
CHILD_STOP_SECONDS = 15.0   # a stopped training child's time to save and exit before SIGKILL
CHILD_INTERRUPT_GRACE = 2.0  # after a Ctrl-C, the child's time to stop by itself before it is sent SIGINT
RunTraining = Callable[[TrainConfig], None]
SCORED_AT_ONCE = 16         # drafts made at a time when a model's drafts are judged (a stop is heard between)


def margin_minutes(minutes: float) -> float:
    """Kept free at the end of a window for the export, scoring and promotion: 10%, at most 10 min."""
    return min(10.0, 0.1 * minutes)


@dataclass(frozen=True)
class NightlyOptions:
    """[retrain]: what a night adds to a training run: the held-out split, the warm start's rate,
    the promotion rule, the run folders kept."""

    warm_lr_scale: float = 1.0          # a warm start trains at this x learning_rate
    val_frac: float = 0.1               # share of the posts held out for validation (by a hash of each post)
    test_frac: float = 0.1              # share of the posts held out for test
    min_improvement: float = 0.0        # bits/char the candidate must beat the active model by
    readability_tolerance: float = 0.05  # the share of its drafts passing the screen may fall by at most this
    readability_drafts: int = 64        # drafts per model for that share; 0: promote on bits/char alone
    keep_runs: int = 5                  # run folders kept in checkpoint_dir; 0 keeps all
    promote_min_ratings: int = 0        # >0: a winning candidate waits for this many readable ratings (jobs/rating.py)

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.keep_runs < 0:
            problems["keep_runs"] = "an integer >= 0 (0 keeps every run folder)"
        if self.promote_min_ratings < 0:
            problems["promote_min_ratings"] = "an integer >= 0 (0: no rating gate)"
        if not 0 < self.warm_lr_scale <= 1:
            problems["warm_lr_scale"] = "a number in (0, 1]"
        if self.readability_drafts < 0:
            problems["readability_drafts"] = "an integer >= 0 (0: promote on bits/char alone)"
        if not 0 <= self.readability_tolerance < 1:
            problems["readability_tolerance"] = "a number in [0, 1)"
        if not 0 < self.val_frac < 0.5:   # the held-out posts both models are scored on: never the training text
            problems["val_frac"] = "a number in (0, 0.5): the held-out share both models are scored on"
        if not 0 <= self.test_frac < 0.5:
            problems["test_frac"] = "a number in [0, 0.5)"
        return problems


def _quiet_run() -> TrainConfig:
    return TrainConfig(progress=False)


@dataclass(frozen=True, kw_only=True)
class RetrainPlan(NightlyOptions):
    """A night's files and options, built by the bot from its settings (nothing restated here)."""

    train_txt: Path
    train_h5: Path
    train_json: Path
    checkpoint_dir: Path
    models_dir: Path
    # every run's model, optimisation, device and budget (max_minutes; 0: the night window); the
    # input files, the run folder, the budget and the warm start are set per run
    training: TrainConfig = field(default_factory=_quiet_run)
    # the configured shape: a night whose active model has another one trains from scratch;
    # None: continue whatever the active model has
    shape: ModelShape | None = None
    # keyword arguments of corpus.export.export_training_text: gap_lines, seed, clean, stoplist, weighting
    export_options: dict = field(default_factory=dict)
    window: NightWindow | None = None  # None with max_minutes 0: FIRST_MODEL_MINUTES
    sample: SampleOptions = field(default_factory=SampleOptions)   # how the compared drafts are made
    screen: ScreenOptions = field(default_factory=ScreenOptions)   # ... and judged
    sample_length: int | None = None   # the compared drafts' max_length; None: the product's (sample.max_length)

    @property
    def device(self) -> str:
        return self.training.device

    @property
    def max_minutes(self) -> float:
        return self.training.max_minutes

    @property
    def sample_temperature(self) -> float:
        """For comparing two models' drafts: "auto" (tuned per model) reads as the default, so both
        models are sampled at one temperature."""
        return resolved_temperature(self.sample.temperature)


@dataclass
class RetrainResult:
    promoted: bool
    reason: str
    candidate_version: str | None = None
    candidate_bpc: float | None = None
    active_bpc: float | None = None
    checkpoint: Path | None = None
    details: dict = field(default_factory=dict)
    candidate_readability: float | None = None
    active_readability: float | None = None
    active_version: str | None = None
    warm: bool = False
    minutes: float | None = None
    awaiting_ratings: int = 0   # > 0: the candidate won and waits for this many ratings (retrain.promote_min_ratings)

    @property
    def line(self) -> str:
        """One line for the operator: promoted or kept, with both models' figures and their units."""
        if self.candidate_bpc is None:
            return self.reason

        def figures(version, bpc, read):
            drafts = f", {read:.0%} of drafts pass the screen" if read is not None else ""
            return f"{version} {bpc:.4f} bits/char{drafts}"

        how = f" ({'warm start' if self.warm else 'from scratch'}, {self.minutes:.3g} min of training)" \
            if self.minutes else ""
        verdict = "promoted" if self.promoted else (
            "the candidate waits for ratings" if self.awaiting_ratings else "kept the active model")
        candidate = figures(self.candidate_version, self.candidate_bpc, self.candidate_readability)
        return (f"{verdict}: candidate {candidate}"
                f"; active {figures(self.active_version, self.active_bpc, self.active_readability)}{how}")


def unwritable(folder: Path, exc: OSError) -> JobError:
    """The one line for a training folder that cannot be written (a file in its place, full, read-only)."""
    return JobError(f"cannot write the training run's folder {folder}: {exc.strerror or exc}"
                    f" (free space in {folder.parent}, or make it a writable folder)")


def train_in_child(cfg: TrainConfig, stop: threading.Event | None = None) -> None:
    """Train `cfg` in a child process, `python -m model.run RUN.json`, RUN.json written in its run
    folder. The child's start line and errors go to stderr; its result line is passed on to stderr,
    so the caller's stdout carries only its own result. Setting `stop` ends the run early (JobError)."""
    run_dir = Path(cfg.checkpoint_dir)
    run_file = run_dir / "run.json"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_file, json.dumps(cfg.to_dict(), indent=1, ensure_ascii=False) + "\n")
    except OSError as exc:   # the checkpoint folder is a file, full or read-only: nothing trained, nothing changed
        raise unwritable(run_dir, exc) from exc
    command = [sys.executable, "-m", "model.run", str(run_file)]
    log.info("retrain: %s", " ".join(command))
    # the child watches this process (model.run.PARENT_ENV): killed, even by SIGKILL, this process
    # takes the training down with it within seconds
    # and it needs no token: BUHURT_TELEGRAM_TOKEN and the rest stay out of its environment
    env = {**{k: v for k, v in os.environ.items() if not _is_token_variable(k)}, PARENT_ENV: str(os.getpid())}
    # the retrains' lock (one_training, <checkpoint_dir>.lock beside the run folders) goes with it:
    # this process killed (kill -9), no other retrain starts while the child still writes latest.pt
    lock = held_descriptor(run_dir.parent.with_name(run_dir.parent.name + LOCK_SUFFIX))
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env,
                          pass_fds=() if lock is None else (lock,)) as child:
        try:
            out = _wait(child, stop)
        except KeyboardInterrupt:   # Ctrl-C: the retrain's lock is held until the child has exited
            _end_after_interrupt(child)
            raise
    if out:
        sys.stderr.write(out)
    if stop is not None and stop.is_set():
        raise JobError(f"training stopped early: the service is stopping (the run in {run_dir} is resumable)")
    if child.returncode != 0:
        raise JobError(f"training exited with code {child.returncode} (its message is above)")


def _end_after_interrupt(child: subprocess.Popen) -> None:
    """After a Ctrl-C, wait for the child to exit: a terminal's Ctrl-C reached it too and it is saving
    its resumable checkpoint; else (kill -INT of this pid alone) it gets SIGINT after
    CHILD_INTERRUPT_GRACE seconds, then SIGKILL after CHILD_STOP_SECONDS. Another Ctrl-C meanwhile
    moves on to the next step, never out before the child has exited."""
    for timeout, then in ((CHILD_INTERRUPT_GRACE, signal.SIGINT), (CHILD_STOP_SECONDS, signal.SIGKILL)):
        try:
            child.communicate(timeout=timeout)
            return
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            pass
        if child.poll() is None:
            child.send_signal(then)
    while True:
        try:
            child.communicate()
            return
        except KeyboardInterrupt:
            continue


def _is_token_variable(name: str) -> bool:
    """BUHURT_TELEGRAM_TOKEN, BUHURT_VK_TOKEN, BUHURT_VK_COMMUNITY_TOKEN (bot.config.ENV_SECRETS) and the like."""
    return name.upper().startswith("BUHURT_") and name.upper().endswith("TOKEN")


def _wait(child: subprocess.Popen, stop: threading.Event | None) -> str:
    """The child's stdout once it exits; when `stop` is set first, the child gets SIGINT (it saves
    a resumable checkpoint and exits), then SIGKILL after CHILD_STOP_SECONDS."""
    while True:
        try:
            return child.communicate(timeout=0.5)[0] or ""
        except subprocess.TimeoutExpired:
            if stop is None or not stop.is_set():
                continue
        child.send_signal(signal.SIGINT)
        try:
            return child.communicate(timeout=CHILD_STOP_SECONDS)[0] or ""
        except subprocess.TimeoutExpired:
            child.kill()
            return child.communicate()[0] or ""


def _export(db: sqlite_utils.Database, plan: RetrainPlan):
    exported = export_training_text(db, plan.train_txt, **plan.export_options)
    stats = preprocess(plan.train_txt, plan.train_h5, plan.train_json, plan.val_frac, plan.test_frac)
    posts = (stats.get("posts") or {}).get("val")   # None for the contiguous split: it counts characters
    held_out = f"{posts} posts" if posts is not None else f"{stats.get('val', 0)} characters"
    log.info("retrain: exported %d posts (%d characters); held out %s (%s split)", exported.posts,
             exported.chars, held_out, stats.get("split"))
    return exported, stats


def _train(plan: RetrainPlan, run_training: RunTraining, minutes: float,
           init_from: Path | None) -> tuple[Path, Path]:
    run_dir = _new_run_dir(plan.checkpoint_dir)
    cfg = replace(plan.training, input_h5=str(plan.train_h5), input_json=str(plan.train_json),
                  checkpoint_dir=str(run_dir), max_minutes=minutes, resume=None, init_from=None)
    if init_from is not None:
        cfg = replace(cfg, init_from=str(init_from), warmup_frac=WARM_START_WARMUP,
                      learning_rate=cfg.learning_rate * plan.warm_lr_scale)
    log.info("retrain: training %s for at most %.3g minutes in %s",
             "from scratch" if init_from is None else "from the active model", minutes, run_dir.name)
    run_training(cfg)
    candidate = run_dir / "best.pt"
    if not candidate.is_file():
        raise JobError(f"{candidate}: training finished without a best checkpoint")
    log.info("retrain: training finished, best checkpoint %s", candidate)
    return run_dir, candidate


def training_minutes(plan: RetrainPlan, minutes: float | None = None, *, manual: bool = False,
                     now: dt.datetime | None = None) -> float | None:
    """The training budget: `minutes`, else train.max_minutes, else (the scheduled job) what is left
    of the night window less a margin, or (`manual`: `buhurt retrain` by hand) MANUAL_MINUTES.
    None: the scheduled job outside the window."""
    if minutes:
        return float(minutes)
    if plan.max_minutes:
        return float(plan.max_minutes)
    if plan.window is None:
        return FIRST_MODEL_MINUTES
    if manual:
        return MANUAL_MINUTES
    left = plan.window.remaining_minutes(now)
    if left is None:
        return None
    left -= margin_minutes(left)
    return left if left >= 0.5 else None


def draft_pass_share(db: sqlite_utils.Database, checkpoint: Path, plan: RetrainPlan,
                     stop: threading.Event | None = None) -> float:
    """How good a model's drafts are: of `readability_drafts` drafts made with the product's decoding
    (seeds 1..N, one temperature for every model), the share that pass the pool's screen against the
    database's corpus (jobs.pool.screen: the stop-list aside). Both models of a comparison are judged
    on equal terms. Setting `stop` ends it between SCORED_AT_ONCE drafts (JobError)."""
    from model.sample import Generator

    gen = Generator.load(checkpoint, device=plan.device)
    request = plan.sample.request(temperature=plan.sample_temperature)
    if plan.sample_length:
        request = replace(request, max_length=plan.sample_length)
    samples = []
    for first in range(1, plan.readability_drafts + 1, SCORED_AT_ONCE):
        check_stop(stop)
        samples += gen.generate_samples(range(first, min(first + SCORED_AT_ONCE, plan.readability_drafts + 1)),
                                        request)
    passed = 0
    for s in samples:
        m = measure(db, s.text, s, request.decoding.name)
        passed += screen(db, s.text, StopList([]), m, screening=plan.screen) is None
    return passed / len(samples) if samples else 0.0


def check_stop(stop: threading.Event | None) -> None:
    """JobError when `stop` is set: the service is stopping, and scoring a candidate takes minutes on a
    production model, far past the stop's grace time."""
    if stop is not None and stop.is_set():
        raise JobError("retrain stopped before its candidate was scored: the service is stopping")


def promotion_decision(candidate_bpc: float, active_bpc: float, candidate_read: float | None,
                       active_read: float | None, plan: RetrainPlan) -> tuple[bool, str]:
    """Promote when bits/char is lower by more than min_improvement and the share of drafts passing
    the screen did not fall by more than readability_tolerance. Returns (promote, why not).

    A bits/char that is not a finite number (NaN, Inf: a diverged model) always loses: such a
    candidate is never promoted, and any finite candidate replaces such an active model (every
    comparison with NaN is false, so without this it could never be replaced)."""
    if not math.isfinite(candidate_bpc):
        return False, f"the candidate's bits/char ({candidate_bpc}) is not a finite number"
    if not math.isfinite(active_bpc):
        return True, ""
    if not candidate_bpc < active_bpc - plan.min_improvement:
        return False, f"bits/char not lower by more than {plan.min_improvement:g}"
    return drafts_decision(candidate_read, active_read, plan)


def drafts_decision(candidate_read: float | None, active_read: float | None, plan: RetrainPlan) -> tuple[bool, str]:
    """Whether the candidate's drafts pass the screen as often as the active model's (within
    readability_tolerance). Returns (as good, why not)."""
    if candidate_read is not None and active_read is not None \
            and candidate_read < active_read - plan.readability_tolerance:
        return False, (f"drafts passing the screen fell from {active_read:.0%} to {candidate_read:.0%}, by more "
                       f"than {plan.readability_tolerance:.0%}")
    return True, ""


def warm_start_source(active: Path, plan: RetrainPlan, *, from_scratch: bool = False) -> tuple[Path | None, str]:
    """The checkpoint to continue from (None: from scratch) and why. The active model is loaded
    also `from_scratch`: one that cannot be (NaN weights, a damaged file) is found before training."""
    from model.checkpoint import load_checkpoint

    mc = load_checkpoint(active)["model_config"]
    if from_scratch:
        return None, "from scratch, as asked"
    if plan.shape is not None:
        changed = {k: (mc.get(k), v) for k, v in plan.shape.architecture().items() if mc.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            return None, f"from scratch: the configured architecture differs from the active model's ({what})"
    return active, f"warm start from the active model {active.name}"


def _install_waiting(db: sqlite_utils.Database, plan: RetrainPlan, candidate: Path, bpc: float,
                     metrics: dict) -> str:
    """The rating gate: the candidate is installed to wait for ratings, its drafts join the raters'
    mix (jobs/rating.py). It replaces the candidates still waiting: it was trained on more of the
    corpus and beat the same active model (one made active since rejects them anyway), so one
    candidate at a time shares the raters' answers with the active model. Returns its version."""
    version = install_checkpoint(db, candidate, plan.models_dir, val_bpc=bpc,
                                 metrics={**metrics, "awaiting_ratings": plan.promote_min_ratings})
    for older in model_rows.awaiting_ratings(db):
        if older["version"] != version:
            model_rows.set_status(db, older["version"], "rejected")
            log.info("rated candidate %s: rejected, superseded by the newer candidate %s", older["version"], version)
    return version


def _new_run_dir(checkpoint_dir: Path) -> Path:
    """run-YYYYmmdd-HHMMSS-ffffff (UTC): the names sort in the order the runs started."""
    while True:
        run_dir = checkpoint_dir / dt.datetime.now(dt.timezone.utc).strftime("run-%Y%m%d-%H%M%S-%f")
        if not run_dir.exists():
            return run_dir


def prune_runs(db: sqlite_utils.Database, checkpoint_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` run folders (keep <= 0: none). A rejected candidate whose
    folder goes is marked 'pruned' in model_versions (its metrics stay). Returns the deleted folders."""
    if keep <= 0 or not checkpoint_dir.is_dir():
        return []
    runs = sorted(p for p in checkpoint_dir.glob("run-*") if p.is_dir())   # oldest first
    doomed = runs[:-keep]
    for run_dir in doomed:
        shutil.rmtree(run_dir, ignore_errors=True)
        if run_dir.exists():
            log.warning("retrain: could not delete the old run folder %s", run_dir)
            continue
        model_rows.mark_pruned(db, str(run_dir))
        log.info("retrain: deleted the old run folder %s (keep_runs=%d)", run_dir, keep)
    return [p for p in doomed if not p.exists()]


def bootstrap(db: sqlite_utils.Database, plan: RetrainPlan,
              run_training: RunTraining = train_in_child, *, stop: threading.Event | None = None) -> str:
    with one_training(plan):
        return _bootstrap(db, plan, run_training, stop)


def _bootstrap(db: sqlite_utils.Database, plan: RetrainPlan, run_training: RunTraining,
               stop: threading.Event | None = None) -> str:
    """First model on the corpus (none active, or the bundled one with startup.use_bundled_model = false):
    trained from scratch for train.max_minutes (else FIRST_MODEL_MINUTES) and made active when its
    drafts pass the screen as often as the bundled model's (`drafts_decision`); else the bundled
    model is made active and keeps writing until a retrain beats it. Returns the active version.
    A model made active by hand while it trained (`buhurt models install --activate`, `models
    activate`) stays active: the first model is installed beside it as a candidate, and its version
    is returned (not the active one).
    Setting `stop` ends the judging as the nightly retrain's scoring (`check_stop`)."""
    exported, _ = _export(db, plan)
    minutes = plan.max_minutes or FIRST_MODEL_MINUTES
    _, candidate = _train(plan, run_training, minutes, None)
    check_stop(stop)
    metrics: dict = {"origin": "bootstrap", "corpus_fingerprint": exported.fingerprint}
    bundled = bundled_checkpoint()
    if bundled is not None and plan.readability_drafts > 0 and _activated_by_hand(db) is None:
        cand_read, bundled_read = draft_pass_share(db, candidate, plan, stop), draft_pass_share(db, bundled, plan, stop)
        check_stop(stop)
        metrics.update(draft_pass_share=cand_read, active_version=file_version(bundled),
                       active_draft_pass_share=bundled_read)
        good, why = drafts_decision(cand_read, bundled_read, plan)
        if not good and _activated_by_hand(db) is None:
            version = file_version(candidate)
            model_rows.register_model(db, version, str(candidate), val_bpc=None, metrics=metrics, status="rejected")
            activate_bundled(db, plan.models_dir)      # when it is not active already
            log.info("the first model %s is kept out: %s; the bundled model writes until a retrain beats it",
                     version, why)
            return file_version(bundled)
    version = install_checkpoint(db, candidate, plan.models_dir, val_bpc=None, metrics=metrics)
    chosen = _activated_by_hand(db)
    if chosen is None:
        model_rows.promote(db, version)
    else:   # the operator's choice is not undone by a model trained for minutes on a CPU
        log.info("the first model %s is installed, not made active: model %s was made active while it trained "
                 "(`buhurt models activate %s` to use the first model instead)", version, chosen, version)
    prune_runs(db, plan.checkpoint_dir, plan.keep_runs)
    return version


def _promotion(db: sqlite_utils.Database, plan: RetrainPlan, active_row: dict | None, active_version: str,
               candidate_bpc: float, active_bpc: float, cand_read: float | None,
               act_read: float | None) -> tuple[bool, str]:
    """`promotion_decision`, and no promotion when another model was made active while the candidate
    trained (`buhurt models activate`, `models install --activate`): it was compared with the model
    active when the retrain started, not with that one."""
    promote, why = promotion_decision(candidate_bpc, active_bpc, cand_read, act_read, plan)
    now, started_with = (row["version"] if row is not None else None
                         for row in (model_rows.active_model(db), active_row))
    if promote and now != started_with:
        return False, f"model {now} was made active while it trained: the candidate was compared with {active_version}"
    return promote, why


def _activated_by_hand(db: sqlite_utils.Database) -> str | None:
    """The active model's version when it is neither none nor the bundled one: a first model trains
    only while one of those is active, so another was made active by hand meanwhile."""
    row = model_rows.active_model(db)
    return row["version"] if row is not None and not is_bundled(row) else None


def _judge_drafts(db: sqlite_utils.Database, plan: RetrainPlan, candidate: Path, candidate_bpc: float,
                  active: Path | None, active_bpc: float,
                  stop: threading.Event | None = None) -> tuple[float | None, float | None]:
    """Both models' shares of drafts passing the screen (`draft_pass_share`); None where a model
    has no finite bits/char (it loses on that alone) or readability_drafts is 0."""
    cand_read = act_read = None
    if plan.readability_drafts > 0 and math.isfinite(candidate_bpc):
        log.info("retrain: judging %d drafts of each model", plan.readability_drafts)
        cand_read = draft_pass_share(db, candidate, plan, stop)
        log.info("retrain: scoring: the candidate's drafts, %.1f%% pass", 100 * cand_read)
        if active is not None and math.isfinite(active_bpc):
            act_read = draft_pass_share(db, active, plan, stop)
            log.info("retrain: scoring: the active model's drafts, %.1f%% pass", 100 * act_read)
    return cand_read, act_read


def _known_to(active: Path | None, text: str) -> str:
    """`text` without the characters the active model's vocabulary lacks (new emoji, a new script):
    the active model cannot score them and would leave them out of its own figure while the
    candidate pays for them, so both are scored without them."""
    if active is None:
        return text
    from model.checkpoint import load_checkpoint

    try:
        missing = set(Vocab(load_checkpoint(active)["idx_to_token"]).missing(text))
    except (ModelError, KeyError):   # an unusable active model: scoring it fails with its own words below
        return text
    if not missing:
        return text
    kept = "".join(c for c in text if c not in missing)
    log.info("retrain: %d held-out characters the active model does not know (%s) are left out of both scores",
             len(text) - len(kept), "".join(sorted(missing))[:40])
    return kept


@contextlib.contextmanager
def one_training(plan: RetrainPlan) -> Iterator[None]:
    """One retrain (or first model) at a time per checkpoint folder: `buhurt retrain` by hand during
    the night's run rewrote the training text and .h5 under it, and its pruning of old run folders
    could delete the folder the night was training in. JobError at once, naming the other's pid."""
    lock = plan.checkpoint_dir.with_name(plan.checkpoint_dir.name + LOCK_SUFFIX)   # not inside: runs are listed there
    held = contextlib.ExitStack()
    try:   # only the taking: an OSError of the training itself is not the lock's
        held.enter_context(exclusive(lock))
    except LockHeld as exc:
        raise JobError(f"another retrain (pid {exc.holder}) is training in {plan.checkpoint_dir}: it runs to its"
                       " end; run this one after it") from None
    except OSError as exc:
        raise unwritable(plan.checkpoint_dir, exc) from exc
    with held:
        yield


def refuse_while_training(checkpoint_dir: Path, folder: Path) -> None:
    """For `buhurt corpus export` and `buhurt preprocess` about to write the files a retrain trains
    from and scores its held-out posts on (`folder`, <data_dir>/train): JobError at once, naming its
    pid, while a retrain or the first model trains (`one_training`'s lock). The lock is only tried,
    not kept: a night's retrain is never refused for them."""
    lock = checkpoint_dir.with_name(checkpoint_dir.name + LOCK_SUFFIX)
    try:
        with exclusive(lock):
            pass
    except LockHeld as exc:
        raise JobError(f"a retrain (pid {exc.holder}) is training from {folder}: its held-out posts are scored"
                       " there when it ends; write elsewhere (-o; --output-h5, --output-json) or run this after"
                       " it") from None
    except OSError as exc:
        raise unwritable(checkpoint_dir, exc) from exc


def retrain(db: sqlite_utils.Database, plan: RetrainPlan,
            run_training: RunTraining = train_in_child, *, from_scratch: bool = False,
            minutes: float | None = None, manual: bool = False, now: dt.datetime | None = None,
            stop: threading.Event | None = None) -> RetrainResult:
    """One night: export, train (warm or from scratch) within the budget, score both models on the
    same held-out posts, promote or keep. `manual`: run by hand (`buhurt retrain`), also outside the
    window. One at a time per checkpoint folder (`one_training`). Setting `stop` (the service stops;
    `run_training` hears it while it trains) ends the scoring with JobError, nothing registered."""
    with one_training(plan):
        return _retrain(db, plan, run_training, from_scratch=from_scratch, minutes=minutes, manual=manual, now=now,
                        stop=stop)


def _retrain(db: sqlite_utils.Database, plan: RetrainPlan, run_training: RunTraining, *, from_scratch: bool,
             minutes: float | None, manual: bool, now: dt.datetime | None,
             stop: threading.Event | None) -> RetrainResult:
    from model.evaluate import evaluate_text
    from model.splits import split_text

    budget = training_minutes(plan, minutes, manual=manual, now=now)
    if budget is None:
        reason = f"skipped: outside the night window {plan.window} (or less than a minute of it left)"
        log.info("retrain %s", reason)
        return RetrainResult(False, reason)
    active_row = model_rows.active_model(db)
    active: Path | None
    try:
        active = active_checkpoint_path(db)
        active_version = active_row["version"] if active_row else file_version(active)
        init_from, how = warm_start_source(active, plan, from_scratch=from_scratch)
    except (JobError, ModelError) as exc:
        if active_row is None:
            raise
        # the active model's file is gone or cannot be loaded (damaged, NaN weights): a fresh model
        # on the corpus replaces it when it scores a finite bits/char
        log.warning("retrain: the active model cannot be used (%s); training from scratch, and the candidate "
                    "replaces it when its bits/char is finite", exc)
        active, active_version, init_from, how = None, active_row["version"], None, "from scratch"
    exported, stats = _export(db, plan)
    log.info("retrain: %s, %.3g minutes of training", how, budget)
    run_dir, candidate = _train(plan, run_training, budget, init_from)

    val_text = split_text(plan.train_h5, plan.train_json, "val")
    if not val_text:   # scoring on the training text would favour the candidate, which has just learned it
        raise JobError(f"retrain: no held-out text to score the models on (retrain.val_frac = {plan.val_frac} of "
                       f"{exported.posts} posts): the active model stays; import more posts or raise val_frac")
    val_text = _known_to(active, val_text)
    val_path = run_dir / "val.txt"
    atomic_write_text(val_path, val_text)
    log.info("retrain: scoring the candidate and the active model on the same %d held-out characters", len(val_text))
    check_stop(stop)
    try:
        candidate_bpc = evaluate_text(candidate, val_path, device=plan.device)["bits_per_char"]
    except ModelError as exc:   # e.g. NaN weights: a diverged run; recorded as rejected
        log.warning("retrain: the candidate cannot be scored: %s", exc)
        candidate_bpc = math.nan
    log.info("retrain: scoring: the candidate, %.4f bits/char", candidate_bpc)
    check_stop(stop)
    active_bpc = math.inf if active is None else evaluate_text(active, val_path, device=plan.device)["bits_per_char"]
    if active is not None:
        log.info("retrain: scoring: the active model, %.4f bits/char", active_bpc)
    cand_read, act_read = _judge_drafts(db, plan, candidate, candidate_bpc, active, active_bpc, stop)
    check_stop(stop)
    details = {"corpus_fingerprint": exported.fingerprint, "posts": exported.posts,
               "val_chars": len(val_text), "warm_start": init_from is not None, "minutes": budget,
               "split": stats.get("split")}
    metrics = {**details, "val_bits_per_char": candidate_bpc, "draft_pass_share": cand_read,
               "active_version": active_version, "active_bits_per_char": active_bpc,
               "active_draft_pass_share": act_read}
    promote, why = _promotion(db, plan, active_row, active_version, candidate_bpc, active_bpc, cand_read, act_read)
    common = dict(candidate_bpc=candidate_bpc, active_bpc=active_bpc, details=details,
                  candidate_readability=cand_read, active_readability=act_read, active_version=active_version,
                  warm=init_from is not None, minutes=budget)
    if promote and plan.promote_min_ratings > 0:
        version = _install_waiting(db, plan, candidate, candidate_bpc, metrics)
        result = RetrainResult(False, "", version, awaiting_ratings=plan.promote_min_ratings, **common)
        why = f"waits for {plan.promote_min_ratings} ratings of its drafts before promotion"
    elif promote:
        version = install_checkpoint(db, candidate, plan.models_dir, val_bpc=candidate_bpc, metrics=metrics)
        model_rows.promote(db, version)
        result = RetrainResult(True, "", version, checkpoint=plan.models_dir / f"{version}.pt", **common)
    else:
        # a rejected candidate stays in its run folder (recorded, not copied into models_dir)
        version = file_version(candidate)
        model_rows.register_model(db, version, str(candidate), val_bpc=candidate_bpc, metrics=metrics,
                                  status="rejected")
        result = RetrainResult(False, "", version, **common)
    result.reason = result.line + (f" [{why}]" if why else "")
    log.info("retrain %s", result.reason)
    prune_runs(db, plan.checkpoint_dir, plan.keep_runs)
    return result
