"""Telegram's 4,096-character limit and the quorum, end to end against the fake Bot API server: a
draft or an edit near the limit still reaches the moderators, /queue and /meme N (its text
shortened with a marker, never the message refused); one moderator cannot rewrite a draft the
quorum approved."""
from __future__ import annotations

import asyncio

from bot import texts
from bot.fit import LIMIT, fit
from corpus.store import drafts as draft_rows
from tests.fakes.telegram_app import (
    CHANNEL, MODERATOR, MODERATORS_CHAT, add_pending, bot_running, button_data, draft_message, make_settings, press,
    one_shown, reply_to, settled, until,
)

SECOND = 333
USER = 5001



async def approved_with_an_edit(server, app, text: str) -> int:
    """A pending draft shown to the moderators, then approved with `text` by reply: its id."""
    db = app.bot_data.db
    (one,) = add_pending(db, 1)
    await app.bot_data.service.dispatch_moderation()
    said = await reply_to(server, MODERATORS_CHAT, text, user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                          reply_to=draft_message(server, db, one))
    assert said["text"] == texts.EDIT_DONE.format(id=one)
    return one


def long_text(n: int) -> str:
    line = "ПРИХОДИШЬ ДОМОЙ ПОСЛЕ РАБОТЫ\n@\nА ТАМ КОТ СИДИТ НА ДИВАНЕ\n"
    text = (line * (n // len(line) + 1))[:n]
    return text.rstrip() + "Ы" * (n - len(text.rstrip()))

def test_one_moderator_cannot_rewrite_a_draft_the_quorum_approved(tmp_path, server):
    """moderation.votes = 2: after two moderators approved a draft, one of them replying with other
    text is told to put it back to pending (the quorum decides), and the text stays."""
    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, SECOND]},
                             moderation={"votes": 2})

    async def main():
        async with bot_running(settings) as app:
            db, one, message = await one_shown(server, app)
            await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            await press(server, f"d:a:{one}", user_id=SECOND, message=message)
            assert draft_rows.get_draft(db, one)["status"] == "queued"
            said = await reply_to(server, MODERATORS_CHAT, "СОВСЕМ ДРУГОЙ ТЕКСТ\n@\nКОТОРЫЙ НИКТО НЕ ВИДЕЛ",
                                  user_id=MODERATOR, chat_id=MODERATORS_CHAT, reply_to=message)
            row = draft_rows.get_draft(db, one)
            assert said["text"] == texts.EDIT_NEEDS_QUORUM and (row["status"], row["final_text"]) == ("queued", None)

    asyncio.run(main())

def test_meme_n_of_an_edit_near_4096_chars_is_answered_shortened(tmp_path, server):
    """The edit-by-reply accepts up to 4096 characters; /meme N prefixes "Мем #N": the reply is
    shortened to fit, with its marker, not refused."""
    settings = make_settings(tmp_path, server)
    text = long_text(4090)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            one = await approved_with_an_edit(server, app, text)
            published = await service.publish()
            assert published["id"] == one and published["status"] == "published"
            assert server.sent(CHANNEL)[-1]["text"].startswith(text)   # out (footer "\n\n#N" fits: 4094)
            before = len(server.sent(USER))
            server.send_text(f"/meme {one}", user_id=USER)
            await settled(server, app)
            refused = [c for c in server.calls_of("sendMessage", ok_only=False)
                       if str(c.params.get("chat_id")) == str(USER)]
            assert len(server.sent(USER)) > before, (
                f"no reply to /meme {one}; sendMessage tried with {[len(c.params['text']) for c in refused]} chars")
            reply = server.sent(USER)[-1]["text"]
            assert len(reply) <= LIMIT and reply.startswith(f"Мем #{one}\n\n") and reply.endswith("симв.)")

    asyncio.run(main())

def test_a_long_draft_put_back_to_pending_is_shown_and_so_is_the_next(tmp_path, server):
    """A 4090-character edit approved, then put back (↩️ in /queue): the draft's message (header,
    score) is over 4096 with the whole text, so the text is shortened; it was refused, and the
    dispatch stopped there for every later draft."""
    settings = make_settings(tmp_path, server)
    text = long_text(4090)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one = await approved_with_an_edit(server, app, text)
            server.send_text("/queue", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            chat = server.chat(MODERATORS_CHAT)["id"]
            item = (await until(lambda: [m for (c, _), m in sorted(server.messages.items())
                                         if c == chat and m["text"].startswith("В очереди")]))[0]
            answer = await press(server, button_data(item, texts.BUTTON_UNAPPROVE), user_id=MODERATOR,
                                 message=item)
            assert answer["text"] == texts.ANSWER_UNAPPROVED
            await settled(server, app)
            (two,) = add_pending(db, 1)          # the next draft the pool makes
            await service.dispatch_moderation()
            row = draft_rows.get_draft(db, two)
            shown = draft_message(server, db, one)["text"]
            assert len(shown) <= LIMIT and "симв.)" in shown
            assert row["moderation_message_id"] is not None, (
                "draft #2 never shown; moderation_error state: "
                + str(db.execute("SELECT value FROM state WHERE key = 'moderation_error'").fetchone()))

    asyncio.run(main())



def test_fit_keeps_the_frame_and_marks_what_it_cut():
    short = fit(texts.MEME, "ТЫ\n@\nСЫЧ", id=7)
    assert short == "Мем #7\n\nТЫ\n@\nСЫЧ"
    long = fit(texts.MEME, "Я" * 5000, id=7)
    assert LIMIT - 5 <= len(long) <= LIMIT and long.startswith("Мем #7\n\nЯЯЯ") and long.endswith("симв.)")
    assert str(5000 - long.count("Я")) in long.rsplit("ещё", 1)[1]


def test_a_long_pending_draft_decided_shows_the_decision_and_loses_its_buttons(tmp_path, server):
    """A pending draft near 4,096 characters (shown shortened) approved by its button: the decision
    line comes after the text, so the text is shortened to leave room for it; the edit was refused
    and the message kept its vote buttons as if nothing was decided."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one = draft_rows.add_draft(db, text=long_text(4090), model_version="v", temperature=0.8, seed=1,
                                       max_length=5000, status="pending")
            await service.dispatch_moderation()
            message = draft_message(server, db, one)
            answer = await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            assert answer["text"] == texts.ANSWER_DONE
            edited = await until(lambda: "✅ Одобрено" in (m := draft_message(server, db, one))["text"] and m)
            assert len(edited["text"]) <= LIMIT and "reply_markup" not in edited

    asyncio.run(main())
