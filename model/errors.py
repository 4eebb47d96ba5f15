"""The one error type model/ raises for bad input, and small helpers that raise it."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from common.files import folder_problem, starts_with

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"   # torch.save's archive
LARGEST_JSON = 64 << 20          # a vocabulary or a checkpoint's sidecar is far smaller


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


def make_folder(folder: str | Path, what: str) -> Path:
    """`folder` made (with its parents) for `what` to be written in; ModelError naming the file in
    the way, or the system's reason, when it cannot be."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = folder_problem(folder, exc)
        raise ModelError(f"the folder {str(folder)!r} for {what} cannot be made ({why})") from None
    return folder


def require_writable_target(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path if a file may be written there (not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{what} {str(p)!r} is a directory, expected a file path")
    return p


def require_replaceable(path: str | Path, what: str, kind: str, is_kind: Callable[[Path], bool]) -> Path:
    """`require_writable_target`, and a file already there must be `kind` (what this command writes,
    `is_kind`) or empty: a mistyped output path never replaces the database, a text or a config."""
    p = require_writable_target(path, what)
    try:
        replaceable = not p.exists() or p.stat().st_size == 0 or is_kind(p)
    except OSError:
        replaceable = False
    if not replaceable:
        raise ModelError(f"{what} {str(p)!r} exists and is not {kind} (only an earlier one is replaced):"
                         " choose another path")
    return p


def is_hdf5(p: Path) -> bool:
    return starts_with(p, HDF5_SIGNATURE)


def is_torch_archive(p: Path) -> bool:
    return starts_with(p, ZIP_SIGNATURE)


def json_object_with(*keys: str) -> Callable[[Path], bool]:
    """A check that a file is a JSON object holding each of `keys`."""
    def check(p: Path) -> bool:
        if p.stat().st_size > LARGEST_JSON:
            return False
        try:
            data = json.loads(p.read_bytes())
        except ValueError:   # not JSON, not UTF-8
            return False
        return isinstance(data, dict) and all(k in data for k in keys)
    return check


def normalize_newlines(text: str) -> str:
    """CRLF and stray CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
