"""Popularity weighting of the training text (pure): posts in the top part of their community's
likes appear more than once, so the model sees more of what readers liked. A Telegram post's likes
are its reactions (corpus.store.posts.posts_with_metrics).

A post's score is its likes normalised within its community: by its views (likes per view) when
`normalise = "views"` and the post has views, else by the community's median likes
(`normalise = "median"`; a post without views is scored by the median and scaled to likes per view).
Within each community, the `top_fraction` best-scored posts (at least one when any post has likes)
get `copies` appearances in total; every other post appears once. Posts without a like count are never boosted.
"""
from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from corpus.errors import CorpusError


@dataclass(frozen=True)
class PopularityWeighting:
    """[popularity]: the most liked posts of each community appear more than once in the training text."""

    enabled: bool = False         # repeat each community's most liked posts (Telegram: reactions) in the training text
    top_fraction: float = 0.1     # share of each community's posts (best scored first) boosted, in (0, 1]
    copies: int = 2               # times a boosted post appears in the training text (1: no boost)
    normalise: str = "views"      # likes per "views" (no views: the community's median) or per "median" likes

    def problems(self) -> dict[str, str]:
        problems = {}
        if not 0 < self.top_fraction <= 1:
            problems["top_fraction"] = "a number in (0, 1]"
        if self.copies < 1:
            problems["copies"] = "an integer >= 1"
        if self.normalise not in ("views", "median"):
            problems["normalise"] = "'views' or 'median'"
        return problems

    def check(self) -> None:
        for key, expected in self.problems().items():
            raise CorpusError(f"popularity.{key} must be {expected}, got {getattr(self, key)!r}")


def weights(posts: Sequence[dict], weighting: PopularityWeighting) -> dict[int, int]:
    """{post id: appearances} for the boosted posts (absent ids appear once)."""
    if not weighting.enabled or weighting.copies <= 1:
        return {}
    weighting.check()
    by_community: dict[str, list[dict]] = defaultdict(list)
    for post in posts:
        if post.get("likes") is not None:
            by_community[post.get("community") or ""].append(post)
    boosted: dict[int, int] = {}
    for members in by_community.values():
        median = statistics.median(p["likes"] for p in members) or 1
        ratios = [p["likes"] / p["views"] for p in members if p.get("views")]
        ratio = statistics.median(ratios) if ratios else 1.0
        scored = sorted(members, key=lambda p: (-_score(p, median, ratio, weighting.normalise), p["id"]))
        top = max(1, math.ceil(len(scored) * weighting.top_fraction))
        for post in scored[:top]:
            if post["likes"] > 0:
                boosted[post["id"]] = weighting.copies
    return boosted


def _score(post: dict, median: float, ratio: float, normalise: str) -> float:
    """Likes per view; without views (or in "median" mode), likes over the community median,
    scaled by the community's median likes-per-view so both kinds compare."""
    if normalise == "views":
        return post["likes"] / post["views"] if post.get("views") else post["likes"] / median * ratio
    return post["likes"] / median


def publication_scores(rows: Sequence[dict]) -> dict[int, float]:
    """{publication id: reactions per view} for publications (corpus.store.reactions.publication_counts
    rows), scored within their channel as posts are above: per view where the network counts views,
    else over the channel's median reactions, scaled to reactions per view."""
    by_channel: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_channel[(row["network"], str(row["chat_id"]))].append({**row, "likes": row["reactions"]})
    scores: dict[int, float] = {}
    for members in by_channel.values():
        median = statistics.median(p["likes"] for p in members) or 1
        ratios = [p["likes"] / p["views"] for p in members if p.get("views")]
        ratio = statistics.median(ratios) if ratios else 1.0
        for post in members:
            scores[post["publication_id"]] = _score(post, median, ratio, "views")
    return scores


def channel_percentiles(rows: Sequence[dict]) -> dict[int, float]:
    """{draft id: its best publication's rank in its channel by reactions per view, from 0 (least
    liked) to 1 (most liked)}; channels with a single publication give 0.5."""
    scores = publication_scores(rows)
    by_channel: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_channel[(row["network"], str(row["chat_id"]))].append(row)
    out: dict[int, float] = {}
    for members in by_channel.values():
        values = sorted(scores[r["publication_id"]] for r in members)
        for row in members:   # ties share the mean of their places
            value = scores[row["publication_id"]]
            below, equal = bisect.bisect_left(values, value), values.count(value)
            place = below + (equal - 1) / 2
            share = place / (len(values) - 1) if len(values) > 1 else 0.5
            out[row["draft_id"]] = max(out.get(row["draft_id"], 0.0), share)
    return out
