"""Boilerplate learned from a community's own posts (pure, no I/O).

A community's suggestion bot, its link line or its admin's sign-off shows up as the same line at
the start or the end of many posts. A line is a candidate when it lies outside the buhurt itself:
at the end, the lines after the punchline (the line right after the last "@"); at the start, the
lines before the opening line (the last line before the first "@"). Lines are compared by
`line_key`: lowercase, ё = е, @mentions left out, URLs as a placeholder, single spaces, no punctuation at
either end. A key seen in at least `min_posts` posts and in `min_share` of the community's posts
with separators is a signature. Nothing here knows any channel: the defaults (5 posts, 2%) were
chosen on two real export pages and a made-up channel in the tests.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from common.text import fold

_MENTION = re.compile(r"(?<![\w@])@\w+")
_URL_ANY = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_EDGE_PUNCT = re.compile(r"^[^\w‹]+|[^\w›]+$")


def line_key(line: str) -> str:
    """The form two lines are compared in."""
    key = fold(line)
    key = _URL_ANY.sub("‹url›", key)
    key = _MENTION.sub(" ", key)
    key = " ".join(key.split())
    return _EDGE_PUNCT.sub("", key) if key not in ("@",) else key


def _separator_positions(lines: list[str]) -> tuple[int, int]:
    seps = [i for i, line in enumerate(lines) if line == "@"]
    return (seps[0], seps[-1]) if seps else (-1, -1)


def candidates(text: str) -> tuple[set[str], set[str]]:
    """(start keys, end keys) of one normalised, link-resolved post."""
    lines = text.split("\n") if text else []
    first, last = _separator_positions(lines)
    if first < 0:
        return set(), set()
    start = {line_key(line) for line in lines[:max(0, first - 1)]}
    end = {line_key(line) for line in lines[last + 2:]}
    return {k for k in start if k}, {k for k in end if k}


@dataclass
class SignatureLearner:
    """Counts candidate lines over a community's posts (feed it one post at a time)."""

    posts: int = 0
    start: Counter = field(default_factory=Counter)
    end: Counter = field(default_factory=Counter)

    def add(self, text: str) -> None:
        start, end = candidates(text)
        if "\n@\n" in f"\n{text}\n":
            self.posts += 1
        self.start.update(start)
        self.end.update(end)

    def signatures(self, *, min_posts: int = 5, min_share: float = 0.02, patterns: Iterable[str] = (),
                   keep: Iterable[str] = ()) -> "Signatures":
        floor = max(min_posts, min_share * self.posts)
        kept = {line_key(k) for k in keep}
        pick = lambda c: {k: n for k, n in c.items() if n >= floor and k not in kept}  # noqa: E731
        return Signatures(pick(self.start), pick(self.end), [re.compile(p, re.I) for p in patterns], kept)


@dataclass
class Signatures:
    start: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)
    patterns: list[re.Pattern] = field(default_factory=list)
    keep: set[str] = field(default_factory=set)

    def _match(self, line: str, table: dict[str, int]) -> bool:
        key = line_key(line)
        if not key or key in self.keep:
            return False
        return key in table or any(p.search(key) for p in self.patterns)

    def strip(self, text: str) -> tuple[str, int]:
        """`text` without its signature lines at either end (a separator left dangling goes too);
        (text, lines removed)."""
        lines = text.split("\n") if text else []
        removed = 0
        while lines and (self._match(lines[-1], self.end) or (removed and lines[-1] == "@")):
            removed += lines.pop() != "@"
        head = 0
        while head < len(lines) and (self._match(lines[head], self.start) or (head and lines[head] == "@")):
            head += 1
        return "\n".join(lines[head:]), removed + head

    def lines(self) -> list[tuple[str, str, int]]:
        """(where, key, posts) of every learned signature, most frequent first."""
        rows = [("end", k, n) for k, n in self.end.items()] + [("start", k, n) for k, n in self.start.items()]
        return sorted(rows, key=lambda r: (-r[2], r[0], r[1]))
