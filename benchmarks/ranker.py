"""The learned draft ranker against the hand-set score, on a simulated moderator with a known taste
(tests/simulated_moderator.py: approves drafts of 5-9 lines with few repeated words 85% of the
time, others 15%) and on random decisions.

    .venv/bin/python benchmarks/ranker.py [--seeds 5] [--sizes 100,200,500,1000]

For each number of decisions, the decisions are stored in a fresh SQLite file as the pool and the
moderators store them, and jobs.ranker.time_ordered_check trains on older decisions and tests on
newer ones (5 expanding folds): the mean AUC (approved vs rejected) of the learned ranker and of
the hand-set score (jobs.pool.score) on the same tested decisions, averaged over --seeds
simulations, and in how many of them the pool would use the learned ranker (jobs.ranker.wins).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus.db import open_db  # noqa: E402
from jobs.ranker import RankerOptions, labels, time_ordered_check, wins  # noqa: E402
from tests.simulated_moderator import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="100,200,500,1000")
    args = parser.parse_args()
    gain = RankerOptions().min_gain
    print(f"{'taste':<7} {'decisions':>9} {'learned AUC':>12} {'hand-set AUC':>13} {'used':>6}"
          f"   (mean over {args.seeds} simulations; time-ordered: trained on older, tested on newer)")
    with tempfile.TemporaryDirectory() as folder:
        for taste in ("lines", "random"):
            for n in (int(x) for x in args.sizes.split(",")):
                learned, hand, used = [], [], 0
                for seed in range(args.seeds):
                    db = open_db(Path(folder) / f"{taste}-{n}-{seed}.sqlite3")
                    simulate(db, n, taste=taste, seed=seed)
                    check = time_ordered_check(labels(db))
                    db.close()
                    if check.learned_auc is None or check.hand_auc is None:
                        continue
                    learned.append(check.learned_auc)
                    hand.append(check.hand_auc)
                    used += wins(check, gain)
                print(f"{taste:<7} {n:>9} {statistics.mean(learned):>12.3f} {statistics.mean(hand):>13.3f}"
                      f" {used:>3}/{len(learned)}")


if __name__ == "__main__":
    main()
