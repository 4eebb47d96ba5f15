"""The nightly retrain: warm starts (weights kept, vocabulary grown), from scratch when the architecture
changed or when asked, the night window, the promotion rule (bits/char and readability), `buhurt
retrain`, checkpoint names, units, startup.use_bundled_model = false. Real SQLite, real training subprocesses."""
from __future__ import annotations

import datetime as dt
import os
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from corpus.store import model_versions as model_rows
from corpus.store.posts import add_posts
from model.checkpoint import save_checkpoint
from model.errors import ModelError
from jobs.retrain import NightWindow, RetrainPlan, promotion_decision, retrain, train_in_child, training_minutes
from model.train_config import ModelShape, TrainConfig
from tests.helpers import error_lines, plan_for, retrain_config, run_cli, varied_posts, with_active

TINY_TRAIN = dict(batch_size=4, seq_length=16, checkpoint_every=1)


def train_tiny(cfg, **extra):
    train_in_child(replace(cfg, **TINY_TRAIN, **extra))


def test_a_warm_start_keeps_the_weights_and_grows_the_vocabulary(db, tmp_path, tiny_checkpoint):
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    add_posts(db, [{"source": "file", "text": f"ЖЁЛТЫЙ ЩЕНОК {i} ЪЪ\n@\nЭХ ЮЖНЫЙ ЁЖ\n@\nФЫР {i}"} for i in range(30)])
    version = with_active(db, tmp_path, tiny_checkpoint)
    seen = []

    def run_training(cfg):
        seen.append(cfg)
        train_tiny(cfg, max_iterations=1)   # one step at the start of the ramp: a rate of 0

    result = retrain(db, plan_for(tmp_path), run_training)
    cfg = seen[0]
    assert cfg.init_from == str(tmp_path / "models" / f"{version}.pt") and cfg.warmup_frac > 0
    old, new = (torch.load(p, weights_only=True) for p in (tiny_checkpoint, tmp_path / "ck" / sorted(
        d.name for d in (tmp_path / "ck").iterdir())[0] / "best.pt"))
    assert new["run"]["new_tokens"] > 0 and len(new["idx_to_token"]) > len(old["idx_to_token"])
    assert {"Ж", "Щ", "Ъ"} - set(old["idx_to_token"]) <= set(new["idx_to_token"])
    rows = [new["idx_to_token"].index(t) for t in old["idx_to_token"] if t in new["idx_to_token"]]
    kept = [old["idx_to_token"].index(t) for t in old["idx_to_token"] if t in new["idx_to_token"]]
    for key, value in old["model_state"].items():
        if key in ("embed.weight", "head.weight", "head.bias"):
            assert torch.equal(new["model_state"][key][rows], value[kept]), key
        else:
            assert torch.equal(new["model_state"][key], value), key
    assert result.warm and result.candidate_bpc is not None and result.active_version == version


def test_from_scratch_when_the_architecture_changed_or_when_asked(db, tmp_path, tiny_checkpoint):
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(80)])
    with_active(db, tmp_path, tiny_checkpoint)
    seen = []

    ck = torch.load(tiny_checkpoint, weights_only=True)

    def run_training(cfg):   # the run's config is what is tested here: the run itself is the active model again
        seen.append(cfg)
        save_checkpoint(Path(cfg.checkpoint_dir) / "best.pt", {**ck, "created_at": str(len(seen))})

    arch = ModelShape(**{key: ck["model_config"][key] for key in ("model_type", "wordvec_size", "rnn_size",
                                                                  "num_layers", "dropout")})
    same = retrain(db, plan_for(tmp_path, shape=arch), run_training)
    changed = retrain(db, plan_for(tmp_path, shape=replace(arch, rnn_size=96)), run_training)
    asked = retrain(db, plan_for(tmp_path, shape=arch), run_training, from_scratch=True)
    # another dropout is no other architecture: it only regularises the run, which warm-starts
    regularised = retrain(db, plan_for(tmp_path, shape=replace(arch, dropout=0.3)), run_training)
    assert [a.init_from is not None for a in seen] == [True, False, False, True]
    assert (same.warm, changed.warm, asked.warm, regularised.warm) == (True, False, False, True)
    assert "from scratch" in changed.reason and "bits/char" in changed.reason


def test_the_night_window_sets_the_budget():
    w = NightWindow("03:30", "07:30", "Europe/Moscow")          # UTC+3
    at = lambda h, m: dt.datetime(2026, 12, 1, h, m, tzinfo=dt.timezone.utc)  # noqa: E731
    assert w.remaining_minutes(at(0, 30)) == pytest.approx(240)   # 03:30 Moscow
    assert w.remaining_minutes(at(3, 0)) == pytest.approx(90)
    assert w.remaining_minutes(at(4, 30)) is None and w.remaining_minutes(at(0, 29)) is None
    late = NightWindow("23:00", "05:00", "UTC")                   # across midnight
    assert late.length_minutes() == 360
    assert late.remaining_minutes(at(1, 0)) == pytest.approx(240)
    assert late.remaining_minutes(at(23, 30)) == pytest.approx(330)
    assert late.remaining_minutes(at(12, 0)) is None

    files = dict(train_txt=Path("t"), train_h5=Path("h"), train_json=Path("j"), checkpoint_dir=Path("c"),
                 models_dir=Path("m"))
    plan = RetrainPlan(**files, window=w)
    assert training_minutes(plan, now=at(0, 30)) == pytest.approx(230)      # less a 10-minute margin
    assert training_minutes(plan, now=at(3, 0)) == pytest.approx(81)        # 90 less 10%
    assert training_minutes(plan, now=at(12, 0)) is None                   # the scheduled job skips
    assert training_minutes(plan, now=at(12, 0), manual=True) == 10         # by hand: 10 minutes, not the window
    assert training_minutes(plan, now=at(0, 30), manual=True) == 10         # ... also inside it
    assert training_minutes(plan, 7, now=at(12, 0)) == 7                    # --minutes
    timed = RetrainPlan(**files, window=w, training=TrainConfig(max_minutes=3))
    assert training_minutes(timed, now=at(12, 0)) == 3                      # train.max_minutes wins


def test_the_night_window_is_measured_in_real_minutes_across_a_dst_change():
    """A window that a clock change crosses ends at retrain_until on the wall clock: on the night the
    clocks go forward it is an hour shorter (the budget was 240 minutes of a 180-minute night, so
    training ran an hour past retrain_until), on the night they go back an hour longer."""
    w = NightWindow("01:00", "05:00", "America/New_York")
    utc = lambda *a: dt.datetime(*a, tzinfo=dt.timezone.utc)  # noqa: E731
    # 2025-03-09: 02:00 EST -> 03:00 EDT; the window ends at 05:00 EDT = 09:00 UTC
    assert w.remaining_minutes(utc(2025, 3, 9, 6, 0)) == pytest.approx(180)     # 01:00 EST
    assert w.remaining_minutes(utc(2025, 3, 9, 8, 30)) == pytest.approx(30)     # 04:30 EDT
    assert w.remaining_minutes(utc(2025, 3, 9, 9, 0)) is None                   # 05:00 EDT: over
    # 2025-11-02: 02:00 EDT -> 01:00 EST; the window ends at 05:00 EST = 10:00 UTC
    assert w.remaining_minutes(utc(2025, 11, 2, 5, 0)) == pytest.approx(300)    # 01:00 EDT
    assert w.remaining_minutes(utc(2025, 11, 2, 6, 30)) == pytest.approx(210)   # the second 01:30 (EST)
    assert w.remaining_minutes(utc(2025, 11, 2, 9, 59)) == pytest.approx(1)     # 04:59 EST
    assert w.remaining_minutes(utc(2025, 11, 2, 4, 59)) is None                 # 00:59 EDT: not yet
    plan = RetrainPlan(train_txt=Path("t"), train_h5=Path("h"), train_json=Path("j"), checkpoint_dir=Path("c"),
                       models_dir=Path("m"), window=w)
    assert training_minutes(plan, now=utc(2025, 3, 9, 6, 0)) == pytest.approx(170)   # ends before 05:00 EDT


def test_outside_the_window_the_scheduled_retrain_trains_nothing(db, tmp_path, tiny_checkpoint):
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(40)])
    with_active(db, tmp_path, tiny_checkpoint)
    noon = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)

    def run_training(cfg):
        raise AssertionError("trained outside the window")

    result = retrain(db, plan_for(tmp_path, window=NightWindow("03:30", "07:30", "UTC")), run_training, now=noon)
    assert not result.promoted and result.reason.startswith("skipped") and not (tmp_path / "ck").exists()


def test_promotion_needs_lower_bits_per_char_and_no_less_readable_drafts(tmp_path):
    plan = plan_for(tmp_path, readability_tolerance=0.01, min_improvement=0.0)
    assert promotion_decision(2.40, 2.50, 0.90, 0.90, plan) == (True, "")
    assert promotion_decision(2.40, 2.50, 0.895, 0.90, plan)[0]            # within the tolerance
    promote, why = promotion_decision(2.40, 2.50, 0.85, 0.90, plan)
    assert not promote and "drafts passing the screen fell from 90% to 85%" in why
    promote, why = promotion_decision(2.50, 2.50, 0.99, 0.90, plan)
    assert not promote and "bits/char" in why
    assert not promotion_decision(2.45, 2.50, 0.9, 0.9, plan_for(tmp_path, min_improvement=0.1))[0]


def test_buhurt_retrain_prints_one_line_with_both_figures(capsys, tmp_path, tiny_corpus_file):
    cfg = retrain_config(tmp_path)
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    from bot.app import ensure_model
    from bot.config import load_settings
    from bot.context import TrainPaths
    from corpus.db import open_db

    settings = load_settings(cfg)
    db = open_db(settings.database)
    try:
        ensure_model(settings, db, TrainPaths.under(settings.data_dir))   # the bundled model, 2x128
    finally:
        db.close()
    code, out, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress")
    assert code == 0, err
    line, = out.strip().splitlines()
    assert line.startswith(("promoted", "kept the active model")) and line.count(" bits/char") == 2
    assert line.count("% of drafts pass the screen") == 2 and "from scratch" in line and "; active " in line
    code, out, _ = run_cli(capsys, "--config", str(cfg), "models", "list")
    assert "drafts pass" in out.splitlines()[0] and "%" in out


def test_without_held_out_text_the_night_fails_in_one_line_and_the_active_model_stays(capsys, tmp_path,
                                                                                      tiny_corpus_file, monkeypatch):
    cfg = retrain_config(tmp_path)
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    from bot.app import ensure_model
    from bot.config import load_settings
    from bot.context import TrainPaths
    from corpus.db import open_db
    from corpus.store import model_versions

    settings = load_settings(cfg)
    db = open_db(settings.database)
    try:
        ensure_model(settings, db, TrainPaths.under(settings.data_dir))
        before = model_versions.active_model(db)["version"]
    finally:
        db.close()
    monkeypatch.setattr("model.splits.split_text", lambda *args, **kwargs: "")   # an empty held-out split
    code, _, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress")
    assert code != 0 and "no held-out text to score the models on" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    db = open_db(settings.database)
    try:
        assert model_versions.active_model(db)["version"] == before
    finally:
        db.close()


def test_a_checkpoint_folder_that_cannot_be_written_is_one_line_and_the_active_model_stays(capsys, tmp_path,
                                                                                          tiny_corpus_file):
    """paths.data_dir/checkpoints a file (or full, or read-only): `buhurt retrain` ended in
    'unexpected NotADirectoryError' with a traceback, exit 1."""
    cfg = retrain_config(tmp_path)
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    (tmp_path / "data" / "checkpoints").write_text("not a folder")
    code, out, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress")
    assert code == 2 and "Traceback" not in err and "unexpected" not in err, err
    (line,) = error_lines(err)
    assert "checkpoints" in line and "Not a directory" in line, err
    assert (tmp_path / "data" / "checkpoints").read_text() == "not a folder"


def test_checkpoint_names_and_units(capsys, tmp_path, tiny_corpus_file, tiny_checkpoint):
    cfg = retrain_config(tmp_path)
    data = tmp_path / "data"
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    assert run_cli(capsys, "--config", str(cfg), "corpus", "export")[0] == 0
    assert run_cli(capsys, "--config", str(cfg), "preprocess")[0] == 0
    code, out, err = run_cli(capsys, "--config", str(cfg), "train", "--max-iterations", "4", "--checkpoint-every", "2",
                             "--rnn-size", "16", "--wordvec-size", "8", "--num-layers", "1", "--batch-size", "4",
                             "--seq-length", "16", "--no-progress")
    assert code == 0, err
    assert "bits/char" in out and "chars/s" in out and "nats" not in out
    assert "training on cpu" in err and ("bf16" in err or "float32" in err)
    for name, expect in (("best", data / "checkpoints" / "best.pt"), ("latest", data / "checkpoints" / "latest.pt")):
        code, out, err = run_cli(capsys, "--config", str(cfg), "eval", "--checkpoint", name)
        assert code == 0, err
        assert "bits/char" in out and str(expect) in out
    run_dir = data / "checkpoints" / "run-20991231-000000-000000"      # a newer nightly run
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(tiny_checkpoint.read_bytes())
    code, out, _ = run_cli(capsys, "--config", str(cfg), "eval", "--checkpoint", "best")
    assert str(run_dir / "best.pt") in out
    code, out, err = run_cli(capsys, "--config", str(cfg), "sample", "--checkpoint", "active", "--num", "1",
                             "--length", "40", "--seed", "1")
    assert code == 0 and out.strip(), err
    (tmp_path / "other").mkdir()
    empty = retrain_config(tmp_path / "other")
    code, _, err = run_cli(capsys, "--config", str(empty), "eval", "--checkpoint", "latest")
    assert code == 2 and "no latest.pt" in err and len(err.strip().splitlines()) == 1


def test_use_bundled_false_replaces_an_active_bundled_model(tmp_path, tiny_corpus_file, capsys):
    from bot.app import ensure_model
    from bot.config import load_settings
    from bot.context import TrainPaths
    from corpus.db import open_db
    from jobs.model_registry import bundled_checkpoint
    from model.files import file_version

    cfg = retrain_config(tmp_path)   # on bits/char alone: see the test below
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("readability_drafts = 4\n", "readability_drafts = 0\n"),
                   encoding="utf-8")
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    settings = load_settings(cfg)
    db = open_db(settings.database)
    try:
        paths = TrainPaths.under(settings.data_dir)
        ensure_model(settings, db, paths)
        assert model_rows.active_model(db)["version"] == file_version(bundled_checkpoint())
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(
            "[model]", "[startup]\nuse_bundled_model = false\n[model]"), encoding="utf-8")
        path = ensure_model(load_settings(cfg), db, paths)
        row = model_rows.active_model(db)
        assert row["version"] != file_version(bundled_checkpoint()) and "bootstrap" in row["metrics_json"]
        assert path == Path(row["path"]) and torch.load(path, weights_only=True)["model_config"]["rnn_size"] == 16
    finally:
        db.close()


def first_model_worse_than_bundled(tmp_path, corpus_file, capsys):
    """Settings whose first model (5 iterations, no bundled model to start from) writes worse
    drafts than the bundled one, judged on 24 drafts each, with the corpus imported."""
    from bot.config import load_settings

    cfg = retrain_config(tmp_path)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("readability_drafts = 4", "readability_drafts = 24")
                   .replace("[model]", "[startup]\nuse_bundled_model = false\n[model]")
                   .replace("[train]", "[train]\nmax_iterations = 5"), encoding="utf-8")
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(corpus_file))[0] == 0
    return load_settings(cfg)


def test_a_first_model_whose_drafts_are_worse_leaves_the_bundled_model_writing(tmp_path, tiny_corpus_file, capsys):
    """The first model trained on a corpus (here 5 iterations of a 1x16 model: a count, not a time, so
    a fast machine trains it no better) replaces the bundled one only when its drafts pass the screen
    as often; until then the bundled model writes."""
    from bot.app import ensure_model
    from bot.context import TrainPaths
    from corpus.db import open_db
    from jobs.model_registry import bundled_checkpoint
    from model.files import file_version

    settings = first_model_worse_than_bundled(tmp_path, tiny_corpus_file, capsys)
    db = open_db(settings.database)
    try:
        capsys.readouterr()
        path = ensure_model(settings, db, TrainPaths.under(settings.data_dir))
        bundled = file_version(bundled_checkpoint())
        assert model_rows.active_model(db)["version"] == bundled and path.name == f"{bundled}.pt"
        said = capsys.readouterr().err   # the log says it was kept out, never that the bundled one was trained
        assert "is kept out" in said and "activated model" not in said, said
        rejected = [r for r in model_rows.all_models(db) if r["status"] == "rejected"]
        assert len(rejected) == 1 and '"origin": "bootstrap"' in rejected[0]["metrics_json"]
        metrics = json.loads(rejected[0]["metrics_json"])
        assert metrics["draft_pass_share"] < metrics["active_draft_pass_share"] - 0.05
    finally:
        db.close()


def test_a_first_model_kept_out_is_not_trained_again_at_every_start(tmp_path, tiny_corpus_file, capsys):
    """Each start (each cron `run --once`) trained a first model again for train.max_minutes (else
    10), waited for it, and kept it out again; the nightly retrain (or `buhurt retrain`) is what may
    replace the bundled model after that."""
    from bot.app import ensure_model, prepare_model
    from bot.context import TrainPaths
    from corpus.db import open_db
    from jobs.model_registry import bundled_checkpoint
    from model.files import file_version

    settings = first_model_worse_than_bundled(tmp_path, tiny_corpus_file, capsys)
    db = open_db(settings.database)
    try:
        paths = TrainPaths.under(settings.data_dir)
        ensure_model(settings, db, paths)
        bundled = file_version(bundled_checkpoint())
        assert model_rows.active_model(db)["version"] == bundled
        capsys.readouterr()
        checkpoint, first = prepare_model(settings, db, paths)
        assert first is None and checkpoint is not None and checkpoint.name == f"{bundled}.pt"
        said = capsys.readouterr().err
        assert "kept out" in said and "buhurt retrain" in said, said
    finally:
        db.close()


def test_without_the_bundled_model_and_no_model_yet_retrain_compares_with_the_bundled_one(tmp_path,
                                                                                         tiny_corpus_file, capsys):
    """One notion of the active model: with use_bundled_model = false and no model yet, `buhurt eval
    --checkpoint active` says so, and `buhurt retrain` holds its candidate to the bundled model."""
    from jobs.model_registry import bundled_checkpoint
    from model.files import file_version

    cfg = retrain_config(tmp_path)
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[model]", "[startup]\nuse_bundled_model = false\n[model]"),
                   encoding="utf-8")
    assert run_cli(capsys, "--config", str(cfg), "corpus", "import", str(tiny_corpus_file))[0] == 0
    code, _, err = run_cli(capsys, "--config", str(cfg), "eval", "--checkpoint", "active")
    assert code == 2 and "no model yet" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(capsys, "--config", str(cfg), "retrain", "--minutes", "0.02", "--no-progress")
    assert code == 0, err
    assert f"; active {file_version(bundled_checkpoint())} " in out


def test_threads_never_oversubscribe_and_bf16_is_the_default_where_supported(monkeypatch):
    import model.train as mt
    from bot.app import training_threads
    from bot.config import load_settings
    from model.distributed import bf16_supported
    from model.train import TrainConfig, choose_bf16, choose_threads

    monkeypatch.setattr(mt, "usable_cores", lambda: 2)
    assert choose_threads(TrainConfig.torch_rnn_preset()) == 2                # 2x128 B50: the usable cores
    assert choose_threads(TrainConfig(rnn_size=32, batch_size=8)) == 1         # tiny: one
    assert choose_threads(TrainConfig(threads=8)) == 2                     # never more than the cores
    assert choose_threads(TrainConfig.torch_rnn_preset(), local_world=2) == 1  # shared among local ranks
    settings = load_settings(None)
    assert training_threads(settings) == 1                                     # the service: cores minus one
    monkeypatch.setattr(mt, "usable_cores", lambda: 1)
    assert training_threads(settings) == 1                                     # at least one
    cpu = torch.device("cpu")
    assert choose_bf16(TrainConfig(), cpu) == bf16_supported(cpu)
    assert choose_bf16(TrainConfig(precision="float32"), cpu) is False
    monkeypatch.setattr(mt.D, "bf16_supported", lambda device: True)
    assert choose_bf16(TrainConfig(precision="bf16"), cpu) is True
    monkeypatch.setattr(mt.D, "bf16_supported", lambda device: False)   # its LSTM kernel has no bf16 path
    with pytest.raises(ModelError, match="train.precision = bf16: this CPU has no native bf16"):
        choose_bf16(TrainConfig(precision="bf16"), cpu)


@pytest.mark.parametrize("key,value,needle", [
    ("train.precision", '"half"', "train.precision"), ("train.threads", "-1", "train.threads"),
    ("schedule.retrain_until", '"03:30"', "schedule.retrain_until"),
    ("schedule.retrain_until", '"7h"', "retrain_until"),
    ("retrain.warm_lr_scale", "1.5", "retrain.warm_lr_scale"),
    ("retrain.val_frac", "0", "retrain.val_frac"),   # the models would be scored on the training text
])
def test_bad_nightly_settings_name_the_key(tmp_path, capsys, key, value, needle):
    table, name = key.split(".")
    path = tmp_path / "config.toml"
    path.write_text(f"[{table}]\n{name} = {value}\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(path), "models", "list")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_characters_the_active_model_does_not_know_are_left_out_of_both_scores(tiny_checkpoint):
    """The active model cannot score a character it never saw (a new emoji): it used to drop it from
    its own figure while the candidate, which knows it, paid for it."""
    from jobs.retrain import _known_to
    from model.checkpoint import load_checkpoint
    from model.vocab import Vocab

    vocab = Vocab(load_checkpoint(tiny_checkpoint)["idx_to_token"])
    text = "ТЫ ☃ ИДЁШЬ\n@\nДОМОЙ 🦄"
    kept = _known_to(tiny_checkpoint, text)
    assert "☃" not in kept and "🦄" not in kept and kept == "".join(c for c in text if c in vocab.index)
    assert len(kept) >= len(text) - 4                   # only the unknown ones went
    assert _known_to(None, text) == text


def test_a_second_retrain_while_one_trains_is_refused_and_changes_nothing(db, tmp_path, tiny_checkpoint):
    """`buhurt retrain` by hand during the night's run: it rewrote the training text and .h5 the night
    trained on, and its pruning could delete the night's run folder. Refused at once, naming the pid;
    the first runs to its end, and a retrain after it runs."""
    from jobs.errors import JobError

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    with_active(db, tmp_path, tiny_checkpoint)
    plan = plan_for(tmp_path)
    refused = []

    def run_training(cfg):   # while the first trains, a second retrain (the operator's) starts
        with pytest.raises(JobError) as error:
            retrain(db, plan, run_training, minutes=1, manual=True)
        refused.append(str(error.value))
        train_tiny(cfg, max_iterations=1)

    first = retrain(db, plan, run_training, minutes=1, manual=True)
    assert refused == [f"another retrain (pid {os.getpid()}) is training in {plan.checkpoint_dir}: it runs to its"
                       " end; run this one after it"]
    assert first.candidate_bpc is not None
    assert retrain(db, plan, lambda cfg: train_tiny(cfg, max_iterations=1), minutes=1, manual=True).candidate_bpc


def test_the_nightly_log_of_a_contiguous_split_says_how_much_text_is_held_out(db, tmp_path, tiny_checkpoint, caplog):
    """A corpus too small for the split by posts falls back to the contiguous split, which counts no
    posts: the nightly log said 'held out ? posts (contiguous split)'. Now it says how many
    characters are held out for validation."""
    import logging

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(30)])
    with_active(db, tmp_path, tiny_checkpoint)
    with caplog.at_level(logging.INFO, logger="jobs.retrain"):
        retrain(db, plan_for(tmp_path), lambda cfg: train_tiny(cfg, max_iterations=1))
    said = [r.getMessage() for r in caplog.records if "held out" in r.getMessage()]
    assert len(said) == 1 and "?" not in said[0], said
    assert "contiguous split" in said[0] and "characters" in said[0].split("held out")[1], said


def test_a_model_made_active_while_the_night_trains_is_not_replaced_by_its_candidate(db, tmp_path, tiny_checkpoint):
    """The night compares its candidate with the model active when it started; the operator
    installed and activated the GPU box's model during the night (`buhurt models install F
    --activate`, docs/deployment.md step 8), and the candidate, never compared with it, replaced it
    at the night's end. Now the operator's model stays active and the line says why."""
    from jobs.model_registry import activate, install_checkpoint

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(80)])
    before = with_active(db, tmp_path, tiny_checkpoint)
    ck = torch.load(tiny_checkpoint, weights_only=True)
    gpu_box = tmp_path / "gpu.pt"
    save_checkpoint(gpu_box, {**ck, "created_at": "the GPU box"})
    theirs = []

    def run_training(cfg):   # while the night trains, the operator installs and activates the GPU box's model
        theirs.append(install_checkpoint(db, gpu_box, tmp_path / "models", val_bpc=None))
        activate(db, theirs[0])
        save_checkpoint(Path(cfg.checkpoint_dir) / "best.pt", {**ck, "created_at": "tonight"})

    # any candidate beats the model active at the start (the promotion itself is not what is tested)
    result = retrain(db, replace(plan_for(tmp_path, min_improvement=-100.0), readability_drafts=0), run_training)
    assert result.active_version == before != theirs[0]
    assert not result.promoted and model_rows.active_model(db)["version"] == theirs[0]
    assert f"model {theirs[0]} was made active while it trained" in result.reason, result.reason
    assert model_rows.get_model(db, result.candidate_version)["status"] == "rejected"
