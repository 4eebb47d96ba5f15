"""Posts -> the training text: a seeded shuffle, posts separated by a blank-line gap, a manifest."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from corpus.cleaning import clean_if_needed
from corpus.errors import CorpusError
from corpus.outputs import atomic_write_text
from corpus.popularity import PopularityWeighting, weights
from corpus.store.posts import posts_with_metrics


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest_path: Path
    posts: int
    chars: int
    fingerprint: str


# most blank lines between posts: more is no clearer a post end, and a huge number (a typo, 10**9)
# made the text gap_lines characters per post and ended in MemoryError with a traceback
MAX_GAP_LINES = 100


def gap_separator(gap_lines: int) -> str:
    """The text between two posts: the end of the last line, then `gap_lines` blank lines."""
    if not 1 <= gap_lines <= MAX_GAP_LINES:
        raise CorpusError(f"corpus.gap_lines must be from 1 to {MAX_GAP_LINES}, got {gap_lines}")
    return "\n" * (gap_lines + 1)


def export_training_text(
    db: sqlite_utils.Database, output: str | Path, *, gap_lines: int = 1, seed: int = 1234,
    weighting: PopularityWeighting | None = None, clean=None, stoplist=None,
) -> ExportResult:
    """Write every trainable post to `output` in a deterministic shuffle (same posts + seed = same
    file), atomically, with `<output>.manifest.json` listing the post ids in order.

    Posts never cleaned are cleaned first (`clean`: corpus.rules.CleanOptions, `stoplist`:
    corpus.stoplist.StopList; defaults when None). With `weighting` enabled, the most liked posts
    of each community appear `weighting.copies` times (corpus/popularity.py)."""
    output = Path(output)
    if output.is_dir():
        raise CorpusError(f"{output}: is a directory, expected a file path for the training text")
    clean_if_needed(db, clean, stoplist)
    posts = posts_with_metrics(db)
    if not posts:
        raise CorpusError("the corpus is empty (or every post was excluded by cleaning): import posts first "
                          "(buhurt corpus import FILE) or see buhurt corpus clean --report")
    weighting = weighting or PopularityWeighting()
    copies = weights(posts, weighting)
    order = [post for post in posts for _ in range(copies.get(post["id"], 1))]
    random.Random(seed).shuffle(order)
    separator = gap_separator(gap_lines)
    text = separator.join(post["text"].strip() for post in order) + separator
    fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    manifest = {
        "fingerprint": fingerprint, "posts": len(order), "chars": len(text), "gap_lines": gap_lines,
        "seed": seed, "distinct_posts": len(posts),
        "weighting": {"enabled": bool(copies), "top_fraction": weighting.top_fraction, "copies": weighting.copies,
                      "normalise": weighting.normalise, "boosted_posts": len(copies)},
        "post_ids": [post["id"] for post in order],
    }
    manifest_path = output.with_name(output.name + ".manifest.json")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CorpusError(f"{output}: a file is in the way of its folder ({output.parent}), expected a folder"
                          " for the training text") from None
    except OSError as exc:
        raise CorpusError(f"{output.parent}: cannot create the folder for the training text"
                          f" ({exc.strerror or exc})") from None
    try:
        atomic_write_text(output, text)
        atomic_write_text(manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1))
    except OSError as exc:
        raise CorpusError(f"{output}: cannot write the training text ({exc.strerror or exc})") from None
    return ExportResult(output, manifest_path, len(order), len(text), fingerprint)

