"""`buhurt corpus scrape`: every wall post of VK communities into `posts`, incrementally.

How a community is read (one "pass" walks the wall newest-first with wall.get offsets):
- Batches: up to 25 wall.get calls (100 posts each) in one execute request (corpus/vk_client.py).
  Consecutive pages overlap by one post (offsets step by 99), so every page can be checked to
  continue the previous one: the wall is ordered by post id, so if a page's newest (non-pinned)
  post is older than the previous page's oldest, posts were deleted meanwhile and the offsets moved:
  the pass steps back and re-reads instead of leaving a hole. New posts only push offsets down
  (some posts are read twice; storage is keyed by post id, so nothing is stored twice). A page
  shorter than 100 is the end only where its offset reaches wall.get's count: VK may leave out posts
  it counts, and the next page is then read again from where the short one's last post may be.
  An execute that VK finds too big (error 13) is asked again with half the pages.
- Incremental: the state table keeps, per community, `synced_top` (every post up to this id is
  stored) and the `pending` pass (offset, oldest id read, its stop id). A pass stops at posts not
  newer than synced_top, after re-reading the last `refresh_days` days (likes, reposts, views; a
  text edited since replaces the stored one, which is cleaned again).
- Resumable: each batch's posts and the pass position are written in one transaction, so an
  interrupted run (network, Ctrl+C, rate-limit give-up) resumes at the stored position next time,
  then runs a fresh pass for what was published in between.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import sqlite_utils
from tqdm import tqdm
from vk_api.exceptions import ApiError

from common.text import whole_characters
from corpus.db import write_transaction
from corpus.errors import CorpusError
from corpus.store.posts import add_posts
from corpus.store.state import get_state, set_state
from corpus.vk_client import (
    DEFAULT_TIMEOUT, PAGE, RATE_LIMIT_CODES, Community, CommunityFailed, VkClient, api_error,
)

STEP = PAGE - 1          # one post of overlap between consecutive pages
MAX_STEP_BACKS = 100     # per run of a pass: the wall changing faster than we read it
TOO_BIG = 13             # execute's "Runtime error occurred during code invocation: response size is too big"

log = logging.getLogger(__name__)


@dataclass
class GroupReport:
    community: str
    group_id: int
    added: int = 0
    refreshed: int = 0
    edited: int = 0      # stored posts whose text the community changed since (cleaned again)
    requests: int = 0
    passes: int = 0
    resumed: bool = False


@dataclass
class ScrapeReport:
    groups: list[GroupReport] = field(default_factory=list)
    requests: int = 0
    waited: float = 0.0
    failed: list[str] = field(default_factory=list)   # one line per community that could not be read
    added_before_failing: int = 0   # new posts stored from the communities of `failed` (kept; resumed next run)

    @property
    def added(self) -> int:
        return sum(g.added for g in self.groups) + self.added_before_failing

    def lines(self) -> list[str]:
        out = [f"{g.community} (id {g.group_id}): {g.added} new posts, {g.refreshed} refreshed, "
               + (f"{g.edited} edited since, " if g.edited else "")
               + f"{g.requests} requests{' (resumed an interrupted run)' if g.resumed else ''}" for g in self.groups]
        out += [f"not scraped: {line}" for line in self.failed]
        out.append(f"total: {self.added} new posts, {self.requests} requests,"
                   f" waited {self.waited:.0f} s on rate limits")
        return out


@dataclass(frozen=True)
class ScrapeOptions:
    """How VK walls are read (config [vk]'s scraping keys)."""

    api_version: str = "5.199"         # the VK API version sent with every call
    requests_per_second: float = 3.0   # request pacing: VK allows 3/s for a user token, 20/s for a community's
    max_wait_seconds: float = 300.0    # the cap on waiting out rate limits in one run (errors 6, 9, 29)
    refresh_days: float = 3.0          # re-read the posts of the last N days (likes, reposts, views, an edited text)
    calls_per_execute: int = 25        # wall.get calls batched into one execute request (VK allows 25)
    timeout_seconds: float = DEFAULT_TIMEOUT   # each request's connect and read timeout

    def problems(self) -> dict[str, str]:
        problems = {}
        if not 0 < self.timeout_seconds < float("inf"):
            problems["timeout_seconds"] = "a positive number of seconds"
        if not self.requests_per_second > 0:
            problems["requests_per_second"] = "a positive number"
        if isinstance(self.calls_per_execute, bool) or not isinstance(self.calls_per_execute, int) \
                or not 1 <= self.calls_per_execute <= 25:
            problems["calls_per_execute"] = "an integer from 1 to 25"
        for key in ("refresh_days", "max_wait_seconds"):
            if not getattr(self, key) >= 0:
                problems[key] = "a number >= 0"
        return problems

    def options(self) -> "ScrapeOptions":
        """Only the ScrapeOptions fields (of a subclass such as the [vk] settings)."""
        return ScrapeOptions(**{f.name: getattr(self, f.name) for f in fields(ScrapeOptions)})


def scrape_settings(db: sqlite_utils.Database, vk_settings: Any, *, progress: bool = True,
                    session=None) -> ScrapeReport:
    """Scrape `vk_settings.groups` with the settings of a [vk] section (a ScrapeOptions with `token`
    and `groups`; token may be a Secret with .reveal())."""
    token = vk_settings.token
    token = token.reveal() if hasattr(token, "reveal") else (token or "")
    return scrape(db, list(vk_settings.groups), token=token, options=vk_settings.options(), session=session,
                  progress=progress)


def scrape(
    db: sqlite_utils.Database, groups: Iterable[str], *, token: str, options: ScrapeOptions | None = None,
    session=None, progress: bool = True, sleep: Callable[[float], None] = time.sleep, **overrides: Any,
) -> ScrapeReport:
    """Scrape every community of `groups` (short names or ids) as `options` (and `overrides` of its
    fields) say. A community that cannot be read (unknown, deleted, closed) or whose wall VK fails to give
    (CommunityFailed) is skipped, its line in `report.failed`, and the others are read. Raises CorpusError
    (one line) for a missing or rejected token, a captcha, no connection, an unusable option, rate limits
    beyond the cap, or when no community could be read."""
    groups = list(groups)
    if not groups:
        raise CorpusError("no VK community given: pass --group NAME or set vk.groups in the config")
    o = replace(options or ScrapeOptions(), **overrides)
    for key, expected in o.problems().items():
        raise CorpusError(f"vk.{key} must be {expected}, got {getattr(o, key)!r}")
    client = VkClient(token, api_version=o.api_version, requests_per_second=o.requests_per_second,
                      max_wait_seconds=o.max_wait_seconds, session=session, sleep=sleep,
                      timeout_seconds=o.timeout_seconds)
    report = ScrapeReport()
    try:
        for name in groups:
            group = GroupReport(name, 0)
            try:
                community = client.community(name)
                before = client.requests
                group = GroupReport(community.name, community.group_id)
                _scrape_community(db, client, community, group, o.refresh_days, o.calls_per_execute, progress)
            except CommunityFailed as exc:   # a typo, closed, deleted, its own VK error: the others are read
                report.failed.append(str(exc) + (f" ({group.added} new posts stored before it stopped,"
                                                 " the next run goes on from there)" if group.added else ""))
                report.added_before_failing += group.added
                continue
            group.requests = client.requests - before
            report.groups.append(group)
    finally:
        report.requests, report.waited = client.requests, client.waited
    if len(report.failed) == len(groups):   # nothing could be read: the one line of each
        raise CorpusError("; ".join(report.failed))
    return report


def _state_key(community: Community) -> str:
    return f"vk.scrape.{community.group_id}"


def _scrape_community(db, client: VkClient, community: Community, group: GroupReport, refresh_days: float,
                      calls: int, progress: bool) -> None:
    state = json.loads(get_state(db, _state_key(community)) or "{}")
    group.resumed = bool(state.get("pending"))
    cutoff = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=refresh_days)).timestamp()
    with tqdm(desc=community.name, unit="post", disable=not progress, leave=False) as bar:
        while True:
            resumed = bool(state.get("pending"))
            if not resumed:
                state["pending"] = {"offset": 0, "last_id": None, "top": None, "stop_id": state.get("synced_top"),
                                    "step_backs": 0}
            else:   # MAX_STEP_BACKS is one run's: deletions between the runs of a long pass do not add up
                state["pending"]["step_backs"] = 0
            _run_pass(db, client, community, state, group, cutoff, calls, bar)
            group.passes += 1
            if not resumed:
                return


def _run_pass(db, client: VkClient, community: Community, state: dict, group: GroupReport, cutoff: float,
              calls: int, bar) -> None:
    """Walk the wall from the pass's stored position, one execute batch at a time: read the
    batch's pages, then store their posts and the new position in one transaction."""
    pending = state["pending"]
    inner_attempts = 0
    while True:
        offsets = [pending["offset"] + k * STEP for k in range(calls)]
        fetched = _fetch(client, community, offsets)
        if fetched is None:   # the answer would be too big: fewer pages per request from here on
            calls = len(offsets) // 2
            log.info("VK: the execute answer for %s is too big (error 13); %d pages per request from here on",
                     community.name, calls)
            continue
        pages, errors = fetched
        posts, done, inner_attempts = _read_batch(client, community, pending, offsets, pages, errors,
                                                  inner_attempts, cutoff, bar)
        if done:
            state["synced_top"] = max(state.get("synced_top") or 0, pending["top"] or 0) or None
            state["pending"] = None
        with write_transaction(db):   # reads, then writes: the lock first
            stored = add_posts(db, posts)
            set_state(db, _state_key(community), json.dumps(state))
        group.added += stored.added
        group.refreshed += stored.updated
        group.edited += stored.edited
        bar.update(stored.added)
        if done:
            return


def _read_batch(client: VkClient, community: Community, pending: dict, offsets: list[int], pages: list,
                errors: list[dict], inner_attempts: int, cutoff: float, bar) -> tuple[list[dict], bool, int]:
    """(posts, whether the pass is done, failed inner calls in a row) of one batch's pages, read in
    order until one failed (a rate limit inside execute: the next batch retries from that page),
    one shows deleted posts (the pass steps back) or the pass ends."""
    posts: list[dict] = []
    for k, page in enumerate(pages):
        if page is False or not isinstance(page, dict):
            inner_attempts += 1
            _raise_inner(client, community, errors, inner_attempts)
            return posts, False, inner_attempts
        inner_attempts = 0
        bar.total = page.get("count")
        outcome = _read_page(community, pending, offsets[k], page, cutoff, posts)
        if outcome != "next":
            return posts, outcome == "done", inner_attempts
    return posts, False, inner_attempts


def _read_page(community: Community, pending: dict, offset: int, page: dict, cutoff: float,
               posts: list[dict]) -> str:
    """Add one page's posts to `posts` and move the pass on: 'next', 'step_back' (posts were
    deleted meanwhile: re-read from the page before, never skip) or 'done'."""
    items = [item for item in page.get("items", []) if isinstance(item, dict)]
    ordered = [i for i in items if not i.get("is_pinned")]
    if pending["last_id"] is not None and ordered and ordered[0]["id"] < pending["last_id"]:
        reread = pending.get("reread")
        if reread is not None and offset > reread:   # the post where the pages overlap may be one VK left out
            pending["offset"], pending["reread"] = reread, None
            return "step_back"
        pending["step_backs"] += 1
        if pending["step_backs"] > MAX_STEP_BACKS:
            raise CommunityFailed(f"the wall of {community.name!r} changes faster than it can be read; run again later")
        pending["offset"] = max(0, offset - STEP)
        return "step_back"
    posts += [vk_post(community, item) for item in items]
    ids = [i["id"] for i in items]
    if ids:
        pending["top"] = max(pending["top"] or 0, *ids)
    if ordered:
        pending["last_id"] = ordered[-1]["id"]
    pending["offset"] = offset + STEP
    if offset + PAGE >= page.get("count", 0):
        return "done"  # the end of the wall
    # VK left posts it counts out of this page, the wall goes on: its last post is at offset + n - 1 or
    # after, where the next page is read again from if it does not continue this one (one post or none
    # of 100: the next page cannot be checked)
    pending["reread"] = offset + len(items) - 1 if 2 <= len(items) < PAGE else None
    if len(items) < 2:
        pending["last_id"] = None
    stop_id = pending["stop_id"]
    if stop_id is not None and ordered and ordered[-1]["id"] <= stop_id and ordered[-1].get("date", 0) < cutoff:
        return "done"  # reached what was stored before, and the refresh window
    return "next"


def _fetch(client: VkClient, community: Community, offsets: list[int]) -> tuple[list, list[dict]] | None:
    """The batch's (pages, execute_errors); None when VK says its answer would be too big (error 13:
    long posts) and fewer pages may pass."""
    try:
        return client.wall_pages(community.group_id, offsets)
    except ApiError as exc:
        if exc.code == TOO_BIG and len(offsets) > 1:
            return None
        raise api_error(exc, community.name) from None


def _raise_inner(client: VkClient, community: Community, errors: list[dict], attempt: int) -> None:
    """An inner wall.get failed: wait on a rate limit (the batch resumes at that page), else raise."""
    error: dict[str, Any] = errors[0] if errors else {"error_code": 0, "error_msg": "execute returned no result"}
    code = int(error.get("error_code", 0))
    if code in RATE_LIMIT_CODES:
        client.back_off(code, error.get("error_msg", ""), attempt)
        return
    fake = ApiError(client.api, "wall.get", {}, False, {"error_code": code, "error_msg": error.get("error_msg", "")})
    raise api_error(fake, community.name)


def vk_post(community: Community, item: dict[str, Any]) -> dict[str, Any]:
    """A wall.get item -> a posts row (corpus/store/posts.py POST_FIELDS): stored under the
    community's short name, its origin the wall's owner id, which a rename keeps (the same post is
    found again under the new name)."""
    def count(key: str) -> int | None:
        value = item.get(key)
        return value.get("count") if isinstance(value, dict) else None

    date = item.get("date")
    return {
        "source": "vk", "community": community.name, "origin": str(-community.group_id),
        "external_id": str(item["id"]),
        "date": dt.datetime.fromtimestamp(date, dt.timezone.utc).isoformat() if date else None,
        "text": whole_characters(item.get("text") or ""), "likes": count("likes"), "reposts": count("reposts"),
        "views": count("views"), "comments": count("comments"), "is_ad": bool(item.get("marked_as_ads")),
        "is_pinned": bool(item.get("is_pinned")), "is_repost": bool(item.get("copy_history")),
        "has_attachments": bool(item.get("attachments")),
    }
