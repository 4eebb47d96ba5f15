"""Rebuild the small model shipped in model/data/ from the bundled sample corpus.

Runs the same pipeline an operator runs (corpus import -> export -> preprocess -> train) in a
temporary data folder, then copies the best checkpoint (and its JSON sidecar) into model/data/.
Usage: python scripts/make_default_model.py [--iterations 3500] [--rnn-size 128] [--dropout 0.2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The bundled model's settings (docs/deployment.md, "The sample corpus and the bundled model"): a 2x128
# LSTM, dropout against copying its small corpus, the "hold" schedule over a fixed number of iterations,
# one torch thread.
ITERATIONS = 3500   # a fixed count, so the result does not depend on the load of a shared machine
RNN_SIZE = 128
NUM_LAYERS = 2
DROPOUT = 0.2
# as it was trained (torch-rnn's: plain Adam)
BATCH = ("--batch-size", "50", "--seq-length", "50", "--learning-rate", "0.002", "--weight-decay", "0")


def buhurt(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=ITERATIONS,
                        help=f"training iterations of 50 x 50 characters (default {ITERATIONS})")
    parser.add_argument("--rnn-size", type=int, default=RNN_SIZE, help=f"hidden units per layer (default {RNN_SIZE})")
    parser.add_argument("--num-layers", type=int, default=NUM_LAYERS, help=f"layers (default {NUM_LAYERS})")
    parser.add_argument("--dropout", type=float, default=DROPOUT, help=f"dropout (default {DROPOUT})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--output", type=Path, default=ROOT / "model/data", help="where default.pt/.json go")
    parser.add_argument("--keep", type=Path, help="also keep the whole training folder here (for inspection)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.toml").write_text('[paths]\ndata_dir = "data"\n[corpus]\nseed_with_sample = false\n',
                                          encoding="utf-8")
        buhurt("corpus", "import", str(ROOT / "corpus/data/sample_corpus.txt"), "--community", "sample", cwd=work)
        buhurt("corpus", "export", cwd=work)
        buhurt("preprocess", cwd=work)
        buhurt("train", "--max-iterations", str(args.iterations), "--max-epochs", "100000", "--checkpoint-every", "100",
               "--rnn-size", str(args.rnn_size), "--num-layers", str(args.num_layers), "--dropout", str(args.dropout),
               "--lr-schedule", "hold", "--num-threads", str(args.threads), "--no-progress", *BATCH,
               cwd=work)
        if args.keep:
            shutil.copytree(work / "data", args.keep, dirs_exist_ok=True)
        target = args.output
        target.mkdir(parents=True, exist_ok=True)
        for suffix in (".pt", ".json"):
            shutil.copyfile(work / "data/checkpoints" / f"best{suffix}", target / f"default{suffix}")
        print(f"wrote {target / 'default.pt'} ({(target / 'default.pt').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
