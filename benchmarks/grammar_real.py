"""What the grammar screen does to people's posts: the share of a real channel's posts that reach
`screen.min_grammar` (and a few other thresholds), the share of their lines with an agreement error
(model.grammar.Grammar.line_errors) and the posts with none, on the same rules that judge drafts.
The screen's threshold is only fair if nearly every real post passes it.

    python benchmarks/grammar_real.py [--corpus ../shared/data/bugurtthread/pool.txt] [--num 2000] [--seed 1]

Posts are a seeded sample of the corpus file (posts separated by a blank line). Skips with a message
when the file is absent. Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.pool import ScreenOptions  # noqa: E402
from model.grammar import Grammar  # noqa: E402
from model.words import russian_dictionary  # noqa: E402

POOL = ROOT.parent / "shared" / "data" / "bugurtthread" / "pool.txt"
THRESHOLDS = (0.5, 0.6, 0.75, 0.8, 0.9, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=POOL)
    ap.add_argument("--num", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.corpus.is_file():
        print(f"grammar_real: skipped, {args.corpus} is absent (it lives outside the repository)")
        return
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    posts = [p.strip() for p in args.corpus.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    rnd = random.Random(args.seed)
    chosen = rnd.sample(posts, min(args.num, len(posts)))
    t = time.perf_counter()
    grammar = Grammar(russian_dictionary())
    shares, lines, bad = [], 0, 0
    for post in chosen:
        text_lines = [line for line in post.split("\n") if any(ch.isalpha() for ch in line)]
        lines += len(text_lines)
        bad += sum(1 for line in text_lines if grammar.line_errors(line))
        share = grammar.share(post)
        if share is not None:
            shares.append(share)
    dt = time.perf_counter() - t
    min_grammar = ScreenOptions().min_grammar
    print(f"{args.corpus.name}: {len(chosen):,} of {len(posts):,} posts (seed {args.seed}), {lines:,} lines of text, "
          f"judged in {dt:.0f} s")
    print(f"lines with an agreement error: {bad / max(1, lines):.1%}; posts without one: "
          f"{sum(s == 1.0 for s in shares) / max(1, len(shares)):.1%}")
    for th in THRESHOLDS:
        mark = "   <- screen.min_grammar" if th == min_grammar else ""
        print(f"posts reaching {th:.2f}: {sum(s >= th for s in shares) / max(1, len(shares)):.1%}{mark}")


if __name__ == "__main__":
    main()
