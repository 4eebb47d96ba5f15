"""KnownWords.prefix_ok walks the dictionary's DAWG on from the longest prefix it has seen; it must
answer as a walk from the root does, for every prefix, whatever order they are asked in."""
import random

from model.words import KnownWords, russian_dictionary


def _from_the_root(prefix: str) -> bool:
    """pymorphy3's DAWG walked from the root, е also read as ё (the reference answer)."""
    dct = russian_dictionary().dictionary.words.dct

    def follow(i: int, index: int) -> bool:
        if i == len(prefix):
            return True
        for ch in ("е", "ё") if prefix[i] == "е" else (prefix[i],):
            nxt = dct.follow_bytes(ch.encode("utf-8"), index)
            if nxt is not None and follow(i + 1, nxt):
                return True
        return False

    return follow(0, dct.ROOT)


def test_prefixes_agree_with_a_walk_from_the_root():
    words = ["ёлка", "елка", "пришедший", "бугурт", "вещество", "ещё", "еще", "сделаешь", "шёпот", "шепот"]
    rng = random.Random(5)
    letters = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
    noise = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 7))) for _ in range(300)]
    prefixes = [w[:i] for w in words for i in range(1, len(w) + 1)] + noise
    rng.shuffle(prefixes)                       # ancestors asked after, before, or never
    known = KnownWords((), "ru")
    answers = [known.prefix_ok(p) for p in prefixes]
    assert answers == [_from_the_root(p) for p in prefixes]
    assert known.prefix_ok("шёпо") and known.prefix_ok("ШЕПО") and not known.prefix_ok("ъъъ")
    assert True in answers and False in answers
