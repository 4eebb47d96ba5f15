"""Tune the sampling temperature with `buhurt tune`'s score (jobs/tune.py): at each temperature,
posts with fixed seeds go through the product's decoding and screen against a database holding
the corpus; the score is (share passing the screen) x (distinct corpus word pairs among them per
post), so neither soup (fails the screen; word salad makes pairs the corpus never used) nor copies
(fail the screen; repeats count once) win. Prints the table and the best temperature.

Usage: python benchmarks/temperature.py [--checkpoint F] [--corpus F] [--num 48] [--length 500] [--raw]
Defaults: the bundled model and the bundled sample corpus; known-word decoding.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "model/data/default.pt")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus/data/sample_corpus.txt")
    parser.add_argument("--num", type=int, default=48)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--raw", action="store_true", help="torch-rnn's unconstrained sampling")
    args = parser.parse_args()

    from bot.config import load_settings
    from corpus.cleaning import clean_corpus
    from corpus.db import open_db
    from corpus.importer import import_text_file
    from corpus.stoplist import StopList
    from jobs.generator import GeneratorHolder
    from model.sample_options import SampleOptions
    from jobs.tune import tune

    settings = load_settings(None)
    stoplist = StopList(settings.filter.words, settings.filter.patterns)
    db = open_db(Path(tempfile.mkdtemp(prefix="buhurt-temperature-")) / "t.sqlite3")
    import_text_file(db, args.corpus, community="bench")
    clean_corpus(db, settings.clean, stoplist)
    holder = GeneratorHolder(args.checkpoint)
    options = SampleOptions("auto", args.length, 0, "any" if args.raw else "known", "ru")
    print(f"model {holder.version} ({args.checkpoint.name}), {args.num} posts per temperature, cap {args.length}, "
          f"decoding {options.decoding.name}, corpus {args.corpus.name}")
    start = time.perf_counter()
    result = tune(db, holder, stoplist, options=options, k=args.num)
    for line in result.lines():
        print(line)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
