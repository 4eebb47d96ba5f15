"""Training: the loss falls, best/latest checkpoints load with weights_only=True, time budget, bf16."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from model.errors import ModelError
from model.train import TrainConfig, train
from tests.tiny_model import prepare, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_loss_decreases_and_checkpoints_are_self_contained(tiny_run):
    _, _, js, result = tiny_run
    assert result.iterations == 120 and result.stopped == "max_iterations"
    ck = torch.load(result.best_path, weights_only=True)
    latest = torch.load(result.latest_path, weights_only=True)
    vocab_size = len(json.loads(Path(js).read_text(encoding="utf-8"))["idx_to_token"])
    first_val = ck["val_loss_history"][0][1]
    assert ck["val_loss_history"][0][0] == 40
    assert result.best_val_loss < first_val < math.log(vocab_size)
    assert ck["train_loss_history"][-1][1] < ck["train_loss_history"][0][1] * 0.7
    for key in ("model_state", "model_config", "train_config", "idx_to_token", "iteration",
                "train_loss_history", "val_loss_history", "corpus_fingerprint", "best_val_loss"):
        assert key in ck, key
    assert len(ck["idx_to_token"]) == vocab_size
    assert "optimizer_state" in latest and latest["iteration"] == 120 and latest["rank_states"]
    side = json.loads(result.best_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert side["iteration"] == ck["iteration"] and side["model_config"]["rnn_size"] == 32
    assert (result.best_path.parent / "loss.png").stat().st_size > 1000
    assert not [p for p in result.best_path.parent.iterdir() if ".tmp" in p.name]


def test_defaults_match_torch_rnn_and_gpu_preset():
    c = TrainConfig.torch_rnn_preset()
    assert (c.model_type, c.wordvec_size, c.rnn_size, c.num_layers, c.dropout) == ("lstm", 64, 128, 2, 0.0)
    assert (c.batch_size, c.seq_length, c.learning_rate, c.grad_clip, c.weight_decay) == (50, 50, 2e-3, 5.0, 0.0)
    assert (c.lr_decay_every, c.lr_decay_factor, c.max_epochs) == (5, 0.5, 50)
    g = TrainConfig.gpu_preset(max_minutes=5)
    assert (g.num_layers, g.rnn_size, g.device, g.bf16, g.max_minutes) == (3, 512, "cuda", True, 5)


@pytest.mark.parametrize("model_type", ["gru", "rnn"])
def test_other_cells_and_bf16_on_cpu(tmp_path, model_type):
    _, h5, js = prepare(tmp_path, n=60)
    r = train(tiny_config(h5, js, tmp_path / "ck", model_type=model_type, max_iterations=6, precision="bf16"))
    ck = torch.load(r.best_path, weights_only=True)
    assert ck["model_config"]["model_type"] == model_type and math.isfinite(r.best_val_loss)


def test_lr_decay_keeps_adam_state(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    cfg = tiny_config(h5, js, tmp_path / "ck", batch_size=32, max_epochs=3, lr_decay_every=1,
                      lr_decay_factor=0.5, checkpoint_every=1000)
    r = train(cfg)
    latest = torch.load(r.latest_path, weights_only=True)
    opt = latest["optimizer_state"]
    assert opt["param_groups"][0]["lr"] == pytest.approx(2e-3 * 0.25)
    assert int(opt["state"][0]["step"]) == r.iterations   # one Adam state through every decay


def test_max_minutes_stops_and_keeps_best(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    r = train(tiny_config(h5, js, tmp_path / "ck", max_epochs=100000, max_minutes=0.02, checkpoint_every=100000))
    # the budget ran out (no upper bound on the time: a loaded machine only makes it longer)
    assert r.stopped == "max_minutes" and r.elapsed_s >= 0.02 * 60
    assert r.best_path.is_file() and r.latest_path.is_file()


def test_bad_config_and_inputs(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    with pytest.raises(ModelError, match="batch_size"):
        train(tiny_config(h5, js, tmp_path / "ck", batch_size=0))
    with pytest.raises(ModelError, match="does not exist"):
        train(tiny_config(tmp_path / "nope.h5", js, tmp_path / "ck"))
    with pytest.raises(ModelError, match="too few"):
        train(tiny_config(h5, js, tmp_path / "ck", batch_size=500, seq_length=500))
    with pytest.raises(ModelError, match="device"):
        train(tiny_config(h5, js, tmp_path / "ck", device="tpu"))


def test_weight_decay_takes_the_matrices_and_survives_a_resume(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    plain = train(tiny_config(h5, js, tmp_path / "plain", max_iterations=4))
    assert len(torch.load(plain.latest_path, weights_only=True)["optimizer_state"]["param_groups"]) == 1
    r = train(tiny_config(h5, js, tmp_path / "ck", max_iterations=4, weight_decay=0.5))
    latest = torch.load(r.latest_path, weights_only=True)
    decayed, kept = latest["optimizer_state"]["param_groups"]
    assert (decayed["weight_decay"], kept["weight_decay"]) == (0.5, 0.0)

    def shapes(group):  # Adam's moments have their parameter's shape
        return sorted(tuple(latest["optimizer_state"]["state"][i]["exp_avg"].shape) for i in group["params"])

    params = latest["model_state"]
    assert shapes(decayed) == sorted(tuple(v.shape) for k, v in params.items()
                                     if k.startswith(("rnn.weight_", "head.weight")))
    assert shapes(kept) == sorted(tuple(v.shape) for k, v in params.items()
                                  if k == "embed.weight" or "bias" in k)
    # the decay pulls the matrices in: the same steps without it leave them larger
    w = torch.load(r.best_path, weights_only=True)["model_state"]["head.weight"]
    w0 = torch.load(plain.best_path, weights_only=True)["model_state"]["head.weight"]
    assert w.norm() < w0.norm()
    resumed = train(TrainConfig.from_dict({**latest["train_config"], "resume": str(r.latest_path),
                                           "weight_decay": 0.0, "max_iterations": 8}))
    again = torch.load(resumed.latest_path, weights_only=True)
    assert again["train_config"]["weight_decay"] == 0.5 and again["iteration"] == 8
    # a run whose checkpoint predates weight_decay was plain Adam, and resumes as one
    old = torch.load(plain.latest_path, weights_only=True)
    del old["train_config"]["weight_decay"]
    torch.save(old, tmp_path / "old-latest.pt")
    before = train(TrainConfig.from_dict({**old["train_config"], "resume": str(tmp_path / "old-latest.pt"),
                                          "weight_decay": 0.3, "max_iterations": 6}))
    after = torch.load(before.latest_path, weights_only=True)
    assert after["train_config"]["weight_decay"] == 0.0 and len(after["optimizer_state"]["param_groups"]) == 1
    with pytest.raises(ModelError, match="weight_decay"):
        train(tiny_config(h5, js, tmp_path / "bad", weight_decay=-1))


def test_the_reported_rate_is_the_whole_runs_not_the_last_windows(tmp_path):
    """A run that ends one iteration after a checkpoint reported that iteration's rate, with the
    checkpoint's time in it (70 chars/s where the run trained 24,000)."""
    _, h5, js = prepare(tmp_path, n=60)
    r = train(tiny_config(h5, js, tmp_path / "ck", max_iterations=7, checkpoint_every=6, print_every=1))
    cfg = tiny_config(h5, js, tmp_path / "ck")
    assert r.iterations == 7
    assert r.chars_per_s == pytest.approx(cfg.batch_size * cfg.seq_length * 7 / r.elapsed_s, rel=0.05)


def test_an_h5_with_the_vocabulary_json_of_another_corpus_is_refused_naming_both(tmp_path):
    from model.splits import split_text
    from tests.tiny_model import LINES

    _, h5, js = prepare(tmp_path, n=60)
    # the night's export adds a character that sorts first: every id of the earlier .h5 now names
    # the next character in the new .json, and each id is still inside the larger vocabulary
    _, _, grown_js = prepare(tmp_path, n=60, lines=[*LINES, "СПРАШИВАЕШЬ ЧТО СЛУЧИЛОСЬ!"], name="grown")
    with pytest.raises(ModelError, match="another vocabulary") as info:
        train(tiny_config(h5, grown_js, tmp_path / "ck", max_iterations=2))
    assert str(h5) in str(info.value) and str(grown_js) in str(info.value)
    assert not (tmp_path / "ck").exists()
    with pytest.raises(ModelError, match="another vocabulary"):
        split_text(h5, grown_js, "val")
    assert train(tiny_config(h5, js, tmp_path / "ck", max_iterations=2)).iterations == 2


FILE_SIZE_LIMITED = """
import resource, signal, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (40000, 40000))   # a disk that fills up, as the checkpoint is written
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from bot.cli import main
main(sys.argv[1:])
"""


def test_a_checkpoint_that_cannot_be_written_ends_training_in_one_line_leaving_no_half_file(tmp_path):
    import subprocess
    import sys

    from tests.helpers import PATIENCE, ROOT, error_lines
    from tests.tiny_model import subprocess_env

    _, h5, js = prepare(tmp_path, n=60)
    ck = tmp_path / "ck"
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED, "train", "--input-h5", str(h5), "--input-json",
                           str(js), "--checkpoint-dir", str(ck), "--rnn-size", "32", "--wordvec-size", "16",
                           "--batch-size", "8", "--seq-length", "32", "--max-iterations", "10",
                           "--checkpoint-every", "5", "--no-progress"],
                          cwd=tmp_path, env=subprocess_env(ROOT), capture_output=True, text=True, timeout=PATIENCE)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = error_lines(proc.stderr)
    assert f"cannot write checkpoint {str(ck / 'best.pt')!r}" in line and "free" in line, line
    assert list(ck.iterdir()) == []
