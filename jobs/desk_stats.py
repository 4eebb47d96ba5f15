"""`/stats [days]`: the desk's figures over the last days, as one PNG (matplotlib, Agg backend) and
the same numbers as text.

`gather` collects them into `DeskStats`, one field per panel; a later figure is one more field
filled there, one more panel in `write_chart` and lines in `lines`. The blind ratings (/rate,
jobs/rating.py) are such a field: each model version's readable and would-publish shares, all time,
beside the real posts'.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from common.files import atomic_path
from corpus.store import desk as desk_rows
from corpus.store import model_versions as model_rows
from jobs.rating import VersionShares, rating_shares

DEFAULT_DAYS = 14
MAX_DAYS = 366
MODEL_VERSIONS_SHOWN = 8


@dataclass(frozen=True)
class ModelFigures:
    version: str
    status: str
    created: str
    bits_per_char: float | None     # on held-out posts, when measured
    pass_share: float | None        # its drafts passing the screen (the retrain's measure, else the tune's)


@dataclass
class DeskStats:
    days: list[str]                                          # UTC dates, oldest first
    made: list[int]                                          # channel drafts made per day
    approved: list[int]
    rejected: list[int]
    published: dict[str, list[int]]                          # destination -> posts per day
    reasons: dict[str, int]                                  # rejection reason ('' none) -> drafts
    engagement: list[tuple[str, int, float]] = field(default_factory=list)  # (published at, meme, reactions/view)
    reactions_without_views: int = 0                         # posts whose network reports no views
    models: list[ModelFigures] = field(default_factory=list)
    ratings: list[VersionShares] = field(default_factory=list)  # blind ratings, all time (version None: real posts)


def _pass_share(metrics_text: str | None) -> float | None:
    """The share of the version's drafts that pass the screen: the retrain's measure (product
    decoding, `draft_pass_share`), else the tune's at the temperature it chose."""
    try:
        metrics = json.loads(metrics_text or "{}")
    except ValueError:
        return None
    if isinstance(metrics.get("draft_pass_share"), (int, float)):
        return float(metrics["draft_pass_share"])
    tuned = metrics.get("tuned") or {}
    best = [r for r in tuned.get("rows", []) if r.get("temperature") == tuned.get("temperature")]
    return float(best[0]["pass_share"]) if best and "pass_share" in best[0] else None


def gather(db: sqlite_utils.Database, days: int = DEFAULT_DAYS, now: dt.datetime | None = None) -> DeskStats:
    """The last `days` days (today included, UTC) of drafts, decisions, publications and reactions,
    and the figures of the newest model versions."""
    now = now or dt.datetime.now(dt.timezone.utc)
    first = (now - dt.timedelta(days=days - 1)).date()
    dates = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
    since = f"{dates[0]}T00:00:00"
    made = desk_rows.drafts_made_per_day(db, since)
    decided = desk_rows.decisions_per_day(db, since)
    per_destination = desk_rows.publications_per_day(db, since)
    destinations = sorted({where for _, where in per_destination})
    stats = DeskStats(
        days=dates, made=[made.get(d, 0) for d in dates],
        approved=[decided.get((d, "approved"), 0) for d in dates],
        rejected=[decided.get((d, "rejected"), 0) for d in dates],
        published={w: [per_destination.get((d, w), 0) for d in dates] for w in destinations},
        reasons=desk_rows.rejection_reasons(db, since),
    )
    for row in desk_rows.reactions_and_views(db, since):
        if row["views"]:
            stats.engagement.append((row["published_at"], row["draft_id"], row["reactions"] / row["views"]))
        else:
            stats.reactions_without_views += 1
    for row in model_rows.all_models(db)[:MODEL_VERSIONS_SHOWN]:
        stats.models.append(ModelFigures(row["version"], row["status"], row["created_at"][:10], row["val_bpc"],
                                         _pass_share(row["metrics_json"])))
    stats.ratings = rating_shares(db)
    return stats


# model_versions.status in the chat's words
MODEL_STATES = {"active": "активная", "candidate": "кандидат", "retired": "в запасе", "rejected": "отклонена",
                "pruned": "отклонена, файл удалён"}


def lines(stats: DeskStats) -> list[str]:
    """The chart's numbers as text (Russian, like the chat)."""
    out = [f"Статистика за {len(stats.days)} дн. ({stats.days[0]} — {stats.days[-1]}, UTC)",
           f"Черновиков: {sum(stats.made)}, одобрено: {sum(stats.approved)}, отклонено: {sum(stats.rejected)}"]
    for day, made, ok, no in zip(stats.days, stats.made, stats.approved, stats.rejected):
        if made or ok or no:
            out.append(f"  {day}: черновиков {made}, одобрено {ok}, отклонено {no}")
    if stats.reasons:
        out.append("Причины отказа: " + ", ".join(f"{reason or 'без причины'} — {n}"
                                                  for reason, n in stats.reasons.items()))
    if stats.published:
        out.append("Публикаций: " + ", ".join(f"{w} — {sum(v)}" for w, v in stats.published.items()))
    else:
        out.append("Публикаций: нет")
    if stats.engagement:
        mean = sum(e[2] for e in stats.engagement) / len(stats.engagement)
        out.append(f"Реакций на просмотр: в среднем {mean:.2%} (постов: {len(stats.engagement)})")
    if stats.reactions_without_views:
        out.append(f"Постов без счётчика просмотров: {stats.reactions_without_views}")
    if stats.models:
        out.append("Модели (бит/символ на отложенных постах · доля прошедших фильтр):")
        for m in stats.models:
            bpc = f"{m.bits_per_char:.3f}" if m.bits_per_char is not None else "—"
            share = f"{m.pass_share:.0%}" if m.pass_share is not None else "—"
            out.append(f"  {m.version} ({MODEL_STATES.get(m.status, m.status)}, {m.created}): {bpc} · {share}")
    if stats.ratings:
        out.append("Оценки вслепую (читается · опубликовал бы: доля [95% интервал] (ответов)):")
        for rated in stats.ratings:
            who = rated.version if rated.version is not None else "настоящие посты"
            out.append(f"  {who}: {rated.readable} · {rated.would_publish}")
    return out


def write_chart(stats: DeskStats, path: str | Path) -> Path:
    """Four panels into one PNG, written atomically: drafts per day, publications per destination
    per day, reactions per view of each post, each model version's figures (its readable share when
    rated among them)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = [d[5:] for d in stats.days]
    x = list(range(len(stats.days)))
    figure, ((drafts, posts), (engagement, models)) = plt.subplots(2, 2, figsize=(12, 8))
    width = 0.28
    drafts.bar([i - width for i in x], stats.made, width, label="made", color="#8a8a8a")
    drafts.bar(x, stats.approved, width, label="approved", color="#4a9a5a")
    drafts.bar([i + width for i in x], stats.rejected, width, label="rejected", color="#b5544a")
    drafts.set(title="Channel drafts per day", ylabel="drafts")
    drafts.legend()
    bottom = [0] * len(x)
    for where, counts in stats.published.items():
        posts.bar(x, counts, 0.6, bottom=bottom, label=where)
        bottom = [b + c for b, c in zip(bottom, counts)]
    posts.set(title="Publications per destination", ylabel="posts")
    if stats.published:
        posts.legend()
    index = {day: i for i, day in enumerate(stats.days)}
    if stats.engagement:
        points = [(index[e[0][:10]], e[2] * 100) for e in stats.engagement if e[0][:10] in index]
        engagement.scatter([p[0] for p in points], [p[1] for p in points], s=10, alpha=0.35, color="#4a7ab5",
                           label="a post")
        daily: dict[int, list[float]] = {}
        for day, share in points:
            daily.setdefault(day, []).append(share)
        days = sorted(daily)
        engagement.plot(days, [sum(daily[d]) / len(daily[d]) for d in days], "o-", color="#1a3a75",
                        label="the day's mean")
        engagement.legend(fontsize=7)
    else:
        engagement.text(0.5, 0.5, "no view counts yet", ha="center", va="center", transform=engagement.transAxes)
    engagement.set(title="Reactions per view of published posts", ylabel="% of views")
    for axis in (drafts, posts, engagement):
        axis.set_xticks(x, labels, rotation=60, fontsize=7)
        axis.set_xlim(-0.6, len(x) - 0.4)
    ordered = sorted(stats.models, key=lambda m: (m.created, m.version))   # oldest first
    names = [m.version[:8] for m in ordered]
    models.set(title="Model versions (oldest first)", ylabel="held-out bits/char")
    if names:
        models.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
    measured = [(i, m.bits_per_char) for i, m in enumerate(ordered) if m.bits_per_char is not None]
    models.plot([p[0] for p in measured], [p[1] for p in measured], "o-", color="#6a4ab5", label="held-out bits/char")
    other = models.twinx()
    tuned = [(i, m.pass_share * 100) for i, m in enumerate(ordered) if m.pass_share is not None]
    other.plot([p[0] for p in tuned], [p[1] for p in tuned], "s--", color="#b58a4a", label="pass share, %")
    readable = {r.version: r.readable.share for r in stats.ratings if r.version is not None}
    rated = [(i, share * 100) for i, share in enumerate(readable.get(m.version) for m in ordered) if share is not None]
    other.plot([p[0] for p in rated], [p[1] for p in rated], "^:", color="#4a9a5a", label="readable when rated, %")
    other.set_ylabel("share, %")
    models.legend(loc="upper left", fontsize=7)
    other.legend(loc="upper right", fontsize=7)
    figure.suptitle(f"buhurt desk, {stats.days[0]} – {stats.days[-1]} (UTC)")
    figure.tight_layout()
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=90)
    finally:
        plt.close(figure)
    return path
