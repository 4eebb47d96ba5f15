"""`buhurt preprocess|train|sample|eval` through the real CLI entry point."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import run_cli
from tests.tiny_model import write_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


run = run_cli


def test_preprocess_train_sample_eval(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    txt = write_corpus(tmp_path / "c.txt", 80)
    code, out, err = run(capsys, "preprocess", "--input-txt", str(txt), "--output-h5", "c.h5",
                         "--output-json", "c.json", "--val-frac", "0.1", "--test-frac", "0.05")
    assert code == 0 and "tokens (uint8)" in out, err
    code, out, err = run(capsys, "train", "--input-h5", "c.h5", "--input-json", "c.json", "--checkpoint-dir", "ck",
                         "--model-type", "gru", "--wordvec-size", "8", "--rnn-size", "16", "--num-layers", "1",
                         "--dropout", "0", "--batch-size", "4", "--seq-length", "16", "--learning-rate", "0.003",
                         "--grad-clip", "5", "--max-epochs", "1", "--max-minutes", "1", "--device", "cpu",
                         "--checkpoint-every", "20")
    assert code == 0 and "best: ck/best.pt" in out, err
    assert "it/s" in err or "train" in err            # the tqdm bar
    cfg = torch.load(tmp_path / "ck" / "best.pt", weights_only=True)["train_config"]
    assert (cfg["model_type"], cfg["rnn_size"], cfg["max_epochs"]) == ("gru", 16, 1)
    code, out, err = run(capsys, "train", "--resume", "ck/latest.pt", "--max-epochs", "2", "--no-progress")
    assert code == 0 and "completed" in out, err
    code, out, err = run(capsys, "sample", "--checkpoint", "ck/best.pt", "--num", "3", "--length", "60",
                         "--start-text", "ТЫ", "--temperature", "0.8", "--top-k", "5", "--sample", "1", "--seed", "4")
    assert code == 0, err
    assert "pymorphy3" not in err     # the dictionary's INFO lines broke into the progress bar and the posts
    posts = out.rstrip("\n").split("\n\n")
    assert len(posts) == 3 and all(p.startswith("ТЫ") and len(p) <= 60 for p in posts)
    code, out2, _ = run(capsys, "sample", "--checkpoint", "ck/best.pt", "--num", "3", "--length", "60",
                        "--start-text", "ТЫ", "--temperature", "0.8", "--top-k", "5", "--seed", "4")
    assert out2 == out
    code, out, err = run(capsys, "sample", "--checkpoint", "ck/best.pt", "--sample", "0", "--seed", "1")
    assert code == 0 and out.strip()
    code, out, err = run(capsys, "eval", "--checkpoint", "ck/best.pt", "--text", str(txt))
    assert code == 0 and "bits/char" in out and len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, needle", [
    (["sample", "--checkpoint", "missing.pt"], "does not exist"),
    (["sample", "--temperature", "0"], "temperature"),
    (["sample", "--length", "0"], "max_length"),
    (["sample", "--start-text", "Qж"], "'Q'"),
    (["eval", "--text", "bad.txt"], "UTF-8"),
    (["lexicon", "--text", "bad.txt"], "UTF-8"),
    (["lexicon", "--text", "missing.txt"], "does not exist"),
    (["eval", "--text", "empty.txt"], "empty"),
    (["preprocess", "--input-txt", ".", "--output-h5", "x.h5", "--output-json", "x.json"], "directory"),
    (["train", "--input-h5", "nope.h5", "--input-json", "nope.json", "--checkpoint-dir", "ck"], "does not exist"),
])
def test_errors_are_one_line_exit_2(tiny_run, tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.txt").write_bytes("ХЛЕБ".encode("cp1251"))
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    if argv[0] in ("sample", "eval", "lexicon") and "--checkpoint" not in argv:
        argv = [*argv, "--checkpoint", str(tiny_run[3].best_path)]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, writer", [
    (["preprocess"], "buhurt corpus export"),
    (["train", "--max-minutes", "1"], "buhurt corpus export, then buhurt preprocess"),
])
def test_preprocess_and_train_on_a_fresh_data_folder_name_the_command_that_writes_their_input(
        tmp_path, capsys, monkeypatch, argv, writer):
    """A newcomer's first `buhurt train` after `buhurt corpus import` said only "input h5
    'data/train/corpus.h5' does not exist", and no page said which command writes it."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "does not exist" in lines[0], err
    assert writer in lines[0], err


def test_sample_known_words_by_default_raw_on_request_and_lexicon(tiny_run, tmp_path, capsys, monkeypatch):
    import shutil

    from model.sample import Generator

    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "m.pt"
    shutil.copy(tiny_run[3].best_path, ck)
    g = Generator.load(ck)
    seeds = [4, 5, 6]
    code, out, err = run(capsys, "sample", "--checkpoint", str(ck), "--num", "3", "--seed", "4", "--temperature", "1",
                         "--exact")
    assert code == 0, err
    product = dict(words="known", dictionary="ru", quotes="balanced", grammar="agree", ending="community")
    assert out.rstrip("\n") == "\n\n".join(g.generate(seeds, temperature=1.0, **product))
    code, out, err = run(capsys, "sample", "--checkpoint", str(ck), "--num", "3", "--seed", "4", "--temperature", "1",
                         "--raw", "--exact")
    assert code == 0 and out.rstrip("\n") == "\n\n".join(g.generate(seeds, temperature=1.0)), err
    code, out, err = run(capsys, "sample", "--checkpoint", str(ck), "--num", "3", "--seed", "4", "--temperature", "1",
                         "--dictionary", "none", "--exact")
    assert code == 0 and out.rstrip("\n") == "\n\n".join(
        g.generate(seeds, temperature=1.0, words="known", dictionary="none", quotes="balanced"))
    code, out, err = run(capsys, "lexicon", "--checkpoint", str(ck), "--text", str(tiny_run[0]), "--min-count", "5",
                         "--output", "with.pt")
    assert code == 0 and "with.pt: lexicon of" in out, err
    assert torch.load(tmp_path / "with.pt", weights_only=True)["lexicon"]["min_count"] == 5


def test_sample_prints_posts_tidied_as_drafts_are_and_exact_gives_the_model_s_text(tmp_path, capsys, monkeypatch):
    from corpus.rules import tidy_generated
    from tests.helpers import ROOT

    monkeypatch.chdir(tmp_path)
    args = ["sample", "--checkpoint", str(ROOT / "model" / "data" / "default.pt"), "--num", "12", "--length", "70",
            "--temperature", "0.8", "--seed", "5"]
    code, exact, err = run(capsys, *args, "--exact")
    assert code == 0, err
    code, tidied, err = run(capsys, *args)
    assert code == 0, err
    exact_posts, tidied_posts = exact.rstrip("\n").split("\n\n"), tidied.rstrip("\n").split("\n\n")
    assert tidied_posts == [tidy_generated(p) for p in exact_posts]
    assert any(p.endswith("\n@") for p in exact_posts)     # cut right after a separator: the case tidied
    assert not any(p.endswith("@") or p.startswith("@") for p in tidied_posts)


@pytest.mark.parametrize("argv, victim", [
    (["preprocess", "--output-h5", "buhurt.sqlite3", "--output-json", "x.json"], "buhurt.sqlite3"),
    (["preprocess", "--output-h5", "x.h5", "--output-json", "buhurt.sqlite3"], "buhurt.sqlite3"),
    (["preprocess", "--output-h5", "x.h5", "--output-json", "corpus.txt"], "corpus.txt"),
    (["lexicon", "--output", "buhurt.sqlite3"], "buhurt.sqlite3"),
    (["lexicon", "--output", "corpus.pt"], "corpus.json"),   # its JSON sidecar: the vocabulary's name
])
def test_an_output_path_never_replaces_a_file_the_command_did_not_write(tiny_run, tmp_path, capsys, monkeypatch,
                                                                         argv, victim):
    # a mistyped --output-h5 / --output-json / --output replaced the live database (or the training
    # text, a vocabulary) with an HDF5 file, a JSON vocabulary or a checkpoint without a word
    import shutil

    from corpus.db import open_db

    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_run[0], "corpus.txt")
    shutil.copy(tiny_run[2], "corpus.json")
    open_db("buhurt.sqlite3").close()
    before = (tmp_path / victim).read_bytes()
    if argv[0] == "preprocess":
        argv = [*argv, "--input-txt", "corpus.txt"]
    else:
        argv = [*argv, "--checkpoint", str(tiny_run[3].best_path), "--text", "corpus.txt"]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and victim in lines[0] and "choose another path" in lines[0], err
    assert "Traceback" not in err
    assert (tmp_path / victim).read_bytes() == before


def test_preprocess_and_lexicon_replace_their_own_earlier_outputs(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, out, err = run(capsys, "preprocess", "--input-txt", str(tiny_run[0]), "--output-h5", "c.h5",
                             "--output-json", "c.json")
        assert code == 0, err
        code, out, err = run(capsys, "lexicon", "--checkpoint", str(tiny_run[3].best_path), "--text",
                             str(tiny_run[0]), "--output", "m.pt")
        assert code == 0, err
    (tmp_path / "empty.h5").write_bytes(b"")   # an empty file holds nothing to lose
    code, out, err = run(capsys, "preprocess", "--input-txt", str(tiny_run[0]), "--output-h5", "empty.h5",
                         "--output-json", "c.json")
    assert code == 0, err


def test_a_setting_given_with_resume_or_init_from_that_the_checkpoint_overrides_is_refused(tiny_run, tmp_path, capsys,
                                                                                          monkeypatch):
    import shutil

    from model.checkpoint import load_checkpoint

    monkeypatch.chdir(tmp_path)
    latest = tmp_path / "run" / "latest.pt"
    latest.parent.mkdir()
    shutil.copy(tiny_run[3].latest_path, latest)
    ran = load_checkpoint(latest)["train_config"]
    before = latest.read_bytes()
    limit = ["--max-iterations", str(ran["max_iterations"] + 1), "--no-progress"]
    code, out, err = run(capsys, "train", "--resume", str(latest), "--learning-rate", "0.0001", *limit)
    assert code == 2 and err.count("\n") == 1 and "--learning-rate 0.0001" in err, err
    assert f"learning_rate = {ran['learning_rate']}" in err
    code, out, err = run(capsys, "train", "--resume", str(latest), "--rnn-size", "64", *limit)
    assert code == 2 and "--rnn-size 64" in err and "from scratch" in err, err
    assert latest.read_bytes() == before
    code, out, err = run(capsys, "train", "--input-h5", str(tiny_run[1]), "--input-json", str(tiny_run[2]),
                         "--checkpoint-dir", "warm", "--init-from", str(latest), "--num-layers", "3", *limit)
    assert code == 2 and err.count("\n") == 1 and "--num-layers 3" in err and "from scratch" in err, err
    assert not (tmp_path / "warm").exists()
    # what the checkpoint has, given again, and the run's limits are fine
    code, out, err = run(capsys, "train", "--resume", str(latest), "--learning-rate", str(ran["learning_rate"]),
                         "--max-iterations", str(ran["max_iterations"] + 2), "--no-progress",
                         "--checkpoint-dir", "run")   # not the shared tiny model's own folder
    assert code == 0 and f"after {ran['max_iterations'] + 2} iterations" in out, err


def test_an_output_folder_that_cannot_be_made_is_one_line_naming_the_file_in_the_way(tiny_run, tmp_path, capsys,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    txt, h5, js, _ = tiny_run
    for argv in (["preprocess", "--input-txt", str(txt), "--output-h5", "afile/x.h5", "--output-json", "x.json"],
                 ["preprocess", "--input-txt", str(txt), "--output-h5", "x.h5", "--output-json", "afile/x.json"],
                 ["train", "--input-h5", str(h5), "--input-json", str(js), "--checkpoint-dir", "afile/ck",
                  "--rnn-size", "16", "--batch-size", "4", "--max-iterations", "2", "--no-progress"]):
        code, out, err = run(capsys, *argv)
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert "afile is a file, not a folder" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
