"""DDP under torchrun: 2 CPU processes with gloo; same weights on both ranks, only rank 0 writes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_model import _model_tests_one_thread, prepare, subprocess_env  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import os, sys, torch
    from model.train import TrainConfig, train
    h5, js, out = sys.argv[1:4]
    rank = int(os.environ["RANK"])

    def dump(info):
        torch.save({k: v.detach().clone() for k, v in info.model.state_dict().items()},
                   os.path.join(out, f"rank{info.rank}-it{info.iteration}.pt"))

    cfg = TrainConfig(input_h5=h5, input_json=js, checkpoint_dir=os.path.join(out, f"ck-rank{rank}"),
                      batch_size=4, seq_length=16, rnn_size=16, wordvec_size=8, max_iterations=2,
                      checkpoint_every=1, progress=False, dropout=0.1)
    r = train(cfg, callback=dump)
    print("rank", rank, "iterations", r.iterations)
""")


def test_two_processes_share_weights_and_only_rank0_writes(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(worker), str(h5), str(js), str(tmp_path)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(REPO), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for it in (1, 2):
        a = torch.load(tmp_path / f"rank0-it{it}.pt", weights_only=True)
        b = torch.load(tmp_path / f"rank1-it{it}.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), f"ranks differ after step {it}"
    assert (tmp_path / "ck-rank0" / "best.pt").is_file() and (tmp_path / "ck-rank0" / "latest.pt").is_file()
    assert not (tmp_path / "ck-rank1").exists() or not any((tmp_path / "ck-rank1").iterdir())
    ck = torch.load(tmp_path / "ck-rank0" / "latest.pt", weights_only=True)
    assert ck["run"]["world_size"] == 2 and len(ck["rank_states"]) == 2
