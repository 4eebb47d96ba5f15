"""File helpers of model/ that the other layers use too; torch-free, so importing them is cheap:
a checkpoint's version and one UTF-8 reader (streamed, newlines normalised). The atomic write is
common/files.py's."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from model.errors import ModelError, require_file

CHUNK_CHARS = 1 << 20  # 1 M characters per read: bounds the memory, whatever the file's size


def file_version(path: str | Path) -> str:
    """Short sha256 (12 hex digits) of the file's bytes: a checkpoint's version."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def utf8_chunks(path: str | Path, what: str = "text file", chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """The text of `path` in chunks, a BOM dropped and newlines normalised (universal newlines:
    CRLF and lone CR become LF, across chunk boundaries too); ModelError naming the file for a
    byte that is not UTF-8."""
    first = True
    offset = 0
    with open(path, "r", encoding="utf-8", newline=None) as f:
        while True:
            try:
                chunk = f.read(chunk_chars)
            except UnicodeDecodeError as exc:
                raise ModelError(
                    f"{what} {str(path)!r} is not valid UTF-8 (near character {offset}: {exc.reason})"
                ) from None
            if not chunk:
                return
            if first and chunk.startswith("\ufeff"):
                chunk = chunk[1:]
            first = False
            offset += len(chunk)
            yield chunk


def read_text_file(path: str | Path, what: str = "text file") -> str:
    """A whole UTF-8 text file (`utf8_chunks`); ModelError when it is missing, not a regular
    file, not UTF-8 or empty."""
    p = require_file(path, what)
    text = "".join(utf8_chunks(p, what))
    if not text.strip():
        raise ModelError(f"{what} {str(p)!r} is empty")
    return text
