"""Read a UTF-8 text file of posts separated by blank lines (the thin-slice import format)."""
from __future__ import annotations

import re
from pathlib import Path

from corpus.errors import CorpusError

_BLANK_RUN = re.compile(r"\n[ \t\u00a0]*\n(?:[ \t\u00a0]*\n)*")


def read_text(path: str | Path) -> str:
    """The file's text with CRLF/CR normalised to LF; clear errors for missing, dir, non-UTF-8."""
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a UTF-8 text file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path}: file not found") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_posts(text: str) -> list[str]:
    """Posts are separated by one or more blank lines; surrounding whitespace is dropped."""
    posts = (chunk.strip("\n").rstrip() for chunk in _BLANK_RUN.split(text))
    return [post for post in posts if post.strip()]


def read_posts(path: str | Path) -> list[str]:
    posts = split_posts(read_text(path))
    if not posts:
        raise CorpusError(f"{path}: no posts found (expected posts separated by blank lines)")
    return posts
