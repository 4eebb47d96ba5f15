"""Text -> torch-rnn's .h5 + .json, streaming (a corpus of hundreds of MB is never held twice).

File contract (as jcjohnson/torch-rnn's scripts/preprocess.py writes it):
- HDF5 datasets ``train``, ``val``, ``test``: 1-based token ids, ``uint8`` when the vocabulary has
  at most 255 tokens else ``uint32``; the split is contiguous (train, then val, then test).
- JSON ``{"idx_to_token": {"1": "a", ...}, "token_to_idx": {"a": 1, ...}}``.
Extras that torch-rnn ignores: h5 attributes ``fingerprint`` (sha256 of the normalised text) and
``format``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from model.errors import ModelError, require_file, require_writable_target
from model.vocab import Vocab

CHUNK_CHARS = 1 << 20  # 1 M characters per read: bounds the memory, whatever the corpus size


def _chunks(path: Path):
    """Yield normalised text chunks (universal newlines: CRLF and lone CR become LF)."""
    first = True
    offset = 0
    with open(path, "r", encoding="utf-8", newline=None) as f:
        while True:
            try:
                chunk = f.read(CHUNK_CHARS)
            except UnicodeDecodeError as exc:
                raise ModelError(
                    f"input text {str(path)!r} is not valid UTF-8 (near character {offset}: {exc.reason})"
                ) from None
            if not chunk:
                return
            if first and chunk.startswith("\ufeff"):
                chunk = chunk[1:]
            first = False
            offset += len(chunk)
            yield chunk


def split_sizes(total: int, val_frac: float, test_frac: float) -> tuple[int, int, int]:
    """torch-rnn's split: val and test are int(frac * total); train is the rest, first."""
    val = int(val_frac * total)
    test = int(test_frac * total)
    return total - val - test, val, test


def preprocess(input_txt, output_h5, output_json, val_frac: float = 0.1, test_frac: float = 0.1) -> dict:
    """Write ``output_h5`` and ``output_json`` from ``input_txt``; return statistics."""
    src = require_file(input_txt, "input text")
    out_h5 = require_writable_target(output_h5, "output h5")
    out_json = require_writable_target(output_json, "output json")
    for name, v in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not (isinstance(v, (int, float)) and 0.0 <= float(v) < 1.0):
            raise ModelError(f"{name}={v!r}: expected a number in [0, 1)")
    if val_frac + test_frac >= 1.0:
        raise ModelError(f"val_frac + test_frac = {val_frac + test_frac}: must be below 1")

    # pass 1: the character set and the length
    chars: set[str] = set()
    total = 0
    nonspace = False
    for chunk in _chunks(src):
        chars.update(chunk)
        total += len(chunk)
        nonspace = nonspace or bool(chunk.strip())
    if total == 0 or not nonspace:
        raise ModelError(f"input text {str(src)!r} is empty")
    vocab = Vocab.from_chars(chars)
    n_train, n_val, n_test = split_sizes(total, val_frac, test_frac)
    if n_train < 2:
        raise ModelError(f"input text {str(src)!r} is too short ({total} characters) for a training split")
    dtype = np.uint8 if len(vocab) <= 255 else np.uint32

    # pass 2: encode and write into the three datasets
    out_h5.parent.mkdir(parents=True, exist_ok=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    tmp_h5 = out_h5.with_name(out_h5.name + ".tmp")
    tmp_json = out_json.with_name(out_json.name + ".tmp")
    sha = hashlib.sha256()
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, total)}
    try:
        with h5py.File(tmp_h5, "w") as h5:
            dsets = {k: h5.create_dataset(k, shape=(b - a,), dtype=dtype) for k, (a, b) in bounds.items()}
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
            h5.attrs["fingerprint"] = sha.hexdigest()
            h5.attrs["format"] = "torch-rnn"
        tmp_json.write_text(json.dumps(vocab.to_json_dict(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp_h5, out_h5)
        os.replace(tmp_json, out_json)
    finally:
        for t in (tmp_h5, tmp_json):
            if t.exists():
                t.unlink()
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
    }
