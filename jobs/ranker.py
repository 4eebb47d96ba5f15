"""A draft ranker learned from the moderators and the audience (issue 24).

Every human decision on a channel draft is a label: approved as is (1), approved after an edit (1,
weighted down by the edit's share of the text), rejected or regenerated (0); an approval sent back
to pending (↩️) is none until the draft is decided again. A published draft's
weight grows with its reactions (per view, else over the channel's median, counted over its first
week: corpus/store/reactions.py) from 0.5x for the channel's least liked to 1.5x for its best.

`train` fits a logistic regression (scikit-learn) on FEATURES of the draft: its stored measures
and cheap text features. Adding a feature (a grammar measure column, say) is one line in FEATURES;
a value the draft lacks (NULL, older drafts) is the training mean. The ranker is checked on
decisions in time order: the decisions are cut into FOLDS + 1 consecutive slices, and for each k
a model trained on the first k slices ranks slice k + 1; its AUC (approved vs rejected) is set
against the hand-set score's (jobs.pool.score, stored as drafts.score) on the same slices. The
pool uses the learned ranker only when its mean AUC beats the hand-set one's by `min_gain` and
the lower end of its 99% interval (Hanley-McNeil over the tested decisions) is above both 0.5 and
the hand-set score's AUC, so random decisions do not replace the hand-set score; and only when the
tested decisions hold MIN_TESTED approved and MIN_TESTED rejected ones (on a handful the interval
means nothing: an AUC of 1.0 on 9 decisions has an error of 0). The fitted model
is stored as JSON in `state`.
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import sqlite_utils

from corpus.db import open_db
from corpus.store import drafts as draft_rows
from corpus.store.clock import utcnow
from corpus.popularity import channel_percentiles
from corpus.store.reactions import publication_counts
from corpus.store.state import get_state, set_state

log = logging.getLogger(__name__)

STATE_KEY = "ranker"    # state: the fitted ranker (JSON), its figures and whether the pool uses it
FOLDS = 5
LABELS = {"approve": 1, "edit": 1, "reject": 0, "regenerate": 0}
WORD = re.compile(r"[^\W\d_]+")
Z99 = 2.576            # the learned AUC's lower bound is of its 99% interval (random decisions rarely pass)
UNMEASURED = -1e9       # the hand-set score of a draft made before it existed: ranked last
MIN_TESTED = 10         # approved and rejected decisions each that the check must test before the ranker may win


@dataclass(frozen=True)
class RankerOptions:
    """[ranker]: when the nightly job trains the ranker, and what it must beat."""

    min_labels: int = 200     # decisions needed before the nightly job trains it
    min_gain: float = 0.02    # AUC the learned ranker must beat the hand-set score's by

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.min_labels < 20:
            problems["min_labels"] = "an integer >= 20 (decisions before the ranker is trained)"
        if not 0 <= self.min_gain < 0.5:
            problems["min_gain"] = "a number in [0, 0.5) (AUC points)"
        return problems


def _text(row: dict) -> str:
    return row.get("text") or ""


def _lines(row: dict) -> float:
    if row.get("line_count") is not None:
        return float(row["line_count"])
    return float(sum(1 for line in _text(row).splitlines() if line.strip() and line.strip() != "@"))


def repeated_words(text: str) -> float:
    """The share of a text's words that repeat an earlier word of it."""
    words = [w.lower() for w in WORD.findall(text)]
    return 1 - len(set(words)) / len(words) if words else 0.0


def _column(name: str) -> Callable[[dict], float | None]:
    return lambda row: None if row.get(name) is None else float(row[name])


@dataclass(frozen=True)
class Feature:
    name: str
    value: Callable[[dict], float | None]   # of a drafts row (text and measure columns); None: unknown


FEATURES: tuple[Feature, ...] = (
    Feature("chars", lambda row: float(len(_text(row)))),
    Feature("lines", _lines),
    Feature("lines_squared", lambda row: _lines(row) ** 2),   # a liked length in the middle, not at an end
    Feature("repeated_words", lambda row: repeated_words(_text(row))),
    Feature("logprob_per_char", _column("logprob_per_char")),
    Feature("temperature", _column("temperature")),
    Feature("known_share", _column("known_share")),
    Feature("shared_chars", _column("shared_chars")),
    Feature("grammar", _column("grammar")),   # the share of lines whose words agree (model.grammar, m004)
)


def feature_row(row: dict) -> list[float | None]:
    return [f.value(row) for f in FEATURES]


@dataclass
class Labels:
    """Decisions in time order: feature rows, labels, weights, the hand-set score (None: unmeasured)."""

    rows: list[list[float | None]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    hand: list[float | None] = field(default_factory=list)
    draft_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def labels(db: sqlite_utils.Database) -> Labels:
    """Every draft's last human decision, oldest first, as a label with its weight."""
    liked = channel_percentiles(publication_counts(db))
    out = Labels()
    for row in draft_rows.decisions(db):
        label = LABELS[row["action"]]
        weight = 1.0
        if row["action"] == "edit":
            distance = row.get("edit_distance")
            if distance is not None and row["text"]:
                weight = max(0.25, 1 - distance / len(row["text"]))
        if row["id"] in liked:
            weight *= 0.5 + liked[row["id"]]
        out.rows.append(feature_row(row))
        out.y.append(label)
        out.weight.append(weight)
        out.hand.append(row.get("score"))
        out.draft_ids.append(row["id"])
    return out


def count_labels(db: sqlite_utils.Database) -> int:
    return len(draft_rows.decisions(db))


def auc(y: list[int], scores: list[float]) -> float | None:
    """The probability that an approved draft scores above a rejected one (ties count half)."""
    from sklearn.metrics import roc_auc_score

    if len(set(y)) < 2:
        return None
    return float(roc_auc_score(y, scores))


def _impute(rows: list[list[float | None]], means: list[float]) -> list[list[float]]:
    return [[means[i] if v is None else v for i, v in enumerate(row)] for row in rows]


def _means(rows: list[list[float | None]]) -> list[float]:
    means = []
    for i in range(len(FEATURES)):
        known = [r[i] for r in rows if r[i] is not None]
        means.append(sum(known) / len(known) if known else 0.0)   # type: ignore[arg-type]
    return means


@dataclass
class Fitted:
    """A fitted ranker as stored: standardisation, weights, and what the check found."""

    features: list[str]
    means: list[float]
    scales: list[float]
    coef: list[float]
    intercept: float
    labels: int = 0
    learned_auc: float | None = None
    hand_auc: float | None = None
    learned_low: float | None = None
    tested: int = 0
    tested_approved: int | None = None   # of the tested decisions (None: stored by an earlier release)
    tested_rejected: int | None = None
    used: bool = False
    trained_at: str = ""

    def score(self, row: dict) -> float:
        """The log-odds that a moderator approves the draft `row` (a drafts row: text, measures)."""
        return self.score_values(feature_row(row))

    def score_values(self, values: list[float | None]) -> float:
        total = self.intercept
        for value, mean, scale, weight in zip(values, self.means, self.scales, self.coef):
            x = mean if value is None else value
            total += weight * (x - mean) / scale
        return total

    def weights(self) -> list[tuple[str, float]]:
        """The features' weights (per standard deviation of the feature), largest first."""
        return sorted(zip(self.features, self.coef), key=lambda fw: -abs(fw[1]))


def fit(data: Labels, rows: range | None = None) -> Fitted:
    """Logistic regression on the decisions `rows` (all by default), features standardised."""
    from sklearn.linear_model import LogisticRegression

    index = list(rows if rows is not None else range(len(data)))
    raw = [data.rows[i] for i in index]
    means = _means(raw)
    x = np.array(_impute(raw, means), dtype=float)
    scales = x.std(axis=0)
    scales[scales == 0] = 1.0
    x = (x - np.array(means)) / scales
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(x, [data.y[i] for i in index], sample_weight=[data.weight[i] for i in index])
    return Fitted([f.name for f in FEATURES], means, scales.tolist(), model.coef_[0].tolist(),
                  float(model.intercept_[0]), labels=len(index))


@dataclass(frozen=True)
class Check:
    """The time-ordered check: mean AUC of each over the tested slices, and how many were tested."""

    learned_auc: float | None
    hand_auc: float | None
    learned_low: float | None
    tested: int
    folds: int
    positives: int = 0   # approved among the tested decisions
    negatives: int = 0   # rejected among them


def time_ordered_check(data: Labels, folds: int = FOLDS) -> Check:
    """Train on older decisions, test on newer (see the module's docstring)."""
    n = len(data)
    edges = [round(n * k / (folds + 1)) for k in range(folds + 2)]
    learned: list[float] = []
    hand: list[float] = []
    tested = positives = negatives = 0
    for k in range(1, folds + 1):
        train, test = range(0, edges[k]), range(edges[k], edges[k + 1])
        y_train, y_test = [data.y[i] for i in train], [data.y[i] for i in test]
        if len(set(y_train)) < 2 or len(set(y_test)) < 2:
            continue
        model = fit(data, train)
        learned.append(auc(y_test, [model.score_values(data.rows[i]) for i in test]) or 0.5)
        hand.append(auc(y_test, [_hand(data.hand[i]) for i in test]) or 0.5)
        tested += len(test)
        positives += sum(y_test)
        negatives += len(y_test) - sum(y_test)
    if not learned:
        return Check(None, None, None, 0, 0)
    mean_learned, mean_hand = sum(learned) / len(learned), sum(hand) / len(hand)
    return Check(mean_learned, mean_hand, mean_learned - Z99 * hanley_mcneil(mean_learned, positives, negatives),
                 tested, len(learned), positives, negatives)


def _hand(value: float | None) -> float:
    return UNMEASURED if value is None else value


def hanley_mcneil(a: float, positives: int, negatives: int) -> float:
    """The standard error of an AUC `a` over `positives` and `negatives` (Hanley & McNeil 1982)."""
    if positives == 0 or negatives == 0:
        return math.inf
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (positives - 1) * (q1 - a * a) + (negatives - 1) * (q2 - a * a)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def train(db: sqlite_utils.Database, options: RankerOptions = RankerOptions(), *, folds: int = FOLDS) -> Fitted:
    """Fit the ranker on every decision, check it in time order, store it (used by the pool only
    when it wins). Raises ValueError when the decisions cannot train it (too few, one class)."""
    data = labels(db)
    if len(data) < 20 or len(set(data.y)) < 2:
        raise ValueError(f"{len(data)} decisions ({sum(data.y)} approved): the ranker needs at least 20,"
                         " approved and rejected ones")
    check = time_ordered_check(data, folds)
    fitted = fit(data)
    fitted.learned_auc, fitted.hand_auc, fitted.learned_low = check.learned_auc, check.hand_auc, check.learned_low
    fitted.tested, fitted.trained_at = check.tested, utcnow()
    fitted.tested_approved, fitted.tested_rejected = check.positives, check.negatives
    fitted.used = wins(check, options.min_gain)
    set_state(db, STATE_KEY, json.dumps(asdict(fitted)))
    log.info("ranker trained on %d decisions: AUC learned %s vs hand-set %s on the newer decisions; %s",
             len(data), _fmt(check.learned_auc), _fmt(check.hand_auc),
             "the pool ranks with it" if fitted.used else "the pool keeps the hand-set score")
    return fitted


def wins(check: Check, min_gain: float) -> bool:
    if check.learned_auc is None or check.hand_auc is None or check.learned_low is None:
        return False
    if min(check.positives, check.negatives) < MIN_TESTED:
        return False
    return check.learned_auc > check.hand_auc + min_gain and check.learned_low > max(0.5, check.hand_auc)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def stored(db: sqlite_utils.Database) -> Fitted | None:
    text = get_state(db, STATE_KEY)
    if not text:
        return None
    try:
        return Fitted(**json.loads(text))
    except (TypeError, ValueError) as exc:   # stored by another release's Fitted, or damaged
        log.warning("the stored ranker cannot be read (%s); the pool keeps the hand-set score until the"
                    " nightly job trains it again", exc)
        return None


def learned_ranker(db: sqlite_utils.Database) -> Callable[[str, dict, float | str], float] | None:
    """The pool's hook: a function (text, measure columns, temperature) -> score when the stored
    ranker beat the hand-set score, else None (the pool ranks by jobs.pool.score). A ranker stored
    by a release with other FEATURES is not used (its weights would fall on other features) until
    the nightly job trains it again."""
    fitted = stored(db)
    if fitted is None or not fitted.used:
        return None
    if fitted.features != [f.name for f in FEATURES]:
        log.warning("the stored ranker was trained on other features (%s); the pool keeps the hand-set"
                    " score until the nightly job trains it again", ", ".join(fitted.features))
        return None

    def rank(text: str, columns: dict, temperature: float | str) -> float:
        known = temperature if isinstance(temperature, (int, float)) else None   # "auto" unresolved: the mean
        return round(fitted.score({**columns, "text": text, "temperature": known}), 4)

    return rank


def maybe_train(db: sqlite_utils.Database, options: RankerOptions) -> Fitted | None:
    """The nightly job: train once `min_labels` decisions exist (None before)."""
    have = count_labels(db)
    if have < options.min_labels:
        log.info("ranker: %d of %d decisions needed; not trained yet", have, options.min_labels)
        return None
    try:
        return train(db, options)
    except ValueError as exc:
        log.info("ranker not trained: %s", exc)
        return None


def maybe_train_in(database: Path, options: RankerOptions, *, busy_timeout: float) -> Fitted | None:
    """`maybe_train` in a worker thread (the nightly job: scikit-learn's folds take seconds, which
    the event loop must not wait for), on its own connection to `database`."""
    db = open_db(database, migrate=False, busy_timeout=busy_timeout)
    try:
        return maybe_train(db, options)
    finally:
        db.close()


def _too_few(fitted: Fitted) -> str:
    """Why the check could not tell (too few approved or rejected decisions tested), or ""."""
    approved, rejected = fitted.tested_approved, fitted.tested_rejected
    if approved is None or rejected is None or min(approved, rejected) >= MIN_TESTED:
        return ""
    return (f"the pool keeps the hand-set score (too few newer decisions to tell: {approved} approved and"
            f" {rejected} rejected tested, {MIN_TESTED} of each needed)")


def report(fitted: Fitted) -> list[str]:
    """`buhurt ranker report`: both AUCs, whether the pool uses it, the weights."""
    current = fitted.features == [f.name for f in FEATURES]   # else learned_ranker does not use it
    lines = [
        f"trained {fitted.trained_at} on {fitted.labels} decisions; checked on the {fitted.tested} newer ones"
        " (time order: trained on older decisions, tested on newer)",
        f"AUC approved vs rejected: learned {_fmt(fitted.learned_auc)} (99% low {_fmt(fitted.learned_low)}),"
        f" hand-set score {_fmt(fitted.hand_auc)}",
        "the pool ranks drafts with the learned ranker" if fitted.used and current
        else _too_few(fitted) if current and _too_few(fitted)
        else "the pool keeps the hand-set score (the learned ranker did not beat it)" if current
        else "the pool keeps the hand-set score (trained on other features, by an earlier release) until the"
             " nightly job trains it again (or: buhurt ranker train)",
        "weights (per standard deviation):",
    ]
    lines += [f"  {name:<18} {weight:+.3f}" for name, weight in fitted.weights()]
    return lines

