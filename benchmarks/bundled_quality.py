"""Draft quality of checkpoints on the bundled sample corpus (the embedded default's own setting).

For each checkpoint given (say the bundled model and the one it replaced, measured in the same run):
N drafts through GeneratorHolder.generate_samples (the pool's generation path) with known-word decoding
(sample.words = "known", sample.dictionary = "ru") and with raw sampling, each screened by jobs.pool.screen
against a fresh database holding the sample corpus (its near-copy index included). "real words" are words
(runs of letters) the OpenCorpora dictionary (pymorphy3) knows, whatever the decoding; a raw draft, which
has no known-word share of its own, is screened with that share. Prints one row per checkpoint and decoding.

Usage: python benchmarks/bundled_quality.py [CHECKPOINT ...] [--n 500] [--temperature 0.8]
(default: model/data/default.pt). A stand-in for benchmarks/draft_quality.py on the small model.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymorphy3  # noqa: E402
import torch  # noqa: E402

from corpus.db import open_db  # noqa: E402
from corpus.importer import import_text_file  # noqa: E402
from corpus.stoplist import StopList  # noqa: E402
from jobs.generator import GeneratorHolder  # noqa: E402
from jobs.pool import NEAR_COPY_CHARS, measure, screen  # noqa: E402
from model.sample_options import SampleRequest  # noqa: E402

WORD = re.compile(r"[А-Яа-яЁёA-Za-z]+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, default=[ROOT / "model/data/default.pt"])
    parser.add_argument("--n", type=int, default=500, help="drafts per checkpoint and decoding")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus/data/sample_corpus.txt")
    args = parser.parse_args()
    torch.set_num_threads(1)
    morph = pymorphy3.MorphAnalyzer()

    def real(word: str) -> bool:
        w = word.lower()
        return morph.word_is_known(w) or morph.word_is_known(w.replace("ё", "е"))

    db = open_db(Path(tempfile.mkdtemp()) / "quality.sqlite3")
    import_text_file(db, args.corpus, community="sample")
    seeds = list(range(1, args.n + 1))
    print(f"{args.n} drafts per row, temperature {args.temperature}, screened against {args.corpus.name}")
    print(f"{'checkpoint':28} {'decoding':8} {'real words':>10} {'>=90% real':>10} {'at gap':>7} {'near-copy':>9} "
          f"{'word pairs':>10} {'pass':>6} {'posts/s':>8}   passed drafts: real words, >=90% real")
    for checkpoint in args.checkpoints:
        holder = GeneratorHolder(checkpoint)
        for words, dictionary in (("known", "ru"), ("any", "none")):
            started = time.perf_counter()
            _, samples = holder.generate_samples(seeds, SampleRequest.of(temperature=args.temperature, max_length=500,
                                                                         words=words, dictionary=dictionary))
            seconds = time.perf_counter() - started
            total = known = good = gap = near = passed = p_total = p_known = p_good = 0
            pairs: set[tuple[str, str]] = set()
            for s in samples:
                found = WORD.findall(s.text)
                r = sum(map(real, found))
                share = r / len(found) if found else 0.0
                total, known, good, gap = total + len(found), known + r, good + (share >= 0.9), gap + s.reached_gap
                m = measure(db, s.text, s)
                if m.known_share is None:
                    m = replace(m, known_share=share)
                near += (m.shared_chars or 0) >= NEAR_COPY_CHARS
                low = [w.lower() for w in found]
                pairs.update(zip(low, low[1:]))
                if screen(db, s.text, StopList(), m) is None:
                    passed, p_total = passed + 1, p_total + len(found)
                    p_known, p_good = p_known + r, p_good + (share >= 0.9)
            n = len(samples)
            print(f"{str(checkpoint)[-28:]:28} {words:8} {known / total:10.1%} {good / n:10.1%} {gap / n:7.1%} "
                  f"{near:9d} "
                  f"{len(pairs):10d} {passed / n:6.1%} {n / seconds:8.1f}   "
                  f"{(p_known / p_total if p_total else 0):.1%}, {(p_good / passed if passed else 0):.1%}")


if __name__ == "__main__":
    main()
