"""Text comparison without case or ё: buhurts are written in capitals and ё is optional in Russian,
so the stop-list, the corpus rules and signatures, known words, grammar and the tune's word pairs
all compare words folded this one way."""
from __future__ import annotations


def fold(text: str) -> str:
    """`text` lowercased, with ё read as е."""
    return text.lower().replace("ё", "е")
