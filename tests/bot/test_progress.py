"""Long commands show progress: `buhurt sample --num N` (posts printed batch by batch, a bar on
stderr), `buhurt tune` (a bar of the posts made), the training bar's ETA (the time budget's when
there is one), and `buhurt retrain` by hand (10 minutes by default; the promoted model is tuned)."""
from __future__ import annotations

import re

import pytest

from tests.helpers import retrain_config, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sample_prints_batches_with_a_bar_and_the_same_posts_as_one_batch(capsys, tmp_path, tiny_checkpoint):
    from bot.cli_model import SAMPLE_BATCH
    from model.sample import Generator

    num = SAMPLE_BATCH + 4
    code, out, err = run_cli(capsys, "--config", str(retrain_config(tmp_path)), "sample",
                             "--checkpoint", str(tiny_checkpoint),
                             "--num", str(num), "--length", "60", "--seed", "7", "--exact", "--temperature", "0.8",
                             "--top-k", "0", "--words", "known", "--dictionary", "ru", "--quotes", "balanced",
                             "--grammar", "agree")
    assert code == 0, err
    assert "sample: 100%" in err and f"{num}/{num}" in err            # the bar, on stderr
    one_batch = Generator.load(tiny_checkpoint).generate(seeds=range(7, 7 + num), temperature=0.8, max_length=60,
                                                         words="known", dictionary="ru", quotes="balanced",
                                                         grammar="agree", ending="community")
    assert out == "\n\n".join(one_batch) + "\n"
    code, out, err = run_cli(capsys, "--config", str(retrain_config(tmp_path)), "sample",
                             "--checkpoint", str(tiny_checkpoint),
                             "--num", "3", "--length", "60", "--no-progress")
    assert code == 0 and "sample:" not in err and "seed: " in err and len(out.rstrip("\n").split("\n\n")) == 3


def test_tune_shows_a_bar_of_the_posts_made(capsys, tmp_path, tiny_checkpoint):
    code, out, err = run_cli(capsys, "--config", str(retrain_config(tmp_path)), "tune",
                             "--checkpoint", str(tiny_checkpoint),
                             "--posts", "3", "--temperatures", "0.8,1.0")
    assert code == 0, err
    assert re.search(r"tune \w+: 100%.*\b6/6\b", err) and "temperature: " in out


def test_a_budgeted_training_bar_counts_down_the_budget(capsys, tmp_path, tiny_run):
    _, h5, js, _ = tiny_run
    code, out, err = run_cli(capsys, "train", "--input-h5", str(h5), "--input-json", str(js), "--checkpoint-dir",
                             str(tmp_path / "ck"), "--wordvec-size", "8", "--rnn-size", "16", "--num-layers", "1",
                             "--batch-size", "4", "--seq-length", "16", "--max-epochs", "100000", "--max-minutes",
                             "0.03", "--device", "cpu", "--checkpoint-every", "1000")
    assert code == 0, err
    bar = err.replace("\r", "\n").splitlines()
    budgeted = [line for line in bar if "(time budget 0.03 min)" in line]
    assert budgeted and all(re.search(r"<(\?|00:0[0-2]) ", line) for line in budgeted), err   # never the epochs' hours
    assert "it/s" not in err and re.search(r"it \d+, train", err)


def test_retrain_by_hand_tunes_the_model_it_promotes(capsys, tmp_path, tiny_corpus_file, tiny_checkpoint):
    from corpus.db import open_db
    from jobs.model_registry import install_checkpoint
    from jobs.tune import tuned_temperature

    cfg = retrain_config(tmp_path, "[sample]\nmax_length = 60\n")
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(
        "[retrain]\n", "[retrain]\nmin_improvement = -1000.0\nreadability_tolerance = 0.99\n"), encoding="utf-8")
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    try:
        from corpus.store.model_versions import promote

        promote(db, install_checkpoint(db, tiny_checkpoint, tmp_path / "data" / "models", val_bpc=None))
    finally:
        db.close()
    code, out, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress")
    assert code == 0, err
    line, = out.strip().splitlines()
    assert line.startswith("promoted"), line
    version = line.split("candidate ")[1].split()[0]
    assert "<- best" in err and f"stored with model {version}" in err
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    try:
        assert tuned_temperature(db, version) is not None
    finally:
        db.close()
    code, out, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress", "--no-tune")
    assert code == 0 and "<- best" not in err
