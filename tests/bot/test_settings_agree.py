"""One source of truth per setting: the config's tables are the lower layers' dataclasses, and the
CLI's --help shows their defaults; the CLI's defaults come from the config file (`buhurt train` with no flags
trains what [model] and [train] say); the nightly run trains through model/run.py, not the bot's
CLI, with its progress bar off."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import torch

from bot.config import Settings
from corpus.popularity import PopularityWeighting
from corpus.rules import CleanOptions
from jobs.alerts import AlertOptions
from jobs.curation import GenerateOptions
from jobs.moderation import ModerationOptions
from jobs.pool import PoolOptions, ScreenOptions
from jobs.ranker import RankerOptions
from jobs.rating import RateOptions
from jobs.retrain import NightlyOptions
from jobs.scheduler import ScheduleOptions
from model.sample_options import SampleOptions
from model.train_config import ModelShape, TrainConfig, TrainOptions
from tests.helpers import ROOT, run_cli

EXAMPLE = ROOT / "config.example.toml"
SAMPLE_FLAGS = {"max_length": "--length", "temperature": "--temperature", "top_k": "--top-k", "words": "--words",
                "dictionary": "--dictionary", "quotes": "--quotes", "grammar": "--grammar",
                "ending": "--ending"}
LOWER = [("model", ModelShape), ("train", TrainOptions), ("retrain", NightlyOptions), ("sample", SampleOptions),
         ("clean", CleanOptions), ("pool", PoolOptions), ("screen", ScreenOptions), ("schedule", ScheduleOptions),
         ("moderation", ModerationOptions), ("alerts", AlertOptions), ("rate", RateOptions),
         ("ranker", RankerOptions), ("generate", GenerateOptions), ("popularity", PopularityWeighting)]
OVERRIDDEN = {("sample", "temperature"): "auto"}   # the service samples at the model's tuned temperature


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def help_defaults(capsys, *argv) -> dict[str, str]:
    """{flag: the default --help shows, without white space} of `buhurt ARGV --help` (each flag and
    its aliases)."""
    code, out, err = run_cli(capsys, *argv, "--help")
    assert code == 0, err
    shown = {}
    for chunk in re.split(r"\n(?=\s{2}-)", out):
        text = " ".join(chunk.split())
        names = re.match(r"((?:-[-\w]+(?:/--[-\w]+)?)(?:, -[-\w]+)*)", text)
        default = re.search(r"\[default: ([^\];]*)[\];]", chunk.replace("\n", " "))
        if names and default:
            for name in re.split(r", |/", names.group(1)):
                shown[name] = re.sub(r"\s+", "", default.group(1))   # a long default wraps at any character
    return shown


def test_settings_are_the_lower_dataclasses_with_their_defaults():
    """A table of a lower layer's concern is that layer's dataclass itself (composition, not a
    subclass restating it), at that dataclass's defaults."""
    defaults = Settings()
    for table, cls in LOWER:
        section = getattr(defaults, table)
        assert type(section) is cls, f"[{table}] must be {cls.__name__} itself"
        assert cls.__dataclass_params__.frozen
        for f in dataclasses.fields(cls):
            want = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert getattr(section, f.name) == OVERRIDDEN.get((table, f.name), want), f"{table}.{f.name}"


def test_dataclasses_and_help_agree(capsys):
    """`buhurt train|sample|preprocess|lexicon --help` show the dataclasses' defaults (the example
    file sets none of their keys)."""
    defaults = Settings()
    train = help_defaults(capsys, "--config", str(EXAMPLE), "train")
    for cls in (ModelShape, TrainOptions):
        for f in dataclasses.fields(cls):
            assert train.get(flag(f.name)) == str(f.default), f"buhurt train {flag(f.name)}"
    assert train["--num-threads"] == train["--threads"]
    sample = help_defaults(capsys, "--config", str(EXAMPLE), "sample")
    for f in dataclasses.fields(SampleOptions):
        value = OVERRIDDEN.get(("sample", f.name), f.default)
        assert sample.get(SAMPLE_FLAGS[f.name]) == str(value), f"buhurt sample {SAMPLE_FLAGS[f.name]}"
    pre = help_defaults(capsys, "--config", str(EXAMPLE), "preprocess")
    assert (pre["--val-frac"], pre["--test-frac"]) == (str(defaults.retrain.val_frac), str(defaults.retrain.test_frac))
    lexicon = help_defaults(capsys, "--config", str(EXAMPLE), "lexicon")
    assert lexicon["--min-count"] == str(defaults.train.lexicon_min_count)


def test_the_config_file_sets_the_defaults_help_shows(capsys, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "d"}"\n[model]\nrnn_size = 96\nmodel_type = "gru"\n'
                   '[train]\nlr_schedule = "step"\nlearning_rate = 0.01\nthreads = 3\n'
                   '[sample]\nmax_length = 123\ntemperature = 1.1\nwords = "any"\n', encoding="utf-8")
    train = help_defaults(capsys, "--config", str(cfg), "train")
    assert (train["--rnn-size"], train["--model-type"], train["--lr-schedule"]) == ("96", "gru", "step")
    assert (train["--learning-rate"], train["--threads"]) == ("0.01", "3")
    assert train["--input-h5"] == str(tmp_path / "d" / "train" / "corpus.h5")
    sample = help_defaults(capsys, "--config", str(cfg), "sample")
    assert (sample["--length"], sample["--temperature"], sample["--words"]) == ("123", "1.1", "any")


def test_buhurt_train_with_no_flags_trains_what_the_config_says(capsys, tmp_path, tiny_corpus_file):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "d"}"\n'
                   '[model]\nmodel_type = "gru"\nrnn_size = 16\nwordvec_size = 8\nnum_layers = 1\n'
                   '[train]\nbatch_size = 4\nseq_length = 16\nmax_iterations = 3\ncheckpoint_every = 3\n'
                   'lr_schedule = "step"\nlearning_rate = 0.004\nthreads = 1\nseed = 7\n', encoding="utf-8")
    for argv in (("corpus", "import", str(tiny_corpus_file)), ("corpus", "export"), ("preprocess",)):
        code, _, err = run_cli(capsys, "--config", str(cfg), *argv)
        assert code == 0, err
    code, out, err = run_cli(capsys, "--config", str(cfg), "train")
    assert code == 0 and "max_iterations after 3 iterations" in out, err
    ck = torch.load(tmp_path / "d" / "checkpoints" / "best.pt", weights_only=True)
    tc, mc = ck["train_config"], ck["model_config"]
    assert (mc["model_type"], mc["rnn_size"], mc["wordvec_size"], mc["num_layers"]) == ("gru", 16, 8, 1)
    assert (tc["batch_size"], tc["seq_length"], tc["lr_schedule"], tc["learning_rate"], tc["seed"]) == \
        (4, 16, "step", 0.004, 7)
    code, out, err = run_cli(capsys, "--config", str(cfg), "train", "--preset", "torch-rnn", "--max-iterations", "1",
                             "--batch-size", "4", "--seq-length", "16", "--checkpoint-dir", str(tmp_path / "ck2"),
                             "--no-progress")
    assert code == 0, err
    tc = torch.load(tmp_path / "ck2" / "best.pt", weights_only=True)["train_config"]
    assert (tc["rnn_size"], tc["lr_schedule"], tc["lr_decay_every"], tc["max_epochs"]) == (128, "step", 5, 50)


def test_the_nightly_run_trains_through_model_run_with_the_bar_off(capfd, tmp_path, tiny_corpus_file):
    from bot.app import ensure_model, retrain_plan
    from bot.config import load_settings
    from bot.context import TrainPaths
    from corpus.db import open_db

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "d"}"\n[startup]\nuse_bundled_model = false\n'
                   '[model]\nrnn_size = 16\n'
                   'wordvec_size = 8\nnum_layers = 1\n[train]\nbatch_size = 4\nseq_length = 16\n'
                   'max_iterations = 4\ncheckpoint_every = 2\nthreads = 1\n', encoding="utf-8")
    assert run_cli(capfd, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    settings = load_settings(cfg)
    paths = TrainPaths.under(settings.data_dir)
    plan = retrain_plan(settings, paths)
    assert plan.training.progress is False and plan.training.rnn_size == 16 and plan.training.threads == 1
    capfd.readouterr()
    db = open_db(settings.database)
    try:
        ensure_model(settings, db, paths)          # the first model: a run in a child process
    finally:
        db.close()
    err = capfd.readouterr().err
    assert "training on cpu" in err and "it/s" not in err and "\r" not in err   # the start line, no tqdm bar
    run_file, = (tmp_path / "d" / "checkpoints").glob("run-*/run.json")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    assert run["progress"] is False and run["rnn_size"] == 16 and run["max_iterations"] == 4
    assert TrainConfig.from_dict(run).checkpoint_dir == str(run_file.parent)


def test_model_run_refuses_a_bad_run_file_in_one_line(tmp_path, capsys):
    """The first file through `python -m model.run` as the retrain starts it (a child process), the
    others through the same main() in this process (a child costs seconds: it imports torch)."""
    from model.run import main as model_run

    bad = tmp_path / "run.json"
    for text, needle in (("{", "not a JSON TrainConfig"), ('{"rnn_sise": 3}', "rnn_sise"),
                         ('{"batch_size": 0}', "batch_size=0"), ('[1]', "JSON object")):
        bad.write_text(text, encoding="utf-8")
        if text == "{":
            done = subprocess.run([sys.executable, "-m", "model.run", str(bad)], capture_output=True, text=True,
                                  cwd=ROOT)
            code, out, err = done.returncode, done.stdout, done.stderr
        else:
            capsys.readouterr()
            code = model_run([str(bad)])
            out, err = capsys.readouterr()
        assert code == 2 and needle in err, err
        assert len(err.strip().splitlines()) == 1 and not out


@pytest.mark.parametrize("package", ["jobs", "model", "corpus"])
def test_no_lower_layer_runs_the_bot_cli(package):
    for path in (ROOT / package).rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""["']-m["'],\s*["']bot["']""", text), f"{path} runs `python -m bot`"
