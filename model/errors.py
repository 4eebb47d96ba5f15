"""The one error type model/ raises for bad input, and small helpers that raise it."""
from __future__ import annotations

from pathlib import Path


class ModelError(ValueError):
    """A problem with the model's input (file, key or value); str() is one line naming it."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def require_file(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path if it is an existing regular file, else raise ModelError."""
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{what} {str(p)!r} is a directory, expected a file")
    if not p.exists():
        raise ModelError(f"{what} {str(p)!r} does not exist")
    if not p.is_file():
        raise ModelError(f"{what} {str(p)!r} is not a regular file")
    return p


def require_writable_target(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path if a file may be written there (not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{what} {str(p)!r} is a directory, expected a file path")
    return p


def normalize_newlines(text: str) -> str:
    """CRLF and stray CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
