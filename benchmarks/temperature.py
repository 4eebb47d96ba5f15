"""Tune the sampling temperature: for each temperature, generate posts with fixed seeds and measure
how many are well formed (end at the gap before the cap, at least two "@" separator lines), how
many lines are new (not a line of the corpus) and how many posts are copies of a corpus post.
The product of well-formed and new-line rates is the score; the best temperature is printed.

Usage: python benchmarks/temperature.py [--checkpoint F] [--corpus F] [--num 64] [--length 500]
Defaults: the bundled model and the bundled sample corpus.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)


def well_formed(post: str, cap: int) -> bool:
    lines = post.split("\n")
    separators = sum(1 for line in lines if line == "@")
    return separators >= 2 and len(post) < cap and lines[0] != "@" and lines[-1] != "@"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "model/data/default.pt")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus/data/sample_corpus.txt")
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--length", type=int, default=500)
    args = parser.parse_args()

    from corpus.textfile import read_posts
    from model.sample import Generator

    corpus = read_posts(args.corpus)
    corpus_posts = set(corpus)
    corpus_lines = {line for post in corpus for line in post.split("\n") if line != "@"}
    generator = Generator.load(args.checkpoint)
    seeds = list(range(1, args.num + 1))
    print(f"model {generator.version} ({args.checkpoint.name}), {args.num} posts per temperature, cap {args.length}")
    print(f"{'T':>5} {'well-formed':>12} {'new lines':>10} {'copies':>7} {'mean len':>9} {'posts/s':>8} {'score':>6}")
    best = None
    for temperature in TEMPERATURES:
        start = time.perf_counter()
        posts = generator.generate(seeds=seeds, temperature=temperature, max_length=args.length)
        elapsed = time.perf_counter() - start
        formed = sum(well_formed(p, args.length) for p in posts) / len(posts)
        lines = [line for p in posts for line in p.split("\n") if line.strip() and line != "@"]
        new = sum(line not in corpus_lines for line in lines) / max(1, len(lines))
        copies = sum(p in corpus_posts for p in posts) / len(posts)
        mean = sum(len(p) for p in posts) / len(posts)
        score = formed * new * (1 - copies)
        print(f"{temperature:>5.1f} {formed:>11.0%} {new:>10.0%} {copies:>7.0%} {mean:>9.0f} "
              f"{len(posts) / elapsed:>8.1f} {score:>6.2f}")
        if best is None or score > best[1]:
            best = (temperature, score)
    print(f"best temperature by score: {best[0]} (score {best[1]:.2f})")


if __name__ == "__main__":
    main()
