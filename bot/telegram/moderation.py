"""Handlers for the moderators' chat: Approve / Reject (with a canned reason) / Regenerate buttons
under a draft, votes towards `moderation.votes`, approval of an edited text by replying to a draft,
rejection with a reason by replying "/reject TEXT", and the chat's help. The decisions themselves
are jobs/decisions.py's; the chat as jobs/'s Moderation seam is bot/telegram/moderators_chat.py;
the queue, pause and statistics commands are bot/telegram/desk.py's."""
from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from telegram import Bot, CallbackQuery, Message, Update, User
from telegram.constants import MessageLimit
from telegram.error import BadRequest

from bot import texts
from bot.fit import shortened
from bot.telegram.bot_data import BotData, Context
from bot.telegram.error_handler import busy_text
from bot.telegram.moderators_chat import draft_message, post_of_edit
from bot.telegram.subscribers import with_training_note
from corpus.statuses import DraftStatus
from jobs import decisions, desk, notices
from jobs.decisions import EditOutcome, Moderator, VoteOutcome
from jobs.patience import DatabaseBusy

log = logging.getLogger(__name__)

CALLBACK = re.compile(r"d:([arg]|r[0-9]):([1-9][0-9]{0,11})")
HEADER = re.compile(re.escape(texts.DRAFT.split("{id}")[0]) + r"([1-9][0-9]{0,11})\n")   # "Черновик #12"
QUEUED = re.compile(re.escape(texts.QUEUE_ITEM.split("{id}")[0]) + r"([1-9][0-9]{0,11})\n")   # "В очереди: мем #12"
ACTIONS = {"a": "approve", "r": "reject", "g": "regenerate"}
DECIDED = {"approve": texts.DECIDED_APPROVE, "reject": texts.DECIDED_REJECT, "regenerate": texts.DECIDED_REGENERATE,
           "edit": texts.DECIDED_EDIT}   # "edit": the quorum approved a moderator's edited text


def edit_refusal(reason: str) -> str:
    """The reply to a moderator whose edit the screen refused (jobs.pool.screen_edit's reason)."""
    if reason.startswith("stop-list: "):
        return texts.EDIT_REFUSED.format(why=texts.EDIT_STOPLIST.format(found=reason.removeprefix("stop-list: ")))
    return texts.EDIT_REFUSED.format(why=texts.EDIT_COPY)


def already_decided(bot_data: BotData, draft_id: int) -> str:
    """The answer to a vote or an edit on a draft decided meanwhile: an approved one says how to
    take the approval back (↩️ in /queue)."""
    draft = desk.draft(bot_data.db, draft_id)
    status = draft["status"] if draft is not None else None
    if status == DraftStatus.QUEUED:
        return texts.ALREADY_APPROVED
    if status == DraftStatus.PUBLISHED:
        return texts.ALREADY_PUBLISHED
    return texts.ALREADY_DECIDED


def _who(user: User) -> str:
    return f"@{user.username}" if user.username else user.full_name


def _moderator(user: User) -> Moderator:
    return Moderator(user.id, _who(user))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%d.%m %H:%M UTC")


async def _show_decision(bot: Bot, draft: dict[str, Any], line: str, votes: list[dict] | None = None,
                         need: int = 1) -> None:
    """Edit the draft's message: the draft, the votes, then who decided and when; no buttons left."""
    await _edit(bot, draft, draft_message(draft, votes or (), need, decided=line), None)


async def _show_votes(bot: Bot, bot_data: BotData, draft: dict[str, Any], votes: list[dict]) -> None:
    """Edit the draft's message to show the votes so far; the buttons stay."""
    moderation = bot_data.moderation
    await _edit(bot, draft, draft_message(draft, votes, moderation.need), moderation.keyboard(draft["id"]))


async def _edit(bot: Bot, draft: dict[str, Any], text: str, markup: Any) -> None:
    try:
        await bot.edit_message_text(text, chat_id=draft["moderation_chat_id"],
                                    message_id=int(draft["moderation_message_id"]), reply_markup=markup)
    except BadRequest as exc:  # deleted meanwhile, or already showing it
        log.info("could not edit the message of draft %s: %s", draft["id"], exc)


def _decided_line(outcome: VoteOutcome, user: User, reason: str | None) -> str:
    action = outcome.decided or ""
    if action == "reject" and reason:
        return texts.DECIDED_REJECT_WHY.format(reason=reason, who=_who(user), when=_now())
    return DECIDED[action].format(who=_who(user), when=_now())


async def cast(context: Context, draft: dict[str, Any], action: str, user: User, reason: str | None) -> VoteOutcome:
    """One moderator's vote on a pending draft; the message shows the votes or the decision (a
    decided 🔄's replacement is the caller's: `replace_draft`)."""
    bot_data = context.bot_data
    outcome = await decisions.vote(bot_data.db, bot_data.service.plan.moderation, draft["id"], action,
                                   _moderator(user), reason)
    if outcome.already_decided:
        return outcome
    fresh = decisions.draft_for_reply(bot_data.db, draft["moderation_chat_id"], draft["moderation_message_id"])
    shown = fresh or draft
    if outcome.decided is None:
        await _show_votes(context.bot, bot_data, shown, outcome.votes)
        return outcome
    if bot_data.moderation.need > 1:
        await _show_decision(context.bot, shown, _decided_line(outcome, user, reason), outcome.votes,
                             bot_data.moderation.need)
    else:
        await _show_decision(context.bot, shown, _decided_line(outcome, user, reason))
    return outcome


async def moderators_press(update: Update, context: Context, pattern: re.Pattern[str]
                           ) -> tuple[CallbackQuery, re.Match[str] | None] | None:
    """A button press by a moderator (anyone else is told "not allowed": None), with its data
    matched against `pattern` (None when it does not match)."""
    query = update.callback_query
    if query is None:
        return None
    if not context.bot_data.moderation.allowed(query.from_user):
        await query.answer(texts.NOT_ALLOWED, show_alert=True)
        return None
    return query, pattern.fullmatch(query.data or "")


async def on_button(update: Update, context: Context) -> None:
    """Approve, reject or regenerate a draft from its inline buttons (moderators only)."""
    pressed, bot_data = await moderators_press(update, context, CALLBACK), context.bot_data
    if pressed is None:
        return
    query, match = pressed
    message = query.message
    draft = decisions.draft_shown_in(bot_data.db, int(match.group(2)), message.chat.id, message.message_id) \
        if match and message is not None else None
    if draft is None or match is None:
        await query.answer(texts.STALE_BUTTON)
        return
    code, reason = match.group(1), None
    if code.startswith("r") and len(code) == 2:
        reasons = bot_data.moderation.reasons
        if int(code[1]) >= len(reasons):
            await query.answer(texts.STALE_BUTTON)
            return
        code, reason = "r", reasons[int(code[1])]
    try:
        outcome = await cast(context, draft, ACTIONS[code], query.from_user, reason)
    except DatabaseBusy as exc:   # a backup or the nightly export holding the database: a polite answer
        log.warning("a vote on draft %s answered 'busy': %s", draft["id"], exc)
        await query.answer(busy_text(exc), show_alert=True)
        return
    if outcome.already_decided:
        await query.answer(already_decided(bot_data, draft["id"]))
    elif outcome.decided is None:
        await query.answer(texts.ANSWER_VOTED.format(have=len(outcome.votes), need=bot_data.moderation.need))
    else:
        await query.answer(texts.ANSWER_DONE)
    if outcome.decided == "regenerate":   # after the answer: the model may be busy longer than a press may wait
        await replace_draft(bot_data)


async def replace_draft(bot_data: BotData) -> None:
    """Generate a replacement channel draft (worker thread) and show it to the moderators."""
    moderation = bot_data.moderation
    try:
        draft = await decisions.replace_draft(bot_data.service)
    except Exception as exc:  # noqa: BLE001 - the moderators are told; the pool job fills later
        log.exception("regenerating a draft failed")
        await moderation.notify(texts.REGENERATE_FAILED.format(error=notices.reason(exc)))
        return
    if draft is None:
        await moderation.notify(texts.REGENERATE_FAILED.format(error=texts.REGENERATE_ALL_SCREENED))


def replied_draft(context: Context, message: Message) -> dict[str, Any] | None:
    """The draft that `message`, a reply in the moderators' chat, answers: the one whose message it
    replies to, also when that is an older message of the draft's (the bot's, headed "Черновик #N") or
    an approved draft's /queue message ("В очереди: мем #N")."""
    replied = message.reply_to_message
    if replied is None:
        return None
    header = HEADER.match(replied.text or "") or QUEUED.match(replied.text or "")
    named = int(header.group(1)) if header and replied.from_user and replied.from_user.id == context.bot.id else None
    return decisions.draft_for_reply(context.bot_data.db, message.chat_id, replied.message_id, named)


async def on_edit_reply(update: Update, context: Context) -> None:
    """Approve the edited version when a moderator replies to a draft with corrected text."""
    message, user, bot_data = update.effective_message, update.effective_user, context.bot_data
    if message is None or message.reply_to_message is None:
        return
    draft = replied_draft(context, message)
    if draft is None:
        return  # a reply to something that is not a draft: ordinary chat
    if user is None or not bot_data.moderation.allowed(user):
        await message.reply_text(texts.NOT_ALLOWED)
        return
    text = post_of_edit((message.text or "").replace("\r\n", "\n"), draft, message.reply_to_message.text)
    if not text:
        await message.reply_text(texts.EDIT_EMPTY)
        return
    if shortened(text):   # a copy of a message that showed the post in part: its end would be lost
        await message.reply_text(texts.EDIT_SHORTENED)
        return
    if len(text) > MessageLimit.MAX_TEXT_LENGTH:
        await message.reply_text(texts.EDIT_TOO_LONG.format(length=len(text)))
        return
    if not decisions.looks_like_edit(draft, text):
        await message.reply_text(texts.EDIT_NOT_A_POST)
        return
    service = bot_data.service
    try:
        outcome, refused = await decisions.approve_edit(service.drafting, service.plan.moderation, draft["id"],
                                                        text, _moderator(user))
    except DatabaseBusy as exc:
        log.warning("an edit of draft %s answered 'busy': %s", draft["id"], exc)
        await message.reply_text(busy_text(exc))
        return
    if refused is not None:
        log.info("edit of draft %s by %s refused: %s", draft["id"], user.id, refused)
        await message.reply_text(edit_refusal(refused))
        return
    if outcome is EditOutcome.ALREADY_DECIDED:
        await message.reply_text(already_decided(bot_data, draft["id"]))
        return
    if outcome is EditOutcome.UNDER_WAY:
        await message.reply_text(texts.EDIT_UNDER_WAY)
        return
    if outcome is EditOutcome.NEEDS_QUORUM:
        await message.reply_text(texts.EDIT_NEEDS_QUORUM)
        return
    fresh = decisions.draft_for_reply(bot_data.db, draft["moderation_chat_id"], draft["moderation_message_id"]) or draft
    votes = decisions.votes(bot_data.db, draft["id"])
    need = bot_data.moderation.need
    if outcome is EditOutcome.VOTED:
        await _show_votes(context.bot, bot_data, fresh, votes)
        await message.reply_text(texts.EDIT_VOTED.format(have=len(votes), need=need))
        return
    await _show_decision(context.bot, fresh, texts.DECIDED_EDIT.format(who=_who(user), when=_now()),
                         votes if need > 1 else None, need)
    await message.reply_text(texts.EDIT_DONE.format(id=draft["id"]))


async def reject_command(update: Update, context: Context) -> None:
    """"/reject REASON" in reply to a draft: a vote to reject it, with that reason."""
    message, user, bot_data = update.effective_message, update.effective_user, context.bot_data
    if message is None:
        return
    if user is None or not bot_data.moderation.allowed(user):
        await message.reply_text(texts.NOT_ALLOWED)
        return
    reason = " ".join(context.args or []).strip()[:200]
    draft = replied_draft(context, message)
    if draft is None or not reason:
        await message.reply_text(texts.REJECT_USAGE)
        return
    try:
        outcome = await cast(context, draft, "reject", user, reason)
    except DatabaseBusy as exc:
        log.warning("/reject of draft %s answered 'busy': %s", draft["id"], exc)
        await message.reply_text(busy_text(exc))
        return
    if outcome.already_decided:
        await message.reply_text(already_decided(bot_data, draft["id"]))
    elif outcome.decided is None:
        await message.reply_text(texts.REJECT_VOTED.format(reason=reason, have=len(outcome.votes),
                                                           need=bot_data.moderation.need))
    else:
        await message.reply_text(texts.REJECT_DONE.format(id=draft["id"], reason=reason))
    if outcome.decided == "regenerate":   # a 🔄 vote was among those that decided it
        await replace_draft(bot_data)


async def moderator_help(update: Update, context: Context) -> None:
    """Explain the buttons and the edit-by-reply in the moderators' chat."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(with_training_note(texts.MODERATOR_HELP, context))
