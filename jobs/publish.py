"""Publish queued drafts, at most once per (draft, network, chat), each destination on its own.

Every channel and the VK wall has its own queue position (`publications.next_for`): at each
publishing time each destination posts the oldest queued draft it has not had, concurrently, so a
destination that refuses (403, an expired VK token) or waits out flood control never holds back
the others. A draft is `published` once every destination has it (`sent`, or `unknown`), or skipped it
(`skipped`: it near-copies a post already published there, jobs/curation.py, or the stop-list, which
is checked again here: a word added to it after a draft was queued stops that draft, and the
moderators are told). A draft every destination skipped becomes `rejected_auto`.

A row still `sending` that no send of this process is working on was left by a failure inside the
process (the database locked while recording, say): the next publishing time resolves it, with the
outcome kept in memory when there is one (the message id of a post that went out), else as
`unknown` (never re-sent, the moderators are told), and the queue moves on.

While another process holds the database, the writes wait off the event loop (jobs/patience.py);
a destination whose turn found the lock held longer than the busy timeout is `deferred`, and the
service retries it within minutes (jobs/service.py), not at the next publishing time.

With `PublishOptions.footer` each post ends with its meme number (`#{n}`, so that readers can ask
`/meme N`): the text is composed from the stored draft at every try, so a retry sends the same
words, and nothing about the footer is stored (the claim in `publications` is what keeps it at most
once). A post that the footer would push over the destination's `max_text` goes without it.
A destination whose sends fail `alert_failures` times in a row is reported once until one succeeds.
"""
from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import sqlite_utils

from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.state import get_state, set_state
from jobs import notices
from jobs.patience import DatabaseBusy, patiently
from jobs.curation import repeat_in_channel

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]


class PublishError(Exception):
    """The network refused the post for sure (nothing was published); it may be retried later.
    Its text is stored in `publications.error`: the publisher leaves no secret in it. `told` is
    the same in Russian for the moderators' notice (the network's own words kept), else the text."""

    def __init__(self, message: str, told: str | None = None) -> None:
        super().__init__(message)
        self.told = told or message


class PublishInDoubt(Exception):
    """The post may or may not be out (a timeout, a dropped connection, a 5xx): never re-sent.
    Its text is stored like PublishError's (and `told` likewise); of any other exception only the
    type is stored (the whole text goes to the log, which scrubs secrets)."""

    def __init__(self, message: str, told: str | None = None) -> None:
        super().__init__(message)
        self.told = told or message


class Publisher(Protocol):
    network: str
    chat_id: str

    async def send(self, text: str) -> str:
        """Publish `text`; return the message id. Raise PublishError on a definite refusal."""


@dataclass(frozen=True)
class PublishOptions:
    """The footer under each post ("" for none; `{n}` is the meme number: `publish.footer`), and
    after how many failed sends in a row a destination is reported (`alerts.failures`; 0: never),
    and the stop-list a draft is checked against once more before it goes out."""

    footer: str = "#{n}"
    alert_failures: int = 3
    stoplist: StopList | None = None   # checked again at each send (the service's [filter])

    def problems(self) -> dict[str, str]:
        # only a bare {n} (with a format spec at most): "{n[0]}" raised a TypeError traceback at load
        # and "{n.real}" reached into the number
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(self.footer) if name is not None]
            if any(name != "n" for name in fields):
                raise ValueError(self.footer)
            self.footer.format(n=1)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return {"footer": "text where {n} (the meme number) is the only placeholder, e.g. '#{n}'"}
        return {}


def post_text(draft: dict, footer: str, max_text: int | None = None) -> str:
    """What is published for `draft`: the moderators' text (or the model's) and the footer."""
    text = draft["final_text"] or draft["text"]
    if not footer:
        return text
    full = f"{text}\n\n{footer.format(n=draft['id'])}"
    if max_text is not None and len(full) > max_text:
        log.warning("draft %s goes without its footer: with it the post would be %d characters, over %d",
                    draft["id"], len(full), max_text)
        return text
    return full


def _failures_key(where: str) -> str:
    return f"publish_failures:{where}"


async def _count_outcome(db: sqlite_utils.Database, where: str, failed: bool, notify: Notify,
                         options: PublishOptions) -> None:
    """Failures in a row per destination (state); the moderators hear once when they reach the limit."""
    try:
        count = int(get_state(db, _failures_key(where), "0")) + 1 if failed else 0
        await patiently(set_state, db, _failures_key(where), str(count))   # another process's lock: waited
    except Exception as exc:  # noqa: BLE001 - bookkeeping must never stop publishing
        log.warning("could not count the outcome of a send to %s: %s", where, exc)
        return
    if failed and count == options.alert_failures:
        await _tell(notify, notices.ALERT_FAILING.format(where=where, count=count))


def failures_in_a_row(db: sqlite_utils.Database, where: str) -> int:
    return int(get_state(db, _failures_key(where), "0"))


@dataclass
class PublishState:
    """What the running process knows about its own sends: the publication rows a send is working
    on, and outcomes that could not be written (("sent", message id), ("failed", error), ...)."""

    in_flight: set[int] = field(default_factory=set)
    unrecorded: dict[int, tuple[str, str]] = field(default_factory=dict)
    deferred: set[tuple[str, str]] = field(default_factory=set)  # (network, chat id) skipped for a lock


def destination(publisher: Publisher) -> tuple[str, str]:
    return publisher.network, str(publisher.chat_id)


def _where(publisher: Publisher) -> str:
    return f"{publisher.network} {publisher.chat_id}"


def _logged(publisher: Publisher) -> str:
    """How the log names a destination: the local channel's network and chat are both 'local'."""
    return "the local channel" if publisher.network == "local" else _where(publisher)


async def _tell(notify: Notify, text: str) -> None:
    try:
        await notify(text)
    except Exception as exc:  # noqa: BLE001 - a failing notice must not stop publishing
        log.warning("could not tell the moderators (%s): %s", exc, text)


def _write_outcome(db: sqlite_utils.Database, publication_id: int, outcome: tuple[str, str]) -> None:
    status, detail = outcome
    if status == "sent":
        pubs.finish_publication(db, publication_id, detail)
    elif status == "failed":
        pubs.fail_publication(db, publication_id, detail)
    else:
        pubs.mark_unknown(db, publication_id, detail)


async def _record(db: sqlite_utils.Database, state: PublishState, publication_id: int, draft_id: int,
                  where: str, outcome: tuple[str, str]) -> bool:
    """Write the outcome of a send; when the database refuses (locked longer than the busy
    timeout), keep it for the next publishing run and say so. True when written."""
    try:
        await patiently(_write_outcome, db, publication_id, outcome)
        return True
    except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError mostly: keep the outcome
        state.unrecorded[publication_id] = outcome
        log.error("draft %s to %s: could not record the outcome %r (%s: %s); it is recorded at the next"
                  " publishing time", draft_id, where, outcome[0], type(exc).__name__, exc)
        return False


async def publish_to(db: sqlite_utils.Database, publisher: Publisher, notify: Notify,
                     state: PublishState, draft: dict | None = None,
                     options: PublishOptions = PublishOptions()) -> int | None:
    """Send this destination's next draft (or `draft`, unless it has it); returns the draft's id,
    or None when there was nothing to send."""
    where, logged = _where(publisher), _logged(publisher)
    blocked: list[tuple[int, str]] = []
    try:
        draft = await patiently(_fresh_for, db, publisher, draft, options.stoplist, blocked)
        for draft_id, fragment in blocked:
            await _tell(notify, notices.PUBLISH_STOPLISTED.format(id=draft_id, where=where, fragment=fragment))
        if draft is None:
            return None
        publication_id = await patiently(pubs.begin_publication, db, draft["id"], publisher.network,
                                         publisher.chat_id)
    except DatabaseBusy as exc:  # nothing was sent: the service tries this destination again soon
        state.deferred.add(destination(publisher))
        log.warning("publishing to %s deferred: %s", logged, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - nothing was sent; the next publishing time tries again
        log.error("publishing to %s skipped this time: the database answered %s: %s", logged,
                  type(exc).__name__, exc)
        return None
    if publication_id is None:
        return None  # claimed meanwhile: never send twice
    state.in_flight.add(publication_id)
    try:
        try:
            message_id = await publisher.send(post_text(draft, options.footer, getattr(publisher, "max_text", None)))
        except PublishError as exc:
            await _record(db, state, publication_id, draft["id"], where, ("failed", str(exc)))
            log.warning("draft %s not published to %s: %s", draft["id"], logged, exc)
            await _tell(notify, notices.PUBLISH_REFUSED.format(id=draft["id"], where=where, error=exc.told))
            await _count_outcome(db, where, True, notify, options)
            return draft["id"]
        except Exception as exc:  # noqa: BLE001 - a timeout or 5xx: the post may be out already
            said = str(exc) if isinstance(exc, PublishInDoubt) else type(exc).__name__   # the rest: the log
            await _record(db, state, publication_id, draft["id"], where, ("unknown", said))
            log.warning("draft %s may or may not be in %s (%s); not re-sending", draft["id"], logged, exc)
            told = exc.told if isinstance(exc, PublishInDoubt) else notices.reason(exc)
            await _tell(notify, notices.PUBLISH_IN_DOUBT.format(id=draft["id"], where=where, error=told))
            await _count_outcome(db, where, True, notify, options)
            return draft["id"]
        if await _record(db, state, publication_id, draft["id"], where, ("sent", str(message_id))):
            log.info("published meme #%s to %s as message %s", draft["id"], logged, message_id)
        await _count_outcome(db, where, False, notify, options)
        return draft["id"]
    finally:
        state.in_flight.discard(publication_id)


def _fresh_for(db: sqlite_utils.Database, publisher: Publisher, draft: dict | None,
               stoplist: StopList | None = None, blocked: list[tuple[int, str]] | None = None) -> dict | None:
    """`draft` (else this destination's next) unless its text (as it would go out) matches
    `stoplist` or near-copies a post already published there (jobs/curation.py): such a draft is
    skipped for this destination (a stop-listed one also added to `blocked` as (id, fragment)),
    and the queue's next one is tried."""
    explicit = draft is not None
    draft = draft if explicit else pubs.next_for(db, publisher.network, publisher.chat_id)
    while draft is not None:
        if explicit:   # a moderator's "publish now": the row as it is now, not as the button saw it
            draft = draft_rows.get_draft(db, draft["id"]) or draft
        fragment = stoplist.match(draft["final_text"] or draft["text"]) if stoplist else None
        reason = f"stop-list: {fragment!r}" if fragment else repeat_in_channel(db, publisher.network,
                                                                                 publisher.chat_id, draft)
        if reason is None:
            return draft
        pubs.skip_publication(db, draft["id"], publisher.network, publisher.chat_id, reason)
        log.info("draft %s skipped for %s: %s", draft["id"], _logged(publisher), reason)
        if fragment and blocked is not None:
            blocked.append((draft["id"], fragment))
        draft = None if explicit else pubs.next_for(db, publisher.network, publisher.chat_id)
    return None


async def resolve_stale(db: sqlite_utils.Database, notify: Notify, state: PublishState) -> int:
    """Rows left `sending` by a failure inside this process: write the outcome it kept, else mark
    them `unknown` (never re-sent) and tell the moderators. Returns how many were resolved."""
    rows = pubs.stale_sending(db, state.in_flight)
    for row in rows:
        where = f"{row['network']} {row['chat_id']}"
        outcome = state.unrecorded.get(row["id"])
        if outcome is not None:
            _write_outcome(db, row["id"], outcome)
            state.unrecorded.pop(row["id"], None)
            log.warning("recorded late: draft %s to %s is %s (%s)", row["draft_id"], where, *outcome)
            continue
        pubs.mark_unknown(db, row["id"], "the send failed inside the process before its outcome was recorded")
        log.warning("publication of draft %s to %s was left unfinished by a failure; not re-sending",
                    row["draft_id"], where)
        await _tell(notify, notices.PUBLISH_BROKEN_OFF.format(id=row["draft_id"], where=where))
    return len(rows)


def close_finished(db: sqlite_utils.Database, publishers: Sequence[Publisher]) -> list[int]:
    """Queued drafts that every destination has become `published`; those every destination
    skipped (near-copies everywhere, or the stop-list) become `rejected_auto`, with the reason."""
    closed = pubs.finished_drafts(db, [(p.network, str(p.chat_id)) for p in publishers])
    for draft_id in closed:
        if pubs.sent_anywhere(db, draft_id):
            draft_rows.transition(db, draft_id, from_status=[DraftStatus.QUEUED], to_status=DraftStatus.PUBLISHED)
        else:
            draft_rows.transition(db, draft_id, from_status=[DraftStatus.QUEUED], to_status=DraftStatus.REJECTED_AUTO,
                                  reason=pubs.skip_reason(db, draft_id) or "skipped by every destination")
    return closed


async def publish_draft(db: sqlite_utils.Database, draft: dict, publishers: Sequence[Publisher],
                        notify: Notify, state: PublishState | None = None, *,
                        options: PublishOptions = PublishOptions(), only: Sequence[Publisher] | None = None) -> bool:
    """Send one draft to every publisher (or those in `only`: the others are paused) that has not
    had it; True when all `publishers` have it now."""
    state = state if state is not None else PublishState()
    targets = publishers if only is None else only
    await asyncio.gather(*(publish_to(db, p, notify, state, draft=draft, options=options) for p in targets))
    close_finished(db, publishers)
    row = draft_rows.get_draft(db, draft["id"])
    return row is not None and row["status"] == DraftStatus.PUBLISHED


async def publish_next(db: sqlite_utils.Database, publishers: Sequence[Publisher], notify: Notify,
                       state: PublishState | None = None, *, options: PublishOptions = PublishOptions(),
                       only: Sequence[Publisher] | None = None) -> dict | None:
    """One publishing time: every destination (or those in `only`: the others are paused) sends
    its next draft, concurrently. Returns the first draft sent (or tried) in this run, or None
    when no destination had anything to send."""
    targets = publishers if only is None else only
    if not targets:
        return None
    state = state if state is not None else PublishState()
    try:
        await resolve_stale(db, notify, state)
        close_finished(db, publishers)
    except Exception as exc:  # noqa: BLE001 - resolved at the next publishing time
        log.error("could not resolve unfinished publications (%s: %s); trying again next time",
                  type(exc).__name__, exc)
    touched = await asyncio.gather(*(publish_to(db, p, notify, state, options=options) for p in targets))
    try:
        await patiently(close_finished, db, publishers)
    except Exception as exc:  # noqa: BLE001
        log.error("could not close published drafts (%s: %s); done next time", type(exc).__name__, exc)
    ids = [draft_id for draft_id in touched if draft_id is not None]
    if not ids:
        log.info("publishing: no destination has a queued draft to send")
        return None
    return draft_rows.get_draft(db, min(ids))


async def reconcile(db: sqlite_utils.Database, notify: Notify, publishers: Sequence[Publisher] = ()) -> int:
    """At start-up: publications left `sending` by a crash become `unknown` and are reported;
    drafts every destination now has are closed, so the first publishing time posts a new one."""
    rows = await patiently(pubs.reconcile_interrupted, db)
    for row in rows:
        log.warning("publication of draft %s to %s %s was interrupted; not re-sending",
                    row["draft_id"], row["network"], row["chat_id"])
        await _tell(notify, notices.PUBLISH_INTERRUPTED.format(id=row["draft_id"],
                                                               where=f"{row['network']} {row['chat_id']}"))
    if publishers:
        await patiently(close_finished, db, publishers)
    return len(rows)
