"""Check that the bundled sample corpus is original: no post shares RUN characters verbatim with a real corpus.

Every post (of the sample and of the real corpus) is put in the project's canonical form
(`corpus.rules.normalise`), then case-folded (lowercase, ё = е) so that a copy cannot hide behind
capitals. A sample post that shares a run of at least RUN (default 60) characters with any real post
is a hit: the script prints both posts' numbers and the longest shared run, and exits 1.
It also reports posts of the sample that are duplicates of each other (the same text after folding)
or share RUN characters with another sample post.

Usage: python scripts/check_sample_corpus.py [REAL_CORPUS ...] [--sample corpus/data/sample_corpus.txt] [--run 60]
REAL_CORPUS files are blank-line-separated posts (pool.txt); one that is absent is skipped with a message.
Exit status: 0 clean, 1 hits or duplicates found, 2 bad input.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.text import fold  # noqa: E402
from corpus.rules import normalise  # noqa: E402
from corpus.errors import CorpusError  # noqa: E402
from corpus.textfile import read_posts  # noqa: E402

DEFAULT_SAMPLE = ROOT / "corpus/data/sample_corpus.txt"
DEFAULT_RUN = 60


def canonical(post: str) -> str:
    """The project's normal form of a post, case-folded (ё = е)."""
    return fold(normalise(post))


@dataclass(frozen=True)
class Hit:
    sample_index: int   # 0-based post number in the sample
    other_index: int    # 0-based post number in the other corpus
    shared: str         # the longest run the two share (at least `run` characters)


def longest_common_run(a: str, b: str) -> str:
    """The longest substring of both `a` and `b` (dynamic programming; posts are short)."""
    best_len, best_end = 0, 0
    previous = [0] * (len(b) + 1)
    for i, char in enumerate(a, 1):
        current = [0] * (len(b) + 1)
        for j, other in enumerate(b, 1):
            if char == other:
                current[j] = previous[j - 1] + 1
                if current[j] > best_len:
                    best_len, best_end = current[j], i
        previous = current
    return a[best_end - best_len:best_end]


def _window_index(texts: list[str], run: int) -> dict[str, set[int]]:
    index: dict[str, set[int]] = {}
    for number, text in enumerate(texts):
        for start in range(len(text) - run + 1):
            index.setdefault(text[start:start + run], set()).add(number)
    return index


def shared_runs(sample: list[str], other: list[str], run: int = DEFAULT_RUN) -> list[Hit]:
    """Sample posts sharing >= `run` characters with a post of `other` (both already canonical).
    The sample's windows are indexed once; the other corpus is scanned window by window."""
    index = _window_index(sample, run)
    pairs: set[tuple[int, int]] = set()
    for number, text in enumerate(other):
        for start in range(len(text) - run + 1):
            found = index.get(text[start:start + run])
            if found:
                pairs.update((s, number) for s in found)
    return [Hit(s, o, longest_common_run(sample[s], other[o])) for s, o in sorted(pairs)]


def internal_overlaps(sample: list[str], run: int = DEFAULT_RUN) -> tuple[list[tuple[int, int]], list[Hit]]:
    """(exact duplicate pairs, other pairs of different posts sharing >= `run` characters) within the sample."""
    first_seen: dict[str, int] = {}
    duplicates = []
    for number, text in enumerate(sample):
        if text in first_seen:
            duplicates.append((first_seen[text], number))
        else:
            first_seen[text] = number
    duplicate_of = {later for _, later in duplicates}
    index = _window_index(sample, run)
    pairs = set()
    for numbers in index.values():
        if len(numbers) > 1:
            ordered = sorted(numbers)
            pairs.update((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:])
    near = [Hit(a, b, longest_common_run(sample[a], sample[b])) for a, b in sorted(pairs)
            if sample[a] != sample[b] and b not in duplicate_of]
    return duplicates, near


def _show(text: str) -> str:
    return text.replace("\n", " / ")


def check(sample_path: Path, real_paths: list[Path], run: int, out=sys.stdout) -> int:
    """Print the report; return the number of problems found (hits + duplicates + internal overlaps)."""
    sample = [canonical(p) for p in read_posts(sample_path)]
    print(f"{sample_path}: {len(sample)} posts, {sum(map(len, sample))} characters", file=out)
    problems = 0
    for real_path in real_paths:
        if not real_path.is_file():
            print(f"{real_path}: absent, skipped (no originality check against it)", file=out)
            continue
        real = [canonical(p) for p in read_posts(real_path)]
        hits = shared_runs(sample, real, run)
        print(f"{real_path}: {len(real)} posts; sample posts sharing >= {run} characters with one of them: "
              f"{len({h.sample_index for h in hits})}", file=out)
        for hit in hits:
            print(f"  HIT sample post {hit.sample_index + 1} ~ real post {hit.other_index + 1} "
                  f"({len(hit.shared)} chars): {_show(hit.shared)!r}", file=out)
        problems += len(hits)
    duplicates, near = internal_overlaps(sample, run)
    print(f"within the sample: {len(duplicates)} exact duplicates, {len(near)} pairs sharing >= {run} characters",
          file=out)
    for first, later in duplicates:
        print(f"  DUPLICATE sample post {later + 1} = post {first + 1}", file=out)
    for hit in near:
        print(f"  OVERLAP sample post {hit.other_index + 1} ~ post {hit.sample_index + 1} "
              f"({len(hit.shared)} chars): {_show(hit.shared)!r}", file=out)
    return problems + len(duplicates) + len(near)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", nargs="*", type=Path, help="real corpora (blank-line-separated posts, e.g. pool.txt)")
    parser.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="the sample corpus to check")
    parser.add_argument("--run", type=int, default=DEFAULT_RUN, help="shortest shared run that counts (characters)")
    args = parser.parse_args(argv)
    if args.run < 1:
        print(f"--run: {args.run} is not a positive number of characters", file=sys.stderr)
        return 2
    if not args.real:
        print("no real corpus given: only duplicates within the sample are checked")
    try:
        problems = check(args.sample, args.real, args.run)
    except CorpusError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("OK" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
