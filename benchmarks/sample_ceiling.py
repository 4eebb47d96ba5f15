"""What this CPU allows at N=256: the ceilings behind sample_throughput.py's known-word figure.

    python benchmarks/sample_ceiling.py [--checkpoint C] [--rows 256] [--temperature 0.8]

Against torch-rnn's one-at-a-time loop measured in the same run (sample_throughput.torch_rnn_loop),
it prints for raw and for known-word decoding (the product's default: the Russian dictionary, quotes
balanced) at N=--rows:
  - posts/second of the Generator as shipped (float32 step), and the row-steps it ran per post
    (known-word decoding also computes the letters of the words it takes back);
  - the step-only bound: those row-steps at the step's own time per row with a full batch, as if the
    pick, the word checks and the bookkeeping cost nothing;
  - the same two with the step's matrix products in bfloat16 (float32 state and gates), the fastest
    arithmetic this CPU offers. The product does not use it: it changes the posts of every seed,
    and `/meme N` must reproduce old drafts. It is here to show what other arithmetic would buy.

Without --checkpoint it takes the bundled model (model/data/default.pt).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

from model.checkpoint import load_checkpoint  # noqa: E402
from model.fast_step import FastStep  # noqa: E402
from model.lstm import model_from_checkpoint  # noqa: E402
from model.sample import Generator  # noqa: E402
from model.sample_options import SampleOptions  # noqa: E402
from sample_throughput import torch_rnn_loop  # noqa: E402

DEFAULT_CHECKPOINT = REPO / "model" / "data" / "default.pt"
# raw: torch-rnn's sampling; known: the product's decoding ([sample] defaults)
DECODINGS = {"any": {}, "known": dataclasses.asdict(SampleOptions().decoding)}


class Bf16Step(FastStep):
    """FastStep with its three matrix products in bfloat16 (LSTM only); state and gates stay float32."""

    def __init__(self, fast: FastStep) -> None:
        vars(self).update(vars(fast))
        bf = torch.bfloat16
        self.w_bf = [fast.w_hh[0].to(bf)] + [w.to(bf) for w in fast.w_cat[1:]]
        self.head_bf = fast.head_w.to(bf)

    def __call__(self, tokens: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        H, bf = self.H, torch.bfloat16
        x = tokens
        new = []
        for layer in range(self.L):
            h, c = state[layer]
            inp = h if layer == 0 else torch.cat([x, h], 1)
            g = torch.mm(inp.to(bf), self.w_bf[layer]).float()
            g += self.table0[tokens] if layer == 0 else self.b[layer]
            sg = torch.sigmoid(g[:, :3 * H])
            c = sg[:, H:2 * H] * c + sg[:, :H] * torch.tanh(g[:, 3 * H:])
            h = sg[:, 2 * H:3 * H] * torch.tanh(c)
            new.append((h, c))
            x = h
        return torch.mm(x.to(bf), self.head_bf).float() + self.head_b, new


class Counted:
    """A step that counts the rows it computes."""

    def __init__(self, step) -> None:
        self.step, self.rows = step, 0

    def __call__(self, tokens, state):
        self.rows += len(tokens)
        return self.step(tokens, state)

    def __getattr__(self, name):
        return getattr(self.step, name)


@torch.inference_mode()
def step_seconds_per_row(step, rows: int, repeats: int = 200) -> float:
    """The step's own time per row with `rows` rows (after a warm-up)."""
    tokens = torch.zeros(rows, dtype=torch.int64)
    state = step.zero_state(rows, "cpu")
    for _ in range(20):
        step(tokens, state)
    t = time.perf_counter()
    for _ in range(repeats):
        step(tokens, state)
    return (time.perf_counter() - t) / repeats / rows


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.8)
    args = ap.parse_args()
    n = args.rows
    flags = open("/proc/cpuinfo").read()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu; avx512_bf16: "
          f"{'yes' if 'avx512_bf16' in flags else 'no'}")
    ck = load_checkpoint(args.checkpoint)
    mc = ck["model_config"]
    print(f"model {mc['model_type']} {mc['num_layers']}x{mc['rnn_size']}, vocabulary {mc['vocab_size']} "
          f"({args.checkpoint.name}), temperature {args.temperature}, N={n}")
    gen = Generator.load(args.checkpoint)
    fp32 = gen.step
    steps = {"float32": fp32}
    if mc["model_type"] == "lstm":
        steps["bfloat16"] = Bf16Step(fp32)
    else:
        print(f"(no bfloat16 rows: the sketch covers LSTM steps, not {mc['model_type']})")
    model = model_from_checkpoint(ck)
    t = time.perf_counter()
    torch_rnn_loop(model, list(ck["idx_to_token"]), 16, args.temperature)
    base = 16 / (time.perf_counter() - t)
    print(f"torch-rnn loop, one post at a time: {base:.2f} posts/s  (load {load()})")
    per_row = {name: step_seconds_per_row(step, n) for name, step in steps.items()}
    for name, s in per_row.items():
        print(f"step alone, {n} rows, {name}: {s * 1e6:.2f} us per row")
    print(f"{'decoding':<8} {'step':<9} {'posts/s':>8} {'x loop':>7} {'row-steps/post':>15} "
          f"{'step-only bound':>16} {'x loop':>7}")
    for name, step in steps.items():
        for words in ("any", "known"):
            counted = Counted(step)
            gen.step = counted
            gen.generate(seeds=range(10_000, 10_000 + n), temperature=args.temperature,
                         **DECODINGS[words])                    # warm-up (and the prefix table)
            counted.rows = 0
            t = time.perf_counter()
            for r in range(2):
                gen.generate(seeds=range(r * n, (r + 1) * n), temperature=args.temperature, **DECODINGS[words])
            rate = 2 * n / (time.perf_counter() - t)
            per_post = counted.rows / (2 * n)
            bound = 1 / (per_post * per_row[name])
            print(f"{'raw' if words == 'any' else 'known':<8} {name:<9} {rate:8.1f} {rate / base:6.1f}x "
                  f"{per_post:15.0f} {bound:16.1f} {bound / base:6.1f}x  (load {load()})")
    gen.step = fp32


if __name__ == "__main__":
    main()
