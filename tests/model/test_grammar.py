"""Decoding.grammar = "agree": words that cannot agree are taken back, short words are standalone
words, no letter touches a digit, and posts end where the community's end (model.grammar,
model.decoding)."""
from __future__ import annotations

import random
import re
from dataclasses import replace

import numpy as np
import pytest

from model.checkpoint import load_checkpoint, save_checkpoint
from model.decoding import EndOdds, GrammarTable, Rows, Tokens
from model.errors import ModelError
from model.grammar import Grammar
from model.sample import Generator
from model.sample_options import PRODUCT, Decoding, SampleRequest
from model.words import KnownWords, PrefixTable, build_lexicon, russian_dictionary

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LETTERS = [chr(c) for c in range(ord("А"), ord("Я") + 1)] + ["Ё"]
AGREE = dict(temperature=1.0, max_length=200, words="known", dictionary="ru", grammar="agree")
LOOSE = {**AGREE, "grammar": "any"}


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return Grammar(russian_dictionary())


SALAD = ["ТЫ", "ОН", "МЫ", "В", "НА", "ИДЁШЬ", "ИДЁТ", "ИДЕМ", "ДОМ", "ДОМЕ", "КРАСИВАЯ", "КРАСИВЫЙ", "НЕ",
         "ПРОСИТ", "ПРОСИШЬ", "МАГАЗИН", "ХЛЕБ", "ШАПКУ", "S7", "У4", "ОЗА", "ЗУ"]


@pytest.fixture(scope="module")
def babbler(tmp_path_factory) -> Generator:
    """A tiny model trained on word salad: real words (and a few fragments) in random order, one to
    six lines a post, so pronouns, prepositions, adjectives and verbs meet at random."""
    from model.preprocess import preprocess
    from model.train import train
    from tests.tiny_model import tiny_config

    work = tmp_path_factory.mktemp("babbler")
    rnd = random.Random(5)
    posts = ["\n@\n".join(" ".join(rnd.choice(SALAD) for _ in range(rnd.randint(2, 5)))
                           for _ in range(rnd.randint(1, 6))) for _ in range(400)]
    txt, h5, js = work / "salad.txt", work / "salad.h5", work / "salad.json"
    txt.write_text("\n\n".join(posts) + "\n", encoding="utf-8", newline="")
    preprocess(txt, h5, js)
    result = train(tiny_config(h5, js, work / "ck", max_iterations=150, checkpoint_every=50, learning_rate=0.01))
    return Generator.load(result.best_path)


def error_lines(grammar: Grammar, texts) -> list[str]:
    return [line for t in texts for line in t.split("\n") if grammar.line_errors(line)]


def test_the_rules_flag_what_russian_cannot_say_and_nothing_it_can(grammar):
    wrong = {"ТЫ ПРОСИТ ДЕНЕГ": ("ТЫ", "ПРОСИТ"), "ВЫ ИЩЕШЬ": ("ВЫ", "ИЩЕШЬ"), "В ДЕЛАЕШЬ": ("В", "ДЕЛАЕШЬ"),
             "НА РАБОТАЕТ": ("НА", "РАБОТАЕТ"), "ТЫ НЕ ЗАПИСЫВАЕТ": ("ТЫ", "ЗАПИСЫВАЕТ"),
             "ОНА ПОШЁЛ ДОМОЙ": ("ОНА", "ПОШЁЛ"), "КРАСИВАЯ ДОМ": ("КРАСИВАЯ", "ДОМ"), "НЕ НЕ ЗНАЮ": ("НЕ", "НЕ"),
             "С ПЕРВЫЙ РАЗА": ("С", "ПЕРВЫЙ"), "ДЕД ПРОСИШЬ": ("ДЕД", "ПРОСИШЬ"), "К ДОМОМ": ("К", "ДОМОМ")}
    for line, pair in wrong.items():
        assert pair in grammar.line_errors(line), line
    right = ["ТЫ ИДЁШЬ В МАГАЗИН", "Я ИДУ ДОМОЙ", "ОНА ПОШЛА ДОМОЙ", "В ОЧЕНЬ БОЛЬШОМ ДОМЕ", "ТВОЯ МАМА ГОВОРИТ",
             "ЗА ЧТО", "С НИМ", "ТОГО ПАРНЯ", "ДА ДА", "ЧУТЬ ЧУТЬ", "ТЫ ИДИ", "ДОМ СТРОИШЬ", "НАПОЛНЕННЫЙ ЛЮДЬМИ",
             "ТЫ, ПРОСИТ ОН",          # words apart (not one space between them) are not a pair
             "БАТЯ КРЯХТЫЖЕЕТ ТЕБЯ"]    # a word the dictionary does not know agrees with everything
    for line in right:
        assert grammar.line_errors(line) == [], line
    assert grammar.share("ТЫ ИДЁШЬ\n@\nВ ДЕЛАЕШЬ\n@\nТАМ ХЛЕБ") == pytest.approx(2 / 3)
    assert grammar.share("@") is None


def _feed(rows: Rows, tokens: list[str], texts: list[str]) -> list[list[int]]:
    """Feed each row its text character by character (one pick each); the positions in its text
    where the row was sent back."""
    backs: list[list[int]] = [[] for _ in texts]
    for i in range(max(map(len, texts))):
        active = np.array([r for r, t in enumerate(texts) if i < len(t)])
        ids = np.array([tokens.index(texts[r][i]) for r in active])
        _, back, _ = rows.feed(active, ids, np.zeros(len(active)), np.full(len(active), i + 1))
        for b in back.tolist():
            backs[int(active[b])].append(i)
    return backs


def test_a_word_that_cannot_agree_is_taken_back_and_one_that_can_is_kept(grammar):
    tokens = ["\n", " ", "@"] + LETTERS
    table = PrefixTable(KnownWords((), "ru", strict=True), tokens)
    request = SampleRequest(1.0, 200, 0, PRODUCT)
    texts = ["ТЫ ПРОСИТ ", "ТЫ ПРОСИШЬ ", "В ДЕЛАЕШЬ ", "В ДОМЕ ", "НЕ НЕ ", "ТЫ НЕ ПРОСИТ "]
    rows = Rows(len(texts), request, Tokens.of(tokens), table, GrammarTable(grammar, table))
    backs = _feed(rows, tokens, texts)
    assert backs == [[9], [], [9], [], [5], [12]]      # the last: ТЫ ... ПРОСИТ, looking through НЕ
    assert rows.length.tolist() == [3, 11, 2, 7, 3, 6]   # sent back to where the word began
    loose = Rows(len(texts), request, Tokens.of(tokens), table, None)   # grammar off: all kept
    assert _feed(loose, tokens, texts) == [[] for _ in texts]


def test_grammar_decoding_writes_no_line_the_rules_reject(babbler, grammar):
    seeds = range(1, 41)
    loose = babbler.generate_samples(seeds, **LOOSE)
    agreed = babbler.generate_samples(seeds, **AGREE)
    assert len(error_lines(grammar, [s.text for s in loose])) >= 10          # the babbler's soup disagrees
    assert error_lines(grammar, [s.text for s in agreed]) == []
    assert all(s.grammar == 1.0 for s in agreed if s.grammar is not None)
    assert any(s.grammar is not None and s.grammar < 1 for s in loose)
    assert sum(len(s.text) for s in agreed) > 0.5 * sum(len(s.text) for s in loose)   # it still writes


def test_grammar_decoding_is_the_same_whatever_shares_the_batch(babbler):
    batch = babbler.generate(range(1, 9), **AGREE)
    assert babbler.generate([5], **AGREE) == [batch[4]]
    assert babbler.generate([7, 5, 3], **AGREE) == [batch[6], batch[4], batch[2]]
    assert babbler.generate(range(1, 9), **AGREE) == batch                     # and again, tables warm


def test_fragments_are_not_words(babbler):
    strict = KnownWords((), "ru", strict=True)
    for fragment in ("ОЗА", "ЗУ", "S", "НЕК"):
        assert fragment not in strict
    assert "ОЗА" in KnownWords((), "ru")                                      # the plain rule knew it
    for word in ("У", "ТЫ", "ВОТ", "ТУТ", "ДВА", "ЗАКОНЧИЛСЯ"):
        assert word in strict
    assert "КОТ" in KnownWords(["кот"], "ru", strict=True)                   # the lexicon may know more
    assert build_lexicon("S7 S7 S7 S7 ЁЖ ЁЖ ЁЖ", 3)["words"] == ["еж"]         # S glued to a digit is no word
    loose = " ".join(babbler.generate(range(1, 41), **LOOSE))
    agreed = babbler.generate(range(1, 41), **AGREE)
    mixed = re.compile(r"[^\W\d_][0-9]|[0-9][^\W\d_]")
    assert mixed.search(loose) and not any(mixed.search(t) for t in agreed)
    short = [w for t in agreed for w in re.findall(r"[^\W\d_]+", t) if len(w) <= 3]
    assert short and all(w in babbler.known_words("ru", strict=True) for w in short)


def test_posts_end_where_the_community_s_end(babbler, tmp_path):
    odds = EndOdds([0, 10, 30, 60, 0])
    assert odds(np.array([1, 2, 3, 4, 9])).tolist() == pytest.approx([0.1, 30 / 90, 1.0, 1.0, 1.0])
    # a checkpoint whose community writes two-line posts: every post ends after its second line
    ck = load_checkpoint(babbler.path)
    lexicon = {"min_count": 3, "words": [], "post_lines": [0, 0, 100]}
    two = Generator.load(save_checkpoint(tmp_path / "two.pt", {**ck, "lexicon": lexicon}))
    loose = two.generate_samples(range(1, 31), **{**LOOSE, "max_length": 300})
    agreed = two.generate_samples(range(1, 31), **{**AGREE, "max_length": 300})

    def lines(text: str) -> int:
        return sum(1 for line in text.split("\n") if any(ch.isalnum() for ch in line))

    assert sum(lines(s.text) > 2 for s in loose) >= 10                       # the babbler's own posts run on
    assert all(s.reached_gap and lines(s.text) <= 2 for s in agreed)
    assert sum(lines(s.text) == 2 for s in agreed) >= 12


def test_the_gap_s_odds_rise_to_certainty_as_the_cap_nears(grammar):
    """After a line of text the post gap gets at least the community's odds of ending after that
    many lines, and, past CAP_NEAR of the length budget, odds rising to 1 at the cap; rows inside a
    line or after a blank line keep their own odds."""
    from model.decoding import CAP_NEAR

    tokens = ["\n", " ", "@", "А", "Б"]
    table = PrefixTable(KnownWords(["аб"], "none"), tokens)
    request = SampleRequest(0.7, 100, 0, PRODUCT)
    rows = Rows(4, request, Tokens.of(tokens), table, GrammarTable(grammar, table), EndOdds([0, 0, 10, 10]))
    rows.length[:] = [20, 95, 95, 20]
    rows.prev_nl[:] = [True, True, False, True]
    rows.ended_text[:] = [True, True, False, False]      # rows 0-1: a line of text just ended
    rows.lines[:] = [2, 2, 2, 2]
    lg = np.zeros((4, len(tokens)))
    lg[:, 3] = 6.0                                       # the model would much rather go on
    rules = rows.rules(np.arange(4))
    assert rules is not None
    x = lg.copy()
    rules(x)
    p = np.exp(x / 0.7 - (x / 0.7).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    near = (95 / 100 - CAP_NEAR) / (1 - CAP_NEAR)
    assert p[0, 0] == pytest.approx(0.5)                 # 10 of the 20 posts of 2 or more lines end at 2
    assert p[1, 0] == pytest.approx(near)                # near the cap: more than the community's odds
    assert (x[2:] == lg[2:]).all()                       # inside a line, after a blank line: untouched


def test_the_community_ending_replaces_the_model_s_odds_the_floor_only_raises_them(grammar):
    """ending "community": after a line of text the gap's probability is the community's odds, lower
    than the model's own included (0 where no post of the community ends); "floor" keeps the model's
    odds where they are higher."""
    tokens = ["\n", " ", "@", "А", "Б"]
    table = PrefixTable(KnownWords(["аб"], "none"), tokens)
    lg = np.zeros((3, len(tokens)))
    lg[:, 0] = 6.0                                       # the model would much rather end the post
    p = {}
    for ending in ("community", "floor"):
        request = SampleRequest(0.7, 100, 0, Decoding("known", "ru", "balanced", "agree", ending))
        rows = Rows(3, request, Tokens.of(tokens), table, GrammarTable(grammar, table), EndOdds([0, 0, 10, 10]))
        rows.length[:] = 20
        rows.prev_nl[:], rows.ended_text[:] = True, True
        rows.lines[:] = [2, 1, 3]                        # odds 0.5, 0 (no post ends after 1 line), 1
        x = lg.copy()
        rules = rows.rules(np.arange(3))
        assert rules is not None
        rules(x)
        q = np.exp(x / 0.7 - (x / 0.7).max(axis=1, keepdims=True))
        p[ending] = q / q.sum(axis=1, keepdims=True)
    assert p["community"][:, 0] == pytest.approx([0.5, 0.0, 1.0], abs=1e-6)
    assert (p["floor"][:2, 0] > 0.99).all()              # the model's own odds, higher than the floor


def test_the_community_ending_is_stored_as_its_own_name_and_changes_only_its_drafts(babbler):
    """PRODUCT's decoding ends posts at the community's odds and is stored as "+grammar+ends"; the
    name round-trips, and a draft stored as "+grammar" (the floor) regenerates as it was made."""
    assert PRODUCT.ending == "community" and PRODUCT.name == "known/ru+quotes+grammar+ends"
    for name in ("known/ru+quotes+grammar+ends", "known/ru+grammar+ends", "known/ru+quotes+grammar"):
        assert Decoding.parse(name).name == name
    with pytest.raises(ModelError, match="'\\+ends'"):
        Decoding.parse("known/ru+quotes+ends")           # the ending needs grammar
    floor = replace(PRODUCT, ending="floor")
    assert Decoding.parse("known/ru+quotes+grammar") == floor
    seeds = range(1, 13)
    same = babbler.generate(seeds, **AGREE, quotes="balanced")
    assert babbler.generate(seeds, SampleRequest(1.0, 200, 0, floor)) == same
    assert babbler.generate(seeds, SampleRequest(1.0, 200, 0, PRODUCT)) != same


def test_old_decodings_regenerate_as_they_were(babbler):
    """Drafts stored before grammar ("known/ru+quotes") regenerate without it; the new name with it."""
    from jobs.pool import stored_request

    draft = dict(temperature=1.0, max_length=200, top_k=0, start_text="")
    old = stored_request({**draft, "decoding": "known/ru+quotes"})
    new = stored_request({**draft, "decoding": "known/ru+quotes+grammar"})
    assert old.decoding == Decoding("known", "ru", "balanced", "any") and new.decoding == replace(PRODUCT,
                                                                                                    ending="floor")
    seeds = range(1, 9)
    assert babbler.generate(seeds, old) == babbler.generate(seeds, **LOOSE, quotes="balanced")
    assert babbler.generate(seeds, new) == babbler.generate(seeds, **AGREE, quotes="balanced")
    assert babbler.generate(seeds, old) != babbler.generate(seeds, new)


def test_the_screen_rejects_drafts_whose_lines_disagree(db):
    from corpus.stoplist import StopList
    from jobs.pool import Measures, ScreenOptions, screen

    text = "ТЫ ИДЁШЬ\n@\nВ ДЕЛАЕШЬ"
    assert screen(db, text, StopList([]), Measures(grammar=0.5)) == "grammar 50% of lines < 75%"
    assert screen(db, text, StopList([]), Measures(grammar=0.5),
                  screening=ScreenOptions(min_grammar=0.5)) is None
    assert screen(db, text, StopList([]), Measures(grammar=None)) is None     # unmeasured: no rule

