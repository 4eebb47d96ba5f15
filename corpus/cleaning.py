"""Apply the cleaning rules (corpus/clean.py, corpus/dedupe.py) to the posts in the database.

When cleaning runs: `buhurt corpus clean` re-cleans every post (rules may have changed);
`corpus import`, `import-telegram` and `scrape` clean the whole corpus after adding posts; and
`export_training_text` first cleans when any post was never cleaned, so `import` -> `export` always
trains on cleaned text. Cleaning the whole corpus is cheap (~3 s for 6,300 posts) and keeps the
duplicate decisions consistent (the oldest post of a group is kept).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from corpus.clean import REASONS, CleanOptions, clean_post
from corpus.store.posts import generated_texts, posts_for_cleaning, set_cleaning, uncleaned_count


@dataclass
class CleanReport:
    total: int = 0
    kept: int = 0
    excluded: Counter = field(default_factory=Counter)
    stripped: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """The report printed by `buhurt corpus clean --report`: counts per rule."""
        out = [f"posts: {self.total}", f"kept: {self.kept}", "excluded by rule:"]
        for reason in REASONS:
            out.append(f"  {reason:<16}{self.excluded.get(reason, 0)}")
        out.append("stripped (post kept):")
        for part in ("signature", "hashtag_lines"):
            out.append(f"  {part:<16}{self.stripped.get(part, 0)}")
        return out


def clean_corpus(db: sqlite_utils.Database, options: CleanOptions | None = None, stoplist=None) -> CleanReport:
    """Clean every post and store posts.clean_text / posts.excluded_reason in one transaction."""
    from corpus.dedupe import find_duplicates  # numpy: only when cleaning

    options = options or CleanOptions()
    rows = posts_for_cleaning(db)
    report = CleanReport(total=len(rows))
    results: list[list] = []
    for row in rows:
        clean, reason, stripped = clean_post(row, options, stoplist)
        report.stripped.update(stripped)
        results.append([row["id"], clean, reason])
    if options.enabled:
        alive = [i for i, r in enumerate(results) if r[2] is None]
        references = generated_texts(db) if options.drop_generated else []
        drops = find_duplicates(
            [results[i][1] for i in alive], references=references, exact=options.drop_duplicates,
            near=options.drop_near_duplicates, threshold=options.near_duplicate_threshold,
        )
        for k, reason in drops.items():
            results[alive[k]][2] = reason
    for _, _, reason in results:
        if reason:
            report.excluded[reason] += 1
    report.kept = report.total - sum(report.excluded.values())
    set_cleaning(db, [tuple(r) for r in results])
    return report


def clean_if_needed(db: sqlite_utils.Database, options: CleanOptions | None = None, stoplist=None) -> CleanReport | None:
    """Clean the corpus when some post was never cleaned; None when everything was."""
    if uncleaned_count(db) == 0:
        return None
    return clean_corpus(db, options, stoplist)
