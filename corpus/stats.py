"""`buhurt corpus stats`: what the model would train on (kept posts, cleaned text), in numbers,
plus a histogram PNG of post lengths and line counts (matplotlib, Agg backend: no display)."""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from common.files import atomic_path, starts_with
from corpus.errors import CorpusError
from corpus.importer import SAMPLE_COMMUNITY
from corpus.store.posts import count_posts, posts_with_metrics


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class CorpusStats:
    posts: int
    excluded: int
    chars: int
    vocabulary: int
    lengths: list[int] = field(repr=False)
    line_counts: list[int] = field(repr=False)
    top_chars: list[tuple[str, int]]
    communities: dict[str, int]

    def lines(self) -> list[str]:
        out = [
            f"posts: {self.posts} (excluded by cleaning: {self.excluded})",
            f"characters: {self.chars}",
            f"vocabulary: {self.vocabulary} distinct characters",
            "post length (chars): " + _distribution(self.lengths),
            "lines per post:      " + _distribution(self.line_counts),
            "top characters: " + "  ".join(f"{_show(c)} {n}" for c, n in self.top_chars),
            "communities: " + community_shares(self.communities),
        ]
        return out


def community_shares(communities: dict[str, int]) -> str:
    """Each community's posts and share of the corpus, the largest first; the bundled sample named as such."""
    total = sum(communities.values()) or 1
    return ", ".join(
        f"{name or '-'}{' (the bundled sample)' if name == SAMPLE_COMMUNITY else ''} {n} ({n / total:.1%})"
        for name, n in sorted(communities.items(), key=lambda item: (-item[1], item[0])))


def corpus_stats(db: sqlite_utils.Database, *, top: int = 20) -> CorpusStats:
    posts = posts_with_metrics(db)
    if not posts:
        raise CorpusError("the corpus is empty (or every post was excluded): nothing to describe")
    texts = [p["text"] for p in posts]
    chars: Counter[str] = Counter()
    for text in texts:
        chars.update(text)
    return CorpusStats(
        posts=len(posts), excluded=count_posts(db) - len(posts), chars=sum(len(t) for t in texts),
        vocabulary=len(chars), lengths=[len(t) for t in texts],
        line_counts=[t.count("\n") + 1 for t in texts], top_chars=chars.most_common(top),
        communities=dict(Counter(p["community"] for p in posts)),
    )


def write_histogram(stats: CorpusStats, path: str | Path) -> Path:
    """Two histograms (characters per post, lines per post) into one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = _histogram_target(Path(path))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(stats.lengths, bins=50, color="#4a7ab5")
    left.set(title="Characters per post", xlabel="characters", ylabel="posts")
    right.hist(stats.line_counts, bins=range(1, max(stats.line_counts) + 2), color="#b5644a")
    right.set(title="Lines per post", xlabel="lines", ylabel="posts")
    figure.suptitle(f"{stats.posts} posts, {stats.chars} characters, {stats.vocabulary} distinct")
    figure.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=100, format="png")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot write the histogram ({exc.strerror or exc})") from None
    finally:
        plt.close(figure)
    return path


def _histogram_target(path: Path) -> Path:
    """`path` if a histogram may be written there: a .png name (matplotlib picks its format by the
    suffix: "config.toml" was a ValueError traceback), not a folder, and not a file other than an
    earlier PNG (someone's notes)."""
    if path.suffix.lower() != ".png":
        raise CorpusError(f"{path}: expected a .png file name for the histogram")
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a .png file name for the histogram")
    if path.is_file() and path.stat().st_size and not starts_with(path, PNG_SIGNATURE):
        raise CorpusError(f"{path}: exists and is not a PNG image (only an earlier histogram is"
                          " replaced): choose another path")
    return path


def _distribution(values: list[int]) -> str:
    ordered = sorted(values)

    def pct(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (f"min {ordered[0]}, p10 {pct(0.1)}, median {statistics.median(ordered):g}, "
            f"mean {statistics.fmean(ordered):.1f}, p90 {pct(0.9)}, max {ordered[-1]}")


def _show(char: str) -> str:
    return {"\n": "\\n", " ": "' '", "\t": "\\t"}.get(char, char)
