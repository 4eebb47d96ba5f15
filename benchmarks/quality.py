"""Quality: validation bits/char of the char-LSTM trained for a fixed time budget on
../shared/data/bugurtthread/pool.txt, against an interpolated Kneser-Ney character 5-gram model
built in the same run on the same split.

    python benchmarks/quality.py [--minutes 10] [--quick] [--device cpu|cuda] [--preset default|gpu]
                                 [--rnn-size 128 --batch-size 32 --seq-length 64 --learning-rate 1.5e-3
                                  --lr-schedule hold --no-bf16]

The default recipe is the best of those measured for a 10-minute budget on 2 CPU cores (see
benchmarks/results/quality-cpu.txt): 2x128, batch 32 x 64, Adam 1.5e-3 held for 75% of the time
budget and then lowered linearly to 2% of it, bf16 autocast where the processor has it; dropout and
weight decay are the product's (model/train_config.py), so figures before those defaults differ.

Skips (exit 0) with a message when pool.txt is absent. Prints figures, never asserts times.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOL = REPO.parent / "shared" / "data" / "bugurtthread" / "pool.txt"

from model.train_config import LR_SCHEDULES  # noqa: E402  (plain Python: the skip needs no torch)


class KneserNey:
    """Interpolated Kneser-Ney over characters: raw counts at the top order, continuation counts
    below, one absolute discount per order (D = n1 / (n1 + 2 n2)), a uniform floor over vocab_size."""

    def __init__(self, text: str, order: int, vocab_size: int) -> None:
        self.n, self.V = order, vocab_size
        self.counts: list[Counter] = [Counter() for _ in range(order + 1)]   # counts[k][gram of length k]
        self.counts[order] = Counter(text[i:i + order] for i in range(len(text) - order + 1))
        for k in range(order - 1, 0, -1):          # continuation counts N1+(. g)
            cont = Counter()
            for g in self.counts[k + 1]:
                cont[g[1:]] += 1
            self.counts[k] = cont
        self.total: list[dict] = [{} for _ in range(order + 1)]
        self.types: list[dict] = [{} for _ in range(order + 1)]
        self.D = [0.0] * (order + 1)
        for k in range(1, order + 1):
            tot, typ = defaultdict(int), defaultdict(int)
            for g, c in self.counts[k].items():
                tot[g[:-1]] += c
                typ[g[:-1]] += 1
            self.total[k], self.types[k] = dict(tot), dict(typ)
            coc = Counter(self.counts[k].values())
            n1, n2 = coc.get(1, 0), coc.get(2, 0)
            self.D[k] = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5

    def prob(self, history: str, ch: str) -> float:
        p = 1.0 / self.V
        for k in range(1, self.n + 1):
            h = history[len(history) - (k - 1):] if k > 1 else ""
            tot = self.total[k].get(h)
            if not tot:
                continue
            c = self.counts[k].get(h + ch, 0)
            D = self.D[k]
            p = max(c - D, 0.0) / tot + D * self.types[k][h] / tot * p
        return p

    def bits_per_char(self, text: str, context: str) -> float:
        full = context + text
        off = len(context)
        nats = 0.0
        for i in range(off, len(full)):
            nats -= math.log(self.prob(full[max(0, i - self.n + 1):i], full[i]))
        return nats / len(text) / math.log(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget (default 10)")
    ap.add_argument("--quick", action="store_true", help="a 1-minute smoke run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preset", choices=["default", "gpu"], default="default")
    ap.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    ap.add_argument("--text", type=Path, default=POOL)
    ap.add_argument("--rnn-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-length", type=int, default=64)
    ap.add_argument("--learning-rate", type=float, default=1.5e-3)
    ap.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="hold",
                    help="hold: the rate for 75%% of the budget, then linearly down (default); cosine over "
                         "the budget; step: halve every --lr-decay-every epochs")
    ap.add_argument("--lr-decay-every", type=int, default=4, help="epochs between halvings with --lr-schedule step")
    ap.add_argument("--no-bf16", action="store_true", help="float32 even where the CPU has bf16")
    args = ap.parse_args()
    if not args.text.is_file():
        print(f"quality: skipped, {args.text} is absent (it lives outside the repository)")
        return
    minutes = 1.0 if args.quick else args.minutes

    import torch

    from model.checkpoint import load_checkpoint
    from model.splits import load_splits
    from model.distributed import bf16_supported
    from model.preprocess import preprocess
    from dataclasses import replace

    from model.train import TrainConfig, train
    from model.vocab import Vocab

    tmp = Path(tempfile.mkdtemp(prefix="buhurt-quality-"))
    t0 = time.perf_counter()
    stats = preprocess(args.text, tmp / "pool.h5", tmp / "pool.json")
    print(f"corpus: {args.text} ({stats['total_chars']:,} chars, {stats['vocab_size']} tokens, "
          f"train {stats['train']:,} / val {stats['val']:,}); preprocess {time.perf_counter() - t0:.1f} s")
    splits, _ = load_splits(tmp / "pool.h5")
    vocab = Vocab.load_json(tmp / "pool.json")
    train_text, val_text = vocab.decode(splits["train"]), vocab.decode(splits["val"])

    t0 = time.perf_counter()
    kn = KneserNey(train_text, args.order, len(vocab))
    kn_bpc = kn.bits_per_char(val_text, train_text[-(args.order - 1):])
    kn_s = time.perf_counter() - t0
    print(f"kneser-ney order {args.order}: val {kn_bpc:.4f} bits/char (built + scored in {kn_s:.0f} s)")

    if args.preset == "gpu":
        cfg = TrainConfig.gpu_preset(device=args.device)
    else:   # the 10-minute CPU recipe: many small updates beat a bigger model on 2 cores
        cfg = TrainConfig(rnn_size=args.rnn_size, wordvec_size=64, num_layers=2, batch_size=args.batch_size,
                          seq_length=args.seq_length, learning_rate=args.learning_rate, device=args.device,
                          print_every=20, lr_schedule=args.lr_schedule, lr_decay_every=args.lr_decay_every,
                          precision="auto" if args.device != "cpu" else
                          ("bf16" if not args.no_bf16 and bf16_supported(torch.device("cpu")) else "float32"))
    cfg = replace(cfg, input_h5=str(tmp / "pool.h5"), input_json=str(tmp / "pool.json"), checkpoint_dir=str(tmp / "ck"),
                  max_minutes=minutes, max_epochs=1000, checkpoint_every=100 if args.quick else 1000,
                  progress=sys.stderr.isatty())
    t0 = time.perf_counter()
    result = train(cfg)
    ck = load_checkpoint(result.best_path)
    vh = ck["val_loss_history"]
    best_it = ck["best_iteration"]
    per_it = result.elapsed_s / max(1, result.iterations)
    print(f"lstm {cfg.num_layers}x{cfg.rnn_size} (embed {cfg.wordvec_size}, B={cfg.batch_size}, T={cfg.seq_length}) "
          f"on {args.device}: {result.iterations} iterations in {result.elapsed_s / 60:.1f} min "
          f"({result.iterations * cfg.batch_size * cfg.seq_length / result.elapsed_s:,.0f} chars/s); "
          f"best at iteration {best_it} (~{best_it * per_it / 60:.1f} min), {len(vh)} validations")
    print(f"lstm: best validation loss during training {result.best_val_loss / math.log(2):.4f} bits/char "
          f"({len(vh)} validations over the val split in {cfg.batch_size} contiguous rows"
          f"{', bf16 autocast' if cfg.bf16 else ''})")
    # scored as the n-gram is: the val text as one stream after the end of the train text, float32
    from model.evaluate import evaluate_ids
    from model.lstm import model_from_checkpoint

    t0 = time.perf_counter()
    net = model_from_checkpoint(ck, args.device)
    nats, count = evaluate_ids(net, torch.from_numpy(vocab.encode(val_text)),
                               vocab.encode(train_text[-256:]).tolist(), args.device)
    lstm_bpc = nats / count / math.log(2)
    print(f"lstm: val {lstm_bpc:.4f} bits/char (best checkpoint, the val split as one stream in float32, "
          f"{count:,} chars, {time.perf_counter() - t0:.0f} s)")
    r = lstm_bpc / kn_bpc
    print(f"ratio lstm / kneser-ney = {r:.3f}: the lstm is {abs(1 - r) * 100:.1f}% "
          f"{'lower' if r < 1 else 'HIGHER'} (target: >= 10% lower at a 10-minute CPU budget)")


if __name__ == "__main__":
    main()
