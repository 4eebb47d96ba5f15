"""Overnight retraining: export -> preprocess -> `buhurt train` subprocess -> compare -> promote.

A candidate is promoted only when its loss on the new validation text (bits per character) beats
the active model's on the same text by at least `min_improvement`. Every run trains into its own
folder `<checkpoint_dir>/run-YYYYmmdd-HHMMSS-ffffff`; after a run, all but the newest `keep_runs` folders
are deleted (promoted models were copied to models_dir, so nothing the service uses is lost).
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from corpus.export import atomic_write_text, export_training_text
from corpus.store import models as model_rows
from jobs.errors import JobError
from jobs.models import active_checkpoint_path, file_version, install_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainPlan:
    train_txt: Path
    train_h5: Path
    train_json: Path
    checkpoint_dir: Path
    models_dir: Path
    train_args: Sequence[str] = ()
    gap_lines: int = 1
    shuffle_seed: int = 1234
    val_frac: float = 0.1
    test_frac: float = 0.1
    min_improvement: float = 0.0
    device: str = "cpu"
    keep_runs: int = 5   # run folders kept in checkpoint_dir; 0 keeps all
    # keyword arguments of corpus.export.export_training_text: clean, stoplist, weighting
    export_options: dict = field(default_factory=dict)


@dataclass
class RetrainResult:
    promoted: bool
    reason: str
    candidate_version: str | None = None
    candidate_bpc: float | None = None
    active_bpc: float | None = None
    checkpoint: Path | None = None
    details: dict = field(default_factory=dict)


def train_subprocess(args: list[str]) -> None:
    """Run `buhurt train ARGS` as a child process: the same command an operator runs by hand."""
    command = [sys.executable, "-m", "bot", "train", *args]
    log.info("retrain: %s", " ".join(command))
    completed = subprocess.run(command, check=False)  # stderr inherited: the progress bar shows
    if completed.returncode != 0:
        raise JobError(f"training exited with code {completed.returncode} (its message is above)")


def _export_and_train(db: sqlite_utils.Database, plan: RetrainPlan,
                      run_training: Callable[[list[str]], None]):
    from model.preprocess import preprocess

    exported = export_training_text(db, plan.train_txt, gap_lines=plan.gap_lines, seed=plan.shuffle_seed,
                                    **plan.export_options)
    stats = preprocess(plan.train_txt, plan.train_h5, plan.train_json, plan.val_frac, plan.test_frac)
    run_dir = _new_run_dir(plan.checkpoint_dir)
    run_training(["--input-h5", str(plan.train_h5), "--input-json", str(plan.train_json),
                  "--checkpoint-dir", str(run_dir), "--device", plan.device, *plan.train_args])
    candidate = run_dir / "best.pt"
    if not candidate.is_file():
        raise JobError(f"{candidate}: training finished without a best checkpoint")
    return exported, stats, run_dir, candidate


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
              run_training: Callable[[list[str]], None] = train_subprocess) -> str:
    """First run without any model: train one on the corpus and make it active. Returns its version."""
    exported, _, _, candidate = _export_and_train(db, plan, run_training)
    version = install_checkpoint(db, candidate, plan.models_dir, val_loss=None,
                                 metrics={"origin": "bootstrap", "corpus_fingerprint": exported.fingerprint})
    model_rows.promote(db, version)
    prune_runs(db, plan.checkpoint_dir, plan.keep_runs)
    return version


def retrain(db: sqlite_utils.Database, plan: RetrainPlan,
            run_training: Callable[[list[str]], None] = train_subprocess) -> RetrainResult:
    from model.evaluate import evaluate_text
    from model.preprocess import split_sizes

    exported, stats, run_dir, candidate = _export_and_train(db, plan, run_training)

    text = plan.train_txt.read_text(encoding="utf-8")
    n_train, n_val, _ = split_sizes(stats["total_chars"], plan.val_frac, plan.test_frac)
    val_text = text[n_train:n_train + n_val] or text
    val_path = run_dir / "val.txt"
    atomic_write_text(val_path, val_text)

    candidate_bpc = evaluate_text(candidate, val_path, device=plan.device)["bits_per_char"]
    active = active_checkpoint_path(db)
    active_bpc = evaluate_text(active, val_path, device=plan.device)["bits_per_char"]
    details = {"corpus_fingerprint": exported.fingerprint, "posts": exported.posts,
               "val_chars": len(val_text)}
    metrics = {**details, "val_bits_per_char": candidate_bpc}
    if candidate_bpc < active_bpc - plan.min_improvement:
        version = install_checkpoint(db, candidate, plan.models_dir, val_loss=candidate_bpc, metrics=metrics)
        model_rows.promote(db, version)
        reason = f"promoted: {candidate_bpc:.4f} < {active_bpc:.4f} bits/char"
        log.info("retrain %s", reason)
        prune_runs(db, plan.checkpoint_dir, plan.keep_runs)
        return RetrainResult(True, reason, version, candidate_bpc, active_bpc,
                             plan.models_dir / f"{version}.pt", details)
    # a rejected candidate stays in its run folder (recorded, not copied into models_dir)
    version = file_version(candidate)
    model_rows.register_model(db, version, str(candidate), val_loss=candidate_bpc, metrics=metrics,
                              status="rejected")
    reason = f"kept the active model: candidate {candidate_bpc:.4f} >= {active_bpc:.4f} bits/char"
    log.info("retrain %s", reason)
    prune_runs(db, plan.checkpoint_dir, plan.keep_runs)
    return RetrainResult(False, reason, version, candidate_bpc, active_bpc, None, details)
