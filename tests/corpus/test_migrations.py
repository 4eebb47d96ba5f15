"""The database is created and upgraded by versioned migrations without losing rows."""
from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from corpus.db import open_db, schema_version
from corpus.errors import CorpusError
from corpus.migrations import MIGRATIONS
from corpus.store.posts import count_posts, text_hash
from corpus.store.shingles import index_size, longest_shared_run


def test_fresh_database_is_wal_and_fully_migrated(tmp_path):
    db = open_db(tmp_path / "new.sqlite3")
    assert db.journal_mode == "wal"
    assert schema_version(db) == [m.name for m in MIGRATIONS._migrations]
    for table in ("posts", "drafts", "publications", "reactions", "moderation_actions", "model_versions", "state"):
        assert table in db.table_names()


def test_database_from_an_earlier_version_migrates_without_losing_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m002_state")  # the schema as the first release shipped it
    assert schema_version(old) == ["m001_initial"] and "state" not in old.table_names()
    old_posts(old, [f"ПОСТ {i}\n@\nСТРОКА\n@\nКОНЕЦ" for i in range(50)])
    old["drafts"].insert({"text": "X", "model_version": "v1", "temperature": 0.8, "seed": 7, "max_length": 500,
                          "status": "queued", "created_at": "2025-01-01", "updated_at": "2025-01-01"})
    old.close()

    db = open_db(path)
    assert schema_version(db)[-1] == MIGRATIONS._migrations[-1].name
    assert count_posts(db) == 50
    assert db["drafts"].get(1)["seed"] == 7
    assert "state" in db.table_names()
    assert open_db(path).execute("select count(*) from posts").fetchone()[0] == 50  # idempotent reopen


def old_posts(db, texts):
    """Posts written as an older release wrote them (today's add_posts also fills later tables)."""
    db["posts"].insert_all({"source": "file", "external_id": text_hash(t), "text": t, "text_hash": text_hash(t),
                            "imported_at": "2025-01-01"} for t in texts)


def test_m003_keeps_drafts_and_indexes_the_posts_already_stored(tmp_path):
    path = tmp_path / "m002.sqlite3"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m003_draft_measures_and_near_copy_index")
    long_line = "ПРИХОДИШЬ В ШКОЛУ А ТАМ ВМЕСТО УРОКА ФИЗКУЛЬТУРЫ КОНТРОЛЬНАЯ ПО АЛГЕБРЕ"
    old_posts(old, [f"НАЧАЛО\n@\n{long_line}\n@\nКОНЕЦ", "А\n@\nБ\n@\nВ"])
    old["drafts"].insert({"text": "СТАРЫЙ\n@\nЧЕРНОВИК", "model_version": "v1", "temperature": 0.8, "seed": 7,
                          "max_length": 500, "status": "published", "created_at": "2025-01-01",
                          "updated_at": "2025-01-01"})
    old.close()

    db = open_db(path)
    assert schema_version(db)[-1] == MIGRATIONS._migrations[-1].name
    row = db["drafts"].get(1)
    assert (row["seed"], row["status"], row["text"]) == (7, "published", "СТАРЫЙ\n@\nЧЕРНОВИК")
    assert row["known_share"] is None and row["reached_gap"] is None and row["score"] is None  # not measured
    assert count_posts(db) == 2 and index_size(db) > 0
    shared, post_id = longest_shared_run(db, f"СОВСЕМ ИНОЕ\n@\n{long_line}\n@\nИТОГ")
    assert (shared, post_id) == (len(f"\n@\n{long_line}\n@\n"), 1)


def test_a_failing_migration_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "db.sqlite3"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m002_state")
    old.close()

    def broken(db):
        db.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr(MIGRATIONS._migrations[1], "fn", broken)
    with pytest.raises(CorpusError, match="disk on fire"):
        open_db(path)
    check = sqlite_utils.Database(path)
    assert schema_version(check) == ["m001_initial"] and "state" not in check.table_names()


def test_bad_database_paths(tmp_path):
    with pytest.raises(CorpusError, match="is a directory"):
        open_db(tmp_path)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CorpusError, match="not a usable SQLite database"):
        open_db(junk)
    assert junk.read_bytes() == b"this is not a database" * 100


def test_m007_keeps_every_draft_and_measures_the_edits_already_made(tmp_path):
    path = tmp_path / "m006.sqlite3"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m007_curation")
    common = {"model_version": "v1", "temperature": 0.8, "seed": 7, "max_length": 500, "created_at": "2025-01-01",
              "updated_at": "2025-01-01"}
    old["drafts"].insert_all([
        {"text": "ПРИХОДИШЬ\n@\nДОМОЙ", "final_text": "ПРИХОДИШЬ\n@\nДОМОЙ ПОЗДНО", "status": "published", **common},
        {"text": "НЕ\n@\nТРОНУТ", "status": "rejected", "score": -1.5, **common},
    ])
    old.close()

    db = open_db(path)
    assert schema_version(db)[-1] == MIGRATIONS._migrations[-1].name
    edited, untouched = db["drafts"].get(1), db["drafts"].get(2)
    assert (edited["final_text"], edited["edit_distance"]) == ("ПРИХОДИШЬ\n@\nДОМОЙ ПОЗДНО", 7)
    assert (untouched["status"], untouched["score"], untouched["edit_distance"]) == ("rejected", -1.5, None)
    assert {"ratings", "served"} <= set(db.table_names())


def test_m008_keeps_each_model_versions_bits_per_char_as_val_bpc(tmp_path):
    path = tmp_path / "m007.sqlite3"
    old = sqlite_utils.Database(path)
    MIGRATIONS.apply(old, stop_before="m008_val_bpc")
    old["model_versions"].insert({"version": "v1", "path": "/m/v1.pt", "status": "active", "val_loss": 2.43,
                                  "created_at": "2025-01-01"})
    old.close()

    db = open_db(path)
    assert schema_version(db)[-1] == "m009_clean_text_index"
    row = db["model_versions"].get("v1")
    assert row["val_bpc"] == 2.43 and "val_loss" not in row


def test_a_database_written_by_a_newer_version_is_refused_in_one_line_and_left_as_it_was(tmp_path, capsys):
    from tests.helpers import run_cli

    path = tmp_path / "data" / "buhurt.sqlite3"
    newer = open_db(path)
    old_posts(newer, ["ПРИХОДИШЬ\n@\nДОМОЙ\n@\nТАМ НИКОГО"])
    # what a later release would do: a migration this code does not know, a column it never wrote
    newer["_sqlite_migrations"].insert({"migration_set": "buhurt", "name": "m099_from_the_future",
                                        "applied_at": "2030-01-01"})
    newer.execute("ALTER TABLE posts ADD COLUMN rewritten INTEGER NOT NULL DEFAULT 1")
    newer.execute("PRAGMA journal_mode = DELETE")   # as that release may leave it: nothing may change it
    newer.close()
    before = path.read_bytes()

    with pytest.raises(CorpusError, match="newer version.*m099_from_the_future"):
        open_db(path)
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    text = tmp_path / "posts.txt"
    text.write_text("НОВЫЙ\n@\nПОСТ\n@\nЗДЕСЬ\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config), "corpus", "import", str(text))
    assert code == 2 and "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert "buhurt.sqlite3" in line and "newer version" in line and "m099_from_the_future" in line
    assert path.read_bytes() == before   # not migrated, not switched to WAL, no post added
    assert not path.with_name(path.name + "-wal").exists()
