"""What pool.oversample buys: drafts kept by the score (jobs.pool.score) against drafts kept as they
come, from the same candidates, judged by measures the score does not use.

    nice -n 5 .venv/bin/python benchmarks/ranking.py [--checkpoint F] [--corpus FILE] [--n 300]

Candidates are generated through the product's path (GeneratorHolder.generate_samples, the pool's
measures and screen against a database holding --corpus). Groups of --oversample consecutive
candidates stand for one pool round: "as they come" keeps the first that passes in each group,
"by score" the best-scoring that passes. Judged on: the share of words seen in the corpus (a word
list of --corpus itself, independent of the model's lexicon), the share of drafts whose words are
all corpus words, distinct word pairs per draft, mean lines, and the longest run shared with a
corpus post. Defaults: the bundled model and the bundled sample corpus.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORD = re.compile(r"[^\W\d_]+")


def judge(texts: list[str], vocabulary: set[str], shared: list[int]) -> dict[str, float]:
    words = [[w.lower() for w in WORD.findall(t)] for t in texts]
    known = [sum(w in vocabulary for w in ws) / len(ws) for ws in words if ws]
    pairs = [len({(a, b) for a, b in zip(ws, ws[1:])}) for ws in words]
    return {
        "drafts": len(texts),
        "corpus words": statistics.mean(known) if known else float("nan"),
        "all corpus words": sum(k == 1.0 for k in known) / max(1, len(known)),
        "word pairs/draft": statistics.mean(pairs) if pairs else float("nan"),
        "lines": statistics.mean(t.count("\n") + 1 - t.split("\n").count("@") for t in texts) if texts else 0,
        "shared chars": statistics.mean(shared) if shared else float("nan"),
    }


def main() -> int:
    import torch

    from corpus.db import open_db
    from corpus.importer import import_text_file
    from corpus.stoplist import StopList
    from corpus.textfile import read_posts
    from jobs.generator import GeneratorHolder
    from jobs.model_registry import bundled_checkpoint
    from jobs.pool import measure, score, screen
    from model.sample_options import SampleOptions

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus" / "data" / "sample_corpus.txt")
    parser.add_argument("--n", type=int, default=300, help="candidates generated")
    parser.add_argument("--oversample", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-length", type=int, default=500)
    parser.add_argument("--words", choices=("known", "any"), default="known", help="decoding (sample.words)")
    parser.add_argument("--dictionary", choices=("ru", "none"), default="ru", help="sample.dictionary")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"skipped: {args.corpus} is absent")
        return 0
    torch.set_num_threads(1)
    checkpoint = args.checkpoint or bundled_checkpoint()
    vocabulary = {w.lower() for post in read_posts(args.corpus) for w in WORD.findall(post)}
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "rank.sqlite3")
        import_text_file(db, args.corpus)
        holder = GeneratorHolder(checkpoint)
        started = time.perf_counter()
        options = SampleOptions(temperature=args.temperature, max_length=args.max_length, words=args.words,
                                dictionary=args.dictionary)
        _, samples = holder.generate_samples(list(range(1, args.n + 1)), options.request())
        elapsed = time.perf_counter() - started
        rows = []
        for s in samples:
            m = measure(db, s.text, s)
            rows.append((s.text, m, screen(db, s.text, StopList(), m), score(m)))
        known = [r[1].known_share for r in rows if r[1].known_share is not None]
        db.close()
    passing = [r for r in rows if r[2] is None]
    k = args.oversample
    first, best = [], []
    for start in range(0, len(rows), k):
        group = [r for r in rows[start:start + k] if r[2] is None]
        if group:
            first.append(group[0])
            best.append(max(group, key=lambda r: r[3] if r[3] is not None else float("-inf")))
    reasons: dict[str, int] = {}
    for r in rows:
        key = (r[2] or "passed").split(":")[0].split(" (")[0]
        reasons[key] = reasons.get(key, 0) + 1
    print(f"checkpoint {checkpoint.name}, corpus {args.corpus.name}, {args.n} candidates in {elapsed:.1f} s, "
          f"T={args.temperature}, decoding={options.decoding.name}, loadavg {open('/proc/loadavg').read().split()[:3]}")
    if known:
        print(f"known-word share (model's lexicon + dictionary), every candidate: {statistics.mean(known):.3f}")
    print("screen: " + ", ".join(f"{key} {count}" for key, count in sorted(reasons.items(), key=lambda kv: -kv[1])))
    print(f"{'kept':<26}" + "".join(f"{name:>18}" for name in judge([], set(), [])))
    for name, chosen in (("every passing draft", passing), (f"first passing of {k}", first),
                         (f"best score of {k}", best)):
        figures = judge([r[0] for r in chosen], vocabulary, [r[1].shared_chars for r in chosen])
        print(f"{name:<26}" + "".join(f"{v:>18.3f}" if isinstance(v, float) else f"{v:>18}" for v in figures.values()))
    scored = [(r[3], judge([r[0]], vocabulary, [0])["corpus words"]) for r in passing if r[3] is not None]
    scored = [(a, b) for a, b in scored if b == b]
    if len(scored) > 2:
        print(f"passing drafts: correlation of the score with the corpus-word share "
              f"r = {statistics.correlation(*zip(*scored)):.2f} ({len(scored)} drafts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
