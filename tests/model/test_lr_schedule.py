"""The cosine and hold learning-rate schedules: over the iterations, over a time budget, resumed exactly."""
from __future__ import annotations

import time

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.errors import ModelError
from model.train import TrainConfig, TrainingInterrupted, _lr_at, train
from tests.tiny_model import prepare, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def last_lr(path) -> float:
    return load_checkpoint(path)["optimizer_state"]["param_groups"][0]["lr"]


def test_cosine_shape():
    cfg = TrainConfig(lr_schedule="cosine", learning_rate=1e-2)
    assert _lr_at(cfg, 0, 0.0) == pytest.approx(1e-2)
    assert _lr_at(cfg, 7, 0.5) == pytest.approx(1e-2 * (0.02 + 0.98 * 0.5))
    assert _lr_at(cfg, 9, 1.0) == pytest.approx(1e-2 * 0.02)
    assert _lr_at(cfg, 9, 3.0) == pytest.approx(1e-2 * 0.02)        # past the end: stays at the floor
    values = [_lr_at(cfg, 0, p / 10) for p in range(11)]
    assert values == sorted(values, reverse=True)
    step = TrainConfig.torch_rnn_preset(lr_decay_every=2, lr_decay_factor=0.5)
    assert [_lr_at(step, e, 0.9) for e in (0, 1, 2, 5)] == pytest.approx([2e-3, 2e-3, 1e-3, 5e-4])


def test_hold_shape():
    cfg = TrainConfig(lr_schedule="hold", learning_rate=1e-2)
    assert [_lr_at(cfg, 3, p) for p in (0.0, 0.5, 0.75)] == pytest.approx([1e-2] * 3)   # held for 75%
    assert _lr_at(cfg, 3, 0.875) == pytest.approx(1e-2 * (1 - 0.98 * 0.5))               # then linear
    assert _lr_at(cfg, 3, 1.0) == pytest.approx(1e-2 * 0.02)
    assert _lr_at(cfg, 3, 2.0) == pytest.approx(1e-2 * 0.02)


def test_cosine_over_iterations(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    r = train(tiny_config(h5, js, tmp_path / "ck", lr_schedule="cosine", learning_rate=4e-3, max_iterations=20))
    # the rate of the last iteration (19 of 20) and the progress the checkpoint remembers
    assert last_lr(r.latest_path) == pytest.approx(_lr_at(TrainConfig(lr_schedule="cosine", learning_rate=4e-3),
                                                          0, 19 / 20))
    assert load_checkpoint(r.latest_path)["lr_progress"] == pytest.approx(19 / 20)
    assert load_checkpoint(r.latest_path)["train_config"]["lr_schedule"] == "cosine"


class SteadyClock:
    """model.train's `time` with a monotonic clock that advances `step` seconds at each reading, so
    the share of a time budget one iteration takes does not depend on how busy the machine is (on a
    loaded one the real clock gave the last iteration 2% of a 1.2 s budget, and the rate stayed above
    the floor's tenth); perf_counter (chars/s) is the real one."""

    perf_counter = staticmethod(time.perf_counter)

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def monotonic(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("schedule", ["cosine", "hold"])
def test_a_time_budget_drives_the_schedule_to_its_floor(tmp_path, schedule, monkeypatch):
    _, h5, js = prepare(tmp_path, n=60)
    monkeypatch.setattr("model.train.time", SteadyClock(0.002))   # a few readings an iteration: ~200 iterations
    cfg = tiny_config(h5, js, tmp_path / "ck", lr_schedule=schedule, max_epochs=100000, max_minutes=0.02,
                      checkpoint_every=100000)
    r = train(cfg)
    assert r.stopped == "max_minutes"
    ck = load_checkpoint(r.latest_path)
    assert ck["iteration"] < 100000 * 2 and ck["lr_progress"] > 0.98   # the budget, not the epochs, drove it
    assert last_lr(r.latest_path) == pytest.approx(_lr_at(cfg, 0, ck["lr_progress"]))
    assert last_lr(r.latest_path) < 2e-3 * 0.1


@pytest.mark.parametrize("schedule", ["cosine", "hold"])
def test_schedule_resumes_exactly(tmp_path, schedule):
    _, h5, js = prepare(tmp_path, n=80)
    kw = dict(batch_size=16, dropout=0.2, checkpoint_every=4, lr_schedule=schedule, max_iterations=20)
    full = train(tiny_config(h5, js, tmp_path / "a", **kw))

    def stop(info):
        if info.iteration == 9:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as ei:
        train(tiny_config(h5, js, tmp_path / "b", **kw), callback=stop)
    resumed = train(tiny_config(h5, js, tmp_path / "b", resume=str(ei.value.latest_path), **kw))
    a, b = (load_checkpoint(r.latest_path)["model_state"] for r in (full, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert last_lr(full.latest_path) == last_lr(resumed.latest_path)


def test_unknown_schedule_is_a_clear_error(tmp_path):
    _, h5, js = prepare(tmp_path, n=60)
    with pytest.raises(ModelError, match="lr_schedule='linear'"):
        train(tiny_config(h5, js, tmp_path / "ck", lr_schedule="linear"))
