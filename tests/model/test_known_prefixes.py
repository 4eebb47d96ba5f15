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


def test_the_prefix_table_answers_as_known_words_do():
    """PrefixTable (the batch's view of KnownWords) gives prefix_ok's and `in`'s answers for every
    spelling, through its growth past its first allocation, with case and ё kept per state."""
    import numpy as np

    from model.words import PrefixTable

    known = KnownWords(("бугурт", "двач"), "ru")
    lower = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
    tokens = list("\n @,.") + list(lower) + list(lower.upper()) + ["xy"]
    table = PrefixTable(known, tokens)
    rng = random.Random(11)
    letters = [i for i, t in enumerate(tokens) if len(t) == 1 and t.isalpha()]
    words = ["бугурт", "БУГУРТ", "ёлка", "ЕЛКА", "двач", "пришедший", "шёпот"]
    spellings = [[tokens.index(c) for c in w] for w in words]
    spellings += [[rng.choice(letters) for _ in range(rng.randint(1, 6))] for _ in range(600)]
    states = np.zeros(len(spellings), dtype=np.int64)          # every spelling walked as one batch row
    alive = np.ones(len(spellings), dtype=bool)
    for k in range(max(map(len, spellings))):
        rows = np.array([i for i, s in enumerate(spellings) if alive[i] and k < len(s)], dtype=np.int64)
        if not len(rows):
            break
        nxt = table.step(states[rows], np.array([spellings[i][k] for i in rows]))
        for i, v in zip(rows.tolist(), nxt.tolist()):
            prefix = "".join(tokens[t] for t in spellings[i][:k + 1])
            assert (v != PrefixTable.DEAD) == known.prefix_ok(prefix), prefix
            if v == PrefixTable.DEAD:
                alive[i] = False
            else:
                states[i] = v
                assert table.prefixes[v] == prefix
    done = np.array([i for i in range(len(spellings)) if alive[i]])
    complete = table.complete(states[done])
    for i, c in zip(done.tolist(), complete.tolist()):
        assert c == ("".join(tokens[t] for t in spellings[i]) in known)
    assert len(table) > 256                                      # grew past its first allocation
    assert complete[:len(words)].all() and not alive.all()
