"""Known-word decoding: the lexicon built at training time and stored in the checkpoint, a word
rolled back and resampled, reproducibility whatever shares the batch, old checkpoints."""
from __future__ import annotations

import json

import pytest
import torch

from common.text import fold
from model.checkpoint import add_lexicon, load_checkpoint, save_checkpoint, sidecar_path
from model.errors import ModelError
from model.sample import Generator
from model.sample_options import PRODUCT, TORCH_RNN, Decoding
from model.words import KnownWords, build_lexicon, words_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEXICON_ONLY = dict(words="known", dictionary="none")


def test_words_are_runs_of_letters_compared_without_case_or_yo():
    assert words_of("ТЫ ИДЁШЬ-ТО 2 РАЗА_В\n@\nДЕНЬ!") == ["ТЫ", "ИДЁШЬ", "ТО", "РАЗА", "В", "ДЕНЬ"]
    assert fold("ИДЁШЬ") == "идешь"
    lex = build_lexicon("ХЛЕБ хлеб Хлеб ЁЖ еж ЕЖ РАЗ раз", min_count=3)
    assert lex == {"min_count": 3, "words": ["еж", "хлеб"], "post_lines": [0, 1] + [0] * 29}
    known = KnownWords(lex["words"], dictionary="none")
    assert "ХЛЁБ" in known and "Ёж" in known and "РАЗ" not in known
    with pytest.raises(ModelError, match="min_count"):
        build_lexicon("x", min_count=0)


def test_the_russian_dictionary_knows_inflected_forms():
    known = KnownWords((), dictionary="ru")
    assert "ЗАКОНЧИЛСЯ" in known and "ИДЕШЬ" in known and "ИДЁШЬ" in known
    assert "КАБАЛЕТ" not in known and "ТАВТОР" not in known
    assert known.count("ТЫ ИДЕШЬ В ТАВТОР") == (3, 4)


def test_decoding_names_round_trip():
    for d in (Decoding("known", "ru"), Decoding("known", "none"), Decoding("known", "ru", "balanced"),
              Decoding("any", "none", "balanced"), PRODUCT, Decoding("known", "ru", "any", "agree")):
        assert Decoding.parse(d.name) == d
    assert Decoding("any", "ru").name == "any"
    assert Decoding("known", "ru", "balanced").name == "known/ru+quotes"
    assert PRODUCT.name == "known/ru+quotes+grammar+ends"
    # grammar needs known words and the dictionary: without them it is off, and named so
    assert Decoding("known", "none", "balanced", "agree").name == "known/none+quotes"
    assert Decoding("any", "ru", "any", "agree").name == "any"
    # names stored before quotes were balanced, or before grammar, regenerate without the rule
    assert Decoding.parse("known/ru") == Decoding("known", "ru", "any", "any")
    assert Decoding.parse("known/ru+quotes") == Decoding("known", "ru", "balanced", "any")
    assert Decoding.parse(None) == Decoding.parse("") == TORCH_RNN == Decoding("any", "none", "any", "any")
    for bad in ("known/xx", "known/ru+quote", "any+quotes+quotes", "known/ru+grammar+quotes", "known/none+grammar",
                "any+grammar"):
        with pytest.raises(ModelError, match="decoding"):
            Decoding.parse(bad)


def test_training_stores_the_lexicon_in_the_checkpoint(tiny_run):
    path = tiny_run[3].best_path
    ck = torch.load(path, weights_only=True)            # plain types only
    lex = ck["lexicon"]
    assert lex["min_count"] == 3
    assert {"магазин", "хлеб", "идешь", "надеваешь"} <= set(lex["words"])
    side = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    assert side["lexicon"] == {"min_count": 3, "word_count": len(lex["words"])}   # the sidecar only counts them


def _first_unknown_word_start(text: str, known) -> int | None:
    import re

    for m in re.finditer(r"[^\W\d_]+", text):
        if m.group() not in known:
            return m.start()
    return None


def test_an_unknown_word_is_rolled_back_and_resampled(tiny_generator):
    g = tiny_generator
    known = g.known_words("none")
    seeds = list(range(1, 25))
    raw = g.generate_samples(seeds, temperature=1.0)
    kept = g.generate_samples(seeds, temperature=1.0, **LEXICON_ONLY)
    rolled = 0
    for r, k in zip(raw, kept):
        cut = _first_unknown_word_start(r.text, known)
        if cut is None:             # nothing to roll back: the very same post
            assert k.text == r.text
            continue
        # the same random numbers up to the unknown word, then that word is sampled again
        assert k.text[:cut] == r.text[:cut] and k.text != r.text
        rolled += 1
    assert rolled >= 5
    assert all(r.known_share is not None for r in raw)   # measured for raw sampling too
    # with the Russian dictionary the soup of this barely trained model turns into known words
    share = lambda ss: sum(s.known_share * s.word_count for s in ss) / sum(s.word_count for s in ss)  # noqa: E731
    raw_ru = g.generate_samples(seeds, temperature=1.0, dictionary="ru")
    kept_ru = g.generate_samples(seeds, temperature=1.0, words="known", dictionary="ru")
    assert share(raw_ru) < 0.5 and share(kept_ru) > 0.85


def test_known_word_decoding_is_reproducible_whatever_shares_the_batch(tiny_generator):
    g = tiny_generator
    for opts in (LEXICON_ONLY, dict(words="known", dictionary="ru")):
        batch = g.generate(seeds=list(range(1, 13)), temperature=1.1, **opts)
        assert g.generate(seeds=[5], temperature=1.1, **opts)[0] == batch[4]
        alone = g.generate([99], temperature=1.1, **opts)[0]
        assert g.generate(seeds=[12, 5, 99, 3], temperature=1.1, **opts) == [batch[11], batch[4], alone, batch[2]]
        assert g.generate(seeds=list(range(1, 13)), temperature=1.1, **opts) == batch
        assert g.generate(seeds=[7], temperature=1.1, start_text="ТЫ ", **opts)[0].startswith("ТЫ")


def test_old_checkpoints_without_a_lexicon_still_load(tiny_run, tmp_path):
    ck = load_checkpoint(tiny_run[3].best_path)
    del ck["lexicon"]
    for k in ("format", "format_version"):
        ck.pop(k)
    old = save_checkpoint(tmp_path / "old.pt", ck)
    g = Generator.load(old)
    assert g.lexicon == ()
    # no lexicon and no dictionary: nothing to judge words by, so "known" samples like "any"
    s = g.generate_samples([1, 2, 3], temperature=1.0, **LEXICON_ONLY)
    assert [x.text for x in s] == g.generate([1, 2, 3], temperature=1.0)
    assert all(x.known_share is None for x in s)
    # with the dictionary alone, words are judged and rolled back
    assert all(x.known_share is not None for x in g.generate_samples([1], words="known", dictionary="ru"))
    # a lexicon added afterwards from the training text
    add_lexicon(old, build_lexicon(tiny_run[0].read_text(encoding="utf-8")))
    g2 = Generator.load(old)
    assert "магазин" in g2.lexicon and g2.version != g.version
    assert torch.load(old, weights_only=True)["lexicon"]["min_count"] == 3


def test_bad_decoding_options(tiny_generator):
    with pytest.raises(ModelError, match="words="):
        tiny_generator.generate([1], words="real")
    with pytest.raises(ModelError, match="dictionary="):
        tiny_generator.generate([1], words="known", dictionary="de")
