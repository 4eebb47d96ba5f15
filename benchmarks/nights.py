"""Nights: K nightly retrains of M minutes each on ../shared/data/bugurtthread/pool.txt, with the posts
arriving in date order (night k trains on the first k/K of the posts), warm-started from the night
before (as the nightly job does) against a from-scratch run every night, and, with --long, one
uninterrupted run of K x M minutes on all the posts. Every night prints the held-out bits/char of
each model beside an interpolated Kneser-Ney character 5-gram built on the same night's training
split and scored on the same held-out posts.

    python benchmarks/nights.py [--nights 6] [--minutes 10] [--configs warm,scratch] [--long]
                                [--rnn-size 256] [--dropout 0.3] [--weight-decay 0.1] [--warm-lr-scale 1]
                                [--warmup-frac 0.05] [--quick]

`--configs "" --long` runs the uninterrupted run alone (beside a `--configs warm` run on the other
core of a 2-core machine: both at 1 thread, the two take an hour instead of two).

Date order: pool.txt carries no dates, but it is in the channel's order: the posts of the two
Telegram export files in export-sample/ (Sep 2020 - Jan 2021 and Aug - Oct 2022) that are in
pool.txt appear there in the same order (531 of 543 and 537 of 544 consecutive pairs in increasing
position; the rest are reposts of old posts), so the file's order is taken as the date order.

The split is the nightly job's: a hash of each post's text (model.preprocess.post_split), so a post
held out on night 1 is held out on every night, and both models of a night are scored on the same
held-out posts (the val split of that night's corpus, as one stream, float32, best checkpoint).
The recipe is the nightly job's CPU default, its flags' defaults read from the product's settings
(model.train_config.ModelShape and TrainOptions, jobs.retrain: 2x256, dropout 0.3, batch 32 x seq 64,
AdamW 1.5e-3 with weight decay 0.1 on the matrices, lr_schedule hold, bf16 autocast where the CPU
has it, a warm start at warm_lr_scale x the rate after a warmup_frac ramp); threads 1 (benchmark rule).

Skips (exit 0) with a message when pool.txt is absent. Prints figures, never asserts.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOL = REPO.parent / "shared" / "data" / "bugurtthread" / "pool.txt"
sys.path.insert(0, str(REPO / "benchmarks"))

from jobs.retrain import WARM_START_WARMUP, NightlyOptions  # noqa: E402  (the nightly job's defaults)
from model.train_config import ModelShape, TrainOptions  # noqa: E402

SHAPE, OPTIONS = ModelShape(), TrainOptions()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nights", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=10.0, help="training minutes per night")
    ap.add_argument("--configs", default="warm,scratch",
                    help="comma-separated: warm (the nightly job), scratch,"
                         " warm-full (warm start at the full rate, no ramp)")
    ap.add_argument("--long", action="store_true", help="also one uninterrupted run of nights x minutes on all posts")
    ap.add_argument("--rnn-size", type=int, default=SHAPE.rnn_size)
    ap.add_argument("--dropout", type=float, default=SHAPE.dropout,
                    help="model.dropout (between the layers and before the head)")
    ap.add_argument("--batch-size", type=int, default=OPTIONS.batch_size)
    ap.add_argument("--seq-length", type=int, default=OPTIONS.seq_length)
    ap.add_argument("--learning-rate", type=float, default=OPTIONS.learning_rate)
    ap.add_argument("--weight-decay", type=float, default=OPTIONS.weight_decay,
                    help="train.weight_decay (AdamW on the matrices; 0: Adam)")
    ap.add_argument("--warm-lr-scale", type=float, default=NightlyOptions().warm_lr_scale)
    ap.add_argument("--warmup-frac", type=float, default=WARM_START_WARMUP)
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--text", type=Path, default=POOL)
    ap.add_argument("--quick", action="store_true", help="2 nights of 0.3 minutes, 2x64 (a smoke run)")
    args = ap.parse_args()
    if not args.text.is_file():
        print(f"nights: skipped, {args.text} is absent (it lives outside the repository)")
        return
    if args.quick:
        args.nights, args.minutes, args.rnn_size = 2, 0.3, 64

    import torch

    from model.checkpoint import load_checkpoint
    from model.splits import split_text
    from model.evaluate import evaluate_ids
    from model.lstm import model_from_checkpoint
    from model.preprocess import preprocess
    from model.train import TrainConfig, choose_bf16, train
    from model.vocab import Vocab
    from quality import KneserNey

    torch.set_num_threads(1)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    posts = [p.strip() for p in args.text.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    K = args.nights
    tmp = Path(tempfile.mkdtemp(prefix="buhurt-nights-"))
    bf16 = choose_bf16(TrainConfig(), torch.device("cpu"))
    print(f"corpus: {args.text} ({len(posts):,} posts in file order = date order), {K} nights x "
          f"{args.minutes:g} min, lstm 2x{args.rnn_size} dropout {args.dropout:g} B={args.batch_size} "
          f"T={args.seq_length} "
          f"lr {args.learning_rate:g}{f' weight decay {args.weight_decay:g}' if args.weight_decay else ''} hold, "
          f"{'bf16' if bf16 else 'float32'}, 1 thread; warm start at "
          f"{args.warm_lr_scale:g}x the rate after a {args.warmup_frac:.0%} ramp")

    def recipe(night_dir: Path, **kw) -> TrainConfig:
        base = dict(rnn_size=args.rnn_size, wordvec_size=64, num_layers=2, dropout=args.dropout,
                    batch_size=args.batch_size,
                    seq_length=args.seq_length, learning_rate=args.learning_rate, lr_schedule="hold",
                    weight_decay=args.weight_decay, print_every=50, checkpoint_every=1000, max_epochs=1000, threads=1,
                    progress=sys.stderr.isatty(), input_h5=str(night_dir / "c.h5"),
                    input_json=str(night_dir / "c.json"))
        return TrainConfig(**{**base, **kw})

    def score(best: Path, night_dir: Path, val_text: str) -> float:
        ck = load_checkpoint(best)
        vocab = Vocab(ck["idx_to_token"])
        kept = "".join(c for c in val_text if c in vocab.index)
        net = model_from_checkpoint(ck, "cpu")
        nl = vocab.index["\n"]
        nats, count = evaluate_ids(net, torch.from_numpy(vocab.encode(kept)), [nl, nl], "cpu")
        return nats / count / math.log(2)

    prev: dict = {}
    table = []
    for night in range(1, K + 1):
        n = round(len(posts) * night / K)
        night_dir = tmp / f"night{night}"
        night_dir.mkdir()
        order = posts[:n]
        random.Random(1234 + night).shuffle(order)       # the export's seeded shuffle
        (night_dir / "c.txt").write_text("\n\n".join(order) + "\n\n", encoding="utf-8")
        st = preprocess(night_dir / "c.txt", night_dir / "c.h5", night_dir / "c.json")
        train_text = split_text(night_dir / "c.h5", night_dir / "c.json", "train")
        val_text = split_text(night_dir / "c.h5", night_dir / "c.json", "val")
        t0 = time.perf_counter()
        kn = KneserNey(train_text, args.order, st["vocab_size"])
        kn_bpc = kn.bits_per_char(val_text, "\n\n")
        row = {"night": night, "posts": n, "val_posts": st["posts"]["val"], "val_chars": len(val_text),
               "vocab": st["vocab_size"], "kn": kn_bpc}
        print(f"\nnight {night}: {n:,} posts ({st['posts']['val']} held out, {len(val_text):,} chars; "
              f"vocabulary {st['vocab_size']}), split {st['split']}; KN-{args.order} {kn_bpc:.4f} bits/char "
              f"({time.perf_counter() - t0:.0f} s)")
        shared = None     # night 1 of every warm config is the same from-scratch run: trained once
        for name in configs:
            warm = name.startswith("warm") and name in prev
            if name.startswith("warm") and not warm and shared is not None:
                prev[name], row[name] = shared
                print(f"  {name:<9} scratch (the same run as above)")
                continue
            kw = dict(checkpoint_dir=str(night_dir / name), max_minutes=args.minutes)
            if warm:
                kw["init_from"] = str(prev[name])
                if name == "warm":
                    kw.update(learning_rate=args.learning_rate * args.warm_lr_scale, warmup_frac=args.warmup_frac)
            result = train(recipe(night_dir, **kw))
            bpc = score(result.best_path, night_dir, val_text)
            before = score(prev[name], night_dir, val_text) if name in prev else None
            prev[name] = result.best_path
            row[name] = bpc
            if name.startswith("warm") and not warm:
                shared = (result.best_path, bpc)
            print(f"  {name:<9} {'warm' if warm else 'scratch':<7} {result.iterations:>6} its "
                  f"({result.chars_per_s:,.0f} chars/s over the night) -> {bpc:.4f} bits/char "
                  f"({bpc / kn_bpc - 1:+.1%} vs KN)"
                  + (f"; the night before scored {before:.4f} on tonight's held-out posts "
                     f"({'promoted' if bpc < before else 'kept'})" if before is not None else ""))
        table.append(row)

    print(f"\nheld-out bits/char per night (same posts per night for every column; KN-{args.order} on the same split)")
    print(f"{'night':>5} {'posts':>6} {'KN':>7} " + " ".join(f"{c:>10}" for c in configs))
    for row in table:
        print(f"{row['night']:>5} {row['posts']:>6} {row['kn']:>7.4f} "
              + " ".join(f"{row[c]:>10.4f}" for c in configs))
    last = table[-1]
    if args.long:
        total = K * args.minutes
        night_dir = tmp / f"night{K}"
        val_text = split_text(night_dir / "c.h5", night_dir / "c.json", "val")
        result = train(recipe(night_dir, checkpoint_dir=str(tmp / "long"), max_minutes=total))
        bpc = score(result.best_path, night_dir, val_text)
        print(f"\none uninterrupted run of {total:g} min on all {last['posts']:,} posts: {result.iterations} its -> "
              f"{bpc:.4f} bits/char ({bpc / last['kn'] - 1:+.1%} vs KN)")
        for c in configs:
            print(f"  night {K} {c}: {last[c]:.4f} bits/char = {last[c] / bpc - 1:+.1%} vs the uninterrupted run "
                  f"(target for warm: within 2%)")
    for c in configs:
        print(f"night {K} {c}: {last[c]:.4f} bits/char, {last[c] / last['kn'] - 1:+.1%} vs KN-{args.order} "
              f"{last['kn']:.4f} (target for warm at 6 x 10 min: at least 5% below)")


if __name__ == "__main__":
    main()
