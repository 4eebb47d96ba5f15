"""Draft quality: 500 drafts through the pool's own path (the holder's decoding, jobs.pool's measures
and screen against a database holding the corpus, near-copy index included), for the product's
decoding (known words, quotes balanced, grammar, the community's ending), for the same with the
floor ending (drafts before it), for the same without grammar, for raw (torch-rnn)
sampling, for the product's decoding again on new seeds once its generator is warm (the service's
steady state: the words met before are analysed already), and for a character 5-gram
(interpolated Kneser-Ney, the baseline of benchmarks/quality.py) in the same run, and for the
corpus's own held-out posts (the last 10% of the file) as calibration.
"quotes" is the share of drafts with a line whose quotes do not balance (a « or " left open, a »
before any «: model.quotes.unbalanced_lines); "agr" the share of lines with an agreement error
(model.grammar.Grammar.line_errors); "lines" the median lines of text; "cap" the share cut at the
length cap; "frag" the share of drafts with a fragment (a 1-3 letter word that is neither the
lexicon's nor a standalone dictionary word, or a letter touching a digit); a draft cut at the cap
is judged without its unfinished last line.

    python benchmarks/draft_quality.py [--checkpoint F | --minutes M] [--num 500] [--temperature 0.8]

--minutes M trains the default 2x128 model on ../shared/data/bugurtthread/pool.txt first (skips
with a message when it is absent). The corpus of the screen is pool.txt (or --corpus FILE). Known
words are judged the same way for all three: the checkpoint's lexicon plus the Russian dictionary.
Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import bisect
import re
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOL = REPO.parent / "shared" / "data" / "bugurtthread" / "pool.txt"
GRAMMAR = None   # model.grammar.Grammar, made in main()
STRICT = None    # the model's strict KnownWords (short words as standalone words), made in main()
FRAGMENT = re.compile(r"[^\W\d_][0-9]|[0-9][^\W\d_]")   # a letter touching a digit


class KNSampler:
    """Samples from benchmarks/quality.py's interpolated Kneser-Ney model: at the longest order with
    the history seen, take a seen continuation with probability 1 - lambda (weights count - D),
    else back off one order; uniform over the vocabulary at the bottom."""

    def __init__(self, kn, vocab: list[str]) -> None:
        self.kn, self.vocab = kn, vocab
        self.cont: list[dict] = [dict() for _ in range(kn.n + 1)]
        for k in range(1, kn.n + 1):
            groups = defaultdict(list)
            for g, c in kn.counts[k].items():
                groups[g[:-1]].append((g[-1], c))
            D = kn.D[k]
            for h, items in groups.items():
                chars = [ch for ch, _ in items]
                cum, acc = [], 0.0
                for _, c in items:
                    acc += max(c - D, 0.0)
                    cum.append(acc)
                self.cont[k][h] = (chars, cum)

    def next_char(self, history: str, rnd: random.Random) -> str:
        kn = self.kn
        for k in range(kn.n, 0, -1):
            h = history[len(history) - (k - 1):] if k > 1 else ""
            if len(h) < k - 1:
                continue
            tot = kn.total[k].get(h)
            if not tot:
                continue
            lam = kn.D[k] * kn.types[k][h] / tot
            if rnd.random() >= lam:
                chars, cum = self.cont[k][h]
                return chars[min(bisect.bisect_right(cum, rnd.random() * cum[-1]), len(chars) - 1)]
        return rnd.choice(self.vocab)

    def post(self, seed: int, max_length: int) -> tuple[str, bool]:
        rnd = random.Random(seed)
        hist, text = "\n\n", ""
        while len(text) < max_length:
            ch = self.next_char(hist, rnd)
            hist = (hist + ch)[-self.kn.n:]
            if ch == "\n" and text.endswith("\n"):
                return text.rstrip(), True
            if ch == "\n" and not text:
                continue
            text += ch
        cut = text.rfind("\n")
        return (text[:cut] if cut > 0 else text).rstrip(), False


def train_minutes(minutes: float, text: Path, work: Path) -> Path:
    from model.preprocess import preprocess
    from model.train import TrainConfig, train

    preprocess(text, work / "c.h5", work / "c.json")
    r = train(TrainConfig.torch_rnn_preset(input_h5=str(work / "c.h5"), input_json=str(work / "c.json"),
                          checkpoint_dir=str(work / "ck"), max_minutes=minutes, max_epochs=1000,
                          lr_schedule="hold", checkpoint_every=500, progress=False))
    print(f"trained 2x128 on {text.name} for {r.elapsed_s / 60:.1f} min ({r.iterations} iterations, "
          f"val loss {r.best_val_loss:.3f})")
    return r.best_path


def corpus_db(corpus: Path, work: Path):
    from bot.config import load_settings
    from corpus.cleaning import clean_corpus
    from corpus.db import open_db
    from corpus.importer import import_text_file
    from corpus.stoplist import StopList

    settings = load_settings(None)
    db = open_db(work / "bench.sqlite3")
    t = time.perf_counter()
    import_text_file(db, corpus, community="bench")
    clean_corpus(db, settings.clean, StopList(settings.filter.words, settings.filter.patterns))
    print(f"corpus {corpus.name} in a fresh database with its near-copy index: {time.perf_counter() - t:.0f} s")
    return db, StopList(settings.filter.words, settings.filter.patterns)


def has_fragment(text: str) -> bool:
    """A fragment: a word of 1-3 letters that is neither the lexicon's nor a standalone dictionary
    word (model.words.KnownWords strict), or a letter touching a digit ("У4S20")."""
    assert STRICT is not None
    return bool(FRAGMENT.search(text)) or any(len(w) <= 3 and w not in STRICT for w in re.findall(r"[^\W\d_]+", text))


def report(name: str, items: list, db, stoplist, known, seconds: float, decoding: str) -> dict:
    from jobs.pool import measure, screen
    from jobs.tune import word_pairs

    from jobs.pool import content_lines
    from model.quotes import unbalanced_lines

    rows = []
    for text, reached, sample in items:
        k, w = known.count(text)
        m = measure(db, text, sample, decoding)
        judged = text if reached else text.rpartition("\n")[0]
        lines = [line for line in judged.split("\n") if any(ch.isalpha() for ch in line)]
        bad = sum(bool(GRAMMAR.line_errors(line)) for line in lines)
        if sample is None:   # the 5-gram has no generator measures: give the screen the same ones
            m = replace(m, known_share=k / w if w else 0.0, reached_gap=reached, grammar=GRAMMAR.share(text))
        reason = screen(db, text, stoplist, m)
        rows.append(dict(text=text, known=k, words=w, gap=reached, shared=m.shared_chars or 0, passed=reason is None,
                         quotes=bool(unbalanced_lines(judged)), bad=bad, lines=len(lines),
                         parts=len(content_lines(text)), frag=has_fragment(text)))

    def figures(rs):
        if not rs:
            return "      -"
        words = sum(r["words"] for r in rs)
        ks = sum(r["known"] for r in rs) / words if words else 0.0
        ge90 = sum(r["words"] > 0 and r["known"] / r["words"] >= 0.9 for r in rs) / len(rs)
        gap = sum(r["gap"] for r in rs) / len(rs)
        near = sum(r["shared"] >= 60 for r in rs)
        pairs = set()
        for r in rs:
            pairs |= word_pairs(r["text"])
        quotes = sum(r["quotes"] for r in rs) / len(rs)
        agr = sum(r["bad"] for r in rs) / max(1, sum(r["lines"] for r in rs))
        lines = sorted(r["parts"] for r in rs)[len(rs) // 2]
        frag = sum(r["frag"] for r in rs) / len(rs)
        return (f"{ks:>7.1%} {ge90:>7.1%} {1 - gap:>6.1%} {near:>5} {len(pairs):>7} {quotes:>7.1%} "
                f"{agr:>6.1%} {lines:>5} {frag:>6.1%}")

    passed = [r for r in rows if r["passed"]]
    rate = len(items) / seconds
    print(f"{name:<22} all    {figures(rows)}  pass {len(passed) / len(rows):>6.1%}  {rate:>7.1f} posts/s")
    print(f"{'':<22} passed {figures(passed)}")
    return {"rate": rate, "pass": len(passed) / len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--corpus", type=Path, default=POOL)
    ap.add_argument("--num", type=int, default=500)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--max-length", type=int, default=500)
    ap.add_argument("--batch", type=int, default=250)
    args = ap.parse_args()
    if not args.corpus.is_file():
        print(f"skipped: {args.corpus} is absent")
        return
    import torch

    from benchmarks.quality import KneserNey
    from jobs.generator import GeneratorHolder
    from model.preprocess import split_sizes
    from model.sample import Generator
    from model.sample_options import SampleOptions

    global GRAMMAR, STRICT
    from model.grammar import Grammar
    from model.words import russian_dictionary

    GRAMMAR = Grammar(russian_dictionary())
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    work = Path(tempfile.mkdtemp(prefix="buhurt-draft-quality-"))
    if args.checkpoint is None:
        if args.minutes is None:
            ap.error("give --checkpoint F or --minutes M")
        args.checkpoint = train_minutes(args.minutes, args.corpus, work)
    print(f"load: {open('/proc/loadavg').read().strip()}")
    db, stoplist = corpus_db(args.corpus, work)
    holder = GeneratorHolder(args.checkpoint)
    gen: Generator = holder.current
    known = gen.known_words("ru")
    STRICT = gen.known_words("ru", strict=True)
    print(f"model {gen.version} ({args.checkpoint}), lexicon {len(gen.lexicon)} words, temperature "
          f"{args.temperature}, {args.num} drafts each, cap {args.max_length}")
    print(f"{'':<22}        {'known':>7} {'>=90%':>7} {'cap':>6} {'near':>5} {'pairs':>7} {'quotes':>7} "
          f"{'agr':>6} {'lines':>5} {'frag':>6}")
    seeds = list(range(1, args.num + 1))
    results = {}
    for name, options in (("product decoding", SampleOptions()),
                          ("  ending floor", SampleOptions(ending="floor")),
                          ("  without grammar", SampleOptions(grammar="any")),
                          ("raw sampling", SampleOptions(words="any", quotes="any", grammar="any")),
                          # the service's generator lives on: after its first pool run the words it met are
                          # analysed already; new seeds, so new posts (and some new words), as in the service
                          ("product, warm", SampleOptions())):
        options = replace(options, temperature=args.temperature, max_length=args.max_length)
        items, t = [], time.perf_counter()
        run_seeds = [s + args.num for s in seeds] if name == "product, warm" else seeds
        for i in range(0, len(run_seeds), args.batch):
            _, samples = holder.generate_samples(run_seeds[i:i + args.batch], options.request())
            items += [(s.text, s.reached_gap, s) for s in samples]
        dt = time.perf_counter() - t
        results[name] = report(name, items, db, stoplist, known, dt, options.decoding.name)
    text = args.corpus.read_text(encoding="utf-8")
    held = [p.strip() for p in text[int(len(text) * 0.9):].split("\n\n")[1:] if p.strip()]
    report("real held-out posts", [(p, True, None) for p in held[:args.num]], db, stoplist, known, 1.0, "any")
    n_train, _, _ = split_sizes(len(text), 0.1, 0.1)
    t = time.perf_counter()
    kn = KNSampler(KneserNey(text[:n_train], 5, len(set(text))), sorted(set(text)))
    build = time.perf_counter() - t
    t = time.perf_counter()
    from corpus.rules import tidy_generated

    items = []
    for s in seeds:
        post, reached = kn.post(s, args.max_length)
        items.append((tidy_generated(post), reached, None))
    report(f"5-gram KN (built {build:.0f}s)", items, db, stoplist, known, time.perf_counter() - t, "any")
    ratio = results["product decoding"]["rate"] / results["raw sampling"]["rate"]
    warm = results["product, warm"]["rate"] / results["raw sampling"]["rate"]
    print(f"product decoding / raw posts/s: {ratio:.2f}x on a fresh generator (each new word analysed by pymorphy3), "
          f"{warm:.2f}x warm (the service's steady state) (target >= 0.5x); "
          f"load after: {open('/proc/loadavg').read().strip()}")
    print("targets: candidates cut at the cap <= 20%; passing drafts' median lines within 2 of the real posts'; "
          "lines with an agreement error within 3 points of the real posts'; 0 near-copies; >= 20% of candidates pass")


if __name__ == "__main__":
    main()
