"""Exact and near-duplicate detection over a whole corpus (pure, no I/O).

Method: MinHash over character 5-gram shingles of the folded text (lowercase, ё = е, letters and
digits only), 64 hash functions (multiply-shift) in 16 LSH bands of 4 rows. Posts sharing a band are
candidates, filtered by the signature's similarity estimate; a candidate pair counts as a near
duplicate when the exact Jaccard similarity of their shingle sets is at least the threshold (clean.near_duplicate_threshold, default 0.8). Hashing is vectorised with
numpy (rolling polynomial hash of code points): 6,300 real posts take about 2-3 s. Candidate pairs
come from one sort per band (no per-post bucket lists), and the index keeps no shingle sets: a
candidate's shingles are recomputed from its text, which the caller may read back from the database.
The first post (in the given order: oldest id first) of a group is kept, later ones are dropped.
"""
from __future__ import annotations

from collections import defaultdict
import hashlib
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from corpus.clean import fold_key

SHINGLE = 5
BANDS, ROWS = 16, 4
_rng = np.random.default_rng(20240601)
_A = _rng.integers(1, 1 << 63, size=BANDS * ROWS, dtype=np.uint64) | np.uint64(1)  # odd multipliers
_POWERS = np.array([pow(1_000_003, i, 1 << 64) for i in range(SHINGLE)], dtype=np.uint64)
_B = _rng.integers(0, 1 << 63, size=BANDS * ROWS, dtype=np.uint64)


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
    texts: Sequence[str], *, references: Sequence[str] = (), exact: bool = True, near: bool = True,
    threshold: float = 0.8, prior: Iterable[str] = (), prior_text: Callable[[int], str] | None = None,
) -> dict[int, str]:
    """Indexes of `texts` to drop, with the reason: 'generated' (equal or near to one of
    `references`, the bot's own output), 'duplicate' (same folded text as an earlier one),
    'near_duplicate' (Jaccard >= threshold with an earlier kept text). `prior`: texts already kept
    (earlier posts, e.g. the corpus before an import), compared against but never dropped; with
    `prior_text(k)` given, the k-th prior text is read back only when it is a candidate, so the
    index holds no texts (8 bytes of exact key + 256 bytes of MinHash signature per post)."""
    drop: dict[int, str] = {}
    owners: list[int] = []       # row -> -1 reference, -2 prior, else the index in `texts`
    slots: list[int] = []        # row -> index within its group
    sig_store = _Rows(BANDS * ROWS)
    need_sigs = near or len(references) > 0
    seen: dict[int, int] = {}    # exact key hash -> first row
    kept_prior: list[str] = []

    def add_row(owner: int, slot: int, key: str) -> None:
        owners.append(owner)
        slots.append(slot)
        sig_store.append(signature(shingles(key)).astype(np.uint32) if need_sigs else _EMPTY)

    for k, text in enumerate(references):
        key = fold_key(text)
        seen.setdefault(_key_hash("ref:" + key), len(owners))
        seen.setdefault(_key_hash(key), len(owners))
        add_row(-1, k, key)
    ref_rows = len(owners)
    for k, text in enumerate(prior):
        key = fold_key(text)
        seen.setdefault(_key_hash(key), len(owners))
        if prior_text is None:
            kept_prior.append(text)
        add_row(-2, k, key)
    text_start = len(owners)
    for i, text in enumerate(texts):
        key = fold_key(text)
        h = _key_hash(key)
        first = seen.get(h)
        if first is not None and (owners[first] == -1 or exact):
            drop[i] = "generated" if owners[first] == -1 else "duplicate"
        else:
            seen.setdefault(h, len(owners))
        add_row(i, i, key)
    if not (near or ref_rows) or len(owners) < 2:
        return drop
    sigs = sig_store.array()
    del sig_store
    bands = _BandIndex(sigs)

    def text_of(row: int) -> str:
        owner, slot = owners[row], slots[row]
        if owner == -1:
            return references[slot]
        if owner == -2:
            return kept_prior[slot] if prior_text is None else prior_text(slot)
        return texts[slot]

    cache: dict[int, np.ndarray] = {}

    def values(row: int) -> np.ndarray:
        if row not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[row] = shingles(fold_key(text_of(row)))
        return cache[row]

    for j in range(text_start, len(owners)):
        i_text = owners[j]
        if i_text in drop:
            continue
        cand = bands.earlier(j)
        if not cand.size:
            continue
        estimate = (sigs[cand] == sigs[j]).mean(axis=1)
        order = cand[np.argsort(-estimate, kind="stable")][: int((estimate >= threshold - 0.25).sum())]
        for r in order:
            owner = owners[r]
            if owner >= 0 and owner in drop:
                continue
            if owner != -1 and not near:
                continue
            if jaccard(values(j), values(int(r))) >= threshold:
                drop[i_text] = "generated" if owner == -1 else "near_duplicate"
                break
    return drop


_EMPTY = np.zeros(BANDS * ROWS, dtype=np.uint32)
_GROUP_CAP = 64  # a row is compared with at most this many earlier rows sharing one band


class _Rows:
    """A growable 2-D uint32 array (no per-row Python objects)."""

    def __init__(self, width: int) -> None:
        self.data = np.zeros((1024, width), dtype=np.uint32)
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros_like(self.data)])
        self.data[self.n] = row
        self.n += 1

    def array(self) -> np.ndarray:
        return self.data[:self.n]


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
