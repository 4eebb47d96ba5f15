"""One `buhurt run` per data folder: an exclusive lock on `<data_dir>/buhurt.lock` (common/locks.py).

Two services on one folder would both poll Telegram (409 conflicts), show every draft to the
moderators twice and fight over the database. The lock is taken before anything else starts and
is released by the kernel when the process ends, however it ends (kill -9 included).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bot.errors import BotError
from common.locks import LockHeld, exclusive

LOCK_NAME = "buhurt.lock"


@contextlib.contextmanager
def instance_lock(data_dir: Path) -> Iterator[Path]:
    """Hold the data folder's lock while the block runs, or raise BotError naming the process
    that holds it."""
    data_dir = Path(data_dir)
    path = data_dir / LOCK_NAME
    held = contextlib.ExitStack()
    try:   # only the taking: an OSError of the service itself is not the lock's
        held.enter_context(exclusive(path))
    except LockHeld as exc:
        raise BotError(f"another buhurt run (pid {exc.holder}) is using the data folder {data_dir}"
                       f" (lock {path}); stop it first") from None
    except OSError as exc:
        raise BotError(f"cannot create the instance lock in paths.data_dir = {data_dir}: {exc.strerror}") from None
    with held:
        yield path
