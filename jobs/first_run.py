"""What a fresh install starts from: the bundled sample corpus when the corpus is empty (the model:
jobs.model_registry.activate_bundled, or a first one trained by jobs.retrain.bootstrap)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from corpus.importer import SAMPLE_COMMUNITY, import_text_file
from corpus.store.posts import count_posts, kept_clean_count


def seed_empty_corpus(db: sqlite_utils.Database, sample: Path) -> int:
    """A fresh install's corpus: the posts of `sample` when the corpus is empty. Returns how many
    were added (0 when the corpus already had posts)."""
    if count_posts(db) != 0:
        return 0
    added, _ = import_text_file(db, sample, community=SAMPLE_COMMUNITY)
    return added


def training_posts(db: sqlite_utils.Database) -> int:
    """The posts a first model would train on: kept by cleaning (`buhurt doctor` counts them)."""
    return kept_clean_count(db)


@dataclass
class FirstTraining:
    """The first model on the operator's corpus, trained while the service already runs on the
    bundled model (jobs.service.Service.start_first_training). `train(stop)` is blocking (a worker
    thread runs it; the training itself is a child process): it trains, makes the model active and
    returns its version, and gives up early, raising, once `stop` is set."""

    train: Callable[[threading.Event], str]
    minutes: float
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> str:
        return self.train(self.stop)
