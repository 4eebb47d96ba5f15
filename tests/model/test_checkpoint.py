"""model.checkpoint's format: a file of an earlier format version is upgraded in one place
(`upgrade`, called by load_checkpoint), and the JSON sidecar carries no tensor."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from model.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint, sidecar_path
from model.sample import Generator
from model.train_config import PRECISIONS, TrainConfig
from model.words import DEFAULT_POST_LINES

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "model" / "data" / "default.pt"
GOLDEN = ROOT / "tests" / "data" / "golden_samples.json"


def test_the_bundled_checkpoint_of_format_1_loads_as_the_current_format():
    raw = torch.load(BUNDLED, weights_only=True)
    assert raw["format_version"] == 1 and "bf16" in raw["train_config"] and "post_lines" not in raw["lexicon"]
    assert json.loads(GOLDEN.read_text(encoding="utf-8"))["checkpoint"] == "model/data/default.pt"   # the golden posts'

    ck = load_checkpoint(BUNDLED)
    assert ck["format_version"] == FORMAT_VERSION == 2
    tc = ck["train_config"]
    assert "bf16" not in tc and "num_threads" not in tc
    assert (tc["threads"], tc["weight_decay"]) == (raw["train_config"]["num_threads"], 0.0)
    assert TrainConfig.from_dict(tc).bf16 == raw["train_config"]["bf16"]
    assert ck["lexicon"]["words"] == raw["lexicon"]["words"] and ck["lexicon"]["post_lines"] == list(DEFAULT_POST_LINES)
    assert torch.equal(ck["model_state"]["head.weight"], raw["model_state"]["head.weight"])
    assert Generator.load(BUNDLED).post_lines == DEFAULT_POST_LINES


def test_a_format_1_run_without_lexicon_or_later_fields_loads_and_resumes_as_plain_adam(tiny_run, tmp_path):
    latest = load_checkpoint(tiny_run[3].latest_path)
    for key in ("lexicon", "lr_progress", "best_iteration"):
        del latest[key]
    tc = latest["train_config"]
    tc["bf16"] = PRECISIONS[tc.pop("precision")]   # the names a format-1 file has
    tc["num_threads"] = tc.pop("threads")
    del tc["weight_decay"]
    old = save_checkpoint(tmp_path / "old.pt", {**latest, "format_version": 1})

    ck = load_checkpoint(old)
    assert ck["format_version"] == 2 and ck["train_config"]["weight_decay"] == 0.0
    assert (ck["lr_progress"], ck["best_iteration"]) == (0.0, 0)
    assert ck["lexicon"] == {"min_count": None, "words": [], "post_lines": list(DEFAULT_POST_LINES)}
    g = Generator.load(old)
    assert (g.lexicon, g.lexicon_min_count, g.post_lines) == ((), None, DEFAULT_POST_LINES)


def test_the_sidecar_carries_no_tensor_and_no_nulled_one(tiny_run):
    for path in (tiny_run[3].latest_path, tiny_run[3].best_path):
        side = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        assert side["format_version"] == FORMAT_VERSION
        assert not {"model_state", "optimizer_state", "rank_states", "rng_state", "hidden"} & set(side)
    assert "rank_states" in torch.load(tiny_run[3].latest_path, weights_only=True)   # the checkpoint has them
