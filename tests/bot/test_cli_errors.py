"""Bad input through the real `buhurt` entry point: one line naming the problem, a non-zero
exit, and nothing written half-way (no empty checkpoint, no half-built files, no partial rows)."""
from __future__ import annotations

import pytest

from tests.helpers import run_cli


run = run_cli


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[corpus]\nseed_with_sample = false\n',
                    encoding="utf-8")
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "INFO" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def posts_in(tmp_path) -> int:
    from corpus.db import open_db

    return open_db(tmp_path / "data" / "buhurt.sqlite3").execute("select count(*) from posts").fetchone()[0]


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run(capsys, "--config", str(tmp_path / "nope.toml"), "corpus", "export")
    assert code == 2 and "nope.toml: config file not found" in one_error_line(err)


def test_malformed_toml(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sample\ntemperature = ", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(bad), "corpus", "export")
    assert code == 2 and "bad.toml: malformed TOML" in one_error_line(err)


def test_wrong_type_names_the_key(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[pool]\nchannel_size = 'many'\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(bad), "run", "--once")
    assert code == 2 and "pool.channel_size must be an integer, got 'many'" in one_error_line(err)


@pytest.mark.parametrize("content, message", [
    (b"", "no posts found"),
    (b"\n\n   \n", "no posts found"),
    ("ПОСТ\n@\nТЕКСТ".encode("cp1251"), "not UTF-8"),
])
def test_bad_corpus_files_import_nothing(capsys, tmp_path, cfg, content, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    code, _, err = run(capsys, "--config", str(cfg), "corpus", "import", str(corpus))
    line = one_error_line(err)
    assert code == 2 and message in line and "corpus.txt" in line
    assert posts_in(tmp_path) == 0


def test_directory_where_a_file_is_expected(capsys, tmp_path, cfg):
    code, _, err = run(capsys, "--config", str(cfg), "corpus", "import", str(tmp_path))
    assert code == 2 and "is a directory" in one_error_line(err)
    code, _, err = run(capsys, "--config", str(cfg), "corpus", "export", "-o", str(tmp_path))
    assert code == 2 and "is a directory" in one_error_line(err)


def test_export_of_an_empty_corpus_writes_nothing(capsys, tmp_path, cfg):
    out = tmp_path / "train.txt"
    code, _, err = run(capsys, "--config", str(cfg), "corpus", "export", "-o", str(out))
    assert code == 2 and "corpus is empty" in one_error_line(err)
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_preprocess_of_an_empty_text_writes_no_h5(capsys, tmp_path, cfg):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    h5, js = tmp_path / "x.h5", tmp_path / "x.json"
    code, _, err = run(capsys, "--config", str(cfg), "preprocess", "--input-txt", str(empty),
                       "--output-h5", str(h5), "--output-json", str(js))
    assert code == 2 and "empty" in one_error_line(err)
    assert not h5.exists() and not js.exists()


def test_missing_checkpoint(capsys, tmp_path, cfg):
    code, _, err = run(capsys, "--config", str(cfg), "sample", "--checkpoint", str(tmp_path / "none.pt"))
    assert code == 2 and "none.pt" in one_error_line(err)
    code, _, err = run(capsys, "--config", str(cfg), "eval", "--checkpoint", str(tmp_path / "none.pt"),
                       "--text", str(cfg))
    assert code == 2 and "none.pt" in one_error_line(err)


def test_train_without_data_leaves_no_checkpoint(capsys, tmp_path, cfg):
    ckdir = tmp_path / "ck"
    code, _, err = run(capsys, "--config", str(cfg), "train", "--input-h5", str(tmp_path / "none.h5"),
                       "--input-json", str(tmp_path / "none.json"), "--checkpoint-dir", str(ckdir))
    assert code == 2 and "none.h5" in one_error_line(err)
    assert not ckdir.exists() or not list(ckdir.iterdir())


def test_corrupt_checkpoint_is_a_clear_error(capsys, tmp_path, cfg):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 64)
    code, _, err = run(capsys, "--config", str(cfg), "sample", "--checkpoint", str(bad))
    assert code == 2 and "bad.pt" in one_error_line(err)


@pytest.mark.parametrize("value,shown", [("0", False), ("false", False), ("no", False), ("", False),
                                         ("1", True), ("yes", True)])
def test_buhurt_debug_0_or_false_means_one_line(capsys, tmp_path, cfg, monkeypatch, value, shown):
    monkeypatch.setenv("BUHURT_DEBUG", value)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 64)
    code, _, err = run(capsys, "--config", str(cfg), "sample", "--checkpoint", str(bad))
    assert code == 2 and ("Traceback" in err) is shown and "bad.pt" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("minutes", ["nan", "inf", "1e12", "0"])
def test_retrain_minutes_must_be_a_real_budget(capsys, tmp_path, cfg, minutes):
    code, _, err = run(capsys, "--config", str(cfg), "retrain", "--minutes", minutes, "--no-progress")
    assert code == 2 and "'--minutes'" in err
    assert not (tmp_path / "data" / "checkpoints").exists()   # no training child, no run folder


def test_an_exit_code_set_inside_a_command_reaches_the_process(capsys):
    import click

    from bot.cli import cli

    @cli.command("probe-exit")
    @click.pass_context
    def probe(ctx):
        ctx.exit(3)

    try:
        code, _, _ = run(capsys, "probe-exit")
    finally:
        cli.commands.pop("probe-exit")
    assert code == 3


@pytest.mark.parametrize("argv", [("corpus", "stats"), ("corpus", "import", "posts.txt"), ("models", "list"),
                                  ("sample", "--num", "1")])
def test_a_data_folder_under_a_file_is_one_line_naming_the_file_in_the_way(capsys, tmp_path, monkeypatch, argv):
    """paths.data_dir (or paths.database) below a file: the database's folder cannot be made; it was
    NotADirectoryError's traceback and exit 1 (a folder the bot's user may not create: PermissionError's)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    (tmp_path / "posts.txt").write_text("ПОСТ\n@\nТЕКСТ\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[paths]\ndata_dir = "afile/data"\n', encoding="utf-8")
    code, _, err = run(capsys, "--config", str(config), *argv)
    line = one_error_line(err)
    assert code == 2 and "Traceback" not in err, err
    assert "afile/data/buhurt.sqlite3" in line and "afile is a file, not a folder" in line, line


def test_an_import_while_another_process_writes_waits_for_its_lock(capsys, tmp_path, cfg):
    """`buhurt corpus import` while another process (the running service's pool or scrape, a
    backup tool) held the write lock for a moment: it failed at once with 'the database is locked
    ... (waited 10 s, paths.busy_timeout_seconds)': its transaction read the stored posts before
    writing, and SQLite never waits for a lock a reader would upgrade. Now it takes the lock first,
    waits for it within paths.busy_timeout_seconds, and imports."""
    from corpus.db import open_db

    database = tmp_path / "data" / "buhurt.sqlite3"
    open_db(database).close()
    corpus = tmp_path / "posts.txt"
    corpus.write_text("ПЕРВЫЙ ПОСТ\n@\nСТРОКА\n\nВТОРОЙ ПОСТ\n@\nСТРОКА ДВА\n", encoding="utf-8")
    code, out, err = _until_it_writes(database, lambda: run(capsys, "--config", str(cfg), "corpus", "import",
                                                            str(corpus)))
    assert code == 0 and "2 posts added" in out, err
    assert posts_in(tmp_path) == 2


def _until_it_writes(database, command):
    """Run `command()` while another connection holds `database`'s write lock, released only once
    the command tries to write (its first INSERT INTO posts, or its BEGIN IMMEDIATE)."""
    import sqlite3
    import threading

    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")   # the other writer holds the lock ...
    other.execute("INSERT INTO state (key, value, updated_at) VALUES ('other', 'writer', '')")
    trying = threading.Event()
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        connection.set_trace_callback(
            lambda sql: trying.set() if sql.lstrip().upper().startswith(("INSERT INTO POSTS", "BEGIN IMMEDIATE"))
            else None)
        return connection

    def release():
        trying.wait(60)
        other.execute("COMMIT")

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        sqlite3.connect = traced
        return command()
    finally:
        sqlite3.connect = real_connect
        trying.set()
        releaser.join()
        other.close()


def test_a_telegram_import_while_another_process_writes_waits_for_its_lock(capsys, tmp_path, cfg):
    """`buhurt corpus import-telegram` while another process held the write lock for a moment:
    it failed at once with 'the database is locked ... (waited 10 s, paths.busy_timeout_seconds)',
    as `corpus import` did before it took the lock first: its one transaction for the whole export
    (a deferred BEGIN) read the stored posts before its first write. Now it waits and imports."""
    from corpus.db import open_db
    from tests.fakes.telegram_export import message, write_pages

    database = tmp_path / "data" / "buhurt.sqlite3"
    open_db(database).close()
    export = write_pages(tmp_path / "export", [[message(1, "ПЕРВЫЙ<br>@<br>ВТОРОЙ<br>@<br>ТРЕТИЙ"),
                                                message(2, "ОДИН<br>@<br>ДВА<br>@<br>ТРИ")]])
    code, out, err = _until_it_writes(
        database, lambda: run(capsys, "--config", str(cfg), "corpus", "import-telegram", str(export)))
    assert code == 0 and "2 posts added" in out, err
    assert posts_in(tmp_path) == 2
