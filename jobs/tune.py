"""`buhurt tune`: the sampling temperature chosen from data, stored with the model version.

At each temperature of a grid, K posts (seeds 1..K, so the table is reproducible) go through the
product's own path: the holder's decoding (known words by default), the pool's measures and its
screen. The score of a temperature is

    (share of candidates passing the screen) x (distinct corpus word pairs among them per candidate)

A word pair is two adjacent words of a line (compared without case, ё = е); a pair counts only when
the corpus uses it too and only once however many drafts repeat it. So neither soup nor copies win:
soup (invented words, posts cut at the cap) fails the screen, and word salad made of known words
makes pairs the corpus never used, which count nothing; copies of corpus posts fail the screen
(exact and >= 60-character near-copies), and a model repeating its favourite post at a low
temperature makes the same pairs again, which count once.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import sqlite_utils

from common.text import fold
from corpus.stoplist import StopList
from corpus.store.model_versions import metrics_json, set_metrics_json
from corpus.store.posts import kept_clean_texts
from jobs.generator import GeneratorHolder
from jobs.pool import SCREEN, ScreenOptions, measure, screen
from model.sample_options import DEFAULT_TEMPERATURE, SampleOptions, resolved_temperature
from model.words import words_of

log = logging.getLogger(__name__)

TEMPERATURES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
DEFAULT_K = 48
FALLBACK_TEMPERATURE = DEFAULT_TEMPERATURE  # `sample.temperature = "auto"` before a model was tuned
METRICS_KEY = "tuned"          # model_versions.metrics_json[METRICS_KEY]


def word_pairs(text: str) -> set[tuple[str, str]]:
    """Adjacent word pairs within each line, normalised."""
    pairs: set[tuple[str, str]] = set()
    for line in text.split("\n"):
        ws = [fold(w) for w in words_of(line)]
        pairs.update(zip(ws, ws[1:]))
    return pairs


def corpus_word_pairs(db: sqlite_utils.Database) -> set[tuple[str, str]]:
    """The word pairs of the training corpus (posts kept by cleaning)."""
    pairs: set[tuple[str, str]] = set()
    for _, text in kept_clean_texts(db):
        pairs |= word_pairs(text)
    return pairs


@dataclass(frozen=True)
class TuneRow:
    temperature: float
    candidates: int
    passed: int
    known_share: float        # word-weighted, over all candidates
    reached_gap: float        # share of candidates ending at the post gap
    corpus_pairs: int         # distinct corpus word pairs among the passing drafts
    score: float

    @property
    def pass_share(self) -> float:
        return self.passed / self.candidates if self.candidates else 0.0


@dataclass(frozen=True)
class TuneResult:
    temperature: float
    rows: tuple[TuneRow, ...]
    k: int
    decoding: str

    def lines(self) -> list[str]:
        out = [f"{'T':>5} {'pass':>6} {'known':>6} {'gap':>5} {'corpus pairs':>13} {'score':>7}"]
        for r in self.rows:
            mark = "  <- best" if r.temperature == self.temperature else ""
            out.append(f"{r.temperature:>5.2f} {r.pass_share:>6.0%} {r.known_share:>6.1%} {r.reached_gap:>5.0%} "
                       f"{r.corpus_pairs:>13} {r.score:>7.2f}{mark}")
        out.append(f"temperature: {self.temperature} ({self.k} posts per temperature, decoding {self.decoding})")
        return out

    def as_metrics(self) -> dict:
        return {"temperature": self.temperature, "k": self.k, "decoding": self.decoding,
                "rows": [{**asdict(r), "pass_share": r.pass_share} for r in self.rows]}


def sample_grid(holder: GeneratorHolder, *, options: SampleOptions, k: int = DEFAULT_K,
                temperatures=TEMPERATURES, progress: Callable[[int], object] | None = None) -> dict:
    """{temperature: [Sample]} of seeds 1..k; no database use, so it may run in a worker thread.
    `progress(n)` is called with the number of posts made after each temperature."""
    if k <= 0:
        raise ValueError(f"k={k}: expected a positive number of posts")
    seeds = list(range(1, k + 1))
    grid = {}
    for t in temperatures:
        grid[float(t)] = holder.generate_samples(seeds, options.request(temperature=float(t)))[1]
        if progress is not None:
            progress(k)
    return grid


def score_grid(db: sqlite_utils.Database, grid: dict, stoplist: StopList, *, options: SampleOptions,
               screening: ScreenOptions = SCREEN, corpus_pairs: set | None = None) -> TuneResult:
    """Measure and screen `sample_grid`'s posts (on the database's thread) and pick the temperature."""
    known_pairs = corpus_word_pairs(db) if corpus_pairs is None else corpus_pairs
    rows = []
    for t, samples in grid.items():
        passed, pairs, known, word_count = 0, set(), 0.0, 0
        for s in samples:
            m = measure(db, s.text, s, options.decoding.name)
            if s.known_share is not None:
                known += s.known_share * s.word_count
                word_count += s.word_count
            if screen(db, s.text, stoplist, m, screening=screening) is None:
                passed += 1
                pairs |= word_pairs(s.text) & known_pairs
        share = passed / len(samples)
        rows.append(TuneRow(t, len(samples), passed, known / word_count if word_count else 0.0,
                            sum(s.reached_gap for s in samples) / len(samples), len(pairs),
                            round(share * len(pairs) / len(samples), 4)))
    best = max(rows, key=lambda r: (r.score, -r.temperature))   # ties: the cooler one
    k = len(next(iter(grid.values()))) if grid else 0
    return TuneResult(best.temperature, tuple(rows), k, options.decoding.name)


def tune(db: sqlite_utils.Database, holder: GeneratorHolder, stoplist: StopList, *, options: SampleOptions,
         k: int = DEFAULT_K, temperatures=TEMPERATURES, screening: ScreenOptions = SCREEN,
         corpus_pairs: set | None = None, progress: Callable[[int], object] | None = None) -> TuneResult:
    """Score each temperature (module docstring) with `holder` (jobs.generator.GeneratorHolder);
    `progress` as in `sample_grid`."""
    grid = sample_grid(holder, options=options, k=k, temperatures=temperatures, progress=progress)
    return score_grid(db, grid, stoplist, options=options, screening=screening, corpus_pairs=corpus_pairs)


def store_tuned(db: sqlite_utils.Database, version: str, result: TuneResult) -> None:
    """Keep the result in model_versions.metrics_json[METRICS_KEY] of `version`."""
    stored = metrics_json(db, version)
    if stored is None:
        raise LookupError(f"model version {version} is not registered")
    metrics = json.loads(stored)
    metrics[METRICS_KEY] = result.as_metrics()
    set_metrics_json(db, version, json.dumps(metrics, ensure_ascii=False))


def tuned_temperature(db: sqlite_utils.Database, version: str) -> float | None:
    stored = metrics_json(db, version)
    if stored is None:
        return None
    try:
        value = json.loads(stored).get(METRICS_KEY, {}).get("temperature")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def resolve_options(db: sqlite_utils.Database, version: str, options: SampleOptions) -> SampleOptions:
    """`options` with a temperature of "auto" replaced by the version's tuned one (else 0.8)."""
    if options.temperature != "auto":
        return options
    return replace(options, temperature=resolved_temperature("auto", tuned_temperature(db, version)))
