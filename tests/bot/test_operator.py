"""Operator basics (issue 14): `buhurt doctor` against the fake Bot API server and the fake VK,
`buhurt backup` and the nightly backup job, the heartbeat behind the Docker HEALTHCHECK."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
import threading
import time

import pytest
import requests

from corpus.backup import backups_in, nightly_backup
from corpus.db import open_db
from tests.helpers import PATIENCE, run_cli
from tests.fakes.fake_vk import COMMUNITY_TOKEN, GOOD_TOKEN, WALL_TOKEN, FakeVk, FakeWall
from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, make_settings, write_config
from tests.fakes.telegram_server import BOT_USER


@pytest.fixture
def vk(monkeypatch):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(10)
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    return fake


def doctor(capsys, config, *args):
    code, out, err = run_cli(capsys, "--config", str(config), "doctor", *args)
    checks = [line for line in out.splitlines() if line.startswith(("ok  ", "FAIL"))]
    return code, checks, out + err


def test_doctor_all_good(capsys, tmp_path, server, vk, monkeypatch):
    make_settings(tmp_path, server)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    config = write_config(tmp_path, server, vk={"groups": ["bugurt_test"], "requests_per_second": 1000.0})
    code, checks, text = doctor(capsys, config)
    assert code == 0, text
    names = [line.split(":")[0].split(None, 1)[1] for line in checks]
    assert names == ["database", "disk", "model", "telegram token", f"channel {CHANNEL}", "moderators' chat",
                     "drafts to the moderators", "publishing", "vk community bugurt_test"]
    assert all(line.startswith("ok  ") for line in checks), text
    assert "integrity_check ok" in text and "@buhurt_test_bot" in text
    assert server.calls_of("getChatMember") and vk.methods["groups.getById"] == 1
    assert server.token.split(":")[1] not in text and GOOD_TOKEN not in text


def test_doctor_names_each_failure_and_exits_1(capsys, tmp_path, server, vk, monkeypatch):
    make_settings(tmp_path, server)
    server.set_member(CHANNEL, BOT_USER["id"], "member")          # not an admin: cannot post
    server.fail("getChat", 400, chat_id=MODERATORS_CHAT, times=5)  # chat not found
    monkeypatch.setenv("BUHURT_VK_TOKEN", "expired-vk-token-123456")
    config = write_config(tmp_path, server, vk={"groups": ["bugurt_test"], "requests_per_second": 1000.0})
    code, checks, text = doctor(capsys, config)
    assert code == 1, text
    failed = {line.split(":")[0].split(None, 1)[1]: line for line in checks if line.startswith("FAIL")}
    assert set(failed) == {f"channel {CHANNEL}", "moderators' chat", "vk community bugurt_test"}, text
    assert "make it an administrator" in failed[f"channel {CHANNEL}"]
    assert "chat not found" in failed["moderators' chat"].lower()
    assert "rejected the token" in failed["vk community bugurt_test"]
    assert "expired-vk-token-123456" not in text and "6 of 9 checks passed" in text



@pytest.mark.parametrize("fault, said", [
    ("connection", "not checked: cannot reach the VK API (ConnectionError)"),
    (6, "not checked: VK keeps refusing with error 6 (Too many requests per second)"),
    (14, "not checked: VK asks for a captcha (error 14) on groups.getById: it suspects automated use of the token"),
])
def test_doctor_says_in_its_own_words_that_vk_could_not_be_checked(capsys, tmp_path, server, vk, monkeypatch,
                                                                    fault, said):
    """A check, not a scrape: nothing was fetched or saved, and there is nothing to continue."""
    make_settings(tmp_path, server)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    config = write_config(tmp_path, server, vk={"groups": ["bugurt_test"], "requests_per_second": 1000.0})
    if fault == "connection":
        vk.fail_at = 1
    else:
        vk.errors[1] = fault
    code, checks, text = doctor(capsys, config)
    assert code == 1, text
    (failed,) = [line for line in checks if line.startswith("FAIL")]
    assert failed == f"FAIL  vk community bugurt_test: {said}", text

def test_doctor_waits_for_vk_no_longer_than_vk_timeout_seconds(capsys, tmp_path, server, vk, monkeypatch):
    """A VK that never answers: the community's line came after the default 30 s, whatever
    vk.timeout_seconds said (the service's own requests and the long poll's line keep to it)."""
    make_settings(tmp_path, server)
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    config = write_config(tmp_path, server, vk={"groups": ["bugurt_test"], "requests_per_second": 1000.0,
                                                "timeout_seconds": 4.0})
    vk.hang_at = {1}
    code, checks, text = doctor(capsys, config)
    assert code == 1 and "FAIL  vk community bugurt_test: not checked: cannot reach the VK API (ReadTimeout)" in checks
    assert vk.timeouts == [4.0], text


@pytest.mark.parametrize("token, line", [
    (WALL_TOKEN, "ok    vk wall (publishing): bugurt_test (id 42): the token's user is an administrator, may publish"),
    (GOOD_TOKEN, "FAIL  vk wall (publishing): bugurt_test (id 42): the token's user is not an editor or"
                 " administrator of the community: VK refuses wall.post"),
    (COMMUNITY_TOKEN, "FAIL  vk wall (publishing): bugurt_test (id 42): vk.token is not a user's token (a service or"
                      " community token): VK refuses wall.post; publishing needs a user token with the wall scope"),
])
def test_doctor_checks_that_the_vk_token_may_publish_to_the_wall(capsys, tmp_path, server, vk, monkeypatch,
                                                                  token, line):
    """As for a Telegram channel (an administrator that may post): the publishing wall's line said
    'readable with the token' for a token whose every wall.post VK refuses (error 214, or 5/28)."""
    make_settings(tmp_path, server)
    monkeypatch.setenv("BUHURT_VK_TOKEN", token)
    config = write_config(tmp_path, server, vk={"publish_group_id": 42, "requests_per_second": 1000.0})
    code, checks, text = doctor(capsys, config)
    assert line in checks and code == (0 if token == WALL_TOKEN else 1), text
    assert token not in text


@pytest.mark.parametrize("token, wall_error, said", [
    (COMMUNITY_TOKEN, None, "VK refuses wall.get with a community token (error 27): scraping needs a service"),
    (GOOD_TOKEN, 15, "the wall of VK community 'bugurt_test' is closed or private (VK error 15"),
])
def test_doctor_reads_the_wall_of_each_community_it_says_is_readable(capsys, tmp_path, server, vk, monkeypatch,
                                                                     token, wall_error, said):
    """groups.getById answers a community token and shows a community whose wall is closed; the
    line said 'readable with the token' and every scrape then stopped at wall.get."""
    make_settings(tmp_path, server)
    monkeypatch.setenv("BUHURT_VK_TOKEN", token)
    vk.walls[42].wall_error = wall_error
    config = write_config(tmp_path, server, vk={"groups": ["bugurt_test"], "requests_per_second": 1000.0})
    code, checks, text = doctor(capsys, config)
    (line,) = [line for line in checks if "vk community bugurt_test" in line]
    assert code == 1 and line.startswith("FAIL") and said in line, text


def test_doctor_shows_that_the_service_could_not_reach_the_moderators(capsys, tmp_path, server):
    from corpus.store.state import set_state
    from jobs.service import MODERATION_ERROR

    settings = make_settings(tmp_path, server)
    config = write_config(tmp_path, server)
    db = open_db(settings.database)
    set_state(db, MODERATION_ERROR, "2026-12-01T03:00:00Z BadRequest: Chat not found")
    db.close()
    code, checks, text = doctor(capsys, config)
    assert code == 1, text
    failed = [line for line in checks if line.startswith("FAIL")]
    assert failed == ["FAIL  drafts to the moderators: the service could not show drafts there, since"
                      " 2026-12-01T03:00:00Z BadRequest: Chat not found (retried at every pool run)"], text

    db = open_db(settings.database)
    set_state(db, MODERATION_ERROR, "")  # what the service writes once a draft gets through
    db.close()
    code, checks, text = doctor(capsys, config)
    assert code == 0 and "ok    drafts to the moderators: no error recorded" in checks, text


def test_a_doctor_before_the_first_start_creates_no_database_behind_the_service(capsys, tmp_path):
    """It said "does not exist (`buhurt run` creates it)" and then made one itself, with the data
    folder and the marker, owned by whoever ran it (`sudo buhurt doctor`: root's, which the service
    could then not write)."""
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n", encoding="utf-8")
    code, checks, text = doctor(capsys, config)
    assert code == 1 and checks[0].startswith("FAIL  database:") and "does not exist" in checks[0], text
    assert any(line.startswith("ok    model: default.pt loads") for line in checks), text
    assert not (tmp_path / "data").exists()


def test_doctor_with_a_rejected_token(capsys, tmp_path, server):
    rejected = "555555555:AAH-a-rejected-token-for-the-doctor-00000"
    make_settings(tmp_path, server)
    config = write_config(tmp_path, server, telegram={"token": rejected})
    code, checks, text = doctor(capsys, config)
    assert code == 1 and any(line.startswith("FAIL  telegram token: the Bot API") for line in checks), text
    assert rejected.split(":")[1] not in text


def test_doctor_fails_a_channel_configured_without_a_token(capsys, tmp_path, server):
    """It passed every check (no token: no Telegram line at all) while `buhurt run` could not
    reach the channel or the moderators."""
    make_settings(tmp_path, server)
    code, checks, text = doctor(capsys, write_config(tmp_path, server, telegram={"token": ""}))
    assert code == 1, text
    (line,) = [line for line in checks if "telegram token" in line]
    assert line.startswith("FAIL  telegram token:") and "BUHURT_TELEGRAM_TOKEN" in line, text


def test_doctor_finds_a_damaged_database(capsys, tmp_path, server):
    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    db["filler"].insert_all({"n": i, "text": "x" * 500} for i in range(400))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(settings.database, "r+b") as handle:  # overwrite pages in the middle of the file
        size = os.path.getsize(settings.database)
        handle.seek(size // 2)
        handle.write(b"\xff" * 8192)
    code, checks, text = doctor(capsys, write_config(tmp_path, server, telegram={"token": ""}))
    assert code == 1 and checks[0].startswith("FAIL  database:"), text


def test_doctor_quick_reads_the_heartbeat(capsys, tmp_path, server):
    settings = make_settings(tmp_path, server)
    config = write_config(tmp_path, server)
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 1 and checks[1].startswith("FAIL  heartbeat:") and "missing" in checks[1], text
    heartbeat = settings.data_dir / "heartbeat"
    heartbeat.write_text("now\n", encoding="utf-8")
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 0 and len(checks) == 2, text
    old = time.time() - 3600
    os.utime(heartbeat, (old, old))
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 1 and "stuck or stopped" in checks[1], text
    future = time.time() + 3600 * 24 * 365          # a touch or a clock change: proves nothing
    os.utime(heartbeat, (future, future))
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 1 and "in the future" in checks[1], text
    heartbeat.unlink()
    heartbeat.mkdir()                               # unreadable: one FAIL line, no traceback
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 1 and checks[1].startswith("FAIL  heartbeat:") and "Traceback" not in text, text
    assert not server.calls  # no network in the health check


def test_the_schedule_touches_the_heartbeat_and_backs_up_nightly(tmp_path, db):
    from jobs.scheduler import ScheduleOptions
    from jobs.service import Service, ServicePlan

    heartbeat = tmp_path / "heartbeat"
    copies = tmp_path / "backups"
    plan = ServicePlan(heartbeat_file=str(heartbeat), backup_at="04:30", schedule=ScheduleOptions(retrain=False))
    service = Service(db, None, plan=plan, publishers=[], moderation=None, stoplist=None,
                      backuper=lambda: nightly_backup(tmp_path / "test.sqlite3", copies, 2))

    async def main():
        service.start_schedule()
        try:
            assert service.scheduler.get_job("backup-0") is not None
            await asyncio.wait_for(_until(heartbeat.exists), PATIENCE)
            return await service.backup()
        finally:
            service.stop_schedule()

    path = asyncio.run(main())
    assert path.parent == copies and backups_in(copies) == [path]


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0.01)


def test_backup_is_a_consistent_copy_while_the_bot_writes(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n", encoding="utf-8")
    live = open_db(tmp_path / "data" / "buhurt.sqlite3")
    live["notes"].insert_all({"n": i} for i in range(1000))  # in the WAL, not yet checkpointed
    stop = threading.Event()

    def writer():
        conn = sqlite3.connect(tmp_path / "data" / "buhurt.sqlite3", timeout=10)
        n = 1000
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO notes (n) VALUES (?)", (n,))
            n += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        out_file = tmp_path / "copies" / "snapshot.sqlite3"
        code, out, err = run_cli(capsys, "--config", str(config), "backup", "--output", str(out_file))
    finally:
        stop.set()
        thread.join()
    assert code == 0 and "backed up" in out, err
    copy = sqlite3.connect(out_file)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    numbers = [row[0] for row in copy.execute("SELECT n FROM notes ORDER BY n")]
    copy.close()
    assert numbers[:1000] == list(range(1000)) and numbers == list(range(len(numbers)))  # a prefix: consistent
    assert not (tmp_path / "copies" / "snapshot.sqlite3-wal").exists()
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["snapshot.sqlite3"]  # no temp file left
    live.close()


def test_backup_into_an_impossible_place_is_one_line(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n", encoding="utf-8")
    open_db(tmp_path / "data" / "buhurt.sqlite3").close()
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    code, _, err = run_cli(capsys, "--config", str(config), "backup", "--output",
                           str(tmp_path / "a-file" / "b.sqlite3"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "a-file" in lines[0], err


def test_backup_and_export_never_overwrite_a_file_they_did_not_write(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n", encoding="utf-8")
    kept = config.read_bytes()
    posts = tmp_path / "posts.txt"
    posts.write_text("ПРИХОДИШЬ ДОМОЙ\n@\nА ТАМ БАТЯ\n\nИДЁШЬ В ШКОЛУ\n@\nА ТАМ ДИРЕКТОР\n", encoding="utf-8")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(posts))[0] == 0
    database = tmp_path / "data" / "buhurt.sqlite3"
    for args, needle in ((["backup", "-o", str(config)], "exists and is not a database"),
                         (["corpus", "export", "-o", str(config)], "exists and is not a training text"),
                         (["backup", "-o", f"{database}-wal"], "live database's wal file")):
        code, _, err = run_cli(capsys, "--config", str(config), *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[0], err
        assert config.read_bytes() == kept
    # an earlier backup and an earlier export are replaced, as before
    copy, text = tmp_path / "copy.sqlite3", tmp_path / "train.txt"
    for _ in range(2):
        assert run_cli(capsys, "--config", str(config), "backup", "-o", str(copy))[0] == 0
        assert run_cli(capsys, "--config", str(config), "corpus", "export", "-o", str(text))[0] == 0
    assert "А ТАМ БАТЯ" in text.read_text(encoding="utf-8")


def test_nightly_backups_keep_the_newest(tmp_path):
    source = tmp_path / "live.sqlite3"
    open_db(source).close()
    start = dt.datetime(2026, 12, 1, 4, 30, tzinfo=dt.timezone.utc)
    made = [nightly_backup(source, tmp_path / "b", 3, now=start + dt.timedelta(days=d)) for d in range(5)]
    assert backups_in(tmp_path / "b") == made[:1:-1]
    assert [p.name for p in backups_in(tmp_path / "b")][0] == "buhurt-20261205-043000.sqlite3"


@pytest.mark.parametrize("keep", [1, 2])
def test_a_backup_named_by_hand_in_the_folder_neither_takes_a_slot_nor_goes(tmp_path, capsys, keep):
    # `buhurt backup -o backups/buhurt-before-upgrade.sqlite3` sorted as the newest dated copy: with
    # backup.keep = 1 every new dated copy was deleted as soon as it was written (and `buhurt backup`
    # ended in a FileNotFoundError traceback); with more, it took one of the slots for good
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{data}"\n[corpus]\nseed_with_sample = false\n'
                      f'[backup]\nkeep = {keep}\n', encoding="utf-8")
    open_db(data / "buhurt.sqlite3").close()
    mine = data / "backups" / "buhurt-before-upgrade.sqlite3"
    code, out, err = run_cli(capsys, "--config", str(config), "backup", "-o", str(mine))
    assert code == 0, err
    start = dt.datetime(2026, 12, 1, 4, 30, tzinfo=dt.timezone.utc)
    made = [nightly_backup(data / "buhurt.sqlite3", data / "backups", keep, now=start + dt.timedelta(days=d))
            for d in range(3)]
    assert backups_in(data / "backups") == made[::-1][:keep]
    code, out, err = run_cli(capsys, "--config", str(config), "backup")
    assert code == 0 and "Traceback" not in err, err
    newest = backups_in(data / "backups")
    assert len(newest) == keep and newest[0].name in out and newest[0].is_file()
    assert mine.is_file()


def test_doctor_after_importing_the_corpus_and_before_the_first_model_says_buhurt_run_trains_it(capsys, tmp_path):
    """README's going live: import the posts, set startup.use_bundled_model = false, then check with
    buhurt doctor. No model is trained yet, and the first start trains one (the bundled model
    drafts meanwhile): the model line said 'FAIL  model: JobError: no model yet' and doctor exited 1."""
    from tests.helpers import varied_posts

    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[startup]\nuse_bundled_model = false\n"
                      "[corpus]\nseed_with_sample = false\n", encoding="utf-8")
    posts = tmp_path / "posts.txt"
    posts.write_text("\n\n".join(varied_posts(30)) + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "--config", str(config), "corpus", "import", str(posts))
    assert code == 0, err
    code, checks, text = doctor(capsys, config)
    model = [line for line in checks if "model:" in line]
    assert code == 0 and model and model[0].startswith("ok") and "buhurt run" in model[0], text


def test_doctor_with_no_model_and_no_posts_to_train_one_on_fails(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[startup]\nuse_bundled_model = false\n"
                      "[corpus]\nseed_with_sample = false\n", encoding="utf-8")
    open_db(tmp_path / "data" / "buhurt.sqlite3").close()
    code, checks, text = doctor(capsys, config)
    model = [line for line in checks if "model:" in line]
    assert code == 1 and model and model[0].startswith("FAIL") and "no posts" in model[0], text


def test_a_heartbeat_on_a_full_disk_is_one_warning_and_doctor_quick_names_the_cause(capsys, caplog, tmp_path, server,
                                                                                     db, monkeypatch):
    """The disk fills under the running service: the heartbeat's write failed with a traceback in the
    log every minute, and `doctor --quick` said the event loop was stuck or stopped. Now the service
    logs one WARNING naming the file and the OS error, and doctor --quick says the file cannot be
    written and why. The full disk is injected at Path.write_text under the data folder."""
    import errno
    import logging
    from pathlib import Path

    from jobs.service import Service, ServicePlan

    settings = make_settings(tmp_path, server)
    config = write_config(tmp_path, server)
    heartbeat = settings.data_dir / "heartbeat"
    service = Service(db, None, plan=ServicePlan(heartbeat_file=str(heartbeat)), publishers=[], moderation=None,
                      stoplist=None)
    asyncio.run(service.heartbeat())
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if Path(self).parent == settings.data_dir:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    old = time.time() - 3600
    os.utime(heartbeat, (old, old))
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            asyncio.run(service.heartbeat())
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and not warned[0].exc_info, caplog.text
    assert str(heartbeat) in warned[0].getMessage() and os.strerror(errno.ENOSPC) in warned[0].getMessage()
    code, checks, text = doctor(capsys, config, "--quick")
    assert code == 1 and "stuck or stopped" not in checks[1], text
    assert "cannot be written" in checks[1] and os.strerror(errno.ENOSPC) in checks[1], text
    assert not list(settings.data_dir.glob(".*tmp*")), list(settings.data_dir.iterdir())


def test_doctor_checks_the_free_space_where_the_backups_and_the_database_are_written(capsys, tmp_path, server,
                                                                                     monkeypatch):
    """backup.folder (or paths.database) on another disk than paths.data_dir: that disk filled, the
    nightly backup failed, and doctor said 'ok  disk: ... free under <data_dir>'. The full disk is
    injected at shutil.disk_usage for the backup folder."""
    import shutil as real_shutil

    import bot.doctor

    make_settings(tmp_path, server)
    backups = tmp_path / "mnt" / "backups"
    backups.mkdir(parents=True)
    config = write_config(tmp_path, server, backup={"folder": str(backups)})
    usage = real_shutil.disk_usage

    def disk_usage(path):
        found = usage(path)
        return found._replace(free=100 * 2**20) if str(path).startswith(str(tmp_path / "mnt")) else found

    monkeypatch.setattr(bot.doctor.shutil, "disk_usage", disk_usage)
    code, checks, text = doctor(capsys, config)
    (disk,) = [line for line in checks if line.split(":")[0].endswith(" disk")]
    assert code == 1 and disk.startswith("FAIL") and f"0.1 GiB free under {backups}" in disk, text
