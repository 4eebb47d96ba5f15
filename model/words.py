"""Known words: a lexicon of the training text plus, for Russian, the OpenCorpora dictionary.

A word is a run of letters (``str.isalpha``: no digits, no underscore, no hyphen, so "КАКОЙ-ТО" is
two words). Words are compared case-insensitively with ё read as е (buhurts are written in capitals,
and ё is optional in Russian). The lexicon holds the words seen at least ``min_count`` times in the
training text; it is built when training and stored in the checkpoint as plain types
(``{"min_count": int, "words": [str, ...]}``), so ``torch.load(weights_only=True)`` still loads it.
The dictionary is pymorphy3's (pymorphy3-dicts-ru): it knows inflected forms the corpus never used,
while a community's slang comes from the lexicon.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from common.text import fold
from model.errors import ModelError
from model.sample_options import DICTIONARIES

WORD = re.compile(r"[^\W\d_]+")
STANDALONE = re.compile(r"(?<![\w])[^\W\d_]+(?![\w])")   # a word that touches no digit or underscore
SHORT = 3                 # strict known words: a word this short is known as the lexicon's or a standalone word
STANDALONE_POS = frozenset({"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "ADVB", "NUMR", "PRED"})
POST_LINES_CAP = 30       # the lexicon's histogram of lines per post: its last bin holds this many or more
DEFAULT_MIN_COUNT = 3
_CACHE_LIMIT = 200_000


def words_of(text: str) -> list[str]:
    return WORD.findall(text)


def build_lexicon(text: str, min_count: int = DEFAULT_MIN_COUNT) -> dict:
    """The checkpoint's lexicon of `text`: normalised words seen at least `min_count` times as words
    (not glued to a digit: "S7" makes no "S"), and the posts' lines of text (`post_lines`: how many
    posts have 0, 1, ... POST_LINES_CAP or more; posts are separated by a blank line), which sets
    where a post ends (model.decoding.EndOdds)."""
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ModelError(f"lexicon min_count={min_count!r}: expected an integer >= 1")
    counts = Counter(STANDALONE.findall(fold(text)))
    return {"min_count": min_count, "words": sorted(w for w, c in counts.items() if c >= min_count),
            "post_lines": post_lines(text)}


# Content lines per post of the real channel's posts (pool.txt, 6,321 posts; index = lines, capped at
# 30): the end odds of a checkpoint trained before it stored its own (model.checkpoint.upgrade).
DEFAULT_POST_LINES = (0, 23, 204, 484, 708, 796, 768, 678, 563, 422, 341, 269, 205, 159, 119, 87, 68, 50,
                      43, 28, 25, 18, 14, 9, 9, 6, 5, 4, 4, 3, 17)


def post_lines(text: str) -> list[int]:
    """How many of the text's posts (separated by blank lines) have k lines with a letter or digit."""
    hist = [0] * (POST_LINES_CAP + 1)
    for post in re.split(r"\n\s*\n", text):
        k = sum(1 for line in post.split("\n") if any(ch.isalnum() for ch in line))
        if k:
            hist[min(k, POST_LINES_CAP)] += 1
    return hist


def lexicon_from_ids(splits, tokens: list[str], min_count: int = DEFAULT_MIN_COUNT) -> dict:
    """`build_lexicon` over preprocessed splits (0-based id arrays, e.g. model.splits.load_splits)."""
    table = np.array(tokens, dtype=object)
    text = "\n".join("".join(table[a]) for a in splits.values() if len(a))
    return build_lexicon(text, min_count)


_analyzer = None


def russian_dictionary():
    """pymorphy3's MorphAnalyzer over the OpenCorpora dictionary, loaded once per process."""
    global _analyzer
    if _analyzer is None:
        try:
            import pymorphy3
        except ImportError as exc:   # a dependency of the package; only a broken install lacks it
            raise ModelError(f"sample.dictionary = \"ru\" needs pymorphy3 and pymorphy3-dicts-ru ({exc})") from None
        _analyzer = pymorphy3.MorphAnalyzer(lang="ru")
    return _analyzer


class KnownWords:
    """`word in known`: is this word in the lexicon or the dictionary (results cached); `strict`
    holds short words to the lexicon and the dictionary's standalone ones (`_in_dictionary`)."""

    def __init__(self, lexicon_words=(), dictionary: str = "ru", strict: bool = False) -> None:
        if dictionary not in DICTIONARIES:
            raise ModelError(f"dictionary={dictionary!r}: expected one of {', '.join(map(repr, DICTIONARIES))}")
        self.lexicon = frozenset(lexicon_words)
        self.dictionary = dictionary
        self.strict = strict
        self._morph = russian_dictionary() if dictionary == "ru" else None
        self._cache: dict[str, bool] = {}
        self._prefix_cache: dict[str, bool] = {}
        self._lexicon_prefixes: frozenset[str] | None = None
        self._dawg_cache: dict[str, tuple[int, ...]] = {}

    def prefix_ok(self, prefix: str) -> bool:
        """Can `prefix` (letters) still become a known word? False lets known-word decoding take a
        word back before it is finished."""
        p = fold(prefix)
        hit = self._prefix_cache.get(p)
        if hit is None:
            if self._lexicon_prefixes is None:
                self._lexicon_prefixes = frozenset(w[:i] for w in self.lexicon for i in range(1, len(w) + 1))
            hit = p in self._lexicon_prefixes or (self._morph is not None and bool(self._dawg_nodes(p)))
            if len(self._prefix_cache) >= _CACHE_LIMIT:
                self._prefix_cache.clear()
            self._prefix_cache[p] = hit
        return hit

    def _dawg_nodes(self, prefix: str) -> tuple[int, ...]:
        """The nodes of pymorphy3's dictionary DAWG that `prefix` leads to (е also read as ё); empty
        when no word form starts so. Walked on from the longest prefix already seen (known-word
        decoding asks for a word's prefixes one letter longer each time), not from the root."""
        cache = self._dawg_cache
        nodes = cache.get(prefix)
        if nodes is not None:
            return nodes
        assert self._morph is not None   # only asked with the dictionary loaded
        dct = self._morph.dictionary.words.dct
        i = max(0, len(prefix) - 1)
        while i > 0 and prefix[:i] not in cache:
            i -= 1
        nodes = cache[prefix[:i]] if i > 0 else (dct.ROOT,)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        for k in range(i, len(prefix)):
            found: list[int] = []
            for ch in ("е", "ё") if prefix[k] == "е" else (prefix[k],):
                step = ch.encode("utf-8")
                found.extend(n for n in (dct.follow_bytes(step, node) for node in nodes) if n is not None)
            nodes = tuple(dict.fromkeys(found))
            cache[prefix[:k + 1]] = nodes
        return nodes

    @property
    def empty(self) -> bool:
        return not self.lexicon and self._morph is None

    def __contains__(self, word: str) -> bool:
        w = fold(word)
        hit = self._cache.get(w)
        if hit is None:
            hit = w in self.lexicon or (self._morph is not None and self._in_dictionary(w))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[w] = hit
        return hit

    def _in_dictionary(self, w: str) -> bool:
        """Strict: a word of SHORT letters or fewer is a word only as one the dictionary lists
        standing alone (a preposition, pronoun, particle, ...: "У", "ТЫ", "ВОТ"), not as a form or an
        abbreviation of a longer one ("ОЗА", "ЗУ"); the lexicon may know others."""
        assert self._morph is not None
        if not self._morph.word_is_known(w):
            return False
        if not self.strict or len(w) > SHORT:
            return True
        return any(p.tag.POS in STANDALONE_POS and "Abbr" not in p.tag and p.score >= 0.01
                   for p in self._morph.parse(w))

    def count(self, text: str) -> tuple[int, int]:
        """(known words, words) of `text`."""
        ws = words_of(text)
        return sum(w in self for w in ws), len(ws)


class PrefixTable:
    """Known-word decoding's word prefixes as a table the whole batch reads at once: state 0 is the
    empty word; `step(states, tokens)` is each row's state after one more letter, or DEAD when no
    known word starts so (`KnownWords.prefix_ok`); `complete(states)`: is the word a known word.
    Rows and cells are filled as the batch first reaches them, so a state stands for one exact
    spelling (the answers are KnownWords', case and ё included). `tokens` is the model's vocabulary;
    only its one-letter tokens have a column."""

    UNSEEN, DEAD = -2, -1

    def __init__(self, known: KnownWords, tokens) -> None:
        self.known = known
        letters = [i for i, t in enumerate(tokens) if len(t) == 1 and t.isalpha()]
        self.column = np.full(len(tokens), -1, dtype=np.int64)
        self.column[letters] = np.arange(len(letters))
        self.letters = [tokens[i] for i in letters]
        self.prefixes = [""]
        self._next = np.full((256, max(1, len(letters))), self.UNSEEN, dtype=np.int32)
        self._word = np.full(256, self.UNSEEN, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.prefixes)

    def _add(self, prefix: str) -> int:
        s = len(self.prefixes)
        self.prefixes.append(prefix)
        if s == len(self._word):                    # grow by doubling
            self._next = np.concatenate([self._next, np.full_like(self._next, self.UNSEEN)])
            self._word = np.concatenate([self._word, np.full_like(self._word, self.UNSEEN)])
        return s

    def step(self, states, tokens):
        """The state after each of `tokens` (letters) from each of `states`; DEAD where no known word
        continues so."""
        cols = self.column[tokens]
        out = self._next[states, cols]
        for k in (out == self.UNSEEN).nonzero()[0].tolist():
            s, c = int(states[k]), int(cols[k])
            v = int(self._next[s, c])
            if v == self.UNSEEN:                    # not asked before (or earlier in this call)
                prefix = self.prefixes[s] + self.letters[c]
                v = self._add(prefix) if self.known.prefix_ok(prefix) else self.DEAD
                self._next[s, c] = v
            out[k] = v
        return out

    def complete(self, states):
        """Is each state's word a known word (bool array)."""
        w = self._word[states]
        for k in (w == self.UNSEEN).nonzero()[0].tolist():
            s = int(states[k])
            if self._word[s] == self.UNSEEN:
                self._word[s] = self.prefixes[s] in self.known
            w[k] = self._word[s]
        return w == 1
