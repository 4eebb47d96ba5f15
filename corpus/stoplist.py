"""The stop-list filter: configurable words and regular expressions that keep a text away from
moderators, the channel and the training corpus. Pure functions, no I/O.

The text is read the way a reader sees it, so that spelling tricks do not carry a listed word past
the filter: Unicode compatibility forms are composed (NFKC: an "ё" typed as "е" and a combining
diaeresis is "ё"), invisible format characters (a soft hyphen, zero-width spaces and joiners) are
dropped, case and ё are folded; and a second reading maps the Latin letters that look like Cyrillic
ones (a c e o p x y k m t h b) onto them, so "хеp" with a Latin p is "хер". Patterns are folded for
ё too (case is ignored anyway)."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from common.text import fold
from corpus.errors import CorpusError

# Latin letter -> the Cyrillic letter it looks like (lowercase: the reading is folded first)
LOOKALIKES = str.maketrans({"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "k": "к",
                            "m": "м", "t": "т", "h": "н", "b": "в"})


def reading(text: str) -> str:
    """`text` as the filter reads it: NFKC, without format characters, folded."""
    composed = unicodedata.normalize("NFKC", text)
    return fold("".join(ch for ch in composed if unicodedata.category(ch) != "Cf"))


class StopList:
    """Matches whole words (case-insensitive, ё = е, look-alike Latin letters read as Cyrillic)
    and regular expressions."""

    def __init__(self, words: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self.words = [w for w in (reading(w.strip()) for w in words) if w]
        compiled = []
        for pattern in patterns:
            try:
                regex = re.compile(pattern.replace("ё", "е").replace("Ё", "Е"), re.IGNORECASE)
            except re.error as exc:
                raise CorpusError(f"filter.patterns: invalid regular expression {pattern!r}: {exc}") from None
            if regex.search("") is not None:   # "спам|", "x?": it would match "" at a text's start
                raise CorpusError(f"filter.patterns: {pattern!r} matches empty text (a stray '|', '?' or '*'?)")
            compiled.append(regex)
        if self.words:
            alternatives = "|".join(re.escape(w) for w in sorted(self.words, key=len, reverse=True))
            compiled.append(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))
        self._patterns = compiled

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, text: str) -> str | None:
        """The first stop-listed fragment found in `text` (as the filter reads it), or None when
        the text is clean."""
        read = reading(text)
        for variant in dict.fromkeys((read, read.translate(LOOKALIKES))):
            for pattern in self._patterns:
                # the first non-empty match: a zero-width one ("" is falsy: clean to every caller) must
                # not end the search before the other patterns and the words are tried
                found = next((m.group(0) for m in pattern.finditer(variant) if m.group(0)), None)
                if found:
                    return found
        return None
