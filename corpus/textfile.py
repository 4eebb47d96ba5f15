"""Read a UTF-8 text file of posts separated by blank lines (the thin-slice import format), as a
stream: one post in memory at a time."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from corpus.errors import CorpusError
from corpus.inputs import DEFAULT_MAX_MB, check_input, utf8_chunks

# the longest post a file may hold: a buhurt is a few hundred characters (Telegram's limit is 4,096, VK's
# 16,384); a longer "post" is a file in another format, and growing it copied the line read so far per chunk
MAX_POST_CHARS = 1_000_000
_BLANK_RUN = re.compile(r"\n[ \t\u00a0]*\n(?:[ \t\u00a0]*\n)*")


def read_text(path: str | Path, max_mb: float = DEFAULT_MAX_MB) -> str:
    """The whole file's text with CRLF/CR normalised to LF (small files: configs, samples)."""
    return "".join(utf8_chunks(check_input(path, max_mb, what="UTF-8 text file")))


def split_posts(text: str) -> list[str]:
    """Posts are separated by one or more blank lines; surrounding whitespace is dropped."""
    posts = (chunk.strip("\n").rstrip() for chunk in _BLANK_RUN.split(text))
    return [post for post in posts if post.strip()]


def iter_posts(path: str | Path, max_mb: float = DEFAULT_MAX_MB) -> Iterator[str]:
    """The posts of the file, streamed; CorpusError when the file has none, or when a post grows past
    MAX_POST_CHARS (a file that is no posts separated by blank lines: a JSON dump on one line, one
    post a line), before it is held whole."""
    path = check_input(path, max_mb, what="UTF-8 text file")
    lines: list[str] = []
    size = line_number = 0   # the post's characters so far; lines read
    found = False
    rest = ""
    for chunk in utf8_chunks(path):
        parts = (rest + chunk).split("\n")
        rest = parts.pop()
        for line in parts:
            line_number += 1
            if line.strip(" \t\u00a0"):
                lines.append(line)
                size += len(line) + 1
            elif lines:
                found = True
                yield "\n".join(lines).rstrip()
                lines, size = [], 0
        if size + len(rest) > MAX_POST_CHARS:
            raise CorpusError(f"{path}: a post longer than {MAX_POST_CHARS:,} characters at line {line_number + 1}:"
                              " not a file of posts separated by blank lines; nothing imported")
    if rest.strip(" \t\u00a0"):
        lines.append(rest)
    if lines:
        found = True
        yield "\n".join(lines).rstrip()
    if not found:
        raise CorpusError(f"{path}: no posts found (expected posts separated by blank lines)")


def read_posts(path: str | Path, max_mb: float = DEFAULT_MAX_MB) -> list[str]:
    return list(iter_posts(path, max_mb))
