"""Apply the cleaning rules (corpus/rules.py, corpus/signatures.py, corpus/dedupe.py) to the database.

When cleaning runs: `buhurt corpus clean` re-cleans every post (rules may have changed);
`corpus import`, `import-telegram` and `scrape` clean only the posts they added (`only_new`):
signatures are learned again from all of the community's posts (a streamed count of first and
last lines), and the new posts are compared with the kept corpus for duplicates through a compact
index (MinHash signatures; texts read back from the database only for candidates). Posts cleaned
earlier keep their decision until the next `buhurt corpus clean`. `export_training_text` first
cleans when any post was never cleaned, so `import` -> `export` always trains on cleaned text.

Hook point: `clean_corpus` returns the ids it decided on (`CleanReport.cleaned_ids`), so code that
keeps its own index of the corpus (a near-copy screen, say) can follow the new posts.
"""
from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlite_utils

from corpus.db import write_transaction
from corpus.dedupe import find_duplicates
from corpus.rules import REASONS, CleanOptions, clean_post, prepare
from corpus.signatures import SignatureLearner, Signatures
from corpus.store.decisions import Decisions
from corpus.store.posts import (
    community_texts, generated_texts, kept_clean_count, kept_clean_texts, post_clean_text, posts_for_cleaning,
    set_cleaning, uncleaned_communities, uncleaned_count,
)

STRIPPED = ("signature", "learned_signature", "editor_note", "hashtag_lines")
WRITE_SLICE = 5000


@dataclass
class CleanReport:
    total: int = 0
    kept: int = 0
    excluded: Counter = field(default_factory=Counter)
    stripped: Counter = field(default_factory=Counter)
    signatures: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    cleaned_ids: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report printed by `buhurt corpus clean --report`: counts per rule, then the learned
        signatures of each community with the number of posts they were found in."""
        out = [f"posts: {self.total}", f"kept: {self.kept}", "excluded by rule:"]
        for reason in REASONS:
            out.append(f"  {reason:<18}{self.excluded.get(reason, 0)}")
        out.append("stripped (post kept or not):")
        for part in STRIPPED:
            out.append(f"  {part:<18}{self.stripped.get(part, 0)}")
        out.append("learned signatures (where, posts, line as compared):")
        if not any(self.signatures.values()):
            out.append("  none")
        for community, rows in sorted(self.signatures.items()):
            for where, key, count in rows:
                out.append(f"  [{community}] {where:<5} {count:>6}  {key}")
        return out


def learn_signatures(db: sqlite_utils.Database, community: str, options: CleanOptions) -> Signatures:
    """The community's signatures, learned from all of its posts (streamed), with the operator's
    `clean.signatures` patterns and `clean.keep_lines`."""
    learner = SignatureLearner()
    if options.learn_signatures:
        for text in community_texts(db, community):
            learner.add(prepare(text or "", options)[0])
    return learner.signatures(min_posts=options.signature_min_posts, min_share=options.signature_min_share,
                              patterns=options.signatures, keep=options.keep_lines)


def clean_corpus(db: sqlite_utils.Database, options: CleanOptions | None = None, stoplist=None, *,
                 only_new: bool = False) -> CleanReport:
    """Clean every post (or, with `only_new`, the posts never cleaned) and store posts.clean_text /
    posts.excluded_reason in one transaction. Until that write, the decisions wait in a TEMP table
    (corpus/store/decisions.py), so memory does not grow with the number of posts."""
    options = options or CleanOptions()
    communities = uncleaned_communities(db) if only_new else None
    report = CleanReport()
    with Decisions(db) as decisions:
        kept = _apply_post_rules(db, options, stoplist, decisions, report, only_new=only_new)
        report.total = decisions.count
        if options.enabled and decisions.count:
            decisions.set_reasons(_duplicate_pass(db, options, decisions, kept, only_new=only_new))
        report.excluded.update(decisions.reason_counts())
        report.kept = report.total - sum(report.excluded.values())
        report.cleaned_ids = decisions.post_ids()
        with write_transaction(db):  # one transaction, in slices (the near-copy hook reads each slice's old texts)
            for results in decisions.slices(WRITE_SLICE):
                set_cleaning(db, results)
    if communities is not None:
        report.signatures = {c: report.signatures.get(c, []) for c in communities}
    return report


def _apply_post_rules(db: sqlite_utils.Database, options: CleanOptions, stoplist, decisions: Decisions,
                      report: CleanReport, *, only_new: bool) -> array:
    """The per-post rules over every post to clean, streamed into `decisions`; learns each
    community's signatures on first sight. Returns the seqs of the posts kept so far."""
    signatures: dict[str, Signatures] = {}
    kept = array("q")
    for row in posts_for_cleaning(db, only_new=only_new):
        community = row["community"] or ""
        if community not in signatures:
            signatures[community] = learn_signatures(db, community, options) if options.enabled else Signatures()
            report.signatures[community] = signatures[community].lines()
        clean, reason, stripped = clean_post(row, options, stoplist, signatures[community])
        report.stripped.update(stripped)
        seq = decisions.add(row["id"], clean, reason)
        if reason is None:
            kept.append(seq)
    return kept


def _duplicate_pass(db: sqlite_utils.Database, options: CleanOptions, decisions: Decisions, kept: array, *,
                    only_new: bool) -> dict[int, str]:
    """seq -> reason of the kept posts that duplicate an earlier one or the bot's own output.
    With `only_new`, the corpus kept before is compared against (never dropped); every text is
    streamed from the database and read back by id only when it is a candidate."""
    prior_ids = array("q")
    prior: Iterable[str] = ()
    if only_new:
        def prior_texts() -> Iterator[str]:
            for post_id, text in kept_clean_texts(db):
                prior_ids.append(post_id)
                yield text
        prior = _Sized(kept_clean_count(db), prior_texts())
    drops = find_duplicates(
        _Sized(len(kept), decisions.kept_texts()), text_at=lambda k: decisions.clean_text(kept[k]),
        references=generated_texts(db) if options.drop_generated else [], exact=options.drop_duplicates,
        near=options.drop_near_duplicates, threshold=options.near_duplicate_threshold,
        prior=prior, prior_text=lambda k: post_clean_text(db, prior_ids[k]),
    )
    return {kept[k]: reason for k, reason in drops.items()}


class _Sized:
    """A stream with a known length (find_duplicates sizes its index from it)."""

    def __init__(self, length: int, items: Iterator[str]) -> None:
        self.length, self.items = length, items

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[str]:
        return self.items


def clean_if_needed(db: sqlite_utils.Database, options: CleanOptions | None = None,
                    stoplist=None) -> CleanReport | None:
    """Clean the posts never cleaned; None when every post was."""
    if uncleaned_count(db) == 0:
        return None
    return clean_corpus(db, options, stoplist, only_new=True)
