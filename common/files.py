"""One atomic write: a temp file beside the target, fsynced, then renamed over it, so a reader
never sees a half-written file and a crash leaves the previous one. Checkpoints (model/), the
training text and backups (corpus/), plots and installed models (jobs/) are all written this way.

A write killed mid-way (SIGKILL, power loss) leaves its temp file behind, named as TEMP_NAME
matches: corpus.outputs.remove_leftover_temps removes those of processes that are gone."""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TEMP_NAMES = itertools.count()
# what atomic_path names its temp files (.<stem>.tmp-<pid>-<n><suffix>), and what SQLite adds to
# them (a backup's "-journal"): the writer's pid is in the name
TEMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)-\d+(\.[^/]*)?$")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path` (same suffix, so writers that go by it still do) for the caller
    to write; on success it is fsynced and renamed over `path`, on failure removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{next(_TEMP_NAMES)}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_problem(folder: str | Path) -> str:
    """Why a small file cannot be written in `folder` (a full disk: "No space left on device"),
    "" when it can; the probe, named as TEMP_NAME matches, is removed."""
    probe = Path(folder) / f".write-probe.tmp-{os.getpid()}-{next(_TEMP_NAMES)}"
    try:
        probe.write_text("probe\n", encoding="utf-8")
    except OSError as exc:
        return str(exc.strerror or exc)
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
    return ""


SQLITE_SIGNATURE = b"SQLite format 3\x00"   # the first bytes of every SQLite database file


def starts_with(path: str | Path, signature: bytes) -> bool:
    """Whether the file at `path` begins with `signature` (a format's magic bytes); False when it
    cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(signature)) == signature
    except OSError:
        return False


def folder_problem(folder: str | Path, exc: OSError) -> str:
    """Why `folder` could not be made, for one line: a file standing where it or a folder above it
    should be (mkdir's own words, "File exists" or "Not a directory", name no culprit), else the
    system's reason."""
    folder = Path(folder)
    blocking = next((p for p in (*reversed(folder.parents), folder) if p.exists() and not p.is_dir()), None)
    return f"{blocking} is a file, not a folder" if blocking is not None else str(exc.strerror or exc)
