"""File helpers of model/ that the other layers use too; torch-free, so importing them is cheap."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_version(path: str | Path) -> str:
    """Short sha256 (12 hex digits) of the file's bytes: a checkpoint's version."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]
