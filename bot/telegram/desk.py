"""The moderators' desk in their chat: `/queue` (pending drafts shown again with their buttons,
then the approved ones in publishing order with the slot and destination each will take and
buttons to move them), `/pause` and `/resume` publishing (every destination or one), `/stats
[days]` (a PNG and its numbers). The use-cases are jobs/desk.py's and jobs/desk_stats.py's.

An approved draft's buttons are `q:<n|l|h1|h6|h24|p>:<draft id>:<approval>`: publish now, later
(after the others), hold 1 / 6 / 24 hours, back to pending. They act only while the draft is still
queued under the approval its message showed (jobs.desk.approval): a press under a message from
before the draft went back to pending, or before its text was edited, is refused as out of date and
the message is redrawn as the draft is now."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden

from bot import texts
from bot.fit import LIMIT, in_messages, shorten
from bot.secrets import REDACTOR
from bot.telegram.bot_data import BotData, Context
from bot.telegram.error_handler import busy_text, telegram_said
from bot.telegram.moderation import moderators_press
from bot.telegram.moderators_chat import draft_message
from corpus.statuses import DraftStatus
from jobs import desk, desk_stats, notices
from jobs.patience import DatabaseBusy, patiently

log = logging.getLogger(__name__)

QUEUE_CALLBACK = re.compile(r"q:(n|l|h1|h6|h24|p):([1-9][0-9]{0,11}):([0-9]{1,12})")
QUEUE_SHOWN = 10           # drafts of each kind /queue shows (oldest first)
PREVIEW_CHARS = 600        # of an approved draft's text in its /queue message
CALLBACK_ANSWER_CHARS = 200   # Telegram's limit on a button press's answer


def _who(user) -> str:
    return f"@{user.username}" if user.username else user.full_name


def queue_keyboard(draft_id: int, approval: int) -> InlineKeyboardMarkup:
    """The buttons of an approved draft's /queue message, tied to the approval it shows."""
    tail = f"{draft_id}:{approval}"
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(texts.BUTTON_NOW, callback_data=f"q:n:{tail}"),
         InlineKeyboardButton(texts.BUTTON_LATER, callback_data=f"q:l:{tail}")],
        [InlineKeyboardButton(texts.BUTTON_HOLD.format(hours=h), callback_data=f"q:h{h}:{tail}")
         for h in desk.HOLD_HOURS],
        [InlineKeyboardButton(texts.BUTTON_UNAPPROVE, callback_data=f"q:p:{tail}")],
    ])


def _local(moment: dt.datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d.%m %H:%M")


def _places(placements: list[desk.Placement], timezone: str) -> str:
    """One line per distinct time: "→ telegram @chan, vk -1: 07.12 13:00"."""
    groups: dict[str, list[str]] = {}
    for p in placements:
        if p.had:
            when = texts.QUEUE_PLACE_HAD
        elif p.paused:
            when = texts.QUEUE_PLACE_PAUSED
        elif p.at is None:
            when = texts.QUEUE_PLACE_NONE
        else:
            when = _local(p.at, timezone)
        groups.setdefault(when, []).append(p.where)
    return "\n".join(texts.QUEUE_PLACE.format(where=", ".join(names), when=when) for when, names in groups.items())


def _plan(bot_data: BotData) -> dict[int, list[desk.Placement]]:
    service = bot_data.service
    schedule = service.plan.schedule
    return desk.plan(service.db, service.publishers, schedule.publish_times, schedule.timezone,
                     dt.datetime.now(dt.timezone.utc))


def queue_item(draft: dict[str, Any], placements: list[desk.Placement], timezone: str) -> str:
    text = shorten(draft["final_text"] or draft["text"], PREVIEW_CHARS)   # a copy of it is refused as an edit
    places = _places(placements, timezone)
    if draft["not_before"]:
        places += " " + texts.QUEUE_HELD.format(when=_local(dt.datetime.fromisoformat(draft["not_before"]), timezone))
    return texts.QUEUE_ITEM.format(id=draft["id"], places=places, text=text)


def _paused_line(bot_data: BotData) -> str:
    stopped = desk.paused(bot_data.db)
    if not stopped:
        return ""
    return texts.QUEUE_PAUSED.format(where=", ".join(f"{name} ({info.get('by', '?')})"
                                                     for name, info in stopped.items()))


async def _moderator(update: Update, context: Context) -> bool:
    """True for a moderator; anyone else is told "not allowed"."""
    user, message = update.effective_user, update.effective_message
    if context.bot_data.moderation.allowed(user):
        return True
    if message is not None:
        await message.reply_text(texts.NOT_ALLOWED)
    return False


async def queue(update: Update, context: Context) -> None:
    """/queue: the header, the pending drafts shown anew (their buttons move to the new message),
    then the approved ones in publishing order, each with its slot, destinations and buttons."""
    message, bot_data = update.effective_message, context.bot_data
    if message is None or not await _moderator(update, context):
        return
    service, db = bot_data.service, bot_data.db
    schedule = service.plan.schedule
    pending, queued = desk.waiting(db)
    header = texts.QUEUE_HEADER.format(pending=len(pending), queued=len(queued),
                                       times=", ".join(schedule.publish_times), timezone=schedule.timezone)
    lines = [header, _paused_line(bot_data)]
    if not pending and not queued:
        lines.append(texts.QUEUE_EMPTY)
    await message.reply_text("\n".join(line for line in lines if line))
    moderation = bot_data.moderation
    for draft in pending[:QUEUE_SHOWN]:
        old = draft["moderation_message_id"]
        votes = desk.votes(db, draft["id"])
        sent = await context.bot.send_message(message.chat_id, draft_message(draft, votes, moderation.need),
                                              reply_markup=moderation.keyboard(draft["id"]))
        try:   # a backup or the nightly export holding the database: waited out, else a polite answer
            await patiently(desk.shown_at, db, draft["id"], sent.chat_id, sent.message_id)
        except DatabaseBusy as exc:
            log.warning("/queue answered 'busy': %s", exc)
            try:   # not recorded: the buttons stay under the draft's old message, not this copy
                await context.bot.edit_message_reply_markup(sent.chat_id, sent.message_id, reply_markup=None)
            except BadRequest as error:
                log.info("could not take the buttons off draft %s's copy: %s", draft["id"], error)
            await message.reply_text(busy_text(exc))
            return
        if old and str(draft["moderation_chat_id"]) == str(sent.chat_id):
            try:  # the old message's buttons would be out of date: take them away
                await context.bot.edit_message_reply_markup(sent.chat_id, int(old), reply_markup=None)
            except BadRequest as exc:
                log.info("could not take the buttons off draft %s's old message: %s", draft["id"], exc)
    placements = _plan(bot_data)
    for draft in queued[:QUEUE_SHOWN]:
        await context.bot.send_message(message.chat_id, queue_item(draft, placements[draft["id"]], schedule.timezone),
                                       reply_markup=queue_keyboard(draft["id"], desk.approval(db, draft["id"])))
    more = max(len(pending) - QUEUE_SHOWN, 0) + max(len(queued) - QUEUE_SHOWN, 0)
    if more:
        await context.bot.send_message(message.chat_id, texts.QUEUE_MORE.format(more=more))


async def on_queue_button(update: Update, context: Context) -> None:
    """An approved draft's button under its /queue message."""
    pressed, bot_data = await moderators_press(update, context, QUEUE_CALLBACK), context.bot_data
    if pressed is None:
        return
    query, match = pressed
    if match is None or query.message is None:
        await query.answer(texts.STALE_BUTTON)
        return
    action, draft_id, approval = match.group(1), int(match.group(2)), int(match.group(3))
    service, db, user = bot_data.service, bot_data.db, query.from_user
    draft = desk.draft(db, draft_id)
    if draft is None or draft["status"] != DraftStatus.QUEUED or draft["purpose"] != "channel":
        await query.answer(texts.QUEUE_GONE.format(id=draft_id))
        await _refresh(context, query.message, draft_id, buttons=False)
        return
    if desk.approval(db, draft_id) != approval:   # approved again, or edited, since this message was drawn
        await query.answer(texts.STALE_BUTTON)
        await _refresh(context, query.message, draft_id, buttons=True)
        return
    if action == "n":
        outcomes = await desk.publish_now(db, draft, service.publishers, service.moderation.notify,
                                          service.publish_state, service.plan.publish)
        sent = [name for name, outcome in outcomes.items() if outcome == "sent"]
        try:   # the audit line: what was sent is sent, and the press is answered either way
            await patiently(desk.record, db, draft_id, "publish_now", actor_id=user.id, actor_name=_who(user),
                            detail=", ".join(sent) or None)
        except DatabaseBusy as exc:
            log.warning("the publish-now press on draft %s by %s was not recorded: %s", draft_id, user.id, exc)
        await query.answer(now_answer(outcomes))
    elif action == "l":
        if await _moved(query, _later, db, draft_id, user.id, _who(user)) is False:
            return
        await query.answer(texts.ANSWER_MOVED)
    elif action.startswith("h"):
        now = dt.datetime.now(dt.timezone.utc)
        slots = [p.at for p in _plan(bot_data).get(draft_id, []) if p.at is not None]
        until = await _moved(query, _hold, db, draft_id, int(action[1:]), min(slots) if slots else None, now,
                             user.id, _who(user))
        if until is False:
            return
        timezone = service.plan.schedule.timezone
        await query.answer(texts.ANSWER_HELD.format(when=_local(until, timezone)) if until
                           else texts.QUEUE_GONE.format(id=draft_id))
    else:
        try:
            back = await patiently(desk.back_to_pending, db, draft_id, actor_id=user.id, actor_name=_who(user))
        except DatabaseBusy as exc:
            log.warning("a /queue button answered 'busy': %s", exc)
            await query.answer(busy_text(exc))
            return
        if not back:
            await query.answer(texts.ANSWER_UNDER_WAY)
            return
        await query.answer(texts.ANSWER_UNAPPROVED)
        await _refresh(context, query.message, draft_id, buttons=False)
        await service.dispatch_moderation()   # shown anew, with the vote buttons
        return
    await _refresh(context, query.message, draft_id, buttons=True)


def now_answer(outcomes: dict[str, str]) -> str:
    """The answer to 🚀: where it went out and, for every other destination it was for, why not."""
    if not outcomes:
        return texts.ANSWER_NOT_PUBLISHED
    grouped: dict[str, list[str]] = {}
    for name, outcome in outcomes.items():
        grouped.setdefault(outcome, []).append(name)
    lines = [texts.ANSWER_PUBLISHED.format(where=", ".join(grouped.pop("sent")))] if "sent" in grouped else []
    lines += [texts.ANSWER_NOT_SENT.format(where=", ".join(names), why=texts.NOT_SENT_WHY[outcome])
              for outcome, names in grouped.items()]
    text = "\n".join(lines)
    return text if len(text) <= CALLBACK_ANSWER_CHARS else text[:CALLBACK_ANSWER_CHARS - 1] + "…"


def _later(db, draft_id: int, actor_id: int, actor_name: str) -> None:
    with db.atomic():   # the move and its record together: a lock met halfway leaves neither
        desk.later(db, draft_id)
        desk.record(db, draft_id, "later", actor_id=actor_id, actor_name=actor_name)


def _hold(db, draft_id: int, hours: int, slot, now, actor_id: int, actor_name: str) -> dt.datetime | None:
    with db.atomic():
        until = desk.hold(db, draft_id, hours, slot, now)
        desk.record(db, draft_id, "hold", actor_id=actor_id, actor_name=actor_name,
                    detail=until.isoformat() if until else None)
    return until


async def _moved(query: Any, call, db, *args: Any) -> Any:
    """`call(db, *args)`, waited out while another process holds the database; False (the press
    answered politely: nothing changed) when the lock outlasts the busy timeout."""
    try:
        return await patiently(call, db, *args)
    except DatabaseBusy as exc:
        log.warning("a /queue button answered 'busy': %s", exc)
        await query.answer(busy_text(exc))
        return False


async def _refresh(context: Context, message: Any, draft_id: int, *, buttons: bool) -> None:
    """Re-draw a /queue message after its draft moved (or left the queue: no buttons)."""
    bot_data = context.bot_data
    draft = desk.draft(bot_data.db, draft_id)
    if draft is not None and draft["status"] == DraftStatus.QUEUED:
        text = queue_item(draft, _plan(bot_data).get(draft_id, []), bot_data.service.plan.schedule.timezone)
        markup = queue_keyboard(draft_id, desk.approval(bot_data.db, draft_id)) if buttons else None
    else:
        text, markup = texts.QUEUE_GONE.format(id=draft_id), None
    try:
        await context.bot.edit_message_text(text, chat_id=message.chat.id, message_id=message.message_id,
                                            reply_markup=markup)
    except BadRequest as exc:
        log.info("could not redraw the queue message of draft %s: %s", draft_id, exc)


async def pause(update: Update, context: Context) -> None:
    """/pause [destination]: no slot publishes there until /resume."""
    await _pause_or_resume(update, context, stop=True)


async def resume(update: Update, context: Context) -> None:
    """/resume [destination]."""
    await _pause_or_resume(update, context, stop=False)


async def _pause_or_resume(update: Update, context: Context, *, stop: bool) -> None:
    message, bot_data = update.effective_message, context.bot_data
    if message is None or not await _moderator(update, context):
        return
    service = bot_data.service
    name = " ".join(context.args or [])
    names = desk.match_destinations(service.publishers, name)
    if not names:
        known = ", ".join(desk.where(p) for p in service.publishers)
        await message.reply_text(shorten(texts.PAUSE_UNKNOWN.format(name=name, known=known), LIMIT))
        return
    user = update.effective_user
    try:   # a backup or the nightly export holding the database: waited out, else a polite answer
        if stop:
            await patiently(desk.pause, bot_data.db, names, _who(user) if user else "?")
            log.info("publishing paused for %s by %s", ", ".join(names), _who(user) if user else "?")
            await message.reply_text(texts.PAUSE_DONE.format(where=", ".join(names)))
            return
        stopped = desk.paused(bot_data.db)
        was = [n for n in names if n in stopped]
        if name.strip().lower() in desk.EVERY:   # also a destination paused under a name the config no longer has
            was += [n for n in stopped if n not in names]
        if not was:
            await message.reply_text(texts.PAUSE_NONE)
            return
        await patiently(desk.resume, bot_data.db, was)
    except DatabaseBusy as exc:
        log.warning("/pause or /resume answered 'busy': %s", exc)
        await message.reply_text(busy_text(exc))
        return
    log.info("publishing resumed for %s", ", ".join(was))
    await message.reply_text(texts.RESUME_DONE.format(where=", ".join(was)))


async def stats(update: Update, context: Context) -> None:
    """/stats [days]: the chart as a photo (also kept as <data_dir>/stats.png), its numbers as text."""
    message, bot_data = update.effective_message, context.bot_data
    if message is None or not await _moderator(update, context):
        return
    args = context.args or []
    days = desk_stats.DEFAULT_DAYS
    if args:
        if len(args) != 1 or not re.fullmatch(r"[1-9][0-9]{0,2}", args[0]) or int(args[0]) > desk_stats.MAX_DAYS:
            await message.reply_text(texts.STATS_USAGE.format(most=desk_stats.MAX_DAYS))
            return
        days = int(args[0])
    figures = desk_stats.gather(bot_data.db, days)
    path = bot_data.settings.data_dir / "stats.png"
    try:
        await asyncio.to_thread(desk_stats.write_chart, figures, path)
    except Exception as exc:  # noqa: BLE001 - the numbers still go out
        log.exception("the /stats chart failed")
        await message.reply_text(texts.STATS_FAILED.format(error=notices.reason(exc)))
    else:
        try:   # a group that forbids the bot photos: the numbers still go out
            with open(path, "rb") as picture:
                await context.bot.send_photo(message.chat_id, picture, caption=texts.STATS_CAPTION.format(days=days))
        except (BadRequest, Forbidden) as exc:
            log.warning("the /stats chart was not sent: %s", REDACTOR.redact(str(exc)))
            await message.reply_text(texts.STATS_PHOTO_REFUSED.format(said=telegram_said(exc)))
    for text in in_messages(desk_stats.lines(figures)):   # a line per day: /stats 366 fills several
        await message.reply_text(text)
