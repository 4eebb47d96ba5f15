"""Text -> torch-rnn's .h5 + .json, streaming (a corpus of hundreds of MB is never held twice).

File contract (as jcjohnson/torch-rnn's scripts/preprocess.py writes it):
- HDF5 datasets ``train``, ``val``, ``test``: 1-based token ids, ``uint8`` when the vocabulary has
  at most 255 tokens else ``uint32``.
- JSON ``{"idx_to_token": {"1": "a", ...}, "token_to_idx": {"a": 1, ...}}``.
Extras that torch-rnn ignores: h5 attributes ``fingerprint`` (sha256 of the normalised text),
``format``, ``split`` and ``vocabulary`` (``Vocab.fingerprint`` of the .json written with it).

The split (``split="posts"``, the default): the text is cut into posts at its blank-line gaps, and
each post goes to train, val or test by a hash of its own text (``post_split``), keeping the order of
the text inside each split. So a post is in the same split in every export, whatever else the corpus
holds or however it is shuffled: a model is never validated on posts an earlier one trained on.
A text with too few posts for that (fewer than ``MIN_POSTS_PER_SPLIT`` expected in a held-out
split, or a "post" longer than ``MAX_POST_CHARS``) is split torch-rnn's way (``split="contiguous"``:
train, then val, then test, by characters); ``stats["split"]`` and the h5 attribute say which.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import h5py
import numpy as np

from common.files import atomic_path
from model.errors import ModelError, is_hdf5, json_object_with, make_folder, require_file, require_replaceable
from model.files import utf8_chunks
from model.vocab import Vocab

CHUNK_CHARS = 1 << 20  # 1 M characters per read: bounds the memory, whatever the corpus size
SPLITS = ("train", "val", "test")
GAP = re.compile(r"\n{2,}")      # a post ends at a blank-line gap (the gap belongs to the post before it)
MIN_POSTS_PER_SPLIT = 5          # the hash split needs this many posts expected in val and test
MAX_POST_CHARS = 1 << 20         # a longer "post" means the text has no post gaps: split by characters


def _chunks(path: Path):
    """The text in normalised chunks of CHUNK_CHARS characters (model.files.utf8_chunks)."""
    return utf8_chunks(path, "input text", CHUNK_CHARS)


def split_sizes(total: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """torch-rnn's split: val and test are int(frac * total); train is the rest, first."""
    val = int(val_frac * total)
    test = int(test_frac * total)
    return total - val - test, val, test


def post_split(post: str, val_frac: float, test_frac: float) -> str:
    """'train', 'val' or 'test' for one post, from a hash of its text alone (surrounding whitespace
    ignored): the same post lands in the same split in every export and on every machine."""
    digest = hashlib.sha256(post.strip().encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    return "val" if u < val_frac else "test" if u < val_frac + test_frac else "train"


def _units(chunks):
    """Yield the text as posts, each with the blank-line gap that follows it (the last one may lack
    it). Raises _NoPosts when a post outgrows MAX_POST_CHARS (the text has no gaps)."""
    carry = ""
    for chunk in chunks:
        buf = carry + chunk
        start = 0
        for m in GAP.finditer(buf):
            if m.end() == len(buf):      # the gap may go on in the next chunk
                break
            yield buf[start:m.end()]
            start = m.end()
        carry = buf[start:]
        if len(carry) > MAX_POST_CHARS:
            raise _NoPosts
    if carry:
        yield carry


class _NoPosts(Exception):
    pass


def _post_sizes(src: Path, val_frac: float, test_frac: float):
    """Characters and posts per split of the hash split, or None when the text is not made of posts."""
    sizes = dict.fromkeys(SPLITS, 0)
    posts = dict.fromkeys(SPLITS, 0)
    try:
        for unit in _units(_chunks(src)):
            k = post_split(unit, val_frac, test_frac)
            sizes[k] += len(unit)
            posts[k] += 1
    except _NoPosts:
        return None
    n = sum(posts.values())
    for k, frac in (("val", val_frac), ("test", test_frac)):
        if frac > 0 and (frac * n < MIN_POSTS_PER_SPLIT or posts[k] == 0):
            return None
    return sizes, posts


def _check_split_options(val_frac, test_frac, split: str) -> None:
    for name, v in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not (isinstance(v, (int, float)) and 0.0 <= float(v) < 1.0):
            raise ModelError(f"{name}={v!r}: expected a number in [0, 1)")
    if val_frac + test_frac >= 1.0:
        raise ModelError(f"val_frac + test_frac = {val_frac + test_frac}: must be below 1")
    if split not in ("posts", "contiguous"):
        raise ModelError(f"split={split!r}: expected 'posts' or 'contiguous'")


def _scan(src: Path) -> tuple[Vocab, int]:
    """The vocabulary of the text's characters and its length (ModelError when it is empty)."""
    chars: set[str] = set()
    total = 0
    nonspace = False
    for chunk in _chunks(src):
        chars.update(chunk)
        total += len(chunk)
        nonspace = nonspace or bool(chunk.strip())
    if total == 0 or not nonspace:
        raise ModelError(f"input text {str(src)!r} is empty")
    return Vocab.from_chars(chars), total


def preprocess(input_txt, output_h5, output_json, val_frac: float = 0.1, test_frac: float = 0.1,
               split: str = "posts") -> dict:
    """Write ``output_h5`` and ``output_json`` from ``input_txt``; return statistics.

    ``split``: "posts" (by a hash of each post, falling back to "contiguous" for a text without
    enough posts) or "contiguous" (torch-rnn's: train, then val, then test)."""
    src = require_file(input_txt, "input text")
    out_h5 = require_replaceable(output_h5, "output h5", "an HDF5 file", is_hdf5)
    out_json = require_replaceable(output_json, "output json", "a vocabulary JSON",
                                   json_object_with("idx_to_token", "token_to_idx"))
    if out_h5.resolve() == out_json.resolve():
        raise ModelError(f"output h5 and output json are the same file {str(out_h5)!r}: choose another path")
    _check_split_options(val_frac, test_frac, split)
    vocab, total = _scan(src)      # pass 1: the character set and the length
    by_posts = _post_sizes(src, val_frac, test_frac) if split == "posts" else None
    if by_posts is not None:
        sizes, post_counts = by_posts
        n_train, n_val, n_test = sizes["train"], sizes["val"], sizes["test"]
    else:
        n_train, n_val, n_test = split_sizes(total, val_frac, test_frac)
        post_counts = None
    used_split = "posts" if by_posts is not None else "contiguous"
    if n_train < 2:
        raise ModelError(f"input text {str(src)!r} is too short ({total} characters) for a training split")
    dtype = np.uint8 if len(vocab) <= 255 else np.uint32

    # pass 2: encode and write into the three datasets
    make_folder(out_h5.parent, "the output h5")
    make_folder(out_json.parent, "the output json")
    sha = hashlib.sha256()
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, total)}
    # the .h5 is renamed into place first, then the .json (atomic_path: temp files beside them)
    with atomic_path(out_json) as tmp_json, atomic_path(out_h5) as tmp_h5:
        with h5py.File(tmp_h5, "w") as h5:
            dsets = {k: h5.create_dataset(k, shape=(b - a,), dtype=dtype) for k, (a, b) in bounds.items()}
            if used_split == "posts":
                _write_posts(src, vocab, dtype, dsets, sha, val_frac, test_frac)
            else:
                _write_contiguous(src, vocab, dtype, dsets, bounds, sha)
            h5.attrs["fingerprint"] = sha.hexdigest()
            h5.attrs["format"] = "torch-rnn"
            h5.attrs["split"] = used_split
            h5.attrs["vocabulary"] = vocab.fingerprint   # the .json written beside it (model.splits.load_corpus)
        tmp_json.write_text(json.dumps(vocab.to_json_dict(), ensure_ascii=False), encoding="utf-8")
    return {
        "input_txt": str(src),
        "output_h5": str(out_h5),
        "output_json": str(out_json),
        "total_chars": total,
        "vocab_size": len(vocab),
        "train": n_train,
        "val": n_val,
        "test": n_test,
        "dtype": np.dtype(dtype).name,
        "fingerprint": sha.hexdigest(),
        "split": used_split,
        "posts": post_counts,
    }


def _write_contiguous(src: Path, vocab: Vocab, dtype, dsets: dict, bounds: dict, sha) -> None:
    pos = 0
    for chunk in _chunks(src):
        sha.update(chunk.encode("utf-8"))
        ids = (vocab.encode(chunk) + 1).astype(dtype)  # 1-based, like torch-rnn
        end = pos + len(ids)
        for k, (a, b) in bounds.items():
            lo, hi = max(a, pos), min(b, end)
            if lo < hi:
                dsets[k][lo - a:hi - a] = ids[lo - pos:hi - pos]
        pos = end
        del ids


def _write_posts(src: Path, vocab: Vocab, dtype, dsets: dict, sha, val_frac: float, test_frac: float) -> None:
    """Each post (with its gap) appended to its split; one write per split per ~CHUNK_CHARS."""
    pos = dict.fromkeys(SPLITS, 0)
    pending: dict[str, list[str]] = {k: [] for k in SPLITS}
    pending_chars = 0

    def flush() -> None:
        for k in SPLITS:
            if pending[k]:
                ids = (vocab.encode("".join(pending[k])) + 1).astype(dtype)
                dsets[k][pos[k]:pos[k] + len(ids)] = ids
                pos[k] += len(ids)
                pending[k] = []

    for unit in _units(_chunks(src)):
        sha.update(unit.encode("utf-8"))
        pending[post_split(unit, val_frac, test_frac)].append(unit)
        pending_chars += len(unit)
        if pending_chars >= CHUNK_CHARS:
            flush()
            pending_chars = 0
    flush()
