"""`buhurt corpus import FILE`: a text file of posts separated by blank lines, into the database."""
from __future__ import annotations

from pathlib import Path

import sqlite_utils

from corpus.textfile import read_posts
from corpus.store.posts import add_posts


def import_text_file(db: sqlite_utils.Database, path: str | Path, *, community: str | None = None) -> tuple[int, int]:
    """Import every post of `path`. Importing the same file twice adds nothing (posts are keyed by
    the hash of their text). Returns (added, already_present)."""
    path = Path(path)
    posts = read_posts(path)
    name = community if community is not None else path.name
    added, _ = add_posts(db, ({"source": "file", "community": name, "text": post} for post in posts))
    return added, len(posts) - added
