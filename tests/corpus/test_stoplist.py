"""The stop-list reads a text as a reader sees it: spelling tricks do not carry a listed word past it."""
import unicodedata

import pytest

from corpus.errors import CorpusError
from corpus.stoplist import StopList


def test_whole_words_case_and_yo_folded():
    stop = StopList(words=["Ёлка"])
    assert stop.match("ПОКУПАЕШЬ ЕЛКУ И ЁЛКА ГОРИТ") == "елка"
    assert stop.match("ЁЛКИ-ПАЛКИ") is None            # another form is another word
    assert stop.match("ПЕРЕЁЛКАМИ") is None          # a whole word only


def test_a_pattern_with_yo_matches_both_spellings():
    stop = StopList(patterns=[r"ёб\w*"])
    assert stop.match("НУ ЁБАНЫЙ СТЫД") == "ебаный"
    assert stop.match("ну ебаный стыд") == "ебаный"


def test_a_decomposed_yo_is_the_letter():
    stop = StopList(words=["ёлка"])
    assert stop.match(unicodedata.normalize("NFD", "ёлка горит")) == "елка"


@pytest.mark.parametrize("text", ["хе\u00adр тебе", "хе\u200bр тебе", "х\u200dер тебе"])
def test_invisible_characters_inside_a_word_are_read_through(text):
    assert StopList(words=["хер"]).match(text) == "хер"


@pytest.mark.parametrize("text", ["хеp тебе", "XEP ТЕБЕ", "ХЕР ТЕБЕ"])
def test_latin_look_alikes_read_as_cyrillic(text):
    assert StopList(words=["хер"]).match(text) == "хер"


def test_fullwidth_and_compatibility_forms_are_composed():
    assert StopList(patterns=[r"\berid\b"]).match("ＥＲＩＤ: 123") == "erid"


def test_clean_text_and_latin_words_pass():
    stop = StopList(words=["хер"], patterns=[r"\berid\b"])
    assert stop.match("ТЫ ИДЁШЬ В МАГАЗИН ЗА ХЛЕБОМ") is None
    assert stop.match("HELLO WORLD") is None
    assert not StopList()


def test_an_invalid_pattern_is_one_line_naming_it():
    with pytest.raises(CorpusError, match=r"filter.patterns: invalid regular expression '\(ёб'"):
        StopList(patterns=["(ёб"])


@pytest.mark.parametrize("pattern", ["спам|", "(реклама)?", "x*", ""])
def test_a_pattern_matching_empty_text_is_refused_in_one_line(pattern):
    # it matched "" at the text's start: match() returned "", which every caller reads as clean, and
    # the patterns after it and the words were never tried (a typo'd `"спам|"` let "ЖОПА" through)
    with pytest.raises(CorpusError, match="filter.patterns: .*matches empty text"):
        StopList(words=["жопа"], patterns=[pattern])


def test_a_zero_width_match_does_not_hide_a_listed_word():
    stop = StopList(words=["жопа"], patterns=[r"(?=\d)"])   # zero-width only: never a fragment
    assert stop.match("1 ЖОПА") == "жопа"
    assert stop.match("ЖОПА 1") == "жопа"
