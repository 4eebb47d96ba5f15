"""Batches from a torch-rnn .h5: each split is cut into B contiguous row streams, and batch i is
columns [i*T, (i+1)*T) of every row, so the hidden state carries from one batch to the next
(truncated backpropagation through time). Ids are converted from torch-rnn's 1-based to 0-based.
Under DDP, the train split is cut into world*B rows and each rank takes its own B.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import torch

from model.errors import ModelError, require_file
from model.vocab import Vocab

SPLITS = ("train", "val", "test")


def load_splits(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """Read the three splits (0-based int32 arrays) and the corpus fingerprint."""
    out, fp, _ = _read_h5(path)
    return out, fp


def _read_h5(path: str | Path) -> tuple[dict[str, np.ndarray], str, str | None]:
    """The splits, the corpus fingerprint and the vocabulary's (None: an .h5 preprocessed without it)."""
    p = require_file(path, "input h5")
    try:
        with h5py.File(p, "r") as h5:
            out = {}
            for k in SPLITS:
                if k not in h5:
                    raise ModelError(f"input h5 {str(p)!r} has no dataset {k!r}")
                a = h5[k][()]
                out[k] = a.astype(np.int32) - 1
            fp = h5.attrs.get("fingerprint")
            vocabulary = h5.attrs.get("vocabulary")
    except OSError as exc:
        raise ModelError(f"input h5 {str(p)!r} is not a readable HDF5 file: {exc}") from None
    if fp is None:
        h = hashlib.sha256()
        for k in SPLITS:
            h.update(out[k].tobytes())
        fp = h.hexdigest()
    return out, str(fp), None if vocabulary is None else str(vocabulary)


def load_corpus(h5_path: str | Path, json_path: str | Path) -> tuple[dict[str, np.ndarray], str, Vocab]:
    """`load_splits` and the vocabulary, checked to be one preprocessed pair: the .json written with
    the .h5 (its ids name that .json's characters; another corpus's .json would rename them)."""
    splits, fingerprint, vocabulary = _read_h5(h5_path)
    vocab = Vocab.load_json(json_path)
    top = max(int(a.max()) if len(a) else -1 for a in splits.values())
    low = min(int(a.min()) if len(a) else 0 for a in splits.values())
    if vocabulary is not None and vocabulary != vocab.fingerprint or top >= len(vocab) or low < 0:
        raise ModelError(f"input h5 {str(h5_path)!r} was preprocessed with another vocabulary than input json "
                         f"{str(json_path)!r}: use the .json `buhurt preprocess` wrote with it")
    return splits, fingerprint, vocab


class SplitBatcher:
    """Sequential TBPTT batches over one split."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_length: int, *, rank: int = 0,
                 world: int = 1, shrink: bool = False, name: str = "train") -> None:
        n = len(ids) - 1
        B, T = batch_size, seq_length
        if shrink:  # validation: fit whatever the split holds
            T = max(1, min(T, n))
            B = max(1, min(B, n // T)) if n >= 1 else 1
            world = 1
            rank = 0
        if shrink and n < 1:
            raise ModelError(f"the {name} split has {len(ids)} tokens: preprocess with a larger --val-frac "
                             f"or a larger corpus")
        if n < 1 or n < world * B * T:
            raise ModelError(
                f"the {name} split has {len(ids)} tokens: too few for batch_size={batch_size} x "
                f"seq_length={seq_length}{f' x {world} processes' if world > 1 else ''}; "
                f"use a larger corpus or smaller --batch-size/--seq-length"
            )
        cols = n // (world * B * T) * T         # columns per row
        used = world * B * cols
        x = torch.from_numpy(np.ascontiguousarray(ids[:used])).view(world * B, cols)
        y = torch.from_numpy(np.ascontiguousarray(ids[1:used + 1])).view(world * B, cols)
        self.x = x[rank * B:(rank + 1) * B].clone()
        self.y = y[rank * B:(rank + 1) * B].clone()
        self.batch_size, self.seq_length = B, T
        self.num_batches = cols // T

    def batch(self, i: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.seq_length
        sl = slice(i * T, (i + 1) * T)
        return (self.x[:, sl].to(device, torch.long, non_blocking=True),
                self.y[:, sl].to(device, torch.long, non_blocking=True))

    def chars_per_batch(self) -> int:
        return self.batch_size * self.seq_length


def split_text(h5_path: str | Path, json_path: str | Path, name: str = "val") -> str:
    """One split of a preprocessed corpus back as text (e.g. the held-out posts both models are scored on)."""
    splits, _, vocab = load_corpus(h5_path, json_path)
    if name not in splits:
        raise ModelError(f"split {name!r}: expected one of {', '.join(SPLITS)}")
    return vocab.decode(splits[name])
