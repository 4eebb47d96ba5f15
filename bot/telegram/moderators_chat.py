"""The moderators' chat as jobs/'s Moderation seam: drafts sent with Approve / Reject / Regenerate
buttons, notices and reminders (the handlers for the buttons and replies: bot/telegram/moderation.py).

Callback data is `d:<a|r|g>:<draft id>`, or `d:r<N>:<draft id>` for the Nth canned rejection
reason (at most 17 bytes), validated against the draft's stored moderation message, so tampered or
stale buttons change nothing. The buttons of an approved draft in `/queue` are `q:<action>:<id>`
(bot/telegram/desk.py); they act only on a draft that is still approved.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, User
from telegram.constants import MessageLimit
from telegram.error import TelegramError

from bot import texts
from bot.secrets import REDACTOR
from bot.fit import LIMIT, fit
from jobs.moderation import ModerationUnavailable

log = logging.getLogger(__name__)


def keyboard(draft_id: int, reasons: Sequence[str] = ()) -> InlineKeyboardMarkup:
    """✅ ❌ 🔄 under a pending draft, and a row of canned rejection reasons."""
    rows = [[
        InlineKeyboardButton(texts.BUTTON_APPROVE, callback_data=f"d:a:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REJECT, callback_data=f"d:r:{draft_id}"),
        InlineKeyboardButton(texts.BUTTON_REGENERATE, callback_data=f"d:g:{draft_id}"),
    ]]
    if reasons:
        rows.append([InlineKeyboardButton(texts.BUTTON_REJECT_WITH.format(reason=reason),
                                          callback_data=f"d:r{index}:{draft_id}")
                     for index, reason in enumerate(reasons)])
    return InlineKeyboardMarkup(rows)


def votes_line(votes: Sequence[dict[str, Any]], need: int) -> str:
    """Who voted what on a draft (empty when nobody did yet)."""
    if not votes:
        return ""
    shown = []
    for v in votes:
        who = v["actor_name"] or v["actor_id"]
        if v["vote"] == "approve":
            shown.append(texts.VOTE_APPROVE.format(who=who))
        elif v["vote"] == "edit":
            shown.append(texts.VOTE_EDIT.format(who=who))
        elif v["vote"] == "regenerate":
            shown.append(texts.VOTE_REGENERATE.format(who=who))
        elif v["reason"]:
            shown.append(texts.VOTE_REJECT_WHY.format(who=who, reason=v["reason"]))
        else:
            shown.append(texts.VOTE_REJECT.format(who=who))
    return texts.VOTES.format(have=len(votes), need=need, votes=" · ".join(shown))


def draft_message(draft: dict[str, Any], votes: Sequence[dict[str, Any]] = (), need: int = 1,
                  decided: str | None = None) -> str:
    """The draft (a moderator's pending edit in its place), its score in one line when it was
    measured (jobs.pool.score), the votes so far and, once decided, who decided it and when."""
    tail = []
    if draft.get("score") is not None:
        grammar = "—" if draft.get("grammar") is None else f"{draft['grammar']:.0%}"
        tail.append(texts.DRAFT_SCORE.format(score=draft["score"], grammar=grammar,
                                             shared=draft.get("shared_chars") or 0))
    counted = votes_line(votes, need)
    if counted:
        tail.append(counted)
    if decided:
        tail.append(decided)
    ending = "".join(f"\n\n{line}" for line in tail)
    # the score, the votes and the decision always show; a post longer than the message allows is shortened
    return fit(texts.DRAFT, draft.get("final_text") or draft["text"], LIMIT - len(ending), id=draft["id"]) + ending


def post_of_edit(text: str, draft: dict[str, Any], shown: str | None) -> str:
    """A moderator's edit by reply as the post: without the lines the bot put around the draft in
    `shown`, its message (the header above, or /queue's, the score, votes and decision lines below), which come
    back when the moderator copies the whole message to correct a word in it."""
    paragraphs = text.split("\n\n")
    above = {texts.DRAFT.format(id=draft["id"], text="").strip(), (shown or "").split("\n\n")[0].strip()}
    if paragraphs[0].strip() in above:   # the header ("Черновик #N", or /queue's lines of an approved draft)
        paragraphs = paragraphs[1:]
    post = set((draft.get("final_text") or draft["text"]).split("\n\n"))
    frame = {p.strip() for p in (shown or "").split("\n\n")[1:] if p not in post}
    while paragraphs and paragraphs[-1].strip() in frame:
        paragraphs.pop()
    return "\n\n".join(paragraphs).strip()


class TelegramModeration:
    """jobs.moderation.Moderation for Telegram. Enabled when moderators and their chat are set."""

    def __init__(self, bot: Bot, chat_id: int | str, moderators: list[int], reasons: Sequence[str] = (),
                 need: int = 1) -> None:
        self.bot, self.chat_id = bot, chat_id
        self.moderators = frozenset(int(m) for m in moderators)
        self.enabled = bool(self.moderators and chat_id)
        self.reasons, self.need = list(reasons), need

    def keyboard(self, draft_id: int) -> InlineKeyboardMarkup:
        return keyboard(draft_id, self.reasons)

    async def submit(self, draft: dict[str, Any]) -> tuple[str, str]:
        try:
            message = await self.bot.send_message(self.chat_id, draft_message(draft, need=self.need),
                                                  reply_markup=self.keyboard(draft["id"]))
        except TelegramError as exc:  # its words may quote the request's URL, token and all
            raise ModerationUnavailable(f"{type(exc).__name__}: {REDACTOR.redact(str(exc))}") from exc
        return str(message.chat_id), str(message.message_id)

    async def notify(self, text: str) -> None:
        text = REDACTOR.redact(text)  # reports quote exception texts, which may quote a URL with the token
        if not self.chat_id:
            log.warning("%s", text)
            return
        try:
            await self.bot.send_message(self.chat_id, text[:MessageLimit.MAX_TEXT_LENGTH])
        except TelegramError as exc:
            log.warning("could not tell the moderators (%s): %s", exc, text)

    async def remind(self, pending: int) -> None:
        await self.notify(texts.REMIND.format(pending=pending))

    def allowed(self, user: User | None) -> bool:
        return user is not None and user.id in self.moderators
