"""Preprocessing: torch-rnn's file contract, read back as its Lua loader would, and the text round-trip."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from model import preprocess as pp
from model.errors import ModelError
from tests.tiny_model import write_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_like_torch_rnn(h5_path, json_path):
    """What torch-rnn's DataLoader/LanguageModel read: the three datasets and idx_to_token."""
    with h5py.File(h5_path, "r") as f:
        assert set(f.keys()) >= {"train", "val", "test"}
        data = {k: f[k][()] for k in ("train", "val", "test")}
    vocab = json.loads(Path(json_path).read_text(encoding="utf-8"))
    return data, vocab


def decode(data, vocab):
    i2t = vocab["idx_to_token"]
    return "".join(i2t[str(int(i))] for k in ("train", "val", "test") for i in data[k])


def test_file_contract_and_round_trip(tmp_path):
    txt = write_corpus(tmp_path / "c.txt", 50)
    stats = pp.preprocess(txt, tmp_path / "c.h5", tmp_path / "c.json", val_frac=0.1, test_frac=0.2,
                          split="contiguous")
    data, vocab = read_like_torch_rnn(tmp_path / "c.h5", tmp_path / "c.json")
    text = txt.read_text(encoding="utf-8")
    n = len(text)
    assert [len(data[k]) for k in ("train", "val", "test")] == [n - int(0.1 * n) - int(0.2 * n), int(0.1 * n),
                                                                 int(0.2 * n)]
    assert all(d.dtype == np.uint8 for d in data.values())
    V = len(vocab["idx_to_token"])
    assert sorted(int(k) for k in vocab["idx_to_token"]) == list(range(1, V + 1))   # string keys, 1-based
    assert all(isinstance(v, int) for v in vocab["token_to_idx"].values())
    by_index = {int(k): v for k, v in vocab["idx_to_token"].items()}
    assert {vocab["token_to_idx"][t]: t for t in vocab["token_to_idx"]} == by_index
    all_ids = np.concatenate(list(data.values()))
    assert all_ids.min() >= 1 and all_ids.max() == V
    assert decode(data, vocab) == text   # contiguous split: train + val + test is the text
    assert stats["vocab_size"] == V and stats["total_chars"] == n


def test_cyrillic_and_emoji_are_single_tokens(tmp_path):
    (tmp_path / "c.txt").write_text("ЁЖИК 😀 🍞\nЯ👍🏽\n", encoding="utf-8")
    pp.preprocess(tmp_path / "c.txt", tmp_path / "c.h5", tmp_path / "c.json", 0, 0)
    _, vocab = read_like_torch_rnn(tmp_path / "c.h5", tmp_path / "c.json")
    tokens = set(vocab["token_to_idx"])
    assert {"Ё", "Ж", "Я", "😀", "🍞", "👍", "🏽"} <= tokens
    assert all(len(t) == 1 for t in tokens)


def test_uint32_above_255_tokens(tmp_path):
    chars = "".join(chr(0x4E00 + i) for i in range(300))
    (tmp_path / "c.txt").write_text(chars * 3, encoding="utf-8")
    pp.preprocess(tmp_path / "c.txt", tmp_path / "c.h5", tmp_path / "c.json")
    data, vocab = read_like_torch_rnn(tmp_path / "c.h5", tmp_path / "c.json")
    assert all(d.dtype == np.uint32 for d in data.values())
    assert len(vocab["idx_to_token"]) == 300
    assert decode(data, vocab) == chars * 3


@pytest.mark.parametrize("chunk", [7, 1 << 22])
def test_crlf_and_stray_cr_normalised_across_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(pp, "CHUNK_CHARS", chunk)
    raw = "ТЫ\r\n@\r\nЯ\r\rОН\rОНА\r\n\r\nПОСТ\r\n" * 5
    (tmp_path / "c.txt").write_bytes(raw.encode("utf-8"))
    pp.preprocess(tmp_path / "c.txt", tmp_path / "c.h5", tmp_path / "c.json")
    data, vocab = read_like_torch_rnn(tmp_path / "c.h5", tmp_path / "c.json")
    assert "\r" not in vocab["token_to_idx"]
    assert decode(data, vocab) == raw.replace("\r\n", "\n").replace("\r", "\n")


def test_bad_inputs(tmp_path):
    out = (tmp_path / "o.h5", tmp_path / "o.json")
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("ПРИВЕТ".encode("cp1251"))
    cases = {
        tmp_path / "empty.txt": "empty",
        tmp_path / "latin1.txt": "not valid UTF-8",
        tmp_path / "missing.txt": "does not exist",
        tmp_path: "is a directory",
    }
    for path, needle in cases.items():
        with pytest.raises(ModelError, match=needle) as ei:
            pp.preprocess(path, *out)
        assert "\n" not in str(ei.value) and str(path) in str(ei.value)
    assert not out[0].exists() and not out[1].exists()   # nothing written half-way
    with pytest.raises(ModelError, match="val_frac"):
        pp.preprocess(write_corpus(tmp_path / "c.txt", 5), *out, val_frac=1.5)


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_posts_split_keeps_each_post_whole_and_in_its_hash_split(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(pp, "CHUNK_CHARS", chunk)
    posts = [f"ПОСТ {i}\n@\nКОНЕЦ {i}" for i in range(300)]
    (tmp_path / "c.txt").write_text("\n\n".join(posts) + "\n\n", encoding="utf-8")
    stats = pp.preprocess(tmp_path / "c.txt", tmp_path / "c.h5", tmp_path / "c.json", 0.1, 0.1)
    assert stats["split"] == "posts" and sum(stats["posts"].values()) == 300
    data, vocab = read_like_torch_rnn(tmp_path / "c.h5", tmp_path / "c.json")
    i2t = vocab["idx_to_token"]
    got = {k: [p for p in "".join(i2t[str(int(i))] for i in data[k]).split("\n\n") if p] for k in data}
    for k in ("train", "val", "test"):
        expected = [p for p in posts if pp.post_split(p, 0.1, 0.1) == k]   # text order kept inside a split
        assert got[k] == expected and len(expected) == stats["posts"][k]
    assert 10 <= len(got["val"]) <= 50 and 10 <= len(got["test"]) <= 50
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert f.attrs["split"] == "posts"


def test_text_without_post_gaps_is_split_by_characters(tmp_path):
    (tmp_path / "c.txt").write_text("ОДНА ДЛИННАЯ СТРОКА БЕЗ ПУСТЫХ СТРОК\n" * 200, encoding="utf-8")
    stats = pp.preprocess(tmp_path / "c.txt", tmp_path / "c.h5", tmp_path / "c.json")
    n = stats["total_chars"]
    assert stats["split"] == "contiguous" and (stats["val"], stats["test"]) == (int(0.1 * n), int(0.1 * n))


def test_the_split_of_a_post_survives_new_posts_and_a_new_shuffle(tmp_path):
    """Two exports of a growing corpus, shuffled differently: no held-out post of the first is in
    the second's training split, and every post of the first keeps its split."""
    from corpus.db import open_db
    from corpus.export import export_training_text
    from corpus.store.posts import add_posts

    db = open_db(tmp_path / "db.sqlite3")
    rnd = __import__("random").Random(3)
    words = ["ТЫ", "ИДЁШЬ", "В", "ШКОЛУ", "МАМА", "ГОВОРИТ", "ХЛЕБ", "КУПИЛ", "ОПОЗДАЛ", "СМЕЮТСЯ"]

    def posts(n, start):
        return [{"source": "file", "text": "\n@\n".join(" ".join(rnd.choices(words, k=4)) + f" {start + i}"
                                                         for _ in range(3))} for i in range(n)]

    add_posts(db, posts(150, 0))
    export_training_text(db, tmp_path / "a.txt", seed=1)
    pp.preprocess(tmp_path / "a.txt", tmp_path / "a.h5", tmp_path / "a.json")
    add_posts(db, posts(150, 1000))
    export_training_text(db, tmp_path / "b.txt", seed=2)
    pp.preprocess(tmp_path / "b.txt", tmp_path / "b.h5", tmp_path / "b.json")

    def split_of(name):
        data, vocab = read_like_torch_rnn(tmp_path / f"{name}.h5", tmp_path / f"{name}.json")
        i2t = vocab["idx_to_token"]
        return {p: k for k in data for p in "".join(i2t[str(int(i))] for i in data[k]).split("\n\n") if p}

    first, second = split_of("a"), split_of("b")
    assert len(first) == 150 and len(second) == 300
    assert {p: second[p] for p in first} == first
    assert not {p for p, k in first.items() if k == "val"} & {p for p, k in second.items() if k == "train"}
    assert "val" in first.values() and "test" in first.values()
