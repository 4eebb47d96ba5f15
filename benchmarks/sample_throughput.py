"""Sampling throughput: posts/second of batched generation (N = 1, 16, 64, 256; finished posts
leave the batch) against the one-post-at-a-time loop of torch-rnn's sample.lua (nn.LSTM called once
per character, torch.multinomial), same run, same model, real stopping at the post gap.

    python benchmarks/sample_throughput.py [--checkpoint C] [--train-seconds 90] [--quick] [--words known|any]

The Generator decodes with --words (default known: the product's default decoding, known words with
the Russian dictionary and quotes balanced; any: raw); N=256 is also measured raw in the same run.

Without --checkpoint it first trains the default 2x128 model on the bundled sample corpus for
--train-seconds, so posts stop at the gap the way a real model's do.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from model.checkpoint import load_checkpoint  # noqa: E402
from model.lstm import model_from_checkpoint  # noqa: E402
from model.sample import Generator  # noqa: E402
from model.sample_options import SampleOptions  # noqa: E402

SAMPLE_CORPUS = REPO / "corpus" / "data" / "sample_corpus.txt"


def train_model(seconds: float) -> Path:
    from model.preprocess import preprocess
    from model.train import TrainConfig, train

    tmp = Path(tempfile.mkdtemp(prefix="buhurt-sample-bench-"))
    preprocess(SAMPLE_CORPUS, tmp / "c.h5", tmp / "c.json")
    cfg = TrainConfig.torch_rnn_preset(input_h5=str(tmp / "c.h5"), input_json=str(tmp / "c.json"),
                                       checkpoint_dir=str(tmp / "ck"),
                      max_minutes=seconds / 60, max_epochs=1000, checkpoint_every=100, progress=False)
    r = train(cfg)
    print(f"trained the default model on {SAMPLE_CORPUS.name} for {r.elapsed_s:.0f} s "
          f"({r.iterations} iterations, val loss {r.best_val_loss:.3f})")
    return r.best_path


@torch.inference_mode()
def torch_rnn_loop(model, vocab: list[str], n_posts: int, temperature=0.8, max_length=500) -> list[str]:
    """sample.lua's way: one post at a time, the recurrent module called once per character."""
    nl = vocab.index("\n")
    posts = []
    torch.manual_seed(0)
    for _ in range(n_posts):
        state = None
        x = torch.tensor([[nl]])
        logits, state = model(x, state)
        logits, state = model(x, state)
        text = ""
        while len(text) < max_length:
            probs = torch.softmax(logits[0, -1] / temperature, -1)
            t = int(torch.multinomial(probs, 1))
            ch = vocab[t]
            if ch == "\n" and text.endswith("\n"):
                break
            if not (ch == "\n" and not text):
                text += ch
            logits, state = model(torch.tensor([[t]]), state)
        posts.append(text.rstrip())
    return posts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--train-seconds", type=float, default=90)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--words", choices=["known", "any"], default="known")
    args = ap.parse_args()
    dec = dataclasses.asdict(SampleOptions().decoding) if args.words == "known" else {}   # the product's
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    ck_path = args.checkpoint or train_model(20 if args.quick else args.train_seconds)
    ck = load_checkpoint(ck_path)
    mc = ck["model_config"]
    print(f"model {mc['model_type']} {mc['num_layers']}x{mc['rnn_size']}, vocabulary {mc['vocab_size']}, "
          f"temperature {args.temperature}, max 500 chars, stop at the blank line")
    model = model_from_checkpoint(ck)
    base_n = 4 if args.quick else 16
    t = time.perf_counter()
    base_posts = torch_rnn_loop(model, list(ck["idx_to_token"]), base_n, args.temperature)
    base_s = time.perf_counter() - t
    base_rate = base_n / base_s
    mean = sum(map(len, base_posts)) / base_n
    print(f"torch-rnn sample.lua loop (nn.LSTM per char), one at a time: {base_rate:8.2f} posts/s "
          f"({base_n} posts, mean {mean:.0f} chars)  (load {open('/proc/loadavg').read().split()[0]})")
    gen = Generator.load(ck_path)
    sizes = [1, 16, 64] if args.quick else [1, 16, 64, 256]
    rates = {}
    for n in sizes:
        reps = max(1, (16 if n == 1 else 2 * n) // n) if not args.quick else 1
        gen.generate(seeds=[10_000 + i for i in range(min(n, 4))], temperature=args.temperature, **dec)  # warm-up
        t = time.perf_counter()
        total_chars = 0
        for r in range(reps):
            posts = gen.generate(seeds=[r * n + i for i in range(n)], temperature=args.temperature, **dec)
            total_chars += sum(map(len, posts))
        dt = time.perf_counter() - t
        rates[n] = n * reps / dt
        print(f"Generator batched N={n:>3} ({args.words}): {rates[n]:8.2f} posts/s  ({n * reps} posts, "
              f"mean {total_chars / (n * reps):.0f} chars)  {rates[n] / base_rate:6.1f}x the torch-rnn loop  "
              f"(load {open('/proc/loadavg').read().split()[0]})")
    top = max(sizes)
    if args.words == "known":
        t = time.perf_counter()
        posts = gen.generate(seeds=list(range(top)), temperature=args.temperature)
        raw_rate = top / (time.perf_counter() - t)
        print(f"Generator batched N={top} (raw, for comparison): {raw_rate:8.2f} posts/s  "
              f"{raw_rate / base_rate:6.1f}x the torch-rnn loop; known/raw {rates[top] / raw_rate:.2f}x")
    print(f"ratio N={top} ({args.words}) / torch-rnn loop = {rates[top] / base_rate:.1f}x (target >= 40x at N=256)")


if __name__ == "__main__":
    main()
