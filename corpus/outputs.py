"""The files corpus/ writes (training text, its manifest, database backups): atomically, through
a temp file beside the target that is fsynced and then renamed over it, so a reader never sees a
half-written file and a crash leaves the previous one."""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TEMP_NAMES = itertools.count()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path` for the caller to write; on success it is fsynced and renamed
    over `path`, on failure removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{next(_TEMP_NAMES)}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """`text` as UTF-8 with LF line ends, written atomically (`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
