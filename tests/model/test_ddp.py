"""DDP under torchrun: 2 CPU processes with gloo; same weights on both ranks, only rank 0 writes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tests.helpers import PATIENCE
from tests.tiny_model import prepare, subprocess_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import json, os, sys, torch
    from model.train import TrainConfig, train
    h5, js, out = sys.argv[1:4]
    rank = int(os.environ["RANK"])

    def dump(info):
        torch.save({k: v.detach().clone() for k, v in info.model.state_dict().items()},
                   os.path.join(out, f"rank{info.rank}-it{info.iteration}.pt"))

    cfg = TrainConfig.torch_rnn_preset(input_h5=h5, input_json=js, checkpoint_dir=os.path.join(out, f"ck-rank{rank}"),
                      batch_size=4, seq_length=16, rnn_size=16, wordvec_size=8, max_iterations=2,
                      checkpoint_every=1, progress=False, dropout=0.1, **json.loads(sys.argv[4]))
    r = train(cfg, callback=dump)
    print("rank", rank, "iterations", r.iterations)
""")


# the cosine schedule over a time budget reads each rank's clock: the ranks must agree on one rate
@pytest.mark.parametrize("extra", [{}, {"lr_schedule": "cosine", "max_minutes": 5.0}], ids=["step", "cosine-time"])
def test_two_processes_share_weights_and_only_rank0_writes(tmp_path, extra):
    _, h5, js = prepare(tmp_path, n=60)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER, encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(worker), str(h5), str(js), str(tmp_path), json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(REPO), capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for it in (1, 2):
        a = torch.load(tmp_path / f"rank0-it{it}.pt", weights_only=True)
        b = torch.load(tmp_path / f"rank1-it{it}.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), f"ranks differ after step {it}"
    assert (tmp_path / "ck-rank0" / "best.pt").is_file() and (tmp_path / "ck-rank0" / "latest.pt").is_file()
    assert not (tmp_path / "ck-rank1").exists() or not any((tmp_path / "ck-rank1").iterdir())
    ck = torch.load(tmp_path / "ck-rank0" / "latest.pt", weights_only=True)
    assert ck["run"]["world_size"] == 2 and len(ck["rank_states"]) == 2


AGREE = textwrap.dedent("""
    from model import distributed as D
    ctx = D.setup("cpu")
    with open(f"agreed-{ctx.rank}.txt", "w") as out:   # one file per rank: printed lines interleave
        out.write(f"agreed {D.agree_max(ctx, 0.25 + ctx.rank)} flag {D.any_flag(ctx, ctx.rank)}")
    D.cleanup(ctx)
""")


def test_ranks_agree_on_the_schedule_clock(tmp_path):
    """The time-driven cosine uses the slowest clock of all ranks, so every rank sets the same rate."""
    worker = tmp_path / "agree.py"
    worker.write_text(AGREE, encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(REPO), capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        assert (tmp_path / f"agreed-{rank}.txt").read_text() == "agreed 1.25 flag 1"
