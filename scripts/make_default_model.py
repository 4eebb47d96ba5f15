"""Rebuild the small model shipped in model/data/ from the bundled sample corpus.

Runs the same pipeline an operator runs (corpus import -> export -> preprocess -> train) in a
temporary data folder, then copies the best checkpoint (and its JSON sidecar) into model/data/.
Usage: python scripts/make_default_model.py [--minutes 8]
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


def buhurt(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.toml").write_text('[paths]\ndata_dir = "data"\n[corpus]\nseed_with_sample = false\n',
                                          encoding="utf-8")
        buhurt("corpus", "import", str(ROOT / "corpus/data/sample_corpus.txt"), "--community", "sample", cwd=work)
        buhurt("corpus", "export", cwd=work)
        buhurt("preprocess", cwd=work)
        buhurt("train", "--max-minutes", str(args.minutes), "--max-epochs", "100000", "--checkpoint-every", "100",
               "--dropout", "0.1", "--lr-decay-every", "60",
               cwd=work)
        target = ROOT / "model/data"
        target.mkdir(exist_ok=True)
        for suffix in (".pt", ".json"):
            shutil.copyfile(work / "data/checkpoints" / f"best{suffix}", target / f"default{suffix}")
        print(f"wrote {target / 'default.pt'} ({(target / 'default.pt').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
