"""The files corpus/ writes (training text, its manifest, database backups): atomically, through
a temp file beside the target that is fsynced and then renamed over it, so a reader never sees a
half-written file and a crash leaves the previous one.

A copy killed mid-write (SIGKILL, power loss) leaves its temp file behind: `remove_leftover_temps`
removes those of processes that are gone, at the service's start and before each backup. The
atomic write and its temp names (`.<stem>.tmp-<pid>-<n><suffix>`) are common/files.py's, which
checkpoints (model/) use too."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from common.files import TEMP_NAME, atomic_path

log = logging.getLogger(__name__)
STALE_AFTER_SECONDS = 24 * 3600   # no atomic write takes a day: older temp files are leftovers, whoever's pid


def atomic_write_text(path: str | Path, text: str) -> None:
    """`text` as UTF-8 with LF line ends, written atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)


def _process_started() -> float:
    """When this process started (epoch seconds): from /proc on Linux, else when this module loaded."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _LOADED


_LOADED = time.time()
_STARTED = _process_started()


def _writer_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:   # someone else's process: alive
        return False
    return False


def leftover_temps(folder: str | Path) -> list[Path]:
    """The temp files in `folder` that no running write will finish: their writer's process is gone,
    or it is this process's pid but the file predates this process (a container restarted with the
    same pid), or the file is over a day old."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    now = time.time()
    for path in folder.iterdir():
        match = TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or path.is_symlink():
            continue
        try:
            modified = path.stat().st_mtime
        except OSError:
            continue
        pid = int(match["pid"])
        if (_writer_gone(pid) or (pid == os.getpid() and modified < _STARTED - 1)
                or now - modified > STALE_AFTER_SECONDS):
            found.append(path)
    return found


def remove_leftover_temps(folders: Iterable[str | Path]) -> tuple[int, int]:
    """Remove `leftover_temps` of each folder, one INFO line per folder that had some (how many,
    how big). Returns (files, bytes) removed in all."""
    files = total = 0
    for folder in folders:
        count = size = 0
        for path in leftover_temps(folder):
            try:
                length = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("could not remove the leftover temp file %s: %s", path, exc.strerror or exc)
                continue
            count, size = count + 1, size + length
        if count:
            log.info("removed %d temp file%s (%.1f MiB) that killed copies left in %s", count,
                     "" if count == 1 else "s", size / 2**20, folder)
        files, total = files + count, total + size
    return files, total
