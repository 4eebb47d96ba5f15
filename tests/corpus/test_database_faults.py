"""A damaged database (issue 26, points 5-8): damaged pages found by the service's heartbeat and
`doctor --quick`; an emptied database file refused instead of started afresh; every database error
after the database opened one line and exit 2 (read-only file, full disk, damaged pages); a lock
held by another process across a publishing time freezes nothing and loses no slot. Real SQLite
files, `buhurt` as a child process, the real python-telegram-bot client against the fake Bot API."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

from corpus.db import marker_path, open_db
from corpus.errors import CorpusError
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.posts import add_posts
from jobs import desk
from tests.helpers import PATIENCE, ROOT, assert_one_line, buhurt, run_cli, varied_posts
from bot import texts
from tests.fakes.telegram_app import (
    CHANNEL, MODERATORS_CHAT, bot_running, make_settings, reply_to, settled, until, write_config,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def fill(database: Path, n: int = 1500) -> None:
    """Enough posts, then drafts, that each table spans many pages of the main file (no WAL):
    the first half of the file holds posts, the second half drafts."""
    db = open_db(database)
    try:
        add_posts(db, [{"source": "vk", "community": "g", "external_id": str(i), "text": f"{text}\n@\nНОМЕР {i}"}
                       for i, text in enumerate(varied_posts(n, seed=1))])
        with db.atomic():
            for i, text in enumerate(varied_posts(n, seed=2)):
                draft_rows.add_draft(db, text=text, model_version="v", temperature=0.8, seed=i, max_length=120,
                                     status="rejected_auto")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def damage_pages(database: Path) -> None:
    """Overwrite pages at a quarter and three quarters of the file (what a bad disk or a torn copy
    leaves): some posts' pages and some drafts' pages."""
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        for at in (size // 4, size * 3 // 4):
            handle.seek(at // 4096 * 4096)
            handle.write(b"\xa5" * 4096 * 4)


# ---- 5. damaged pages under a running service: the heartbeat says unhealthy, one alert ----------------

def test_damaged_pages_under_a_running_service_fail_doctor_quick_and_alert_once(capsys, tmp_path, server):
    settings = make_settings(tmp_path, server)
    fill(settings.database)
    config = write_config(tmp_path, server)

    def doctor_quick():
        code, out, err = run_cli(capsys, "--config", str(config), "doctor", "--quick")
        return code, [line for line in out.splitlines() if line.startswith(("ok  ", "FAIL"))]

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.heartbeat()   # the first beat checks
            healthy = doctor_quick()
            damage_pages(settings.database)
            await service.heartbeat()   # the next check is due in 10 minutes...
            not_yet = doctor_quick()
            assert await service.backup() is None   # ...but the nightly backup refuses the damaged file
            await service.heartbeat()   # so this beat checks at once
            found = doctor_quick()
            service.health.every = 0    # and each later beat checks again: still one alert
            for _ in range(2):
                await service.heartbeat()
            alerts = await until(lambda: [m["text"] for m in server.sent(MODERATORS_CHAT)
                                          if "База данных повреждена" in m["text"]])
            return healthy, not_yet, found, alerts

    healthy, not_yet, (code, checks), alerts = asyncio.run(main())
    assert healthy[0] == 0 and not_yet[0] == 0, (healthy, not_yet)
    assert code == 1 and checks[1].startswith("FAIL  heartbeat: the service reports the database is damaged"), checks
    assert "restore the newest backup" in checks[1]
    assert len(alerts) == 1 and "резервную копию" in alerts[0], alerts


# ---- 6. an emptied database file is not a fresh install ------------------------------------------------

@pytest.mark.parametrize("empty", ["zero-length", "missing", "no tables"])
def test_an_emptied_database_is_refused_not_started_afresh(tmp_path, server, empty):
    settings = make_settings(tmp_path, server)
    database = settings.database
    assert marker_path(database).is_file()   # written when the database was created
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    if empty == "zero-length":
        database.write_bytes(b"")
    elif empty == "missing":
        database.unlink()
    else:
        database.unlink()
        import sqlite3

        sqlite3.connect(database).execute("PRAGMA user_version = 1").connection.close()
    config = write_config(tmp_path, server, corpus={"seed_with_sample": True}, startup={"use_bundled_model": True})
    result = buhurt("--config", str(config), "run", "--once")
    line = assert_one_line(result, str(database), "a database existed here", "restore the newest backup",
                           "Backups")
    assert "sample corpus" not in result.stderr and "bundled model" not in result.stderr, line
    assert server.sent() == []
    assert not database.exists() or database.stat().st_size <= 4096   # nothing created in its place
    health = buhurt("--config", str(config), "doctor", "--quick")
    assert health.returncode == 1 and "FAIL  database:" in health.stdout and "a database existed here" in health.stdout
    # the nightly backup refuses it too, so that rotation never replaces good copies with an empty one
    if empty != "missing":
        backup = buhurt("--config", str(config), "backup")
        assert_one_line(backup, "a database existed here")


def test_a_fresh_data_folder_still_starts_and_a_restored_backup_opens(tmp_path):
    database = tmp_path / "data" / "buhurt.sqlite3"
    db = open_db(database)   # a fresh install: no marker yet, an empty file is created and migrated
    db.close()
    assert marker_path(database).is_file()
    from corpus.backup import backup_database

    copy = backup_database(database, tmp_path / "copy.sqlite3")
    database.write_bytes(b"")
    with pytest.raises(Exception, match="a database existed here"):
        open_db(database)
    shutil.copyfile(copy, database)   # docs/operating.md's restore step
    open_db(database).close()


# ---- 7. every database error after the database opened is one line and exit 2 ----------------------------

def test_damaged_pages_in_corpus_stats_and_at_restart_are_one_line(tmp_path, server):
    settings = make_settings(tmp_path, server)
    fill(settings.database)
    damage_pages(settings.database)
    config = write_config(tmp_path, server)
    stats = buhurt("--config", str(config), "corpus", "stats")
    assert_one_line(stats, str(settings.database), "malformed", "restore the newest backup")
    restart = buhurt("--config", str(config), "run", "--once")
    assert_one_line(restart, str(settings.database), "malformed")
    assert server.sent() == []


@contextlib.contextmanager
def read_only(path: Path):
    """The file cannot be written, also for root (who ignores the mode bits): chattr +i."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
        pytest.skip("running as root on a file system without chattr +i: no way to make a file read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_is_one_line(tmp_path, server):
    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    draft = draft_rows.add_draft(db, text="ПОСТ\n@\nОТПРАВЛЯЕТСЯ", model_version="v", temperature=0.8, seed=1,
                                 max_length=120, status="queued")
    pubs.begin_publication(db, draft, "telegram", "@buhurt_test")   # left `sending`: reconcile writes
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    config = write_config(tmp_path, server)
    with read_only(settings.database):
        result = buhurt("--config", str(config), "run", "--once")
    assert_one_line(result, str(settings.database), "readonly", "write access")


def disk_fills_up(monkeypatch) -> SimpleNamespace:
    """A switch: while its `full` is set, every write through sqlite_utils fails as on a full disk
    (injected at Database.execute, as FULL_DISK does in a child process)."""
    import sqlite_utils

    disk = SimpleNamespace(full=False)
    real = sqlite_utils.Database.execute

    def execute(self, sql, parameters=None):
        if disk.full and sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, sql, parameters)

    monkeypatch.setattr(sqlite_utils.Database, "execute", execute)
    return disk


FULL_DISK = """
import sqlite3, sys
import sqlite_utils

real = sqlite_utils.Database.execute

def execute(self, sql, parameters=None):
    if sql.lstrip().upper().startswith("INSERT INTO STATE"):
        raise sqlite3.OperationalError("database or disk is full")
    return real(self, sql, parameters)

sqlite_utils.Database.execute = execute
from bot.cli import main
main(sys.argv[1:])
"""


def test_a_full_disk_at_start_up_is_one_line(tmp_path, server):
    """SQLite answers "database or disk is full" when the first state write of the start-up
    (_catch_up_publishing -> set_state) needs a page; injected at sqlite_utils' execute."""
    make_settings(tmp_path, server)
    config = write_config(tmp_path, server)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("BUHURT_TELEGRAM_TOKEN", "BUHURT_VK_TOKEN", "BUHURT_CONFIG", "BUHURT_DEBUG"):
        env.pop(var, None)
    result = subprocess.run([sys.executable, "-c", FULL_DISK, "--config", str(config), "run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=PATIENCE)
    assert_one_line(result, "database or disk is full", "free space")


def test_a_database_error_inside_a_command_is_one_line_in_process(capsys, tmp_path, server):
    settings = make_settings(tmp_path, server)
    fill(settings.database)
    damage_pages(settings.database)
    code, out, err = run_cli(capsys, "--config", str(write_config(tmp_path, server)), "corpus", "stats")
    assert code == 2 and "Traceback" not in err, err
    assert err.startswith(f"error: {settings.database}: the database failed:"), err


# ---- 8. a lock held by another process across a publishing time ------------------------------------------

USER = 4242
LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


@contextlib.contextmanager
def held_by_another_process(database: Path):
    """A second process holding the database's write lock until `release` (a line on its stdin)."""
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        yield locker
    finally:
        release(locker)


def release(locker: subprocess.Popen) -> None:
    if locker.poll() is None:
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(60)


def queue_and_ready(settings) -> tuple[int, int]:
    db = open_db(settings.database)
    try:
        queued = draft_rows.add_draft(db, text="ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ", model_version="v", temperature=0.8,
                                      seed=1, max_length=120, status="queued")
        ready = draft_rows.add_draft(db, text="ГОТОВЫЙ БУГУРТ\n@\nДЛЯ ПОДПИСЧИКА", model_version="v",
                                     temperature=0.8, seed=2, max_length=120, purpose=draft_rows.SUBSCRIBER,
                                     status="ready")
        return queued, ready
    finally:
        db.close()


def test_a_lock_across_a_publishing_time_freezes_no_handler_and_the_post_goes_out_on_release(
        tmp_path, server, caplog):
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 60.0},
                             pool={"channel_size": 1, "subscriber_size": 1})
    queued, _ = queue_and_ready(settings)

    def waiting(call: str) -> bool:
        return any(f"{call} waits up to" in r.getMessage() for r in caplog.records)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            with held_by_another_process(settings.database) as locker:
                publishing = asyncio.create_task(service.publish())   # the publishing time comes
                await until(lambda: waiting("set_state"))
                start = await reply_to(server, USER, "/start", user_id=USER)   # answered during the lock
                publish_still_waiting = not publishing.done()
                server.send_text("/generate", user_id=USER)
                await until(lambda: waiting("next_for_subscriber"))   # /generate waits like publishing does
                release(locker)
                await publishing
                meme = await until(lambda: [m for m in server.sent(USER) if "ГОТОВЫЙ БУГУРТ" in m["text"]])
            return start, publish_still_waiting, meme

    with caplog.at_level(logging.INFO):
        start, publish_still_waiting, meme = asyncio.run(main())
    assert start["text"] == texts.START and publish_still_waiting
    assert len(meme) == 1
    assert [m["text"] for m in server.sent(CHANNEL)] == [f"ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ\n\n#{queued}"]  # + the footer
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, queued)["status"] == "published"
    db.close()


def test_a_slot_that_found_the_lock_is_retried_within_minutes_and_generate_says_it_cannot(tmp_path, server):
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5},
                             pool={"channel_size": 1, "subscriber_size": 1})
    queued, ready = queue_and_ready(settings)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            service.publish_retry_seconds = 0.2   # the service: a minute
            service.start_schedule()
            with held_by_another_process(settings.database) as locker:
                published = await service.publish()   # gives up after the busy timeout: the slot is kept
                retry = service.scheduler.get_job("publish-retry")
                busy = await reply_to(server, USER, "/generate", user_id=USER)
                sent_during_lock = list(server.sent(CHANNEL))
                release(locker)
            posts = await until(lambda: server.sent(CHANNEL))   # without waiting for the next slot
            return published, retry, busy, sent_during_lock, posts

    published, retry, busy, sent_during_lock, posts = asyncio.run(main())
    assert published is None and retry is not None and sent_during_lock == []
    assert busy["text"] == texts.DATABASE_BUSY
    assert [m["text"] for m in posts] == [f"ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ\n\n#{queued}"]   # the retry keeps the footer
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, queued)["status"] == "published"
    assert draft_rows.get_draft(db, ready)["status"] == "ready"   # not served: the reply said so
    db.close()


def test_a_full_disk_at_a_publishing_time_defers_the_slot_and_generate_answers_politely(tmp_path, server,
                                                                                        monkeypatch, caplog):
    """SQLite's "database or disk is full" (the disk filled: every write is refused) ended the
    publishing job in a traceback, the slot lost until the next publishing time even once the
    operator freed space, and /generate got no answer at all. Now both are handled as a lock that
    outlasts the wait: the slot is tried again within minutes, /generate says it cannot now, and the
    log names the file and the full disk. Injected at sqlite_utils' execute, as test_a_full_disk_at_start_up."""

    settings = make_settings(tmp_path, server, pool={"channel_size": 1, "subscriber_size": 1})
    queued, ready = queue_and_ready(settings)
    disk = disk_fills_up(monkeypatch)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            service.publish_retry_seconds = 0.2   # the service: a minute
            service.start_schedule()
            disk.full = True   # the disk fills
            published = await service.publish()
            retry = service.scheduler.get_job("publish-retry")
            answer = await reply_to(server, USER, "/generate", user_id=USER)
            sent_while_full = list(server.sent(CHANNEL))
            disk.full = False   # the operator freed space
            posts = await until(lambda: server.sent(CHANNEL))   # without waiting for the next slot
            return published, retry, answer, sent_while_full, posts

    with caplog.at_level(logging.WARNING):
        published, retry, answer, sent_while_full, posts = asyncio.run(main())
    assert published is None and retry is not None and sent_while_full == []
    assert answer["text"] == texts.DATABASE_BUSY
    assert [m["text"] for m in posts] == [f"ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ\n\n#{queued}"]
    assert f"{settings.database}: the database failed: database or disk is full (the disk is full" in caplog.text
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, queued)["status"] == "published"
    assert draft_rows.get_draft(db, ready)["status"] == "ready"   # not served: the reply said so
    db.close()


def test_a_deferred_slot_retried_after_the_lock_leaves_a_destination_paused_meanwhile_alone(tmp_path, server):
    other = "@buhurt_second"
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5},
                             telegram={"channels": [CHANNEL, other]}, pool={"channel_size": 1, "subscriber_size": 1})
    queued, _ = queue_and_ready(settings)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            with held_by_another_process(settings.database):
                assert await service.publish() is None   # both destinations deferred
            deferred = set(service.publish_state.deferred)
            desk.pause(db, [f"telegram {other}"], by="@moderator")
            await service.retry_publishing()
            after_retry = (draft_rows.get_draft(db, queued)["status"], list(server.sent(other)))
            desk.resume(db, [f"telegram {other}"])
            await service.publish()
            return deferred, after_retry, draft_rows.get_draft(db, queued)["status"]

    deferred, after_retry, status = asyncio.run(main())
    assert deferred == {("telegram", CHANNEL), ("telegram", other)}
    assert [m["text"] for m in server.sent(CHANNEL)] == [f"ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ\n\n#{queued}"]
    assert after_retry == ("queued", [])   # paused meanwhile: the retry skips it, the draft waits for it
    assert [m["text"] for m in server.sent(other)] == [f"ПОСТ ПО РАСПИСАНИЮ\n@\nВ КАНАЛ\n\n#{queued}"]
    assert status == "published"


def test_pause_while_another_process_holds_the_database_is_a_polite_answer(tmp_path, server):
    """A moderator's /pause during a backup that outlasts the busy timeout: "busy, nothing changed",
    not the error report; once the lock is gone the same /pause works."""
    from tests.fakes.telegram_app import MODERATOR

    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})

    async def main():
        async with bot_running(settings) as app:
            with held_by_another_process(settings.database) as locker:
                busy = await reply_to(server, MODERATORS_CHAT, "/pause", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
                release(locker)
            done = await reply_to(server, MODERATORS_CHAT, "/pause", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            return busy, done, desk.paused(app.bot_data.db)

    busy, done, paused = asyncio.run(main())
    assert busy["text"] == texts.DESK_BUSY
    assert done["text"].startswith(texts.PAUSE_DONE.split("{")[0]) and paused


def test_a_backup_restored_over_a_database_whose_wal_a_killed_process_left_is_refused_not_damaged(tmp_path):
    """The bot killed with pages still in its WAL, then a backup copied over the database (the
    emptied-database line said only that): SQLite replayed the old WAL into the copy, whose pages
    then mixed two databases (quick_check: btreeInitPage errors)."""
    from corpus.backup import backup_database
    from corpus.db import emptied_error, quick_check

    live, backup = tmp_path / "buhurt.sqlite3", tmp_path / "backups" / "buhurt-20250101-000000.sqlite3"
    open_db(live).close()
    backup_database(live, backup)
    writer = sqlite3.connect(live)   # the running bot, killed later with its last pages in the WAL
    insert = ("INSERT INTO posts (source, community, external_id, text, text_hash, imported_at)"
              " VALUES ('vk', 'g', ?, ?, 'h', 'now')")
    writer.executemany(insert, [(str(i), "Х" * 3000) for i in range(300)])
    writer.commit()
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.executemany(insert, [(str(i), "У" * 3000) for i in range(300, 330)])
    writer.commit()
    wal = live.with_name(live.name + "-wal")
    left = wal.read_bytes()
    writer.close()
    wal.write_bytes(left)              # what SIGKILL leaves: the WAL, not checkpointed
    assert "-wal" in str(emptied_error(live, "is missing"))   # the restore the refusal describes

    shutil.copyfile(backup, live)      # the restore, with the -wal forgotten
    restored = live.read_bytes()
    with pytest.raises(CorpusError, match=r"buhurt.sqlite3-wal: left beside buhurt.sqlite3.*delete"):
        open_db(live)
    assert live.read_bytes() == restored and wal.read_bytes() == left
    wal.unlink()
    live.with_name(live.name + "-shm").unlink(missing_ok=True)
    db = open_db(live)
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    db.close()
    assert quick_check(live) == ""



@pytest.mark.parametrize("folder", ["bot #2", "data?old", "100%25 done"])
def test_a_data_folder_whose_name_holds_a_hash_a_question_mark_or_a_percent_is_backed_up_and_checked(
        capsys, tmp_path, folder):
    """The read-only connections of the backup, quick_check and doctor named the file in a SQLite URI
    ('file:<path>?mode=ro'): a '#' or '?' in the path cut it short, and `buhurt backup` said the
    database 'holds no tables ... restore the newest backup', doctor failed the database, and
    quick_check found nothing wrong with damaged pages."""
    from corpus.backup import backup_database
    from corpus.db import quick_check

    data = tmp_path / folder / "data"
    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{data}'\n[corpus]\nseed_with_sample = false\n", encoding="utf-8")
    fill(data / "buhurt.sqlite3", 300)
    code, out, err = run_cli(capsys, "--config", str(config), "backup", "-o", str(tmp_path / folder / "copy.sqlite3"))
    assert code == 0 and "backed up" in out, err
    code, out, err = run_cli(capsys, "--config", str(config), "doctor", "--quick")
    assert "ok    database:" in out, out + err
    assert quick_check(data / "buhurt.sqlite3") == ""
    damage_pages(data / "buhurt.sqlite3")
    assert quick_check(data / "buhurt.sqlite3") != ""
    with pytest.raises(CorpusError, match="malformed|quick_check"):
        backup_database(data / "buhurt.sqlite3", tmp_path / "other.sqlite3")


def test_a_pool_run_on_a_full_disk_is_one_warning_naming_the_database_and_the_disk(tmp_path, server, monkeypatch,
                                                                                    caplog):
    """A pool run (and the /generate pool's refill) on a full disk generated its drafts, failed to
    store them and logged a traceback every 10 minutes. Now it is one WARNING line naming the
    database and the full disk, and the next run tries again. Injected as test_a_full_disk_at_a_publishing_time."""

    from bot.answers import refill_pool

    settings = make_settings(tmp_path, server, pool={"channel_size": 1, "subscriber_size": 1})
    disk = disk_fills_up(monkeypatch)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            disk.full = True   # the disk fills
            try:
                return await service.fill_pools(), await refill_pool(service)
            finally:
                monkeypatch.undo()

    with caplog.at_level(logging.WARNING):
        created, refilled = asyncio.run(main())
    assert created == [] and refilled == []
    said = [r for r in caplog.records if "disk is full" in r.getMessage()]
    assert len(said) == 2 and all(r.levelno == logging.WARNING and not r.exc_info for r in said), caplog.text
    assert all(str(settings.database) in r.getMessage() for r in said), caplog.text
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records), caplog.text


def test_queue_while_another_process_holds_the_database_is_a_polite_answer(tmp_path, server):
    """/queue moves the pending drafts' buttons to new messages (a write): during a backup that
    outlasts the busy timeout it ended in the error report, the new copy's buttons not recorded.
    Now "busy, nothing changed", as /pause, the copy without buttons (the old message keeps them);
    once the lock is gone /queue works."""
    from tests.fakes.telegram_app import MODERATOR

    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})
    db = open_db(settings.database)
    pending = draft_rows.add_draft(db, text="ЖДЁТ РЕШЕНИЯ\n@\nМОДЕРАТОРОВ", model_version="v", temperature=0.8,
                                   seed=1, max_length=120, status="pending")
    db.close()

    def shown() -> list[dict]:   # the draft's messages as they are now (after edits), oldest first
        chat = server.chat(MODERATORS_CHAT)["id"]
        return [m for (c, _), m in sorted(server.messages.items()) if c == chat and "ЖДЁТ РЕШЕНИЯ" in m["text"]]

    async def main():
        async with bot_running(settings) as app:
            with held_by_another_process(settings.database) as locker:
                server.send_text("/queue", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
                busy = await until(lambda: [m for m in server.sent(MODERATORS_CHAT) if m["text"] == texts.DESK_BUSY])
                during = list(server.sent(MODERATORS_CHAT))
                release(locker)
            before = draft_rows.get_draft(app.bot_data.db, pending)["moderation_message_id"]
            count = len(shown())
            server.send_text("/queue", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            await until(lambda: len(shown()) > count)
            await settled(server, app)   # the copy's message id is recorded after Telegram answered its send
            return busy, during, before, shown(), draft_rows.get_draft(app.bot_data.db, pending)

    busy, during, before, copies, draft = asyncio.run(main())
    assert busy and not [m for m in during if m["text"].startswith(texts.ERROR_REPORT.split("{")[0])]
    assert before is None and not copies[0].get("reply_markup")   # the copy from the lock: no buttons
    assert str(draft["moderation_message_id"]) == str(copies[-1]["message_id"]) and copies[-1].get("reply_markup")


def test_a_reaction_count_while_another_process_holds_the_database_is_one_warning_not_an_error_report(
        tmp_path, server, caplog):
    """A channel post's reaction count pushed while `buhurt corpus clean` (or a backup) holds the
    database past paths.busy_timeout_seconds: the error handler reported it in the moderators' chat
    ('⚠️ ...', with a traceback in the log) at every count Telegram pushed; now one WARNING line, and
    the next count is stored once the lock is gone."""
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})
    report = texts.ERROR_REPORT.split(":")[0]

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "reaction" in r.getMessage()]

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            draft_rows.add_draft(db, text="ПОСТ\n@\nС РЕАКЦИЯМИ", model_version="v", temperature=0.8, seed=1,
                                 max_length=120, status="queued")
            published = await app.bot_data.service.publish()
            (publication,) = pubs.publications_of(db, published["id"])
            message_id = int(publication["message_id"])
            with held_by_another_process(settings.database) as locker:
                server.reaction_count(CHANNEL, message_id, {"👍": 3})
                await until(lambda: warned() or any(report in m["text"] for m in server.sent(MODERATORS_CHAT)))
                release(locker)
            server.reaction_count(CHANNEL, message_id, {"👍": 4})
            await until(lambda: db.execute("SELECT count(*) FROM reactions").fetchone()[0] == 1)
            return db.execute("SELECT count FROM reactions").fetchone()[0]

    with caplog.at_level(logging.INFO):
        stored = asyncio.run(main())
    assert not any(report in m["text"] for m in server.sent(MODERATORS_CHAT))
    (warning,) = warned()
    assert f"telegram {CHANNEL}" in warning and "locked" in warning and str(settings.database) in warning
    assert stored == 4 and "Traceback" not in caplog.text


def test_queue_buttons_while_another_process_holds_the_database_are_answered_politely(tmp_path, server):
    """↩️ and 🚀 under an approved draft's /queue message during a backup that outlasts the busy
    timeout: ↩️'s write (and 🚀's audit line) met the lock unguarded, so the press stayed unanswered
    and the chat got the error report. Now "busy, nothing changed" (🚀: not sent, the database is
    busy); once the lock is gone both act."""
    from tests.fakes.telegram_app import MODERATOR, button_data, press, settled

    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})
    db = open_db(settings.database)
    queued = draft_rows.add_draft(db, text="ОДОБРЕН\n@\nЖДЁТ СЛОТА", model_version="v", temperature=0.8,
                                  seed=1, max_length=120, status="queued")
    db.close()

    async def main():
        async with bot_running(settings) as app:
            header, item = await _replies(server, "/queue", 2)
            with held_by_another_process(settings.database) as locker:
                back = await press(server, button_data(item, texts.BUTTON_UNAPPROVE), user_id=MODERATOR, message=item)
                now = await press(server, button_data(item, texts.BUTTON_NOW), user_id=MODERATOR, message=item)
                await settled(server, app)
                during = [m["text"] for m in server.sent(MODERATORS_CHAT)]
                release(locker)
            still = draft_rows.get_draft(app.bot_data.db, queued)["status"]
            after = await press(server, button_data(item, texts.BUTTON_UNAPPROVE), user_id=MODERATOR, message=item)
            return back, now, during, still, after, draft_rows.get_draft(app.bot_data.db, queued)["status"]

    back, now, during, still, after, status = asyncio.run(main())
    assert back["text"] == texts.DESK_BUSY
    assert now["text"] == texts.ANSWER_NOT_SENT.format(where=f"telegram {CHANNEL}", why=texts.NOT_SENT_WHY["busy"])
    assert not [t for t in during if t.startswith(texts.ERROR_REPORT.split("{")[0])], during
    assert still == "queued" and server.sent(CHANNEL) == []
    assert after["text"] == texts.ANSWER_UNAPPROVED and status == "pending"


async def _replies(server, text: str, count: int) -> list[dict]:
    """Send `text` in the moderators' chat and wait for the bot's next `count` messages there."""
    from tests.fakes.telegram_app import MODERATOR

    def shown() -> list[dict]:   # the bot's messages there, oldest first, as they are now
        chat = server.chat(MODERATORS_CHAT)["id"]
        return [m for (c, _), m in sorted(server.messages.items()) if c == chat]

    before = len(shown())
    server.send_text(text, user_id=MODERATOR, chat_id=MODERATORS_CHAT)
    sent = await until(lambda: len(shown()) >= before + count and shown())
    return sent[before:before + count]


def test_votes_edits_and_reject_while_another_process_holds_the_database_are_answered_politely(tmp_path, server):
    """A draft's ✅, an edit by reply and "/reject REASON" during a backup that outlasts the busy
    timeout: the vote's write gave up (DatabaseBusy) into the error handler, the press unanswered
    and '⚠️ Ошибка в боте: DatabaseBusy ...' in the chat. Now each is answered that the database is
    busy and nothing changed; once the lock is gone the same press decides the draft."""
    from tests.fakes.telegram_app import MODERATOR, draft_message, one_shown, press, settled

    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})

    async def main():
        async with bot_running(settings) as app:
            db, draft_id, message = await one_shown(server, app)
            answered = len(server.calls_of("answerCallbackQuery"))
            with held_by_another_process(settings.database) as locker:
                server.press(f"d:a:{draft_id}", user_id=MODERATOR, message=message)
                server.send_text("ПРИХОДИШЬ НА РАБОТУ 0\n@\nТАМ СУББОТА", user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                                 reply_to=message)
                server.send_text("/reject скучно", user_id=MODERATOR, chat_id=MODERATORS_CHAT, reply_to=message)
                await settled(server, app)
                answers = [c.params.get("text") for c in server.calls_of("answerCallbackQuery")[answered:]]
                during = [m["text"] for m in server.sent(MODERATORS_CHAT)]
                release(locker)
            still = draft_rows.get_draft(db, draft_id)["status"]
            shown = draft_message(server, db, draft_id)
            done = await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=shown)
            return answers, during, still, done, draft_rows.get_draft(db, draft_id)["status"]

    answers, during, still, done, status = asyncio.run(main())
    assert answers == [texts.DESK_BUSY]
    assert during.count(texts.DESK_BUSY) == 2, during   # the edit's and /reject's replies
    assert not [t for t in during if t.startswith(texts.ERROR_REPORT.split("{")[0])], during
    assert still == "pending" and done["text"] == texts.ANSWER_DONE and status == "queued"


def test_a_moderator_on_a_full_disk_is_told_the_disk_is_full_not_to_try_in_a_minute(tmp_path, server, monkeypatch):
    """A ✅ or /pause while the disk is full ('database or disk is full': every write refused) was
    answered 'База данных сейчас занята (резервная копия или ночное обучение) ... Попробуйте через
    минуту': the moderators pressed again and again while nothing would change until someone freed
    space. They are told the disk is full, nothing changed, and to have space freed."""

    from tests.fakes.telegram_app import MODERATOR, draft_message, press

    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    pending = draft_rows.add_draft(db, text="ЖДЁТ РЕШЕНИЯ\n@\nМОДЕРАТОРОВ", model_version="v", temperature=0.8,
                                   seed=1, max_length=120, status="pending")
    db.close()
    disk = disk_fills_up(monkeypatch)

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.dispatch_moderation()
            shown = draft_message(server, app.bot_data.db, pending)
            disk.full = True
            answer = await press(server, f"d:a:{pending}", user_id=MODERATOR, message=shown)
            paused = await reply_to(server, MODERATORS_CHAT, "/pause", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            disk.full = False
            return answer["text"], paused["text"], draft_rows.get_draft(app.bot_data.db, pending)["status"]

    answer, paused, status = asyncio.run(main())
    assert answer == paused == texts.DESK_DISK_FULL
    assert "через минуту" not in answer and status == "pending"
