"""`buhurt corpus ...` end to end in-process: import-telegram, clean --report, export, stats, scrape."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from bot.cli import main
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall
from tests.helpers import ROOT
from tests.fakes.telegram_export import MEDIA, message, write_pages
from tests.tiny_model import subprocess_env


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[clean]\nmin_separators = 2\n'
                    f'[filter]\nwords = ["запретное"]\n[vk]\nrequests_per_second = 1000.0\n', encoding="utf-8")
    return path


def buhurt(config, *args):
    main(["--config", str(config), *args])


def test_telegram_import_clean_export_stats(config, tmp_path, capsys):
    export = write_pages(tmp_path / "export", [[
        message(1, "ПЕРВЫЙ<br>@<br>ВТОРОЙ<br>@<br>ТРЕТИЙ<br><br><a href=\"https://t.me/x\">КАНАЛ</a>"),
        message(2, "ОДИН<br>@<br>ДВА"),
        message(3, "ЗАПРЕТНОЕ СЛОВО<br>@<br>ТУТ<br>@<br>ДА"),
        message(4, "", extra=MEDIA),
        message(5, "ЕЩЁ ОДИН<br>@<br>НОРМАЛЬНЫЙ<br>@<br>БУГУРТ #нейробугурт"),
        message(6, "ЕЩЁ ОДИН НОРМАЛЬНЫЙ<br>@<br>БУГУРТ<br>@<br>ВОТ"),
    ]])
    buhurt(config, "corpus", "import-telegram", str(export))
    out = capsys.readouterr().out
    assert "6 messages of 'ТЕСТОВЫЙ КАНАЛ' in 1 file(s): 6 posts added" in out
    assert "cleaned: 2 of 6 posts kept" in out
    buhurt(config, "corpus", "clean", "--report")
    report = capsys.readouterr().out
    for line in ("posts: 6", "kept: 2", "few_separators    1", "stoplist          1", "media_only        1",
                 "neural            1", "  signature         1"):
        assert line in report
    buhurt(config, "corpus", "export", "-o", str(tmp_path / "train.txt"))
    assert "2 posts" in capsys.readouterr().out
    assert (tmp_path / "train.txt").read_text(encoding="utf-8").startswith(("ПЕРВЫЙ", "ЕЩЁ ОДИН"))
    buhurt(config, "corpus", "stats")
    stats = capsys.readouterr().out
    assert "posts: 2 (excluded by cleaning: 4)" in stats and (tmp_path / "data" / "stats" / "corpus.png").is_file()


def test_a_sticker_or_media_link_never_reaches_the_training_text(config, tmp_path, capsys):
    """Issue 26, point 16: a custom emoji is a link to its sticker file inside the export
    (`<a href="video_files/sticker (2).webm">🍺</a>`): the emoji stays, the link goes."""
    export = write_pages(tmp_path / "export", [[
        message(1, 'ЗАХОДИШЬ В БАР <a href="video_files/sticker (2).webm">🍺</a><br>@<br>ТАМ ПИВО<br>@<br>ХОРОШО'),
        message(2, '<a href = "stickers/AnimatedSticker.tgs">😄</a>ПРЕМИУМ<br>@<br>ЭМОДЗИ<br>@<br>ТРУ'),
        message(3, 'СМОТРИШЬ <a href="photos/photo_3@05-09-2020_17-41-55.jpg">ФОТО</a><br>@<br>А ТАМ<br>@<br>ОНО'),
        message(4, 'ЧИТАЕШЬ <a href="https://example.org/x">НОВОСТЬ</a><br>@<br>ПЛАЧЕШЬ<br>@<br>ВСЁ'),
    ]])
    buhurt(config, "corpus", "import-telegram", str(export))
    buhurt(config, "corpus", "export", "-o", str(tmp_path / "train.txt"))
    capsys.readouterr()
    text = (tmp_path / "train.txt").read_text(encoding="utf-8")
    assert "ЗАХОДИШЬ В БАР 🍺\n" in text and "😄ПРЕМИУМ\n" in text and "СМОТРИШЬ ФОТО\n" in text
    assert "ЧИТАЕШЬ НОВОСТЬ\n" in text  # a web link under a name keeps its name
    assert "](" not in text and "webm" not in text and "tgs" not in text and ".jpg" not in text
    from corpus.db import open_db

    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    raw = [r["text"] for r in db.query("SELECT text FROM posts ORDER BY external_id")]
    db.close()
    assert raw[0].startswith("ЗАХОДИШЬ В БАР 🍺\n") and raw[1].startswith("😄ПРЕМИУМ")  # dropped at import
    assert raw[3].startswith("ЧИТАЕШЬ [НОВОСТЬ](https://example.org/x)")  # kept for the cleaning rules


def test_scrape_command(config, monkeypatch, capsys):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(300)
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    buhurt(config, "corpus", "scrape", "--group", "bugurt_test", "--no-progress")
    out = capsys.readouterr().out
    assert "bugurt_test (id 42): 300 new posts" in out and "total: 300 new posts, 2 requests" in out


def test_a_scrape_with_a_deleted_community_first_scrapes_the_others_and_exits_2_naming_it(config, monkeypatch,
                                                                                        capsys):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(300)
    monkeypatch.setattr(requests, "Session", FakeVk(wall).session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    with pytest.raises(SystemExit) as exit_info:
        buhurt(config, "corpus", "scrape", "--group", "gone_group", "--group", "bugurt_test", "--no-progress")
    captured = capsys.readouterr()
    assert "bugurt_test (id 42): 300 new posts" in captured.out and "not scraped: unknown VK community" in captured.out
    assert exit_info.value.code == 2 and captured.err.count("\n") == 1
    assert captured.err.startswith("error: 1 of 2 VK communities not scraped: unknown VK community 'gone_group'")


@pytest.mark.parametrize("args, message", [
    (["corpus", "scrape", "--group", "x"], "error: no VK token"),
    (["corpus", "import-telegram", "/nonexistent/export"], "error: /nonexistent/export: no such file"),
    (["corpus", "import", "/dev/zero"], "error: /dev/zero: not a regular file"),
])
def test_errors_are_one_line_exit_2(config, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        buhurt(config, *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_a_chat_export_needs_allow_chat(config, tmp_path, capsys):
    import json

    export = tmp_path / "chat"
    export.mkdir()
    (export / "result.json").write_text(json.dumps({"name": "ЧАТ", "type": "private_group", "messages": [
        {"id": 1, "type": "message", "date": "2023-01-01T10:00:00", "text": "ПРИВЕТ\n@\nКАК ДЕЛА\n@\nНОРМ"}]},
        ensure_ascii=False), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        buhurt(config, "corpus", "import-telegram", str(export))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--allow-chat" in err and "private group" in err
    buhurt(config, "corpus", "import-telegram", "--allow-chat", str(export))
    assert "1 posts added" in capsys.readouterr().out


# ---- a hostile result.json (issue 26, point 13), in a child process under a memory cap -----------------

def _limited_memory() -> None:
    import resource

    limit = 3 * 1024 ** 3  # far above what an import needs; the old reader grew to 24 GB here
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_deeply_nested_result_json_is_refused_in_one_line(tmp_path):
    """195 KiB of 100,000 nested arrays grew the import to 23.8 GB: now refused before it grows."""
    depth = 100_000
    export = tmp_path / "result.json"
    export.write_text('{"name": "X", "type": "public_channel", "messages": [' + "[" * depth + "]" * depth + "]}",
                      encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[corpus]\nseed_with_sample = false\n",
                      encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "corpus", "import-telegram",
                             str(export)], cwd=ROOT, env=subprocess_env(ROOT), capture_output=True, text=True,
                            timeout=300, preexec_fn=_limited_memory)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"error: {export}: JSON nested deeper than 32 levels"), lines[0]


TWO_POSTS = "ПЕРВЫЙ ПОСТ\n@\nСТРОКА\n@\nЕЩЁ\n\nВТОРОЙ ПОСТ\n@\nСТРОКА\n@\nИ ЕЩЁ\n"


@pytest.mark.parametrize("png, message", [
    ("config.toml", "config.toml: expected a .png file name"),
    ("stats.sqlite3", "stats.sqlite3: expected a .png file name"),
    ("notes/x.png", "cannot write the histogram"),      # notes is a file: no folder can be made there
    ("old.png", "exists and is not a PNG image"),
])
def test_stats_png_that_cannot_be_a_histogram_is_one_line(config, tmp_path, capsys, monkeypatch, png, message):
    # matplotlib's ValueError (a suffix it has no writer for) and an OSError came out as
    # "error: unexpected ...", exit 1, with a traceback; config.toml's suffix alone saved it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "posts.txt").write_text(TWO_POSTS, encoding="utf-8")
    (tmp_path / "notes").write_text("mine\n", encoding="utf-8")
    (tmp_path / "old.png").write_text("not an image, my notes\n", encoding="utf-8")
    buhurt(config, "corpus", "import", "posts.txt")
    capsys.readouterr()
    config_before = config.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        buhurt(config, "corpus", "stats", "--png", png)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert config.read_bytes() == config_before
    assert (tmp_path / "old.png").read_text(encoding="utf-8") == "not an image, my notes\n"


def test_stats_png_names_the_file_it_wrote(config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "posts.txt").write_text(TWO_POSTS, encoding="utf-8")
    buhurt(config, "corpus", "import", "posts.txt")
    for name in ("plot.PNG", "plot.png", "plot.png"):   # the second run replaces its own picture
        buhurt(config, "corpus", "stats", "--png", name)
        out = capsys.readouterr().out
        assert f"histogram: {name}\n" in out and (tmp_path / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("layout", ["one line", "no blank lines"])
def test_a_file_that_is_no_posts_separated_by_blank_lines_is_refused_in_one_line(config, tmp_path, capsys, layout):
    """`corpus import` given a minified JSON dump (one line) or posts one per line: the whole file was
    one post, grown by copying the line read so far at every 1 MiB (24 MB: a minute; a 1 GB file for
    hours), then stored and excluded as too long ('0 of 1 posts kept')."""
    from corpus.textfile import MAX_POST_CHARS

    line = '{"id": 1, "text": "ПРИХОДИШЬ ДОМОЙ @ А ТАМ БАТЯ"}, '
    count = MAX_POST_CHARS // len(line) + 10
    dump = tmp_path / "dump.json"
    dump.write_text(line * count if layout == "one line" else (line + "\n") * count, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        buhurt(config, "corpus", "import", str(dump))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {dump}: ") and "blank lines" in err and f"{MAX_POST_CHARS:,}" in err
    with pytest.raises(SystemExit):
        buhurt(config, "corpus", "stats")
    assert "the corpus is empty" in capsys.readouterr().err


def test_export_and_preprocess_are_refused_while_a_retrain_trains_from_their_files(config, tmp_path, capsys):
    """The nightly retrain (or `buhurt retrain`, or the first model) exports to <data_dir>/train,
    trains from its .h5 for hours, then scores both models on the .h5's held-out posts. `buhurt
    corpus export` and `buhurt preprocess` by hand meanwhile rewrote those files (another
    --val-frac: held-out posts the candidate had trained on; new characters: a vocabulary the .h5
    read at scoring time did not match). Now they are refused in one line while a training holds
    the folder, and write elsewhere (-o, --output-h5/--output-json) freely."""
    import os
    from dataclasses import replace

    from jobs.retrain import one_training
    from tests.helpers import error_lines, plan_for, run_cli

    posts = tmp_path / "posts.txt"
    posts.write_text("\n\n".join(f"ПОСТ НОМЕР {i}\n@\nВТОРАЯ СТРОКА\n@\nТРЕТЬЯ СТРОКА {i}" for i in range(40)) + "\n",
                     encoding="utf-8")
    train = tmp_path / "data" / "train"
    for argv in (("corpus", "import", str(posts)), ("corpus", "export"), ("preprocess",)):
        assert run_cli(capsys, "--config", str(config), *argv)[0] == 0
    before = {p.name: p.read_bytes() for p in train.iterdir()}
    night = replace(plan_for(tmp_path), checkpoint_dir=tmp_path / "data" / "checkpoints")
    with one_training(night):   # the night's retrain trains
        for argv in (("corpus", "export", "--seed", "7"), ("preprocess", "--val-frac", "0.3")):
            code, _, err = run_cli(capsys, "--config", str(config), *argv)
            (line,) = error_lines(err)
            assert code == 2 and f"a retrain (pid {os.getpid()}) is training from {train}" in line, err
        assert {p.name: p.read_bytes() for p in train.iterdir()} == before
        elsewhere = [("corpus", "export", "-o", str(tmp_path / "mine.txt")),
                     ("preprocess", "--input-txt", str(tmp_path / "mine.txt"), "--output-h5", str(tmp_path / "mine.h5"),
                      "--output-json", str(tmp_path / "mine.json"))]
        for argv in elsewhere:
            assert run_cli(capsys, "--config", str(config), *argv)[0] == 0
    assert run_cli(capsys, "--config", str(config), "corpus", "export", "--seed", "7")[0] == 0
