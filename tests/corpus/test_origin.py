"""Whose posts the corpus holds: the bundled sample never mixes silently with a community's own
posts (removed, in one line, when they arrive), `corpus stats` shows each community's share, and a
Telegram export re-imported under another `--community` is the same posts (its channel is the
posts' origin). Real SQLite, the real CLI."""
from __future__ import annotations

import json

import pytest
import requests

from corpus.db import open_db
from corpus.importer import SAMPLE_COMMUNITY
from corpus.telegram_export import import_telegram_export
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall
from tests.helpers import run_cli, varied_posts


def export(tmp_path, name="ТЕСТОВЫЙ КАНАЛ", ids=range(1, 31)):
    folder = tmp_path / f"export-{name}"
    folder.mkdir(exist_ok=True)
    messages = [{"id": i, "type": "message", "date": "2020-09-05T17:41:55",
                 "text": f"ПОСТ {name} {i}\n@\nСТРОКА {i * 7}\n@\nКОНЕЦ {i}", "views": 100 + i} for i in ids]
    (folder / "result.json").write_text(json.dumps({"name": name, "type": "public_channel", "id": 77,
                                                    "messages": messages}, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def seeded(tmp_path):
    """A data folder whose corpus holds only the bundled sample (what a fresh install seeds)."""
    from bot.app import SAMPLE_CORPUS
    from jobs.first_run import seed_empty_corpus

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[vk]\nrequests_per_second = 1000.0\n',
                   encoding="utf-8")
    (tmp_path / "data").mkdir()
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    try:
        assert seed_empty_corpus(db, SAMPLE_CORPUS) > 100
    finally:
        db.close()
    return cfg


def communities(cfg) -> dict[str, int]:
    db = open_db(cfg.parent / "data" / "buhurt.sqlite3")
    try:
        return dict(db.execute("SELECT community, count(*) FROM posts GROUP BY community").fetchall())
    finally:
        db.close()


def test_importing_own_posts_removes_the_sample_and_says_so(capsys, tmp_path, seeded):
    sample = communities(seeded)[SAMPLE_COMMUNITY]
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "import-telegram", str(export(tmp_path)),
                             "--community", "наши")
    assert code == 0, err
    assert f"removed the {sample} posts of the bundled sample corpus" in out
    assert communities(seeded) == {"наши": 30}
    db = open_db(seeded.parent / "data" / "buhurt.sqlite3")
    try:   # the sample's near-copy index rows went with it
        assert db.execute("SELECT count(*) FROM post_shingles WHERE post_id NOT IN (SELECT id FROM posts)"
                          ).fetchone()[0] == 0
    finally:
        db.close()
    other = tmp_path / "more.txt"
    other.write_text("\n\n".join(varied_posts(10)) + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "import", str(other))
    assert code == 0 and "bundled sample" not in out            # once own posts are in, nothing is removed
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "stats")
    assert code == 0, err
    line, = [line for line in out.splitlines() if line.startswith("communities: ")]
    assert "наши " in line and "more.txt " in line and "%)" in line


def test_a_failed_import_keeps_the_sample_and_a_sample_import_keeps_it_too(capsys, tmp_path, seeded):
    before = communities(seeded)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    code, _, err = run_cli(capsys, "--config", str(seeded), "corpus", "import", str(bad))
    assert code != 0 and communities(seeded) == before
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "stats")
    assert code == 0 and f"communities: {SAMPLE_COMMUNITY} (the bundled sample) " in out and "(100.0%)" in out


def test_a_vk_scrape_removes_the_sample_too(capsys, tmp_path, seeded, monkeypatch):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(20)
    monkeypatch.setattr(requests, "Session", FakeVk(wall).session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "scrape", "--group", "bugurt_test",
                             "--no-progress")
    assert code == 0, err
    assert "posts of the bundled sample corpus" in out and SAMPLE_COMMUNITY not in communities(seeded)


def test_the_scrape_job_removes_the_sample_in_one_log_line(tmp_path, seeded, monkeypatch, caplog):
    import logging

    from bot.app import _scraper
    from bot.config import load_settings

    wall = FakeWall(42, "bugurt_test")
    wall.generate(20)
    monkeypatch.setattr(requests, "Session", FakeVk(wall).session)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    seeded.write_text(seeded.read_text(encoding="utf-8") + 'groups = ["bugurt_test"]\n', encoding="utf-8")
    caplog.set_level(logging.INFO)
    _scraper(load_settings(seeded))()
    assert SAMPLE_COMMUNITY not in communities(seeded)
    assert sum("posts of the bundled sample corpus" in r.getMessage() for r in caplog.records) == 1


def test_reimporting_an_export_under_another_community_adds_nothing(db, tmp_path):
    folder = export(tmp_path)
    first = import_telegram_export(db, folder, community="первое")
    again = import_telegram_export(db, folder, community="второе")
    default = import_telegram_export(db, folder)
    assert (first.added, again.added, default.added) == (30, 0, 0)
    assert db.execute("SELECT count(*), min(community), max(origin) FROM posts").fetchone() == (
        30, "первое", "ТЕСТОВЫЙ КАНАЛ")
    other = import_telegram_export(db, export(tmp_path, name="ДРУГОЙ КАНАЛ", ids=range(20, 41)),
                                   community="второе")
    assert other.added == 21          # the same message ids in another channel are other posts


def test_posts_imported_before_origins_are_found_and_learn_theirs(db, tmp_path):
    folder = export(tmp_path)
    import_telegram_export(db, folder)                       # the default label: the channel's name
    db.execute("UPDATE posts SET origin = NULL")             # as stored before m006
    assert import_telegram_export(db, folder, community="новое").added == 0
    assert db.execute("SELECT count(*) FROM posts WHERE origin = 'ТЕСТОВЫЙ КАНАЛ'").fetchone()[0] == 30


def test_another_channel_under_the_same_label_never_rewrites_its_posts(db, tmp_path):
    """Message ids start at 1 in every channel: a second channel imported under a label that holds
    the first's posts (or the first, renamed) meets the same ids; an edited text is taken only from
    the channel the post came from."""
    import_telegram_export(db, export(tmp_path), community="наши")
    before = db.execute("SELECT external_id, text FROM posts ORDER BY id").fetchall()
    import_telegram_export(db, export(tmp_path, name="ДРУГОЙ КАНАЛ", ids=range(20, 41)), community="наши")
    assert db.execute("SELECT external_id, text FROM posts WHERE origin = 'ТЕСТОВЫЙ КАНАЛ' ORDER BY id"
                      ).fetchall() == before


def test_a_rerun_after_an_import_killed_before_the_sample_went_removes_it(capsys, tmp_path, seeded):
    """An import (or a long scrape) killed after its posts were committed but before the sample was
    removed (SIGKILL, SIGTERM or a closed terminal: no `finally` runs) left the sample mixed with the
    community's posts for good: the rerun saw a corpus that no longer held only the sample."""
    folder = export(tmp_path)
    db = open_db(seeded.parent / "data" / "buhurt.sqlite3")
    try:
        import_telegram_export(db, folder)   # what the killed run had committed
    finally:
        db.close()
    assert SAMPLE_COMMUNITY in communities(seeded)
    code, out, err = run_cli(capsys, "--config", str(seeded), "corpus", "import-telegram", str(folder))
    assert code == 0, err
    assert "0 posts added" in out and "posts of the bundled sample corpus" in out
    assert communities(seeded) == {"ТЕСТОВЫЙ КАНАЛ": 30}



def test_another_channel_under_the_same_label_leaves_its_posts_and_counters_alone(capsys, tmp_path):
    """Two channels imported under one label (--community): the second's messages whose ids the
    first also has were taken for the first's posts, said 'already present', and their views
    overwrote the first channel's counters. Now they are not stored, the first channel's posts keep
    their counters, and the command says so and what to do."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(cfg), "corpus", "import-telegram", str(export(tmp_path)),
                             "--community", "наши")
    assert code == 0, err
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    try:
        views = db.execute("SELECT external_id, views FROM posts ORDER BY id").fetchall()
    finally:
        db.close()
    other = export(tmp_path, name="ДРУГОЙ КАНАЛ", ids=range(20, 41))
    code, out, err = run_cli(capsys, "--config", str(cfg), "corpus", "import-telegram", str(other),
                             "--community", "наши")
    assert code == 0, err
    assert "21 messages of 'наши' in 1 file(s): 10 posts added, 0 already present" in out
    assert ("11 message(s) not stored: 'наши' holds posts of the channel 'ТЕСТОВЫЙ КАНАЛ' with the same"
            " message ids") in out and "under its own --community" in out
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    try:
        assert db.execute("SELECT external_id, views FROM posts WHERE origin = 'ТЕСТОВЫЙ КАНАЛ' ORDER BY id"
                          ).fetchall() == views
        again = import_telegram_export(db, other, community="наши")
        assert (again.added, again.updated, again.kept_out) == (0, 10, 11)
        assert import_telegram_export(db, other, community="другие").added == 11   # its own label: all of it
    finally:
        db.close()


def test_a_renamed_channel_reimported_under_its_label_adds_nothing(db, tmp_path):
    """The same channel, renamed since the first export, under the same label: its unchanged
    messages are the posts already stored (their counters refreshed)."""
    import_telegram_export(db, export(tmp_path), community="наши")
    renamed = export(tmp_path, name="НОВОЕ ИМЯ")
    text = (renamed / "result.json").read_text(encoding="utf-8").replace("ПОСТ НОВОЕ ИМЯ", "ПОСТ ТЕСТОВЫЙ КАНАЛ")
    (renamed / "result.json").write_text(text, encoding="utf-8")
    result = import_telegram_export(db, renamed, community="наши")
    assert (result.added, result.updated, result.kept_out) == (0, 30, 0)
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 30


@pytest.mark.parametrize("named", ["--community sample", "a file named sample"])
def test_a_text_import_under_the_bundled_samples_label_is_refused_not_removed(capsys, tmp_path, named):
    """`buhurt corpus import` of a file named `sample` (the default label is the file's name) or with
    --community sample: the operator's posts were stored under the bundled sample's label, then
    removed at once as the sample ('removed the N posts of the bundled sample corpus')."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(cfg), "corpus", "import-telegram", str(export(tmp_path)))
    assert code == 0, err
    if named == "a file named sample":
        file, extra = tmp_path / "sample", []
    else:
        file, extra = tmp_path / "posts.txt", ["--community", "sample"]
    file.write_text("\n\n".join(varied_posts(12)) + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(cfg), "corpus", "import", str(file), *extra)
    assert code == 2 and "removed" not in out
    assert len(err.strip().splitlines()) == 1 and "'sample' is the label of the bundled sample corpus" in err
    assert communities(cfg) == {"ТЕСТОВЫЙ КАНАЛ": 30}
    code, out, err = run_cli(capsys, "--config", str(cfg), "corpus", "import", str(file), "--community", "наши")
    assert code == 0, err
    assert communities(cfg) == {"ТЕСТОВЫЙ КАНАЛ": 30, "наши": 12}
