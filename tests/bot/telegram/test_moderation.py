"""Moderators end to end: drafts with buttons in the moderators' chat, who may act, edits by reply,
stale and tampered buttons, regenerate, reminders."""
from __future__ import annotations

import asyncio
import re
import sqlite3

from bot import texts
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs import decisions
from tests.fakes.telegram_app import (
    CHANNEL, MODERATOR, MODERATORS_CHAT, STRANGER, add_pending, bot_running, draft_id_of, draft_messages,
    make_settings, one_shown, press, reply_to, settled, until,
)
from tests.fakes.telegram_server import FakeBotApi


async def shown(server: FakeBotApi, message_id: int, needle: str) -> dict:
    """Wait until the draft message `message_id` has been edited to contain `needle`."""
    return await until(lambda: needle in (m := server.message(MODERATORS_CHAT, message_id))["text"] and m)


def test_buttons_approve_reject_and_strangers(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            await service.fill_pools()
            first, second = draft_messages(server)
            buttons = first["reply_markup"]["inline_keyboard"][0]
            assert [b["text"] for b in buttons] == [texts.BUTTON_APPROVE, texts.BUTTON_REJECT, texts.BUTTON_REGENERATE]
            assert all(len(b["callback_data"].encode()) < 64 for b in buttons)
            one, two = draft_id_of(first), draft_id_of(second)
            assert draft_rows.get_draft(db, one)["status"] == "pending"

            answer = await press(server, f"d:a:{one}", user_id=STRANGER, message=first)
            assert answer["text"] == texts.NOT_ALLOWED and answer.get("show_alert") in ("True", "true", True)
            assert draft_rows.get_draft(db, one)["status"] == "pending" and draft_rows.actions_for(db, one) == []

            answer = await press(server, f"d:a:{one}", user_id=MODERATOR, message=first)
            assert answer["text"] == texts.ANSWER_DONE
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "queued"
            (action,) = draft_rows.actions_for(db, one)
            assert (action["action"], action["actor_id"], action["actor_name"]) == (
                "approve", str(MODERATOR), f"@user{MODERATOR}")
            assert action["at"]
            edited = await shown(server, int(row["moderation_message_id"]), "✅ Одобрено: @user111")
            assert "reply_markup" not in edited

            again = await press(server, f"d:r:{one}", user_id=MODERATOR, message=first)
            assert again["text"] == texts.ALREADY_APPROVED and draft_rows.get_draft(db, one)["status"] == "queued"

            await press(server, f"d:r:{two}", user_id=MODERATOR, message=second)
            assert draft_rows.get_draft(db, two)["status"] == "rejected"
            await shown(server, second["message_id"], "❌ Отклонено")

            published = await service.publish()
            assert published["id"] == one and published["status"] == "published"
            (post,) = server.sent(CHANNEL)
            assert post["text"] == f"{row['text']}\n\n#{one}"   # publish.footer: the meme number

    asyncio.run(main())


def test_tampered_and_stale_buttons_change_nothing(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            await service.fill_pools()
            first, second = draft_messages(server)
            one, two = draft_id_of(first), draft_id_of(second)
            for data in ("d:a:99999999", "garbage", "d:x:1", "d:a:" + "9" * 60, f"d:a:{two}", f"d:a:0{one}"):
                answer = await press(server, data, user_id=MODERATOR, message=first)  # two's id under one's message
                assert answer["text"] == texts.STALE_BUTTON, data
            db.execute("DELETE FROM drafts WHERE id = ?", [two])
            answer = await press(server, f"d:a:{two}", user_id=MODERATOR, message=second)
            assert answer["text"] == texts.STALE_BUTTON
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            assert db.execute("SELECT count(*) FROM moderation_actions WHERE actor_id IS NOT NULL").fetchone()[0] == 0
            assert server.calls_of("editMessageText") == []

    asyncio.run(main())


def test_regenerate_rejects_and_posts_a_replacement(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            await app.bot_data.service.fill_pools()
            first, _ = draft_messages(server)
            one = draft_id_of(first)
            await press(server, f"d:g:{one}", user_id=MODERATOR, message=first)
            await until(lambda: len(draft_messages(server)) == 3)
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "rejected"
            assert [a["action"] for a in draft_rows.actions_for(db, one)] == ["regenerate"]
            replacement = draft_messages(server)[-1]
            new = draft_rows.get_draft(db, draft_id_of(replacement))
            assert new["status"] == "pending" and new["purpose"] == draft_rows.CHANNEL and new["id"] > one
            await shown(server, first["message_id"], "🔄")

    asyncio.run(main())


def test_reply_with_an_edit_approves_the_edited_text(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            await service.fill_pools()
            first, second = draft_messages(server)
            one = draft_id_of(first)
            chat = MODERATORS_CHAT
            denied = await reply_to(server, chat, "ЧУЖАЯ\n@\nПРАВКА", user_id=STRANGER, chat_id=chat, reply_to=first)
            assert denied["text"] == texts.NOT_ALLOWED and draft_rows.get_draft(db, one)["status"] == "pending"
            too_long = await reply_to(server, chat, "Я" * 5000, user_id=MODERATOR, chat_id=chat, reply_to=first)
            assert too_long["text"] == texts.EDIT_TOO_LONG.format(length=5000)
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            done = await reply_to(server, chat, "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА", user_id=MODERATOR,
                                  chat_id=chat, reply_to=first)
            assert done["text"] == texts.EDIT_DONE.format(id=one)
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "queued" and row["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА"
            assert [a["action"] for a in draft_rows.actions_for(db, one)] == ["edit"]
            await shown(server, first["message_id"], "✏️ Одобрено с правкой")
            # the channel has it now (another destination may still retry it): its text stays as sent
            pubs.finish_publication(db, pubs.begin_publication(db, one, "telegram", "@somewhere"), "5")
            late = await reply_to(server, chat, "ДРУГОЙ\n@\nТЕКСТ", user_id=MODERATOR, chat_id=chat, reply_to=first)
            assert late["text"] == texts.EDIT_UNDER_WAY
            assert draft_rows.get_draft(db, one)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА"
            before = len(server.sent(chat))
            not_a_draft = second | {"message_id": 999, "text": texts.REMIND.format(pending=1)}
            server.send_text("просто болтаем", user_id=MODERATOR, chat_id=chat, reply_to=not_a_draft)
            await settled(server, app)   # the reply was handled
            assert len(server.sent(chat)) == before  # a reply to a non-draft is ordinary chat
            await service.publish()
            (post,) = server.sent(CHANNEL)
            assert post["text"] == f"ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА\n\n#{one}"

    asyncio.run(main())


def test_reminder_when_nothing_is_approved(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.fill_pools()
            assert await service.remind_if_idle() is True
            assert await service.remind_if_idle() is False  # once per remind_after_hours

    asyncio.run(main())
    reminders = [m for m in server.sent(MODERATORS_CHAT) if m["text"] == texts.REMIND.format(pending=2)]
    assert len(reminders) == 1


def test_the_reminder_and_the_alerts_say_their_counts_in_good_russian(tmp_path, server):
    """'Напоминание: 1 черновиков ждут решения', '🚫 ...: 3 неудачных публикаций подряд', '(1 постов)':
    a noun after a number takes its form from the number (1 черновик, 3 черновика, 5 черновиков);
    the texts put the number after the noun, where one form fits every number."""
    from jobs import desk_stats, notices

    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            add_pending(app.bot_data.db, 1)
            assert await app.bot_data.service.remind_if_idle() is True

    asyncio.run(main())
    (reminder,) = [m["text"] for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("Напоминание")]
    stats = desk_stats.DeskStats(days=["2026-12-08"], made=[1], approved=[1], rejected=[0], published={},
                                 reasons={}, engagement=[("2026-12-08T09:00:00+00:00", 1, 0.025)])
    said = [reminder, notices.ALERT_FAILING.format(where="telegram @c", count=3), *desk_stats.lines(stats)]
    wrong = re.compile(r"\b(1|3) (черновиков|неудачных публикаций|постов)\b")
    assert not [line for line in said if wrong.search(line)], said
    assert "1" in reminder and "3" in said[1]


def test_without_moderators_drafts_are_auto_approved(tmp_path, server, caplog):
    settings = make_settings(tmp_path, server, telegram={"moderators": [], "moderators_chat": 0})

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.fill_pools()
            return draft_rows.count_by_status(app.bot_data.db)

    with caplog.at_level("INFO"):
        counts = asyncio.run(main())
    assert counts.get("queued") == 2 and "pending" not in counts
    assert "auto-approved" in caplog.text
    assert server.calls_of("sendMessage") == []


def test_draft_messages_carry_the_score_line_and_old_drafts_none(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            await service.fill_pools()
            old = draft_rows.add_draft(db, text="СТАРЫЙ\n@\nЧЕРНОВИК", model_version="v0", temperature=0.8, seed=3,
                                       max_length=500, status="pending")   # made before drafts had measures
            await service.dispatch_moderation()
            messages = {draft_id_of(m): m["text"] for m in draft_messages(server)}
            assert messages[old] == "Черновик #%d\n\nСТАРЫЙ\n@\nЧЕРНОВИК" % old
            measured = [draft_rows.get_draft(db, i) for i in messages if i != old]
            assert len(measured) == 2
            for row in measured:
                assert row["score"] is not None
                assert row["grammar"] is not None                     # the bundled model's drafts, judged
                line = texts.DRAFT_SCORE.format(score=row["score"], grammar=f"{row['grammar']:.0%}",
                                                shared=row["shared_chars"])
                assert messages[row["id"]] == f"Черновик #{row['id']}\n\n{row['text']}\n\n{line}"
                assert "\n" not in line and len(line) < 100

    asyncio.run(main())


def test_an_edit_with_a_stop_listed_word_or_a_corpus_copy_is_refused(tmp_path, server):
    from corpus.store.posts import add_posts

    settings = make_settings(tmp_path, server, filter={"words": ["гречка"]})
    corpus_post = "ЗАХОДИШЬ В СТОЛОВУЮ\n@\nТАМ ДАЮТ МАКАРОНЫ ПО-ФЛОТСКИ И КОМПОТ ИЗ СУХОФРУКТОВ С ИЗЮМОМ\n@\nБЕРЁШЬ ДВЕ"

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            add_posts(db, [{"source": "file", "text": corpus_post}])
            await service.fill_pools()
            first, _ = draft_messages(server)
            one, chat = draft_id_of(first), MODERATORS_CHAT
            refused = await reply_to(server, chat, "МАМКА ЗОВЁТ\n@\nТАМ Гречка", user_id=MODERATOR,
                                     chat_id=chat, reply_to=first)
            assert refused["text"] == texts.EDIT_REFUSED.format(why=texts.EDIT_STOPLIST.format(found="гречка"))
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "pending" and row["final_text"] is None and draft_rows.actions_for(db, one) == []
            copy = "ВЕСЬ ДЕНЬ\n@\nТАМ ДАЮТ МАКАРОНЫ ПО-ФЛОТСКИ И КОМПОТ ИЗ СУХОФРУКТОВ С ИЗЮМОМ\n@\nНЕ БЕРЁШЬ"
            refused = await reply_to(server, chat, copy, user_id=MODERATOR, chat_id=chat, reply_to=first)
            assert refused["text"] == texts.EDIT_REFUSED.format(why=texts.EDIT_COPY)
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            done = await reply_to(server, chat, "МАМКА ЗОВЁТ\n@\nТАМ МАКАРОНЫ", user_id=MODERATOR,
                                  chat_id=chat, reply_to=first)
            assert done["text"] == texts.EDIT_DONE.format(id=one)
            assert draft_rows.get_draft(db, one)["final_text"] == "МАМКА ЗОВЁТ\n@\nТАМ МАКАРОНЫ"

    asyncio.run(main())


def test_an_edit_that_copies_the_whole_draft_message_is_the_post_without_the_bots_lines(tmp_path, server):
    """Copying the draft's message to correct a word (Telegram copies the whole text) brings back
    its header, score line and votes: the post is what was between them."""
    settings = make_settings(tmp_path, server, moderation={"votes": 2}, telegram={"moderators": [MODERATOR, 333]})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            draft_id = draft_rows.add_draft(db, text="ПРИХОДИШЬ НА РОБОТУ\n@\nТАМ ПЯТНИЦА", model_version="v",
                                            temperature=0.8, seed=1, max_length=120, status="pending",
                                            measures={"score": 0.25, "grammar": 1.0, "shared_chars": 12})
            await app.bot_data.service.dispatch_moderation()
            (message,) = draft_messages(server)
            await press(server, f"d:a:{draft_id}", user_id=333, message=message)
            message = await shown(server, message["message_id"], "Голоса (1 из 2)")
            copied = message["text"].replace("РОБОТУ", "РАБОТУ")
            assert copied.startswith(f"Черновик #{draft_id}\n\n") and "\n\nОценка +0.25" in copied
            done = await reply_to(server, MODERATORS_CHAT, copied, user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                                  reply_to=message)
            assert done["text"] == texts.EDIT_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, draft_id)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА"

    asyncio.run(main())


def test_a_moderator_who_edits_the_reply_with_an_edit_has_the_draft_take_the_new_text(tmp_path, server):
    """A typo in the correction, fixed by editing that reply in Telegram: the draft takes the text
    as edited (it went out with the typo: the bot never asked for edited messages). An edited
    command is not a second command."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, draft_id, message = await one_shown(server, app)
            before = len(server.sent(MODERATORS_CHAT))
            reply = server.send_text("ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦЦА", user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                                     reply_to=message)
            await until(lambda: len(server.sent(MODERATORS_CHAT)) > before)
            assert draft_rows.get_draft(db, draft_id)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦЦА"
            server.edit_text(reply, "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА")
            await settled(server, app)
            row = draft_rows.get_draft(db, draft_id)
            assert row["status"] == "queued" and row["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА"
            assert server.sent(MODERATORS_CHAT)[-1]["text"] == texts.EDIT_DONE.format(id=draft_id)
            start = server.send_text("/start", user_id=5001)
            await until(lambda: server.sent(5001))
            server.edit_text(start, "/help")
            await settled(server, app)
            assert [m["text"] for m in server.sent(5001)] == [texts.START]
            await app.bot_data.service.publish()
            assert server.sent(CHANNEL)[0]["text"] == f"ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПЯТНИЦА\n\n#{draft_id}"

    asyncio.run(main())


def test_a_comment_in_reply_to_a_draft_is_not_an_edit_and_the_moderator_is_told_how_to_edit(tmp_path, server):
    """A moderator chatting in reply to a draft ("лол", "не смешно, давай другой") is not approving
    that comment as the post: the draft, its votes and its actions stay as they were, and the bot
    says in one message how to edit. An edit keeps working: the post's shape (lines between "@"
    lines), or several lines keeping most of the draft's words."""
    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, 333]}, moderation={"votes": 2})

    async def main():
        async with bot_running(settings) as app:
            db, draft_id, message = await one_shown(server, app)
            await press(server, f"d:a:{draft_id}", user_id=333, message=message)
            for comment in ("лол", "не смешно, давай другой", "ПРИХОДИШЬ НА РАБОТУ 0 — ну такое"):
                said = await reply_to(server, MODERATORS_CHAT, comment, user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                                      reply_to=message)
                assert said["text"] == texts.EDIT_NOT_A_POST, comment
                row = draft_rows.get_draft(db, draft_id)
                assert (row["status"], row["final_text"]) == ("pending", None)
                assert [(v["actor_id"], v["vote"]) for v in decisions.votes(db, draft_id)] == [("333", "approve")]
            said = await reply_to(server, MODERATORS_CHAT, "ПРИХОДИШЬ НА РАБОТУ В ПОНЕДЕЛЬНИК\nТАМ ПЯТНИЦА",
                                  user_id=MODERATOR, chat_id=MODERATORS_CHAT, reply_to=message)
            assert said["text"] == texts.EDIT_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, draft_id)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ В ПОНЕДЕЛЬНИК\nТАМ ПЯТНИЦА"
            said = await reply_to(server, MODERATORS_CHAT, "СОВСЕМ ДРУГОЙ ПОСТ @ ВМЕСТО ЭТОГО", user_id=333,
                                  chat_id=MODERATORS_CHAT, reply_to=message)
            assert said["text"] == texts.EDIT_VOTED.format(have=1, need=2)

    asyncio.run(main())


def test_a_regenerate_press_is_answered_before_the_replacement_is_generated(tmp_path, server):
    """🔄 while the model is busy (the pool's batch, a subscriber's /generate): the press is answered
    at once, and the replacement follows when the model is free. The answer waited for the
    generation, and a press answered after Telegram's ~15 s is refused ("query is too old")."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, draft_id, message = await one_shown(server, app)
            holder = app.bot_data.service.drafting.holder
            before = len(server.calls_of("answerCallbackQuery"))
            with holder._lock:   # the model generating for someone else
                server.press(f"d:g:{draft_id}", user_id=MODERATOR, message=message)
                answers = await until(lambda: server.calls_of("answerCallbackQuery")[before:])
                assert answers[0].params["text"] == texts.ANSWER_DONE
                assert draft_rows.get_draft(db, draft_id)["status"] == "rejected"
            await until(lambda: len(draft_messages(server)) == 2)   # the replacement, once the model was free

    asyncio.run(main())


def test_a_press_or_a_reject_that_fails_is_answered_politely(tmp_path, server, monkeypatch):
    """An error inside a moderator's button press left the button spinning (the press never
    answered) and /reject unanswered; the chat had only the error report."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.fill_pools()
            first = draft_messages(server)[0]

            def damaged(*args, **kwargs):
                raise sqlite3.DatabaseError("database disk image is malformed")

            monkeypatch.setattr(decisions, "draft_shown_in", damaged)
            monkeypatch.setattr(decisions, "draft_for_reply", damaged)
            answer = await press(server, f"d:a:{draft_id_of(first)}", user_id=MODERATOR, message=first)
            server.send_text("/reject скучно", user_id=MODERATOR, chat_id=MODERATORS_CHAT, reply_to=first)
            reply = await until(lambda: [m for m in server.sent(MODERATORS_CHAT) if m["text"] == texts.DESK_FAILED])
            return answer, reply, draft_rows.get_draft(app.bot_data.db, draft_id_of(first))

    answer, (reply,), draft = asyncio.run(main())
    assert answer["text"] == texts.DESK_FAILED and answer.get("show_alert") in ("True", "true", True)
    assert reply and draft["status"] == "pending"
