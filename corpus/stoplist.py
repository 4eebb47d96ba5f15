"""The stop-list filter: configurable words and regular expressions that keep a text away from
moderators, the channel and the training corpus. Pure functions, no I/O."""
from __future__ import annotations

import re
from collections.abc import Iterable

from common.text import fold
from corpus.errors import CorpusError


class StopList:
    """Matches whole words (case-insensitive, ё = е) and regular expressions."""

    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self.words = [w for w in (fold(w.strip()) for w in words) if w]
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise CorpusError(f"filter.patterns: invalid regular expression {pattern!r}: {exc}") from None
        if self.words:
            alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
            compiled.append(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))
        self._patterns = compiled

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, text: str) -> str | None:
        """The first stop-listed fragment found in `text`, or None when the text is clean."""
        folded = fold(text)
        for pattern in self._patterns:
            found = pattern.search(folded)
            if found:
                return found.group(0)
        return None
