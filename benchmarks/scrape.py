"""Scrape benchmark: requests and wall time to read a 30,000-post wall from the fake VK API
(tests/fakes/fake_vk.py, the real vk_api client code) with the batched scraper (corpus/vk.py:
25 wall.get calls per execute request), against a plain loop of one wall.get per 100 posts.
Both run in the same process, paced at the same requests per second.

    python benchmarks/scrape.py [--posts 30000] [--rps 20]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vk_api  # noqa: E402

from corpus.db import open_db  # noqa: E402
from corpus.vk import scrape  # noqa: E402
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall  # noqa: E402


def make_fake(posts: int) -> tuple[FakeVk, FakeWall]:
    wall = FakeWall(42, "bench_wall")
    wall.generate(posts)
    return FakeVk(wall), wall


def batched(posts: int, rps: float) -> tuple[int, float, int]:
    fake, _ = make_fake(posts)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.sqlite3")
        started = time.perf_counter()
        report = scrape(db, ["bench_wall"], token=GOOD_TOKEN, requests_per_second=rps, session=fake.session(),
                        progress=False, refresh_days=0)
        elapsed = time.perf_counter() - started
        db.close()
    return fake.requests, elapsed, report.added


def plain_loop(posts: int, rps: float) -> tuple[int, float, int]:
    fake, _ = make_fake(posts)
    api = vk_api.VkApi(token=GOOD_TOKEN, api_version="5.199", session=fake.session())
    api.RPS_DELAY = 1.0 / rps
    started = time.perf_counter()
    seen: set[int] = set()
    offset = 0
    while True:
        page = api.method("wall.get", {"owner_id": -42, "offset": offset, "count": 100})
        seen.update(item["id"] for item in page["items"])
        offset += 100
        if offset >= page["count"]:
            break
    return fake.requests, time.perf_counter() - started, len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=30_000)
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second for both (20 = community token)")
    args = parser.parse_args()
    b_requests, b_time, b_posts = batched(args.posts, args.rps)
    p_requests, p_time, p_posts = plain_loop(args.posts, args.rps)
    print(f"wall: {args.posts} posts, fake VK API, both paced at {args.rps:g} requests/s")
    print(f"{'method':<34}{'requests':>10}{'posts':>10}{'wall time':>12}")
    print(f"{'batched (execute x25 wall.get)':<34}{b_requests:>10}{b_posts:>10}{b_time:>11.2f}s")
    print(f"{'plain loop (wall.get per 100)':<34}{p_requests:>10}{p_posts:>10}{p_time:>11.2f}s")
    ratio = b_requests / p_requests
    print(f"request ratio: {ratio:.3f} (1/{1 / ratio:.1f});"
          f" target at most 1/20: {'met' if ratio <= 1 / 20 else 'MISSED'}")
    print("(batched requests include one groups.getById; its pages overlap by one post for hole checks)")


if __name__ == "__main__":
    main()
