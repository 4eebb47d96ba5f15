"""Checks every imported file passes before it is read: a regular file (not /dev/zero, a pipe or
a folder), no larger than `corpus.max_import_mb`. And a UTF-8 reader that names the line of a bad
byte, so files are read as a stream instead of whole."""
from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from corpus.errors import CorpusError

DEFAULT_MAX_MB = 1024.0
CHUNK = 1 << 20


def check_input(path: str | Path, max_mb: float = DEFAULT_MAX_MB, *, what: str = "file") -> Path:
    """`path` when it is a readable regular file within the size limit; else CorpusError."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CorpusError(f"{path}: file not found") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise CorpusError(f"{path}: is a directory, expected a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise CorpusError(f"{path}: not a regular file (a device, pipe or socket); expected a {what}")
    limit = int(max_mb * 1024 * 1024)
    if info.st_size > limit:
        raise CorpusError(f"{path}: {info.st_size / 1024 / 1024:.1f} MB is larger than corpus.max_import_mb "
                          f"= {max_mb:g}; raise it in config.toml to import this file")
    if not os.access(path, os.R_OK):
        raise CorpusError(f"{path}: cannot read (permission denied)")
    return path


def utf8_chunks(path: Path) -> Iterator[str]:
    """The file's text in chunks (BOM dropped, CRLF/CR -> LF), decoded incrementally; a bad byte
    is reported with its offset."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    pending_cr = False
    first = True
    try:
        with path.open("rb") as handle:
            while True:
                data = handle.read(CHUNK)
                final = not data
                try:
                    text = decoder.decode(data, final=final)
                except UnicodeDecodeError as exc:
                    raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {offset + exc.start})") from None
                offset += len(data)
                if first and text:
                    text = text.removeprefix("\ufeff")
                    first = False
                if pending_cr:
                    text = "\r" + text
                pending_cr = text.endswith("\r") and not final
                if pending_cr:
                    text = text[:-1]
                if text:
                    yield text.replace("\r\n", "\n").replace("\r", "\n")
                if final:
                    return
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
