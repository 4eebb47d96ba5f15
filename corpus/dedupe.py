"""Exact and near-duplicate detection over a whole corpus (pure, no I/O).

Method: MinHash over character 5-gram shingles of the folded text (lowercase, ё = е, letters and
digits only), 64 hash functions (multiply-shift) in 16 LSH bands of 4 rows. Posts sharing a band are
candidates, filtered by the signature's similarity estimate; a candidate pair counts as a near
duplicate when the exact Jaccard similarity of their shingle sets is at least the threshold
(clean.near_duplicate_threshold, default 0.8). Hashing is vectorised with numpy (rolling polynomial
hash of code points): 6,300 real posts take about 2-3 s.

Memory: the index holds no texts and no Python object per post: per row an 8-byte hash of the
folded text (exact duplicates: one sort) and a 256-byte MinHash signature, then 12 bytes per row
and band for the candidate search (one sort per band). A candidate's shingles are recomputed from
its text, which the caller may read back from the database (`prior_text`, `text_at`).
The first post (in the given order: oldest id first) of a group is kept, later ones are dropped.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sized

import numpy as np

from corpus.rules import fold_key

SHINGLE = 5
BANDS, ROWS = 16, 4
_rng = np.random.default_rng(20240601)
_A = _rng.integers(1, 1 << 63, size=BANDS * ROWS, dtype=np.uint64) | np.uint64(1)  # odd multipliers
_POWERS = np.array([pow(1_000_003, i, 1 << 64) for i in range(SHINGLE)], dtype=np.uint64)
_B = _rng.integers(0, 1 << 63, size=BANDS * ROWS, dtype=np.uint64)
_GROUP_CAP = 64      # a row is compared with at most this many earlier rows sharing one band
_CACHE_ROWS = 4096   # shingle sets kept for rows compared more than once


def shingles(key: str) -> np.ndarray:
    """Unique 31-bit hashes of the character 5-grams of a folded key."""
    if len(key) < SHINGLE:
        key = key.ljust(SHINGLE, "_")
    codes = np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, SHINGLE)
    hashes = (windows * _POWERS).sum(axis=1) & np.uint64(0x7FFFFFFF)
    return np.unique(hashes)


def signature(values: np.ndarray) -> np.ndarray:
    """MinHash signature (BANDS * ROWS values) of a shingle-hash set."""
    return ((_A[:, None] * values[None, :] + _B[:, None]) >> np.uint64(32)).min(axis=1)  # multiply-shift


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter) if (a.size or b.size) else 1.0


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


def find_duplicates(
    texts: Iterable[str], *, references: Iterable[str] = (), exact: bool = True, near: bool = True,
    threshold: float = 0.8, prior: Iterable[str] = (), prior_text: Callable[[int], str] | None = None,
    text_at: Callable[[int], str] | None = None,
) -> dict[int, str]:
    """Indexes of `texts` to drop, with the reason: 'generated' (equal or near to one of
    `references`, the bot's own output), 'duplicate' (same folded text as an earlier one),
    'near_duplicate' (Jaccard >= threshold with an earlier kept text). `prior`: texts already kept
    (earlier posts, e.g. the corpus before an import), compared against but never dropped.
    `texts` and `prior` may be streams: with `prior_text(k)` / `text_at(k)` given, the k-th prior /
    new text is read back only when it is a candidate, so no text is held; otherwise they are kept
    (`texts` may simply be a list). A stream with a length (`len()`) sizes the index at once."""
    references = list(references)
    index = _Index(signatures=near or bool(references), expected=_expected(references, prior, texts))
    index.add_all(references, keep=False)
    kept_prior = index.add_all(prior, keep=prior_text is None)
    prior_end = index.n
    kept_texts = index.add_all(texts, keep=text_at is None)
    groups = _Groups(len(references), prior_end, index.n)
    drop = _exact_duplicates(index.hashes.array(), groups, exact)
    if not (near or groups.references) or groups.n < 2:
        return drop
    read = _Reader(groups, references.__getitem__, prior_text or kept_prior.__getitem__,
                   text_at or kept_texts.__getitem__)
    _near_duplicates(index.signatures.array(), groups, read, drop, near=near, threshold=threshold)
    return drop


def _expected(*parts: Iterable[str]) -> int:
    return sum(len(part) for part in parts if isinstance(part, Sized))


class _Growable:
    """A growable array of rows (`width` values each, or scalars when width is 0), no Python
    object per row."""

    def __init__(self, width: int, dtype, capacity: int) -> None:
        self.shape = (width,) if width else ()
        self.data = np.zeros((max(capacity, 1024), *self.shape), dtype=dtype)
        self.n = 0

    def append(self, row) -> None:
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros((len(self.data) // 2, *self.shape), self.data.dtype)])
        self.data[self.n] = row
        self.n += 1

    def array(self) -> np.ndarray:
        return self.data[:self.n]


class _Index:
    """Per row (references, then prior texts, then new texts): the hash of its folded text and,
    when near duplicates or references are looked for, its MinHash signature."""

    def __init__(self, *, signatures: bool, expected: int) -> None:
        self.hashes = _Growable(0, np.uint64, expected)
        self.signatures = _Growable(BANDS * ROWS, np.uint32, expected if signatures else 0)
        self.with_signatures = signatures
        self.n = 0

    def add_all(self, texts: Iterable[str], *, keep: bool) -> list[str]:
        """Index every text; the texts themselves when `keep`."""
        kept = []
        for text in texts:
            key = fold_key(text)
            self.hashes.append(_key_hash(key))
            if self.with_signatures:
                self.signatures.append(signature(shingles(key)).astype(np.uint32))
            if keep:
                kept.append(text)
            self.n += 1
        return kept


class _Groups:
    """Which input a row came from: rows [0, references) are references, [references, prior_end)
    prior texts, [prior_end, n) the new texts."""

    def __init__(self, references: int, prior_end: int, n: int) -> None:
        self.references, self.prior_end, self.n = references, prior_end, n

    def owner(self, row: int) -> int:
        """-1 for a reference, -2 for a prior text, else the index in `texts`."""
        if row < self.references:
            return -1
        return -2 if row < self.prior_end else row - self.prior_end


class _Reader:
    """A row's text (read back through the callers' readers), and its shingles, cached for rows
    compared more than once."""

    def __init__(self, groups: _Groups, reference: Callable[[int], str], prior: Callable[[int], str],
                 new: Callable[[int], str]) -> None:
        self.groups, self.reference, self.prior, self.new = groups, reference, prior, new
        self.cache: dict[int, np.ndarray] = {}

    def text(self, row: int) -> str:
        owner = self.groups.owner(row)
        if owner == -1:
            return self.reference(row)
        if owner == -2:
            return self.prior(row - self.groups.references)
        return self.new(owner)

    def shingles(self, row: int) -> np.ndarray:
        if row not in self.cache:
            if len(self.cache) > _CACHE_ROWS:
                self.cache.clear()
            self.cache[row] = shingles(fold_key(self.text(row))).astype(np.uint32)  # 31-bit values
        return self.cache[row]


def _exact_duplicates(hashes: np.ndarray, groups: _Groups, exact: bool) -> dict[int, str]:
    """New texts whose folded text equals an earlier row's: 'generated' when the first row with
    that text is a reference, 'duplicate' (with `exact`) otherwise."""
    _, first_index, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    first = first_index[inverse.ravel()]
    drop: dict[int, str] = {}
    for row in np.flatnonzero(first[groups.prior_end:] < np.arange(groups.prior_end, groups.n)) + groups.prior_end:
        is_reference = int(first[row]) < groups.references
        if is_reference or exact:
            drop[int(row) - groups.prior_end] = "generated" if is_reference else "duplicate"
    return drop


def _near_duplicates(sigs: np.ndarray, groups: _Groups, read: _Reader, drop: dict[int, str], *,
                     near: bool, threshold: float) -> None:
    """Add to `drop` the new texts near an earlier kept row: the band index gives candidates,
    the MinHash estimate orders and filters them, the exact Jaccard similarity decides."""
    bands = _BandIndex(sigs)
    for j in range(groups.prior_end, groups.n):
        i_text = groups.owner(j)
        if i_text in drop:
            continue
        cand = bands.earlier(j)
        if not cand.size:
            continue
        estimate = (sigs[cand] == sigs[j]).mean(axis=1)
        order = cand[np.argsort(-estimate, kind="stable")][: int((estimate >= threshold - 0.25).sum())]
        for r in order:
            owner = groups.owner(int(r))
            if (owner >= 0 and owner in drop) or (owner != -1 and not near):
                continue
            if jaccard(read.shingles(j), read.shingles(int(r))) >= threshold:
                drop[i_text] = "generated" if owner == -1 else "near_duplicate"
                break


class _BandIndex:
    """Per LSH band: the rows sorted by their band value, and for each row where its group of
    equal values starts. `earlier(j)`: rows before j sharing a band with j (at most _GROUP_CAP per
    band), found without any per-pair Python object. 12 bytes per row and band."""

    def __init__(self, sigs: np.ndarray) -> None:
        n = sigs.shape[0]
        self.order, self.position, self.start = [], [], []
        for b in range(BANDS):
            band = np.ascontiguousarray(sigs[:, b * ROWS:(b + 1) * ROWS])
            keys = band.view(np.dtype((np.void, band.dtype.itemsize * ROWS))).ravel()
            order = np.argsort(keys, kind="stable").astype(np.int32)
            sorted_keys = keys[order]
            new_group = np.ones(n, dtype=bool)
            new_group[1:] = sorted_keys[1:] != sorted_keys[:-1]
            starts = np.maximum.accumulate(np.where(new_group, np.arange(n, dtype=np.int32), 0)).astype(np.int32)
            position = np.empty(n, dtype=np.int32)
            position[order] = np.arange(n, dtype=np.int32)
            self.order.append(order)
            self.position.append(position)
            self.start.append(starts)

    def earlier(self, j: int) -> np.ndarray:
        parts = []
        for b in range(BANDS):
            p = int(self.position[b][j])
            g0 = int(self.start[b][p])
            if p > g0:
                parts.append(self.order[b][max(g0, p - _GROUP_CAP):p])
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)
