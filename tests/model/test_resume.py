"""--resume continues exactly, --init-from grows the vocabulary, Ctrl-C leaves a resumable checkpoint."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.lstm import CharRNN, ModelConfig
from model.train import TrainConfig, TrainingInterrupted, _transfer_init, train
from model.vocab import Vocab
from tests.helpers import PATIENCE
from tests.tiny_model import LINES, prepare, subprocess_env, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]


def weights(path):
    return torch.load(path, weights_only=True)["model_state"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_exactly(tmp_path):
    _, h5, js = prepare(tmp_path, n=80)
    # dropout exercises the RNG state; batch 16 x 32 crosses an epoch (and an lr decay) by iteration 20
    kw = dict(batch_size=16, dropout=0.2, lr_decay_every=1, checkpoint_every=4)
    full = train(tiny_config(h5, js, tmp_path / "a", max_iterations=20, **kw))
    part = train(tiny_config(h5, js, tmp_path / "b", max_iterations=9, **kw))
    assert part.iterations == 9
    nb = load_checkpoint(full.latest_path)["epoch"]
    assert nb > 1  # the run crossed an epoch boundary
    resumed = train(tiny_config(h5, js, tmp_path / "b", max_iterations=20, resume=str(part.latest_path), **kw))
    assert resumed.iterations == 20
    assert same(weights(full.latest_path), weights(resumed.latest_path))


def test_resume_rejects_a_different_corpus_and_best(tmp_path):
    from model.errors import ModelError

    _, h5, js = prepare(tmp_path, n=60)
    r = train(tiny_config(h5, js, tmp_path / "a", max_iterations=3))
    _, h5b, jsb = prepare(tmp_path, n=61, name="other")
    with pytest.raises(ModelError, match="init_from"):
        train(tiny_config(h5b, jsb, tmp_path / "a", max_iterations=6, resume=str(r.latest_path)))
    with pytest.raises(ModelError, match="not resumable"):
        train(tiny_config(h5, js, tmp_path / "a", max_iterations=6, resume=str(r.best_path)))


def test_init_from_with_grown_vocabulary_keeps_old_rows(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    old = train(tiny_config(h5, js, tmp_path / "a", max_iterations=5))
    _, h5b, jsb = prepare(tmp_path, n=60, lines=LINES + ["ΩМЕГА 🔥 ЖАРА"], name="grown")
    ck = load_checkpoint(old.best_path)
    new_vocab = Vocab.load_json(jsb)
    assert len(new_vocab) > len(ck["idx_to_token"])
    model = CharRNN(ModelConfig.from_dict({**ck["model_config"], "vocab_size": len(new_vocab)}))
    assert _transfer_init(model, ck, new_vocab) == len(new_vocab) - len(ck["idx_to_token"])
    sd = model.state_dict()
    for i, t in enumerate(ck["idx_to_token"]):
        j = new_vocab.index[t]
        assert torch.equal(sd["embed.weight"][j], ck["model_state"]["embed.weight"][i])
        assert torch.equal(sd["head.weight"][j], ck["model_state"]["head.weight"][i])
    assert torch.equal(sd["rnn.weight_hh_l1"], ck["model_state"]["rnn.weight_hh_l1"])
    tuned = train(tiny_config(h5b, jsb, tmp_path / "b", max_iterations=5, init_from=str(old.best_path),
                              dropout=0.25, rnn_size=999))
    ck2 = load_checkpoint(tuned.best_path)
    assert "Ω" in ck2["idx_to_token"] and "🔥" in ck2["idx_to_token"] and ck2["iteration"] == 5
    # the shape is the checkpoint's, the dropout the configured one (it only regularises the run)
    assert ck2["model_config"]["rnn_size"] == ck["model_config"]["rnn_size"] != 999
    assert ck["model_config"]["dropout"] == 0.0
    assert ck2["model_config"]["dropout"] == ck2["train_config"]["dropout"] == 0.25
    resumed = train(tiny_config(h5b, jsb, tmp_path / "b", max_iterations=7, resume=str(tuned.latest_path)))
    assert load_checkpoint(resumed.latest_path)["model_config"]["dropout"] == 0.25   # a resumed run is the same run


def test_keyboard_interrupt_leaves_a_resumable_checkpoint(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)

    def stop(info):
        if info.iteration == 7:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as ei:
        train(tiny_config(h5, js, tmp_path / "a", max_iterations=50, checkpoint_every=100), callback=stop)
    assert ei.value.latest_path == tmp_path / "a" / "latest.pt"
    assert load_checkpoint(ei.value.latest_path)["iteration"] == 7
    r = train(tiny_config(h5, js, tmp_path / "a", max_iterations=10, resume=str(ei.value.latest_path)))
    assert r.iterations == 10


def test_cli_ctrl_c_exits_130_with_the_checkpoint_path(tmp_path):
    _, h5, js = prepare(tmp_path, n=200)
    ck = tmp_path / "ck"
    cmd = [sys.executable, "-m", "bot", "train", "--input-h5", str(h5), "--input-json", str(js),
           "--checkpoint-dir", str(ck), "--batch-size", "8", "--seq-length", "32", "--rnn-size", "32",
           "--max-epochs", "100000", "--checkpoint-every", "5", "--no-progress"]
    env = subprocess_env(REPO)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + PATIENCE
    while not (ck / "latest.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 130, err
    assert "resumable checkpoint" in err and str(ck / "latest.pt") in err
    assert load_checkpoint(ck / "latest.pt")["iteration"] >= 5


STOPPED_BY_SIGTERM = """
import os, signal, sys
from model.train import TrainingInterrupted, train
from model.run import read_run

def stop(info):
    if info.iteration == 3:   # what `docker stop`, `systemctl stop` (the unit's every process) or `timeout` send
        os.kill(os.getpid(), signal.SIGTERM)

try:
    train(read_run(sys.argv[1]), callback=stop)
except TrainingInterrupted as exc:
    print(exc.iterations, exc.latest_path)
    sys.exit(130)
"""


def test_a_sigterm_stops_training_as_ctrl_c_does_leaving_a_resumable_checkpoint(tmp_path):
    import json

    _, h5, js = prepare(tmp_path, n=60)
    ck = tmp_path / "ck"
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps(tiny_config(h5, js, ck, max_iterations=1000, checkpoint_every=1000).to_dict()))
    proc = subprocess.run([sys.executable, "-c", STOPPED_BY_SIGTERM, str(run_file)], cwd=REPO,
                          env=subprocess_env(REPO), capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.split() == ["3", str(ck / "latest.pt")]
    assert load_checkpoint(ck / "latest.pt")["iteration"] == 3
    r = train(tiny_config(h5, js, ck, max_iterations=5, resume=str(ck / "latest.pt")))
    assert r.iterations == 5


def test_resume_picks_threads_for_the_resumed_model_not_the_configured_one(tmp_path, monkeypatch):
    # a tiny run (one thread) resumed by `buhurt train --resume` alone: the command's config is
    # [model]/[train]'s 2x256 batch 32, but the run goes on as the checkpoint's tiny model; threads
    # chosen for the configured shape took every core and ran it ~7x slower
    import model.train as mt

    monkeypatch.setattr(mt, "usable_cores", lambda: 4)
    _, h5, js = prepare(tmp_path, n=60)
    part = train(tiny_config(h5, js, tmp_path / "a", max_iterations=3))
    assert part.threads == 1
    resumed = train(replace(TrainConfig(progress=False), resume=str(part.latest_path), input_h5="", input_json="",
                            checkpoint_dir="", max_iterations=5))
    assert resumed.iterations == 5
    assert resumed.threads == 1
    assert load_checkpoint(resumed.latest_path)["run"]["threads"] == 1
