"""The character vocabulary: one token per Unicode code point, torch-rnn's 1-based JSON layout.

Inside Python and in checkpoints, token ids are 0-based (``idx_to_token[i]`` is the token the model
calls ``i``); the .h5/.json files written by preprocess use torch-rnn's 1-based indices.
Tokens are sorted by code point, so the same set of characters always gives the same vocabulary.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import numpy as np

from model.errors import ModelError, require_file


class Vocab:
    """An ordered list of single-character tokens."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens: list[str] = list(tokens)
        for t in self.tokens:
            if not isinstance(t, str) or len(t) != 1:
                raise ModelError(f"vocabulary token {t!r} is not a single character")
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ModelError("vocabulary has duplicate tokens")
        # code points for vectorised encoding (only valid when tokens are sorted)
        self._codes = np.array([ord(t) for t in self.tokens], dtype=np.uint32)
        self._sorted = bool(np.all(self._codes[1:] > self._codes[:-1])) if len(self.tokens) > 1 else True

    @classmethod
    def from_chars(cls, chars: Iterable[str]) -> "Vocab":
        return cls(sorted(set(chars)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, ch: object) -> bool:
        return ch in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.tokens == self.tokens

    @property
    def fingerprint(self) -> str:
        """sha256 of the tokens in order: preprocess stores it in the .h5 (attribute ``vocabulary``), so
        an .h5 is never read with the .json of another corpus."""
        return hashlib.sha256("".join(self.tokens).encode("utf-8", "surrogatepass")).hexdigest()

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that are not tokens, in order of first appearance."""
        return [c for c in dict.fromkeys(text) if c not in self.index]

    def encode(self, text: str) -> np.ndarray:
        """0-based token ids (int64). Raises ModelError listing characters not in the vocabulary."""
        bad = self.missing(text)
        if bad:
            raise ModelError(f"characters not in the vocabulary: {format_chars(bad)}")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if self._sorted:
            return np.searchsorted(self._codes, codes).astype(np.int64)
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.tokens[int(i)] for i in ids)

    # torch-rnn JSON layout -------------------------------------------------------------
    def to_json_dict(self) -> dict:
        return {
            "idx_to_token": {str(i + 1): t for i, t in enumerate(self.tokens)},
            "token_to_idx": {t: i + 1 for i, t in enumerate(self.tokens)},
        }

    @classmethod
    def from_json_dict(cls, data: dict, source: str = "vocabulary") -> "Vocab":
        try:
            items = data["idx_to_token"]
            pairs = sorted((int(k), v) for k, v in items.items())
        except (KeyError, TypeError, AttributeError, ValueError):
            raise ModelError(f"{source}: key 'idx_to_token' missing or malformed") from None
        if [k for k, _ in pairs] != list(range(1, len(pairs) + 1)):
            raise ModelError(f"{source}: 'idx_to_token' keys are not 1..{len(pairs)}")
        return cls(v for _, v in pairs)

    @classmethod
    def load_json(cls, path: str | Path) -> "Vocab":
        p = require_file(path, "vocabulary json")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"vocabulary json {str(p)!r} is not valid JSON: {exc}") from None
        return cls.from_json_dict(data, source=f"vocabulary json {str(p)!r}")


def format_chars(chars: Iterable[str]) -> str:
    """Characters as a readable list: 'a', '\\n', 'Я' (U+042F)."""
    out = []
    for c in chars:
        out.append(f"{c!r} (U+{ord(c):04X})")
    return ", ".join(out)
