"""The scrape job: new posts from the configured VK walls, cleaned with the operator's rules. Runs
in a worker thread with its own connection (sqlite connections belong to their thread)."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from corpus.rules import CleanOptions
from corpus.cleaning import clean_corpus
from corpus.db import database_error, open_db
from corpus.errors import CorpusError
from corpus.importer import drop_sample_after_import, sample_removed_line
from corpus.stoplist import StopList
from corpus.vk import ScrapeReport, scrape_settings

log = logging.getLogger(__name__)


def scrape_new_posts(database: Path, vk_settings: Any, clean: CleanOptions, stoplist: StopList, *,
                     busy_timeout: float) -> ScrapeReport | None:
    """Scrape `vk_settings.groups` (a [vk] section) into `database` and clean the new posts. A
    refusal (captcha, token, rate limit) or the database failing (locked by another process past the
    busy timeout, a full disk) is one warning and None: the next run retries. A corpus that held only
    the bundled sample loses the sample's posts once the community's arrive."""
    db = open_db(database, busy_timeout=busy_timeout)
    try:
        return _scrape_and_clean(db, vk_settings, clean, stoplist)
    except sqlite3.Error as exc:   # what was stored before is kept (each batch is one transaction)
        log.warning("VK scrape stopped: %s; the next run tries again", database_error(database, exc))
        return None
    finally:
        db.close()


def _scrape_and_clean(db, vk_settings: Any, clean: CleanOptions, stoplist: StopList) -> ScrapeReport | None:
    try:
        report = scrape_settings(db, vk_settings, progress=False)
        clean_corpus(db, clean, stoplist, only_new=True)  # the new posts, operator rules
        log.info("VK scrape: %d new posts from %d walls (%d requests)", report.added, len(report.groups),
                 report.requests)
        for line in report.failed:   # read again at every run: the others are scraped meanwhile
            log.warning("VK scrape: a community of vk.groups was not read: %s", line)
        return report
    except CorpusError as exc:
        log.warning("VK scrape stopped: %s", exc)
        return None
    finally:   # also after a scrape stopped part-way: what it stored is the operator's
        removed = drop_sample_after_import(db)
        if removed:
            log.info("%s", sample_removed_line(removed))
