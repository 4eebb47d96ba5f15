"""Model versions on disk: the bundled default, installing a checkpoint, the active one.

Installed checkpoints live in `<data_dir>/models/<version>.pt` (version = first 12 hex digits of
the file's sha256, the same as Generator.version) and are never overwritten, so the service can
regenerate `/meme N` with the exact model that made it. Switching models is a database update plus
an in-process reload, never a write over a file the bot is reading.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import sqlite_utils

from common.files import atomic_path
from corpus.store import model_versions as model_rows
from jobs.errors import JobError
from model.files import file_version

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "model" / "data"


def bundled_checkpoint() -> Path | None:
    """The small model trained on the bundled sample corpus, shipped with the package."""
    path = BUNDLED_DIR / "default.pt"
    return path if path.is_file() else None


def install_checkpoint(db: sqlite_utils.Database, source: Path, models_dir: Path, *,
                       val_bpc: float | None, metrics: dict | None = None,
                       status: str = "candidate") -> str:
    """Copy `source` (and its .json sidecar) into models_dir under its version and register it. A
    version already known keeps its status, and its row now points at the copy in models_dir (and
    records `val_bpc` when one is given: measured now)."""
    source = Path(source)
    if not source.is_file():
        raise JobError(f"{source}: checkpoint not found")
    version = file_version(source)
    target = models_dir / f"{version}.pt"
    try:   # nothing is registered until the copy is whole: a full disk or a file named like the folder
        models_dir.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or file_version(target) != version:   # missing, or damaged: a good copy repairs it
            if target.is_file():
                log.warning("%s: its bytes are not version %s any more (damaged on disk); replaced by a copy of %s",
                            target, version, source)
            _atomic_copy(source, target)
        sidecar = source.with_suffix(".json")
        if sidecar.is_file() and not target.with_suffix(".json").exists():
            _atomic_copy(sidecar, target.with_suffix(".json"))
    except OSError as exc:
        raise JobError(f"cannot install model {version} in {models_dir}: {exc.strerror or exc} "
                       f"(free space there, or make it a writable folder)") from exc
    model_rows.register_model(db, version, str(target), val_bpc=val_bpc, metrics=metrics, status=status)
    model_rows.set_path(db, version, str(target))
    if val_bpc is not None:
        model_rows.set_val_bpc(db, version, val_bpc)
    return version


def _atomic_copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def checkpoint_for_version(db: sqlite_utils.Database, version: str) -> Path:
    row = model_rows.get_model(db, version)
    if row is None or not Path(row["path"]).is_file():
        raise JobError(f"model version {version} is not installed (its checkpoint is missing)")
    return Path(row["path"])


def verified_checkpoint(db: sqlite_utils.Database, version: str) -> Path:
    """`checkpoint_for_version`, and its bytes still that version (what is made active); JobError
    naming the file otherwise."""
    path = checkpoint_for_version(db, version)
    problem = registered_file_problem({"version": version, "path": str(path)})
    if problem is not None:
        raise JobError(f"model version {version}'s checkpoint {path} is {problem}: `buhurt models install` "
                       f"the right file again")
    return path


def version_installed_at(db: sqlite_utils.Database, path: str | Path) -> str | None:
    """The version whose registered checkpoint is the file at `path` (what /meme N regenerates its
    drafts with: its bytes must stay that version's), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    row = model_rows.get_model(db, file_version(path))
    if row is None or checkpoint_problem(row["path"]) is not None or not path.samefile(row["path"]):
        return None
    return row["version"]


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the checkpoint file at `path` cannot be read ("missing", "unreadable (...)"), or None."""
    path = Path(path)
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None


def registered_file_problem(row: dict) -> str | None:
    """Why the checkpoint file of a model_versions row is not that version: missing, unreadable, or
    its bytes another version's (rewritten in place: drafts made with it would go under a version
    never registered, and /meme N would regenerate other texts); None when it is."""
    problem = checkpoint_problem(row["path"])
    if problem is not None:
        return problem
    try:
        found = file_version(row["path"])
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if found != row["version"]:
        return f"version {found}, not {row['version']} (its bytes changed after it was installed)"
    return None


def active_file_problem(row: dict, problem: str | None = None) -> str:
    """One line for an active model whose checkpoint file cannot be read or is not its version."""
    problem = problem or registered_file_problem(row)
    return (f"the active model {row['version']}'s checkpoint {row['path']} is {problem}: "
            f"put the file back (`buhurt models install` it again), or `buhurt models activate` another version "
            f"(`buhurt models list`)")


def moved_copy(row: dict, models_dir: Path | None) -> Path | None:
    """The version's copy in `models_dir` when the path its row records names no file (the data
    folder moved: rows keep the path it had, 'data/models/<version>.pt' under another working
    directory, or another volume) and that copy's bytes are the version; else None."""
    if models_dir is None or Path(row["path"]).exists():
        return None
    copy = Path(models_dir) / f"{row['version']}.pt"
    return copy if registered_file_problem({**row, "path": str(copy)}) is None else None


def relocate_moved(db: sqlite_utils.Database, models_dir: Path) -> list[str]:
    """Point every row whose recorded file is gone at its copy in `models_dir` (`moved_copy`), one
    INFO line; returns the versions moved."""
    moved = []
    for row in model_rows.all_models(db):
        copy = moved_copy(row, models_dir)
        if copy is not None:
            model_rows.set_path(db, row["version"], str(copy))
            moved.append(row["version"])
    if moved:
        log.info("model versions %s: their recorded files are gone, their copies in %s are used (the data folder "
                 "moved)", ", ".join(moved), models_dir)
    return moved


def active_checkpoint_path(db: sqlite_utils.Database, *, allow_bundled: bool = True,
                           models_dir: Path | None = None) -> Path:
    """The active model's checkpoint; the bundled one when none is active yet. JobError naming the
    file when a model is active but its checkpoint is missing, unreadable or another version's bytes:
    never the bundled model in its place. With `models_dir`, a missing file's copy there
    (`moved_copy`) is the checkpoint."""
    row = model_rows.active_model(db)
    if row is not None:
        copy = moved_copy(row, models_dir)
        if copy is not None:
            return copy
        problem = registered_file_problem(row)
        if problem is not None:
            raise JobError(active_file_problem(row, problem))
        return Path(row["path"])
    return starting_checkpoint(allow_bundled=allow_bundled)


def starting_checkpoint(*, allow_bundled: bool = True) -> Path:
    """What a data folder with no active model generates with: the bundled model; JobError without it."""
    bundled = bundled_checkpoint() if allow_bundled else None
    if bundled is None:
        raise JobError("no model yet: run `buhurt run` (it trains one) or `buhurt train`")
    return bundled


def fallback_checkpoints(db: sqlite_utils.Database) -> list[tuple[str, Path]]:
    """The versions that were active before the active one, the latest first, whose checkpoint
    files can be read and are still their version: what the service generates with when the active
    model's file is gone."""
    found = []
    for row in model_rows.previously_active(db):
        if registered_file_problem(row) is None and not_finite_score(row) is None:
            found.append((row["version"], Path(row["path"])))
    return found


def not_finite_score(row: dict) -> str | None:
    """Why a version may never be active: its recorded held-out bits/char is not a finite number
    (SQLite keeps a NaN as NULL, so the metrics' copy is read too); None when it may."""
    scores = [row.get("val_bpc")]
    try:
        scores.append(json.loads(row.get("metrics_json") or "{}").get("val_bits_per_char"))
    except (ValueError, AttributeError):
        pass
    for score in scores:
        if isinstance(score, (int, float)) and not math.isfinite(score):
            return f"model version {row['version']} scored {score} bits/char on held-out text, not a finite number"
    return None


def is_bundled(row: dict) -> bool:
    """Whether a model_versions row is the bundled model (installed as such, or the same bytes)."""
    if json.loads(row.get("metrics_json") or "{}").get("origin") == "bundled":
        return True
    bundled = bundled_checkpoint()
    return bundled is not None and row["version"] == file_version(bundled)


def first_model_kept_out(db: sqlite_utils.Database) -> dict | None:
    """The newest first model trained on the corpus (jobs.retrain.bootstrap) that was kept out for
    its drafts (the bundled model stayed active), or None."""
    for row in model_rows.all_models(db):
        if row["status"] == "rejected" and json.loads(row.get("metrics_json") or "{}").get("origin") == "bootstrap":
            return row
    return None


def install_bundled(db: sqlite_utils.Database, models_dir: Path) -> Path | None:
    """The bundled model installed in models_dir (not made active): what the service generates with
    while its first model trains. None when the package ships no bundled model."""
    bundled = bundled_checkpoint()
    if bundled is None:
        return None
    version = install_checkpoint(db, bundled, models_dir, val_bpc=None, metrics={"origin": "bundled"})
    return models_dir / f"{version}.pt"


def activate_bundled(db: sqlite_utils.Database, models_dir: Path) -> str | None:
    """Install and promote the bundled model when no model is active. Returns its version."""
    if model_rows.active_model(db) is not None:
        return None
    bundled = bundled_checkpoint()
    if bundled is None:
        return None
    version = install_checkpoint(db, bundled, models_dir, val_bpc=None, metrics={"origin": "bundled"})
    model_rows.promote(db, version)
    return version


def activate_version(db: sqlite_utils.Database, version: str, models_dir: Path) -> Path:
    """Make a known `version` the active model. A rejected candidate's checkpoint is first copied
    from its run folder into models_dir, so pruning old runs never removes the active model."""
    _require_finite(db, version)
    install_checkpoint(db, verified_checkpoint(db, version), models_dir, val_bpc=None)
    model_rows.promote(db, version)
    return models_dir / f"{version}.pt"


def _require_finite(db: sqlite_utils.Database, version: str) -> None:
    row = model_rows.get_model(db, version)
    why = not_finite_score(row) if row is not None else None
    if why:
        raise JobError(f"{why}: it is never made active")


def all_versions(db: sqlite_utils.Database) -> list[dict]:
    """Every known model version, newest first (`buhurt models list`)."""
    return model_rows.all_models(db)


def version_row(db: sqlite_utils.Database, version: str) -> dict | None:
    """The model_versions row of `version`, or None when it is not installed."""
    return model_rows.get_model(db, version)


def installed_row(db: sqlite_utils.Database, version: str) -> dict:
    """The model_versions row of an installed `version`; JobError when there is none."""
    row = model_rows.get_model(db, version)
    if row is None:
        raise JobError(f"model version {version} is not installed: see `buhurt models list`")
    return row


def active_version_row(db: sqlite_utils.Database) -> dict | None:
    """The active model's row, or None when no model is active yet."""
    return model_rows.active_model(db)


def activate(db: sqlite_utils.Database, version: str) -> None:
    """Make an installed `version` the active model (the previous one is retired); JobError when
    its held-out bits/char is not a finite number."""
    _require_finite(db, version)
    model_rows.promote(db, version)


def version_matching(db: sqlite_utils.Database, prefix: str) -> str:
    """The one version starting with `prefix` (at least 4 characters of it); JobError naming what
    matched otherwise."""
    if len(prefix.strip()) < 4:   # "" matched every version: the only one there was got activated
        raise JobError(f"model version {prefix!r}: give at least 4 characters of it (see `buhurt models list`)")
    matches = model_rows.versions_starting_with(db, prefix)
    if len(matches) != 1:
        found = "no model version" if not matches else f"{len(matches)} model versions ({', '.join(matches)})"
        raise JobError(f"{found} matches {prefix!r}: see `buhurt models list`")
    return matches[0]
