"""`buhurt corpus import FILE`: a text file of posts separated by blank lines, into the database,
streamed (one post and one batch of rows in memory at a time)."""
from __future__ import annotations

from pathlib import Path

import sqlite_utils

from corpus.errors import CorpusError
from corpus.inputs import DEFAULT_MAX_MB
from corpus.store.posts import add_posts, delete_community, holds_only
from corpus.textfile import iter_posts

SAMPLE_SOURCE, SAMPLE_COMMUNITY = "file", "sample"   # how the bundled sample corpus is stored


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

    added = add_posts(db, rows()).added
    return added, seen - added


def check_label(path: str | Path, community: str | None) -> None:
    """CorpusError when the operator's import would be stored under the bundled sample's label (a
    file named `sample`, or --community sample): its posts would be taken for the sample and removed
    as soon as the corpus holds others (drop_sample_after_import), right after the import itself."""
    name = community if community is not None else Path(path).name
    if name == SAMPLE_COMMUNITY:
        shown = "--community sample" if community is not None else f"{path} (its name is the default label)"
        raise CorpusError(f"{shown}: {SAMPLE_COMMUNITY!r} is the label of the bundled sample corpus, whose posts"
                          " are removed once the corpus holds others: choose another --community")


def holds_only_the_sample(db: sqlite_utils.Database) -> bool:
    """Whether every post of the corpus is of the bundled sample (a fresh install's seed)."""
    return holds_only(db, SAMPLE_SOURCE, SAMPLE_COMMUNITY)


def drop_sample_after_import(db: sqlite_utils.Database) -> int:
    """After the operator's own posts were imported: remove the bundled sample's posts when the
    corpus holds others too, so they never mix with a real community's (also when an earlier import
    was killed after its posts were stored but before this ran). Returns how many were removed (0
    when nothing of the operator's came, or the sample was gone already)."""
    if holds_only_the_sample(db):
        return 0
    return delete_community(db, SAMPLE_SOURCE, SAMPLE_COMMUNITY)


def sample_removed_line(removed: int) -> str:
    return (f"removed the {removed} posts of the bundled sample corpus: the corpus held only the sample,"
            " and your own posts replace it")
