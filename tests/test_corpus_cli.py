"""`buhurt corpus ...` end to end in-process: import-telegram, clean --report, export, stats, scrape."""
from __future__ import annotations

import pytest
import requests

from bot.cli import main
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall
from tests.test_corpus_telegram import MEDIA, message, write_pages


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


def test_scrape_command(config, monkeypatch, capsys):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(300)
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    buhurt(config, "corpus", "scrape", "--group", "bugurt_test", "--no-progress")
    out = capsys.readouterr().out
    assert "bugurt_test (id 42): 300 new posts" in out and "total: 300 new posts, 2 requests" in out


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
