"""Keep drafts ready: the moderated channel pool and the /generate pool for subscribers.

Generation runs in a worker thread; the screening and the writes happen on the caller's thread
(sqlite connections belong to the thread that opened them).
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

import sqlite_utils

from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store.posts import has_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleOptions:
    temperature: float = 0.8
    max_length: int = 500
    top_k: int = 0

    def as_kwargs(self) -> dict:
        return {"temperature": self.temperature, "max_length": self.max_length, "top_k": self.top_k}


def new_seeds(n: int) -> list[int]:
    return [secrets.randbelow(2**31 - 1) + 1 for _ in range(n)]


def screen(db: sqlite_utils.Database, text: str, stoplist: StopList) -> str | None:
    """Why a generated text must not reach anyone, or None when it may."""
    lines = [line for line in text.splitlines() if line.strip() and line.strip() != "@"]
    if len(lines) < 2:
        return "too short"
    found = stoplist.match(text)
    if found:
        return f"stop-list: {found}"
    if has_text(db, text):
        return "copy of a corpus post"
    return None


def store_generated(
    db: sqlite_utils.Database, texts: list[str], seeds: list[int], *, version: str,
    options: SampleOptions, purpose: str, ok_status: str, stoplist: StopList, start_text: str = "",
    auto_approve: bool = False,
) -> list[int]:
    """Screen and store generated texts as drafts; returns the ids of those that passed."""
    passed = []
    with db.atomic():
        for seed, text in zip(seeds, texts):
            reason = screen(db, text, stoplist)
            draft_id = draft_rows.add_draft(
                db, text=text, model_version=version, seed=seed, start_text=start_text,
                purpose=purpose, status="rejected_auto" if reason else ok_status, status_reason=reason,
                **options.as_kwargs(),
            )
            if reason:
                draft_rows.record_action(db, draft_id, "auto_reject", detail=reason)
                continue
            if auto_approve:
                draft_rows.record_action(db, draft_id, "auto_approve", detail="no moderators configured")
            passed.append(draft_id)
    return passed


async def fill_pool(
    db: sqlite_utils.Database, generator, *, purpose: str, target: int, batch_size: int,
    options: SampleOptions, stoplist: StopList, moderated: bool = True, max_rounds: int = 3,
) -> list[int]:
    """Top the pool of `purpose` up to `target` drafts, generating in batches in a worker thread.
    Channel drafts become `pending` when moderated, else `queued` (auto-approved, logged)."""
    if purpose == draft_rows.CHANNEL:
        ok_status = "pending" if moderated else "queued"
        count_statuses = ("pending", "queued")
    else:
        ok_status, count_statuses = "ready", ("ready",)
    created: list[int] = []
    for _ in range(max_rounds):
        counts = draft_rows.count_by_status(db, purpose)
        missing = target - sum(counts.get(s, 0) for s in count_statuses)
        if missing <= 0:
            break
        seeds = new_seeds(min(batch_size, missing))
        version, texts = await asyncio.to_thread(generator.generate, seeds, **options.as_kwargs())
        auto = purpose == draft_rows.CHANNEL and not moderated
        ids = store_generated(db, texts, seeds, version=version, options=options, purpose=purpose,
                              ok_status=ok_status, stoplist=stoplist, auto_approve=auto)
        if auto and ids:
            log.info("auto-approved drafts %s: no moderators are configured", ids)
        created.extend(ids)
    return created
