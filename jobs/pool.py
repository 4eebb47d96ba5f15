"""The pool's pieces: a generated draft's measures, the screen, the score that ranks what passed,
and `store_generated`, which stores a batch as drafts with all of them (jobs/drafting.py puts them
together for the pools, /generate and a moderator's replacement; jobs/rating.py for the rating pool)."""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from typing import Protocol

import sqlite_utils

from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store.posts import has_text
from corpus.store.shingles import longest_shared_run
from jobs.ranker import learned_ranker
from model.sample_options import Decoding, SampleRequest


def new_seeds(n: int) -> list[int]:
    return [secrets.randbelow(2**31 - 1) + 1 for _ in range(n)]


MIN_KNOWN_WORDS = 0.9   # screen.min_known_words
MIN_GRAMMAR = 0.75      # screen.min_grammar (why: docs/defaults.md)
NEAR_COPY_CHARS = 60    # a draft sharing this many characters verbatim with a corpus post is a copy


class Sample(Protocol):
    """A generated post with the generator's measures of it (model.sample.Sample)."""

    @property
    def text(self) -> str: ...
    @property
    def reached_gap(self) -> bool: ...
    @property
    def logprob_nats_per_char(self) -> float: ...
    @property
    def known_share(self) -> float | None: ...
    @property
    def grammar(self) -> float | None: ...


@dataclass(frozen=True)
class PoolOptions:
    """[pool]: how many drafts wait, and how they are made."""

    channel_size: int = 5         # approved-or-pending drafts kept for the channel
    subscriber_size: int = 20     # ready posts kept for /generate
    batch_size: int = 16          # posts generated per batch
    oversample: int = 3           # candidates generated per draft kept (the best-scoring that pass the screen)

    def problems(self) -> dict[str, str]:
        problems = {}
        for key in ("channel_size", "subscriber_size"):
            if getattr(self, key) < 0:
                problems[key] = "an integer >= 0"
        if self.batch_size <= 0:
            problems["batch_size"] = "a positive integer (posts generated per batch)"
        if not 1 <= self.oversample <= 20:
            problems["oversample"] = "an integer from 1 to 20 (candidates generated per draft kept)"
        return problems


@dataclass(frozen=True)
class ScreenOptions:
    """[screen]: what a generated draft must reach besides the stop-list."""

    min_known_words: float = MIN_KNOWN_WORDS  # the least share of known words
    min_grammar: float = MIN_GRAMMAR          # the least share of lines whose words agree (model.grammar)

    def problems(self) -> dict[str, str]:
        problems = {}
        if not 0 <= self.min_known_words <= 1:
            problems["min_known_words"] = "a number from 0 to 1 (a share of words)"
        if not 0 <= self.min_grammar <= 1:
            problems["min_grammar"] = "a number from 0 to 1 (a share of lines)"
        return problems


SCREEN = ScreenOptions()


@dataclass(frozen=True)
class Measures:
    """A draft's measures, stored with it (drafts columns of the same names; NULL = not measured,
    as for drafts made before they existed)."""

    known_share: float | None = None       # share of its words that are known words
    reached_gap: bool | None = None        # ended at the post gap (False: cut at max_length)
    shared_chars: int | None = None        # longest run shared verbatim with a corpus post
    shared_post: int | None = None         # ... and that post's id (not stored: the reason names it)
    line_count: int | None = None          # lines other than the "@" separators
    logprob_per_char: float | None = None  # mean log-probability per character under the model (nats)
    grammar: float | None = None           # share of lines whose words agree (model.grammar)
    decoding: str | None = None            # how it was decoded (model.sample_options.Decoding.name)

    @classmethod
    def of_row(cls, row: dict) -> "Measures":
        reached = row.get("reached_gap")
        return cls(row.get("known_share"), None if reached is None else bool(reached), row.get("shared_chars"),
                   None, row.get("line_count"), row.get("logprob_per_char"), row.get("grammar"), row.get("decoding"))

    def columns(self) -> dict:
        return {"known_share": self.known_share,
                "reached_gap": None if self.reached_gap is None else int(self.reached_gap),
                "shared_chars": self.shared_chars, "line_count": self.line_count,
                "logprob_per_char": self.logprob_per_char, "grammar": self.grammar, "decoding": self.decoding,
                "score": score(self)}


def content_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and line.strip() != "@"]


def measure(db: sqlite_utils.Database, text: str, sample: Sample | None = None,
            decoding: str | None = None) -> Measures:
    """The draft's measures: its own (lines, the near-copy index's longest shared run) and the
    generator's (`sample`: known-word share, grammar, reached the gap, log-probability), when it gave them."""
    shared, post_id = longest_shared_run(db, text)
    reached = getattr(sample, "reached_gap", None)
    return Measures(
        known_share=getattr(sample, "known_share", None), reached_gap=None if reached is None else bool(reached),
        shared_chars=shared, shared_post=post_id, line_count=len(content_lines(text)),
        logprob_per_char=getattr(sample, "logprob_nats_per_char", None), grammar=getattr(sample, "grammar", None),
        decoding=decoding,
    )


def score(m: Measures) -> float | None:
    """How good a draft that passed the screen is; higher is better, None when unmeasured.

    The model's mean log-probability per character (nats, at temperature 1: how fluent the model
    finds its own text; per character, so long and short drafts compare), minus 2 per unit of
    unknown-word share (95% known words costs 0.1) and minus (shared run / 60)^2 (a 30-character
    run shared with a corpus post costs 0.25, one just under the 60-character copy limit almost 1):
    fluent, readable, and not leaning on the corpus; and minus 2 per unit of the share of lines
    with an agreement error (one bad line in five costs 0.4). The screen has already removed what
    must not be published; the score only orders what may."""
    if m.logprob_per_char is None:
        return None
    value = m.logprob_per_char
    if m.known_share is not None:
        value -= 2.0 * (1.0 - m.known_share)
    if m.grammar is not None:
        value -= 2.0 * (1.0 - m.grammar)
    if m.shared_chars:
        value -= (min(m.shared_chars, NEAR_COPY_CHARS) / NEAR_COPY_CHARS) ** 2
    return round(value, 4)


def _content_reason(db: sqlite_utils.Database, text: str, stoplist: StopList, m: Measures) -> str | None:
    found = stoplist.match(text)
    if found:
        return f"stop-list: {found}"
    if has_text(db, text):
        return "copy of a corpus post"
    if m.shared_chars is not None and m.shared_chars >= NEAR_COPY_CHARS:
        return f"near-copy: {m.shared_chars} characters shared with corpus post {m.shared_post}"
    return None


def screen(db: sqlite_utils.Database, text: str, stoplist: StopList, measures: Measures | None = None, *,
           screening: ScreenOptions = SCREEN) -> str | None:
    """Why a generated text must not reach anyone, or None when it may. Rules on measures that
    are None (not measured) do not apply; the near-copy check measures the text when `measures`
    does not carry its shared run."""
    if len(content_lines(text)) < 2:
        return "too short"
    m = measures or Measures()
    if m.shared_chars is None:
        shared, post_id = longest_shared_run(db, text)
        m = replace(m, shared_chars=shared, shared_post=post_id)
    reason = _content_reason(db, text, stoplist, m)
    if reason:
        return reason
    if m.reached_gap is False:
        return "cut at the length cap"
    if m.known_share is not None and m.known_share < screening.min_known_words:
        return f"known words {m.known_share:.0%} < {screening.min_known_words:.0%}"
    if m.grammar is not None and m.grammar < screening.min_grammar:
        return f"grammar {m.grammar:.0%} of lines < {screening.min_grammar:.0%}"
    return None


def screen_edit(db: sqlite_utils.Database, text: str, stoplist: StopList) -> str | None:
    """Why a moderator's edit must not be published: the stop-list and copies of corpus posts
    (the model's measures do not apply to a person's text)."""
    shared, post_id = longest_shared_run(db, text)
    return _content_reason(db, text, stoplist, Measures(shared_chars=shared, shared_post=post_id))


def request_columns(request: SampleRequest) -> dict:
    """How a draft was sampled, as its drafts columns (jobs.drafting.Drafting.regenerate reads them back)."""
    return {"temperature": request.temperature, "max_length": request.max_length, "top_k": request.top_k,
            "start_text": request.start_text}


def stored_request(draft: dict) -> SampleRequest:
    """The request a draft was sampled with, from its columns (`request_columns`, drafts.decoding)."""
    return SampleRequest(draft["temperature"], draft["max_length"], draft["top_k"],
                         Decoding.parse(draft.get("decoding")), draft["start_text"])


def store_generated(
    db: sqlite_utils.Database, texts: list, seeds: list[int], *, version: str, request: SampleRequest,
    purpose: str, ok_status: str, stoplist: StopList, screening: ScreenOptions = SCREEN,
    auto_approve: bool = False, keep: int | None = None,
) -> list[int]:
    """Measure, screen and store generated posts (texts, or Samples carrying measures) as drafts;
    of those that pass, the `keep` best-scoring (all when None) get `ok_status`, the others are
    `rejected_auto` as outranked. Returns the kept ids, best first."""
    passed: list[tuple[float, int, int]] = []   # (-score, order, draft id)
    rank = learned_ranker(db)   # issue 24: None unless the ranker learned from decisions beat score()
    with db.atomic():
        for order, (seed, item) in enumerate(zip(seeds, texts)):
            sample = None if isinstance(item, str) else item
            text = item if sample is None else sample.text
            m = measure(db, text, sample, request.decoding.name)
            reason = screen(db, text, stoplist, m, screening=screening)
            learned = None if rank is None else rank(text, m.columns(), request.temperature)
            draft_id = draft_rows.add_draft(
                db, text=text, model_version=version, seed=seed, purpose=purpose,
                status=DraftStatus.REJECTED_AUTO if reason else ok_status, status_reason=reason,
                measures={**m.columns(), "ranker_score": learned}, **request_columns(request),
            )
            if reason:
                draft_rows.record_action(db, draft_id, "auto_reject", detail=reason)
                continue
            value = score(m) if learned is None else learned
            passed.append((-value if value is not None else math.inf, order, draft_id))
        passed.sort()
        kept = [draft_id for _, _, draft_id in passed[:keep]] if keep is not None else [p[2] for p in passed]
        for minus, _, draft_id in passed[len(kept):]:
            reason = "outranked" if minus == math.inf else f"outranked (score {-minus:.2f})"
            draft_rows.transition(db, draft_id, from_status=[ok_status], to_status=DraftStatus.REJECTED_AUTO,
                                  reason=reason)
            draft_rows.record_action(db, draft_id, "auto_reject", detail=reason)
        if auto_approve:
            for draft_id in kept:
                draft_rows.record_action(db, draft_id, "auto_approve", detail="no moderators configured")
    return kept
