"""Text comparison without case or ё: buhurts are written in capitals and ё is optional in Russian,
so the stop-list, the corpus rules and signatures, known words, grammar and the tune's word pairs
all compare words folded this one way. And VK's text without half emojis."""
from __future__ import annotations

import re

# half an emoji: VK's JSON may escape a lone surrogate ("\ud83d"), which no UTF-8 text (the database,
# an API request) can hold; json.loads joins an escaped pair into one character, so each one left is alone
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def fold(text: str) -> str:
    """`text` lowercased, with ё read as е."""
    return text.lower().replace("ё", "е")


def whole_characters(text: str) -> str:
    """`text` without lone surrogates (halves of emojis): what UTF-8 can hold."""
    return LONE_SURROGATE.sub("", text)
