"""One `buhurt run` per data folder: an exclusive fcntl lock on `<data_dir>/buhurt.lock`.

Two services on one folder would both poll Telegram (409 conflicts), show every draft to the
moderators twice and fight over the database. The lock is taken before anything else starts and
is released by the kernel when the process ends, however it ends (kill -9 included): a stale
file never blocks a restart. The file holds the holder's pid, so the second one can say who.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from bot.errors import BotError

LOCK_NAME = "buhurt.lock"


@contextlib.contextmanager
def instance_lock(data_dir: Path) -> Iterator[Path]:
    """Hold the data folder's lock while the block runs, or raise BotError naming the process
    that holds it."""
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BotError(f"cannot create the instance lock in paths.data_dir = {data_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise BotError(f"another buhurt run (pid {holder}) is using the data folder {data_dir}"
                       f" (lock {path}); stop it first") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
