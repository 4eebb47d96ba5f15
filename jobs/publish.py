"""Publish queued drafts to every channel, at most once per (draft, network, chat)."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import sqlite_utils

from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]


class PublishError(Exception):
    """The network refused the post for sure (nothing was published); it may be retried later."""


class Publisher(Protocol):
    network: str
    chat_id: str

    async def send(self, text: str) -> str:
        """Publish `text`; return the message id. Raise PublishError on a definite refusal."""


async def publish_draft(db: sqlite_utils.Database, draft: dict, publishers: Sequence[Publisher],
                        notify: Notify) -> bool:
    """Send one draft to every publisher that has not had it; True when all have it now."""
    text = draft["final_text"] or draft["text"]
    for publisher in publishers:
        publication_id = pubs.begin_publication(db, draft["id"], publisher.network, publisher.chat_id)
        if publication_id is None:
            continue  # already sent, or in doubt after a crash: never send twice
        try:
            message_id = await publisher.send(text)
        except PublishError as exc:
            pubs.fail_publication(db, publication_id, str(exc))
            log.warning("draft %s not published to %s %s: %s", draft["id"], publisher.network,
                        publisher.chat_id, exc)
            await notify(f"Мем #{draft['id']} не опубликован в {publisher.network} {publisher.chat_id}: {exc}."
                         " Очередь сохранена, попробую снова по расписанию.")
            continue
        except Exception as exc:  # noqa: BLE001 - a timeout or 5xx: the post may be out already
            pubs.mark_unknown(db, publication_id, f"{type(exc).__name__}: {exc}")
            log.warning("draft %s may or may not be in %s %s (%s); not re-sending", draft["id"],
                        publisher.network, publisher.chat_id, exc)
            await notify(f"Мем #{draft['id']} мог не дойти до {publisher.network} {publisher.chat_id}"
                         f" ({type(exc).__name__}). Повторно не отправляю — проверьте канал.")
            continue
        pubs.finish_publication(db, publication_id, message_id)
        log.info("published draft %s to %s %s as message %s", draft["id"], publisher.network,
                 publisher.chat_id, message_id)
    done = {(p["network"], p["chat_id"]) for p in pubs.publications_of(db, draft["id"])
            if p["status"] in ("sent", "unknown")}
    if all((p.network, str(p.chat_id)) in done for p in publishers):
        draft_rows.transition(db, draft["id"], from_status=["queued"], to_status="published")
        return True
    return False


async def publish_next(db: sqlite_utils.Database, publishers: Sequence[Publisher], notify: Notify) -> dict | None:
    """Publish the oldest queued draft; returns it, or None when the queue is empty."""
    queued = draft_rows.with_status(db, "queued", limit=1)
    if not queued or not publishers:
        return None
    draft = queued[0]
    await publish_draft(db, draft, publishers, notify)
    return draft_rows.get_draft(db, draft["id"])


async def reconcile(db: sqlite_utils.Database, notify: Notify) -> int:
    """At start-up: publications left `sending` by a crash become `unknown` and are reported."""
    rows = pubs.reconcile_interrupted(db)
    for row in rows:
        log.warning("publication of draft %s to %s %s was interrupted; not re-sending",
                    row["draft_id"], row["network"], row["chat_id"])
        await notify(f"Мем #{row['draft_id']} мог не дойти до {row['network']} {row['chat_id']}: бот остановился"
                     " во время отправки. Повторно не отправляю — проверьте канал.")
    return len(rows)
