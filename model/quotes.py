"""Balanced quotes (Decoding.quotes = "balanced"): a quote opened on a line closes on that line.

While a row has a " or a « open it may not end the line: the line end's probability goes to the
closing quote (" first, then »), so where the model would end the line it closes the quote; but a
quote does not close right after it opened (no empty «» or ""). With no « open, » gets probability
0, and so does a " right after a letter or digit with none open (it would close, not open, a quote).
The other characters keep their odds; the start text's last line counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPENING, CLOSING, STRAIGHT = "«", "»", '"'


def quotes_of(line: str) -> tuple[int, bool, bool]:
    """(« open, " open, a stray) at the end of `line`, as the rule counts them. A stray is a quote
    it would not write: a » with no « open, a " right after a letter or digit with none open (that
    closes, it opens nothing: it stays closed), or a quote closed right after it opened."""
    depth, straight, stray, prev = 0, False, False, ""
    for ch in line:
        if ch == OPENING:
            depth += 1
        elif ch == CLOSING:
            stray |= depth == 0 or prev == OPENING
            depth = max(0, depth - 1)
        elif ch == STRAIGHT:
            if straight:
                stray |= prev == STRAIGHT
                straight = False
            elif prev.isalnum():
                stray = True
            else:
                straight = True
        prev = ch
    return depth, straight, stray


def unbalanced_lines(text: str) -> list[str]:
    """The lines of `text` that the rule would not have written: a « or " left open, a » with no «
    before it, a " opening right after a letter or digit, an empty «» or ""."""
    return [line for line in text.split("\n") if any(quotes_of(line))]


@dataclass(frozen=True)
class QuoteIds:
    """The vocabulary's ids of the line end and the quotes, -1 for one it lacks (a « the vocabulary
    cannot close is not counted), and which tokens are letters or digits."""

    newline: int
    opening: int
    closing: int
    straight: int
    alnum: np.ndarray

    @classmethod
    def of(cls, tokens: list[str]) -> "QuoteIds":
        at = lambda t: tokens.index(t) if t in tokens else -1  # noqa: E731
        pair = OPENING in tokens and CLOSING in tokens
        return cls(at("\n"), at(OPENING) if pair else -1, at(CLOSING) if pair else -1, at(STRAIGHT),
                   np.array([t.isalnum() for t in tokens], dtype=bool))


class QuoteState:
    """Each row's open quotes on its current line, as arrays over the batch."""

    def __init__(self, ids: QuoteIds, n: int, start_text: str) -> None:
        self.ids = ids
        depth, straight, _ = quotes_of(start_text.rpartition("\n")[2])
        self.depth = np.full(n, depth if ids.opening >= 0 else 0, dtype=np.int64)   # « open
        self.straight = np.full(n, straight)                                           # a " open

    def mask(self, rows: np.ndarray, prev: np.ndarray, logits: np.ndarray) -> None:
        """Rewrite the active `rows`' logits (a float64 copy, one row each) in place: the characters
        a row may not pick get -inf, the line end's odds go to the closing quote. `prev`: each row's
        last character id, -1 at a line start."""
        ids = self.ids
        depth, straight = self.depth[rows], self.straight[rows]
        fresh = straight & (prev == ids.straight) if ids.straight >= 0 else np.zeros(len(rows), dtype=bool)
        if ids.opening >= 0:
            fresh |= prev == ids.opening                  # the quote just opened: it cannot close yet
        if ids.closing >= 0:
            logits[:, ids.closing][(depth == 0) | fresh] = -np.inf        # a column view
        if ids.straight >= 0:
            logits[:, ids.straight][(straight & fresh) | (~straight & (prev >= 0) & ids.alnum[prev])] = -np.inf
        if ids.newline >= 0:
            p = (((depth > 0) | straight) & ~fresh).nonzero()[0]
            if len(p):
                to = np.where(straight[p], ids.straight, ids.closing)
                logits[p, to] = np.logaddexp(logits[p, to], logits[p, ids.newline])
            logits[:, ids.newline][(depth > 0) | straight] = -np.inf

    def add(self, r: np.ndarray, t: np.ndarray) -> None:
        """Rows `r` wrote tokens `t`."""
        ids, newline = self.ids, t == self.ids.newline
        self.depth[r] = np.where(newline, 0, np.maximum(0, self.depth[r] + (t == ids.opening) - (t == ids.closing)))
        self.straight[r] = ~newline & (self.straight[r] ^ (t == ids.straight))
