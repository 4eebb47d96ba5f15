"""`buhurt corpus import FILE`: a text file of posts separated by blank lines, into the database,
streamed (one post and one batch of rows in memory at a time)."""
from __future__ import annotations

from pathlib import Path

import sqlite_utils

from corpus.inputs import DEFAULT_MAX_MB
from corpus.store.posts import add_posts
from corpus.textfile import iter_posts


def import_text_file(db: sqlite_utils.Database, path: str | Path, *, community: str | None = None,
                     max_mb: float = DEFAULT_MAX_MB) -> tuple[int, int]:
    """Import every post of `path`. Importing the same file twice adds nothing (posts are keyed by
    the hash of their text). Returns (added, already_present)."""
    path = Path(path)
    name = community if community is not None else path.name
    seen = 0

    def rows():
        nonlocal seen
        for post in iter_posts(path, max_mb):
            seen += 1
            yield {"source": "file", "community": name, "text": post}

    added, _ = add_posts(db, rows())
    return added, seen - added
