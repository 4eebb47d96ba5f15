"""The scrape job (jobs/scrape.py) against the fake VK API: what it stores and what it logs."""
from __future__ import annotations

import logging
import sqlite3

import requests

from corpus.rules import CleanOptions
from corpus.stoplist import StopList
from jobs.scrape import scrape_new_posts
from bot.config_sections import VkSettings
from bot.secrets import Secret
from tests.fakes.fake_vk import GOOD_TOKEN, FakeVk, FakeWall


def test_a_deleted_community_listed_first_in_vk_groups_no_longer_stops_the_scrape_of_the_others(
        db, monkeypatch, caplog):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(40)
    monkeypatch.setattr(requests, "Session", FakeVk(wall).session)
    settings = VkSettings(token=Secret(GOOD_TOKEN), groups=["gone_group", "bugurt_test"], requests_per_second=1000.0)
    caplog.set_level(logging.INFO)
    database = db.execute("PRAGMA database_list").fetchone()[2]
    report = scrape_new_posts(database, settings, CleanOptions(), StopList([], []), busy_timeout=5.0)
    assert report is not None and report.added == 40
    assert db.execute("SELECT count(*) FROM posts WHERE community = 'bugurt_test'").fetchone()[0] == 40
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    (warning,) = warnings
    assert warning.startswith("VK scrape: a community of vk.groups was not read: unknown VK community 'gone_group'")


def test_a_scrape_that_meets_the_database_locked_by_another_process_is_one_warning_not_a_traceback(
        db, monkeypatch, caplog):
    """A `buhurt corpus clean` or `import` holding the database past paths.busy_timeout_seconds while
    the scrape job stored a batch: sqlite3's 'database is locked' left the job with a traceback
    (APScheduler's 'Job raised an exception'); now one WARNING naming the file, the next run retries."""
    wall = FakeWall(42, "bugurt_test")
    wall.generate(40)
    monkeypatch.setattr(requests, "Session", FakeVk(wall).session)
    settings = VkSettings(token=Secret(GOOD_TOKEN), groups=["bugurt_test"], requests_per_second=1000.0)
    database = db.execute("PRAGMA database_list").fetchone()[2]
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")   # another process's write transaction, held throughout
    try:
        report = scrape_new_posts(database, settings, CleanOptions(), StopList([], []), busy_timeout=0.0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert report is None
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("VK scrape stopped: ") and database in warning and "locked" in warning
    assert "\n" not in warning
    assert scrape_new_posts(database, settings, CleanOptions(), StopList([], []), busy_timeout=5.0).added == 40
