"""What a subscriber gets for /generate, /meme N and /top, as reply text, whichever network asked:
Telegram private chats (bot/telegram/subscribers.py) and the VK community's messages
(bot/vk/messages.py) answer through these functions, under the same per-user limits (one `Limits`:
a Telegram user is keyed by their id, a VK user by ("vk", id)) and with the same jobs/ use-cases,
screen and draft rows. None means: say nothing (a second notice in one cooldown)."""
from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot import texts
from bot.fit import fit
from bot.telegram.limits import Limits
from bot.telegram.start_text import check_start_text, unknown_chars_reply
from jobs import curation, on_request
from jobs.patience import DatabaseBusy, patiently
from model.errors import ModelError

if TYPE_CHECKING:
    from bot.app import Services
    from bot.config import Settings
    from bot.telegram.limits import Limits
    from jobs.generator import GeneratorHolder
    from jobs.service import Service

log = logging.getLogger(__name__)

# "#12" as the footer under a published post says it (publish.footer; "№12" a custom one), or "12"
MEME_NUMBER = re.compile(r"[#№]?([0-9]{1,12})")


class Subscribers(Protocol):
    """What the answers need (bot.telegram.bot_data.BotData has it; so does the VK side's)."""

    settings: Settings
    limits: Limits

    @property
    def service(self) -> Service: ...

    @property
    def holder(self) -> GeneratorHolder: ...


@dataclass
class ServiceSubscribers:
    """Subscribers for a service without Telegram (the local channel): VK's messages only."""

    settings: Settings
    services: Services
    limits: Limits

    @property
    def service(self) -> Service:
        return self.services.service

    @property
    def holder(self) -> GeneratorHolder:
        return self.services.holder


def subscriber_limits(settings: Settings) -> Limits:
    """The per-user limits of [telegram] (they apply to VK's messages too), one per process."""
    tg = settings.telegram
    return Limits(tg.cooldown_seconds, tg.max_concurrent_generations, burst=tg.user_burst,
                  window_seconds=tg.user_window_seconds)


def with_training_note(text: str, service: Service) -> str:
    """`text`, and while the first model trains, the note that the bundled model writes meanwhile."""
    return f"{text}\n\n{texts.FIRST_MODEL_TRAINING}" if service.training_first_model else text


async def refill_pool(service: Service) -> list[int]:
    """Generate subscriber drafts until the /generate pool is full again (in a worker thread)."""
    try:
        return await service.fill_subscriber_pool()
    except DatabaseBusy as exc:   # a full disk, or another process's long lock: one line, not a traceback
        log.warning("refilling the /generate pool stored no drafts: %s; the next refill or pool run tries again", exc)
        return []
    except Exception:  # noqa: BLE001 - the next refill or the pool job tries again
        log.exception("refilling the /generate pool failed")
        return []


def start_refill(subs: Subscribers) -> None:
    """`refill_pool` in the background; at most one refill runs at a time (shared by the networks)."""
    limits = subs.limits
    if limits.refill_task is not None and not limits.refill_task.done():
        return
    limits.refill_task = asyncio.get_running_loop().create_task(refill_pool(subs.service), name="refill-pool")


def flood_notice(limits: Limits, user: Hashable) -> tuple[bool, str | None]:
    """The flood gate for one incoming command: (handle it, the one notice to send or None)."""
    admitted, notify = limits.admit(user)
    if admitted:
        return True, None
    return False, texts.FLOOD.format(seconds=math.ceil(limits.window_seconds)) if notify else None


def _cooling(limits: Limits, user: Hashable) -> tuple[bool, str | None]:
    """(in the cooldown, its one notice or None)."""
    wait = limits.cooldown_left(user)
    if not wait:
        return False, None
    return True, texts.COOLDOWN.format(seconds=wait) if limits.cooldown_notice(user) else None


async def generate_answer(subs: Subscribers, user: Hashable, argument: str) -> tuple[str | None, bool]:
    """/generate: (the reply, whether to top the ready pool up once it is sent): a post from the ready
    pool, or one generated now (continuing `argument` when given). The refill comes after the reply,
    so that it never holds the model before the user has their post."""
    limits = subs.limits
    cooling, notice = _cooling(limits, user)
    if cooling:
        return notice, False
    topic = on_request.topic_of(argument)
    if topic:
        return await _on_topic(subs, user, topic), False
    if argument:
        start_text, problem = check_start_text(argument, subs.settings.telegram.start_text_max_chars)
        if problem:
            return problem, False
        start_text, missing = on_request.fit_to_vocab(subs.holder, start_text)
        if missing:
            return unknown_chars_reply(missing), False
        return await _on_demand(subs, user, start_text), False
    share = subs.service.plan.generate.popular_share
    try:   # waits off the loop while the database is held; marks what it returns as this user's
        draft, popular = await patiently(curation.next_for_subscriber, subs.service.db, served_id(user),
                                         popular=random.random() < share,
                                         stoplist=subs.service.drafting.stoplist)
    except DatabaseBusy as exc:
        log.warning("/generate answered 'busy': %s", exc)
        return texts.DATABASE_BUSY, False
    if popular and draft is not None:   # a liked post of the channel, with its meme number
        limits.touch(user)
        return fit(texts.POPULAR, curation.text_of(draft), id=draft["id"]), False
    if draft is None:
        return await _on_demand(subs, user, ""), True
    limits.touch(user)
    return fit(texts.MEME, draft["text"], id=draft["id"]), True


async def _on_topic(subs: Subscribers, user: Hashable, word: str) -> str:
    """/generate про кота: a post that starts from a line of the community's about the word."""
    try:
        start = await patiently(on_request.topic_start, subs.service.db, word, random.Random(),
                                lambda text: not on_request.fit_to_vocab(subs.holder, text)[1])
    except DatabaseBusy as exc:
        log.warning("/generate answered 'busy': %s", exc)
        return texts.DATABASE_BUSY
    start, missing = on_request.fit_to_vocab(subs.holder, start)
    if missing:   # the corpus was searched for it: a request like any topic's, under the cooldown
        subs.limits.touch(user)
        return texts.TOPIC_UNKNOWN.format(word=word)
    reply = await _on_demand(subs, user, start)
    return texts.TOPIC_FAILED.format(word=word) if reply == texts.NOTHING_GOOD else reply


def served_id(user: Hashable) -> str:
    """How `served` and ratings name a subscriber: a Telegram user's id, "vk:<id>" for a VK user."""
    return ":".join(map(str, user)) if isinstance(user, tuple) else str(user)


async def _claim(subs: Subscribers, user: Hashable, draft: dict) -> bool:
    """Record the draft as this subscriber's; False when they already got its text."""
    try:
        return await patiently(curation.claim_for, subs.service.db, served_id(user), draft)
    except DatabaseBusy as exc:   # sent unrecorded: at worst they may get this text again one day
        log.warning("draft %s not recorded as served to %s: %s", draft["id"], user, exc)
        return True


async def _on_demand(subs: Subscribers, user: Hashable, start_text: str) -> str:
    """Generate one post now in a worker thread, if a generation slot is free."""
    limits = subs.limits
    if not limits.try_acquire():
        return texts.BUSY
    limits.touch(user)
    try:
        draft = await on_request.generate_for_subscriber(subs.service.drafting, start_text)
    except ModelError as exc:
        log.info("start text refused by the model: %s", exc)
        return texts.START_REFUSED if start_text else texts.GENERATOR_FAILED
    except DatabaseBusy as exc:
        log.warning("/generate answered 'busy': %s", exc)
        return texts.DATABASE_BUSY
    except Exception:  # noqa: BLE001 - the user gets a reply; the log gets the traceback
        log.exception("on-demand generation failed")
        return texts.GENERATOR_FAILED
    finally:
        limits.release()
    if draft is None or not await _claim(subs, user, draft):   # the same text again: rare
        return texts.NOTHING_GOOD
    return fit(texts.MEME, draft["text"], id=draft["id"])


async def meme_answer(subs: Subscribers, user: Hashable, args: list[str]) -> str | None:
    """/meme N: meme N again, regenerated from its seed, model version and options."""
    number = MEME_NUMBER.fullmatch(args[0]) if len(args) == 1 else None   # str.isdigit() accepts '²' and '٣'
    if number is None:
        return texts.MEME_USAGE
    meme_id = int(number.group(1))
    drafting = subs.service.drafting
    draft = on_request.shown_meme(drafting.db, meme_id, served_id(user))
    if draft is None:
        return texts.MEME_NOT_FOUND.format(id=meme_id)
    if draft["final_text"]:  # published as a moderator edited it
        if drafting.screen_shown(draft, draft["final_text"]):
            return texts.MEME_WITHHELD.format(id=meme_id)
        return fit(texts.MEME, draft["final_text"], id=meme_id)
    limits = subs.limits
    cooling, notice = _cooling(limits, user)
    if cooling:
        return notice
    if not limits.try_acquire():
        return texts.BUSY
    limits.touch(user)
    try:
        text, regenerated = await drafting.regenerate(draft)
    finally:
        limits.release()
    reason = drafting.screen_shown(draft, text)
    if reason:
        log.info("meme %s withheld: %s", meme_id, reason)
        return texts.MEME_WITHHELD.format(id=meme_id)
    # the note about the archive inside the frame: the text is shortened to leave room for it
    return fit(texts.MEME if regenerated else texts.MEME + "\n\n" + texts.MEME_FROM_ARCHIVE, text, id=meme_id)


def top_answer(service: Service) -> str:
    """/top: the best published posts of the last 7 days by reactions, with a link where one is known."""
    lines = []
    for place, row in enumerate(on_request.top_of_week(service.db, service.drafting.stoplist), start=1):
        preview = " / ".join(line for line in row["text"].splitlines() if line.strip() and line.strip() != "@")
        preview = preview if len(preview) <= 120 else preview[:119] + "…"
        line = texts.TOP_LINE.format(place=place, id=row["draft_id"], score=row["score"], preview=preview)
        link = post_link(row["network"], str(row["chat_id"]), str(row["message_id"]))
        lines.append(f"{line}\n{link}" if link else line)
    return "\n\n".join([texts.TOP_HEADER, *lines]) if lines else texts.TOP_EMPTY


def post_link(network: str, chat_id: str, message_id: str) -> str | None:
    """The public link of a published post: a Telegram channel with a @username, a VK wall."""
    if network == "telegram" and chat_id.startswith("@"):
        return f"https://t.me/{chat_id[1:]}/{message_id}"
    if network == "vk" and chat_id.lstrip("-").isdigit():
        return f"https://vk.com/wall{chat_id}_{message_id}"
    return None
