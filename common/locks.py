"""An exclusive fcntl lock on a file, held while a block runs: one `buhurt run` per data folder
(bot/instance.py), one retrain per checkpoint folder (jobs/retrain.py).

The kernel releases the lock when the process ends, however it ends (kill -9 included): a stale
file never blocks a restart. The file holds the holder's pid, so the one refused can say who.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


_HELD: dict[Path, int] = {}   # the locks this process holds: their file descriptors


def held_descriptor(path: Path) -> int | None:
    """The descriptor of the lock this process holds on `path` (None when it holds none): passed to
    a child process (subprocess pass_fds), the lock stays held until the child has exited too, even
    when this process is killed first."""
    return _HELD.get(Path(path).absolute())


class LockHeld(Exception):
    """Another process holds the lock; `holder` is its pid as it wrote it ("unknown" if none)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by pid {holder}")
        self.path, self.holder = path, holder


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[Path]:
    """Hold the lock on `path` (created with its folder) while the block runs, or raise LockHeld at
    once; OSError when the file cannot be made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(path, holder) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _HELD[path.absolute()] = fd
        yield path
    finally:
        _HELD.pop(path.absolute(), None)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
