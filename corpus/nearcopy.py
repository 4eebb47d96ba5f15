"""Near-copies: the longest run of characters a text shares verbatim with a corpus post, found
through an index of hashed shingles instead of a scan of the corpus. Pure functions, no I/O; the
index itself lives in the database (corpus/store/shingles.py).

A corpus post is indexed by its SHINGLE-character substrings starting at every STEP-th position
(0, STEP, 2*STEP, ...); a text to check is hashed at every position. A run of L shared characters
covers at least one indexed shingle of the post whenever L >= SHINGLE + STEP - 1 (= GUARANTEED),
so every run that long is found, and measured exactly by extending the matching shingle both ways
in the two texts. Shorter runs are found only when they happen to cover an indexed shingle: below
GUARANTEED characters the measure is a lower bound (0 = no shared run of SHINGLE characters found).
The screen rejects from 60 characters (jobs/pool.py), well above GUARANTEED.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

SHINGLE = 24
STEP = 24
GUARANTEED = SHINGLE + STEP - 1


def shingle_hash(text: str) -> int:
    """A stable signed 64-bit hash (SQLite INTEGER) of a shingle; Python's hash() is salted per process."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def post_shingles(text: str) -> list[tuple[int, int]]:
    """(hash, position) of the shingles of a corpus post that go into the index."""
    last = len(text) - SHINGLE
    return [(shingle_hash(text[pos:pos + SHINGLE]), pos) for pos in range(0, last + 1, STEP)]


def text_shingles(text: str) -> dict[int, list[int]]:
    """hash -> every position of a text to check where that shingle starts."""
    found: dict[int, list[int]] = {}
    for pos in range(len(text) - SHINGLE + 1):
        found.setdefault(shingle_hash(text[pos:pos + SHINGLE]), []).append(pos)
    return found


def run_through(a: str, i: int, b: str, j: int) -> int:
    """Length of the longest common run of `a` and `b` through a[i] == b[j] (0 when they differ)."""
    if i >= len(a) or j >= len(b) or a[i] != b[j]:
        return 0
    start = 0
    while i - start - 1 >= 0 and j - start - 1 >= 0 and a[i - start - 1] == b[j - start - 1]:
        start += 1
    end = 0
    while i + end < len(a) and j + end < len(b) and a[i + end] == b[j + end]:
        end += 1
    return start + end


def longest_shared(text: str, hits: Iterable[tuple[int, int, int]], posts: Mapping[int, str]) -> tuple[int, int | None]:
    """(longest shared run, post id) over index hits (hash, post id, position in the post), with
    `posts` the candidate posts' texts. Hash collisions measure 0 and are ignored."""
    positions = text_shingles(text)
    best, best_post = 0, None
    for shingle, post_id, pos in hits:
        post = posts.get(post_id)
        if post is None:
            continue
        for i in positions.get(shingle, ()):
            length = run_through(text, i, post, pos)   # a run's cost: its length (<= the text's)
            if length > best:
                best, best_post = length, post_id
    return best, best_post


def longest_shared_with(text: str, posts: Mapping[int, str]) -> tuple[int, int | None]:
    """(longest run `text` shares verbatim with any of `posts` {id: text}, that post's id), through
    the same shingles as the corpus index, built here in memory (a channel's own posts)."""
    hits = [(shingle, post_id, pos) for post_id, post in posts.items() for shingle, pos in post_shingles(post)]
    return longest_shared(text, hits, posts)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (characters inserted, deleted or replaced) between two texts."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]

