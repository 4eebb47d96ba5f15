"""The near-copy index's cost against the corpus size: time to screen one draft (the longest run it
shares verbatim with any corpus post), the index's size in the database, and the time to build it,
against a scan of the whole corpus per draft measured in the same run.

    nice -n 5 .venv/bin/python benchmarks/near_copy.py [--corpus ../shared/data/bugurtthread/pool.txt]

Drafts are held-out posts of the same corpus (never stored), half of them with a 90-character piece
of a stored post spliced in (a near-copy the screen must catch). Skips with a message when the
corpus file is absent.
"""
from __future__ import annotations

import argparse
import difflib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.db import open_db  # noqa: E402
from corpus.nearcopy import GUARANTEED  # noqa: E402
from corpus.store.posts import add_posts  # noqa: E402
from corpus.store.shingles import index_size, longest_shared_run, reindex_all  # noqa: E402
from corpus.textfile import read_posts  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "bugurtthread" / "pool.txt"


def index_bytes(db) -> int:
    return db.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat"
                      " WHERE name IN ('post_shingles', 'post_shingles_post')").fetchone()[0]


def scan(posts: list[str], text: str) -> int:
    """The baseline: the longest shared run against every post, without an index."""
    best = 0
    for post in posts:
        m = difflib.SequenceMatcher(None, text, post, autojunk=False)
        best = max(best, m.find_longest_match(0, len(text), 0, len(post)).size)
    return best


def drafts_for(stored: list[str], held_out: list[str], n: int, rnd: random.Random) -> list[str]:
    out = []
    for i in range(n):
        text = held_out[i % len(held_out)][:500]
        if i % 2:
            source = rnd.choice([p for p in stored if len(p) >= 100])
            start = rnd.randint(0, len(source) - 90)
            cut = len(text) // 2
            text = (text[:cut] + "\n" + source[start:start + 90] + "\n" + text[cut:])[:500]
        out.append(text)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT)
    parser.add_argument("--drafts", type=int, default=200, help="drafts screened per corpus size")
    parser.add_argument("--scan-drafts", type=int, default=4, help="drafts checked by the full scan")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"skipped: {args.corpus} is absent")
        return 0
    posts = read_posts(args.corpus)
    rnd = random.Random(1)
    rnd.shuffle(posts)
    held_out, pool = posts[:300], posts[300:]
    print(f"corpus {args.corpus.name}: {len(posts)} posts ({len(pool)} stored at most, 300 held out as drafts); "
          f"loadavg {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'posts':>6} {'chars':>9} {'rows':>7} {'index KiB':>9} {'B/char':>6} {'build s':>7} "
          f"{'import s':>8} {'ms/draft':>8} {'scan ms':>8} {'ratio':>7} {'caught':>7}")
    sizes = [n for n in (500, 1000, 2000, 4000) if n < len(pool)] + [len(pool)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            stored = pool[:n]
            db = open_db(Path(tmp) / f"bench{n}.sqlite3")
            started = time.perf_counter()
            add_posts(db, ({"source": "file", "text": p} for p in stored))   # with the index hook
            imported = time.perf_counter() - started
            started = time.perf_counter()
            with db.atomic():
                reindex_all(db)
            build = time.perf_counter() - started
            drafts = drafts_for(stored, held_out, args.drafts, rnd)
            started = time.perf_counter()
            found = [longest_shared_run(db, d)[0] for d in drafts]
            per_draft = (time.perf_counter() - started) / len(drafts)
            caught = sum(1 for i, f in enumerate(found) if i % 2 and f >= 60)
            started = time.perf_counter()
            truth = [scan(stored, d) for d in drafts[:args.scan_drafts]]
            per_scan = (time.perf_counter() - started) / args.scan_drafts
            for f, t in zip(found, truth):   # the index is exact from GUARANTEED characters up
                assert f == t if t >= GUARANTEED else f <= t, (f, t)
            chars = sum(len(p) for p in stored)
            size = index_bytes(db)
            print(f"{n:>6} {chars:>9} {index_size(db):>7} {size / 1024:>9.0f} {size / chars:>6.2f} {build:>7.2f} "
                  f"{imported:>8.2f} {per_draft * 1000:>8.2f} {per_scan * 1000:>8.0f} {per_scan / per_draft:>6.0f}x "
                  f"{caught:>3}/{len(drafts) // 2}")
            db.close()
    print(f"pid {os.getpid()} done; loadavg {open('/proc/loadavg').read().split()[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
