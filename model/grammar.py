"""Agreement of neighbouring words, by pymorphy3's parses (Decoding.grammar = "agree").

Four rules, each judging a word against the word before it on the same line (words joined by one
space; a particle or adverb between them, such as НЕ or ОЧЕНЬ, is looked through). A rule fires
only where no parse of the two words can explain them, so it flags what Russian cannot say, never
what it merely rarely says:

- pronoun and verb: a personal pronoun in the nominative (Я, ТЫ, ОН, МЫ, ...) before a word that
  can only be a finite verb must agree with it in person and number (present and future) or number
  and gender (past): "ТЫ ПРОСИТ", "ВЫ ИЩЕШЬ", "МЫ ПОШЁЛ";
- preposition and case: a preposition before a word that has no reading in a case the preposition
  governs (and none as an adverb, particle, conjunction, ...): "В ДЕЛАЕШЬ", "НА РАБОТАЕТ", "К ДОМОМ";
- adjective and noun: a word that can only be a full adjective (not a participle: participles govern
  objects, "НАПОЛНЕННЫЙ ЛЮДЬМИ") before a word that can
  only be a noun must share case and number with it, and gender in the singular: "С ПЕРВЫЙ ДЕВУШКОЙ";
- a function word doubled: "НЕ НЕ", "В В" (ДА, НЕТ, НУ, ВОТ and interjections may repeat, and so
  may content words, for emphasis).

Words the dictionary does not know (slang of the community's lexicon) agree with everything.
`Grammar.line_errors` is the measure (drafts.grammar: the share of lines without an error); the
decoder (model.decoding) asks the same questions through word classes: every word maps to the
class of its parses, and a pair of classes is judged once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from common.text import fold


CASES = {"nomn": "nomn", "gent": "gent", "gen2": "gent", "datv": "datv", "accs": "accs", "acc2": "accs",
         "ablt": "ablt", "loct": "loct", "loc2": "loct", "voct": "nomn"}
# the cases each preposition governs (a preposition not listed governs any case)
GOVERNS: dict[str, frozenset[str]] = {p: frozenset(c.split()) for p, c in {
    "в": "accs loct", "во": "accs loct", "на": "accs loct", "о": "accs loct", "об": "accs loct",
    "обо": "accs loct", "по": "datv accs loct", "с": "gent ablt", "со": "gent ablt", "к": "datv",
    "ко": "datv", "у": "gent", "от": "gent", "ото": "gent", "до": "gent", "из": "gent", "изо": "gent",
    "за": "accs ablt", "под": "accs ablt", "подо": "accs ablt", "над": "ablt", "надо": "ablt",
    "перед": "ablt", "передо": "ablt", "пред": "ablt", "без": "gent", "безо": "gent", "для": "gent",
    "при": "loct", "про": "accs", "через": "accs", "сквозь": "accs", "после": "gent", "около": "gent",
    "между": "ablt gent", "ради": "gent", "кроме": "gent", "вместо": "gent", "возле": "gent",
    "среди": "gent", "против": "gent", "вокруг": "gent", "мимо": "gent", "вдоль": "gent",
    "внутри": "gent", "из-за": "gent", "из-под": "gent ablt", "благодаря": "datv", "согласно": "datv",
    "навстречу": "datv", "вопреки": "datv",
}.items()}
# what may follow a preposition without a case: "В ОЧЕНЬ БОЛЬШОМ", "ЗА ЧТО", "НА ХУЙ" (a noun anyway)
FREE_AFTER_PREPOSITION = frozenset({"ADVB", "PRCL", "CONJ", "INTJ", "PRED", "COMP", "PREP", "NUMB"})
TRANSPARENT = frozenset({"ADVB", "PRCL"})       # looked through between a pronoun and its verb
REPEATS_IN_ERROR = frozenset({"PREP", "CONJ", "PRCL", "NPRO"})   # "НЕ НЕ", "В В", "ТЫ ТЫ"
# function words that repeat all the same; content words repeat for emphasis ("ТЫЩ ТЫЩ")
MAY_REPEAT = frozenset({"да", "нет", "ну", "вот", "ха", "еще", "что", "все", "чуть", "так", "как", "очень", "ой"})
RELATIVE = "котор"   # КОТОРОЙ ПРИЗНАНИЕ: a relative word agrees with what it refers to, not the next noun
MIN_SCORE = 0.01     # a reading rarer than this does not decide what a word before another is (НА as an
                     # interjection), though it may still explain the pair (ТОГО as masculine)
PERSONAL = frozenset({"1per", "2per", "3per"})
WORD_RE = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class Reading:
    """The grammemes of one parse that the rules look at."""

    pos: str | None
    case: str | None = None
    number: str | None = None
    gender: str | None = None
    person: str | None = None
    tense: str | None = None
    mood: str | None = None
    preposition: str = ""        # the preposition itself, for GOVERNS
    major: bool = True           # pymorphy3's estimate of its share is at least MIN_SCORE


UNKNOWN: tuple[Reading, ...] = ()   # class 0: a word the dictionary does not know


def _readings(morph, word: str) -> tuple[Reading, ...]:
    w = fold(word)
    if not morph.word_is_known(w):
        return UNKNOWN
    out = set()
    for p in morph.parse(w):
        t = p.tag
        if "Abbr" in t or "Init" in t:         # "В" as an abbreviation of a noun is not a reading
            continue
        s = lambda g: None if g is None else str(g)  # noqa: E731  (pymorphy's grammemes compare strictly)
        pos = "RELATIVE" if w.startswith(RELATIVE) else s(t.POS)
        out.add(Reading(pos, CASES.get(str(t.case)) if t.case else None, s(t.number), s(t.gender),
                        s(t.person), s(t.tense), s(t.mood), w if t.POS == "PREP" else "", p.score >= MIN_SCORE))
    return tuple(sorted(out, key=repr))


def _pronoun_verb(a: Reading, b: Reading) -> bool:
    if b.mood != "indc":                     # imperative ("ТЫ ИДИ"): a form of address, not a clash
        return True
    if b.tense == "past":
        if b.number != a.number:
            return False
        return b.number == "plur" or a.gender is None or b.gender is None or a.gender == b.gender
    return a.person == b.person and a.number == b.number


def _noun_verb(a: Reading, b: Reading) -> bool:
    if b.mood != "indc":
        return True
    if b.tense == "past":
        return b.number == a.number and (b.number == "plur" or b.gender is None or a.gender in (None, "ms-f", "GNdr")
                                         or a.gender == b.gender)
    return b.person == "3per" and b.number == a.number


def _adjective_noun(a: Reading, b: Reading) -> bool:
    if a.case != b.case or a.number is None or b.number is None:
        return a.case == b.case
    if a.number != b.number:
        return False
    return a.number == "plur" or a.gender is None or b.gender in (None, "ms-f", "GNdr") or a.gender == b.gender


def agree(left: tuple[Reading, ...], right: tuple[Reading, ...]) -> bool:
    """Can `right` follow `left` (the readings of two neighbouring words)?"""
    major = [r for r in left if r.major]
    if not major or not right:
        return True
    if all(r.pos == "NPRO" and r.case == "nomn" and r.person in PERSONAL for r in major) and \
            all(r.pos == "VERB" for r in right):
        return any(_pronoun_verb(a, b) for a in left for b in right if a.pos == "NPRO")
    if all(r.pos == "NOUN" and r.case == "nomn" for r in left) and all(r.pos == "VERB" for r in right):
        return any(_noun_verb(a, b) for a in left for b in right)
    if all(r.pos == "PREP" for r in major):
        if any(r.pos in FREE_AFTER_PREPOSITION for r in right):
            return True
        cases = {r.case for r in right if r.case}
        return any(not cases.isdisjoint(GOVERNS.get(a.preposition, cases)) for a in major)
    if all(r.pos == "ADJF" for r in major) and all(r.pos == "NOUN" for r in right):
        return any(_adjective_noun(a, b) for a in left if a.pos == "ADJF" for b in right)
    return True


class Grammar:
    """Words as classes of their readings, pairs of classes judged once (`agree`), and the
    measure of a text (`line_errors`, `share`)."""

    def __init__(self, morph) -> None:
        self.morph = morph
        self._class_of: dict[str, int] = {}
        self._word_id: dict[str, int] = {}
        self.readings: list[tuple[Reading, ...]] = [UNKNOWN]
        self._index: dict[tuple[Reading, ...], int] = {UNKNOWN: 0}
        self.transparent: list[bool] = [False]
        self._pairs: dict[tuple[int, int], bool] = {}

    def word_class(self, word: str) -> int:
        w = fold(word)
        k = self._class_of.get(w)
        if k is None:
            rs = _readings(self.morph, w)
            k = self._index.get(rs)
            if k is None:
                k = self._index[rs] = len(self.readings)
                self.readings.append(rs)
                self.transparent.append(bool(rs) and all(r.pos in TRANSPARENT for r in rs))
            self._class_of[w] = k
        return k

    def word_id(self, word: str) -> int:
        """A number per word (case and ё folded) for the doubled-word rule; -1 for a word that may repeat."""
        w = fold(word)
        i = self._word_id.get(w)
        if i is None:
            rs = self.readings[self.word_class(w)]
            major = [r.pos for r in rs if r.major]
            may = w in MAY_REPEAT or "INTJ" in major or not REPEATS_IN_ERROR.intersection(major)
            i = self._word_id[w] = -1 if may else len(self._word_id)
        return i

    def pair_ok(self, a: int, b: int) -> bool:
        """Can a word of class `b` follow one of class `a` (a < 0: nothing before it)?"""
        if a <= 0 or b <= 0:
            return True
        hit = self._pairs.get((a, b))
        if hit is None:
            hit = self._pairs[(a, b)] = agree(self.readings[a], self.readings[b])
        return hit

    def line_errors(self, line: str) -> list[tuple[str, str]]:
        """The pairs of words of `line` that break a rule, as (word before, word)."""
        errors = []
        left = prev = None          # the last word that is not looked through; the last word
        end = 0
        for m in WORD_RE.finditer(line):
            joined = m.start() - end == 1 and line[end] == " "
            if not joined:
                left = prev = None
            word = m.group()
            k, i = self.word_class(word), self.word_id(word)
            if prev is not None and i >= 0 and self.word_id(prev) == i:
                errors.append((prev, word))
            elif left is not None and not self.transparent[k] and not self.pair_ok(self.word_class(left), k):
                errors.append((left, word))
            if not self.transparent[k]:
                left = word
            prev, end = word, m.end()
        return errors

    def share(self, text: str) -> float | None:
        """The share of the text's lines with words that have no error (None: no such line)."""
        lines = [line for line in text.split("\n") if WORD_RE.search(line)]
        if not lines:
            return None
        return sum(not self.line_errors(line) for line in lines) / len(lines)
