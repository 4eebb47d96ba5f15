"""The moderators' desk end to end (issue 25), through the real python-telegram-bot client against the
fake Bot API server and a real SQLite file: /queue's order, slots and buttons, a quorum of votes,
rejection reasons, pause and resume, alerts given once, /stats's picture, the meme-number footer."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest

from bot import texts
from bot.config import ConfigError, load_settings
from corpus.store import desk as desk_rows
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs import desk, notices
from tests.fakes.telegram_app import (
    CHANNEL, MODERATOR, MODERATORS_CHAT, STRANGER, add_pending, bot_running, button_data, draft_message,
    another_writer_at, make_settings, one_shown, press, reply_to, settled, until, waits_logged, write_config,
)

SECOND, FAST = 333, 444
SLOTS = {"publish_times": ["09:00", "21:00"], "timezone": "UTC", "retrain": False}


def state_written(key: str) -> Callable[[str], bool]:
    """A statement that writes the state row `key` (quoted as SQL has it: "'alert:low_queue'")."""
    return lambda sql: sql.startswith("INSERT INTO state") and key in sql


def moderators_texts(server) -> list[str]:
    return [m["text"] for m in server.sent(MODERATORS_CHAT)]


def buttons(message: dict) -> list[list[str]]:
    return [[b["text"] for b in row] for row in message.get("reply_markup", {}).get("inline_keyboard", [])]


def bot_messages(server) -> list[dict]:
    """The bot's messages in the moderators' chat, oldest first, as they are now (after edits)."""
    chat = server.chat(MODERATORS_CHAT)["id"]
    return [m for (c, _), m in sorted(server.messages.items()) if c == chat]


async def command(server, text: str, user_id: int = MODERATOR, replies: int = 1, reply_to_message=None) -> list[dict]:
    """Send `text` in the moderators' chat and wait for the bot's next `replies` messages there."""
    before = len(bot_messages(server))
    server.send_text(text, user_id=user_id, chat_id=MODERATORS_CHAT, reply_to=reply_to_message)
    sent = await until(lambda: len(bot_messages(server)) >= before + replies and bot_messages(server))
    return sent[before:before + replies]


def test_queue_shows_pending_then_approved_in_slot_order_and_its_buttons_move_them(tmp_path, server):
    settings = make_settings(tmp_path, server, schedule=SLOTS)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one, two, three, four = add_pending(db, 4)
            await service.dispatch_moderation()
            for draft_id in (one, two, three):
                await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=draft_message(server, db, draft_id))
            old_four = draft_message(server, db, four)

            header, shown_four, q1, q2, q3 = await command(server, "/queue", replies=5)
            assert header["text"].startswith(texts.QUEUE_HEADER.format(pending=1, queued=3, times="09:00, 21:00",
                                                                        timezone="UTC"))
            # the pending draft is shown again with its vote buttons; its old message's buttons are gone
            assert shown_four["text"].startswith(f"Черновик #{four}") and buttons(shown_four)[0] == [
                texts.BUTTON_APPROVE, texts.BUTTON_REJECT, texts.BUTTON_REGENERATE]
            assert "reply_markup" not in server.message(MODERATORS_CHAT, old_four["message_id"])
            stale = await press(server, f"d:a:{four}", user_id=MODERATOR, message=old_four)
            assert stale["text"] == texts.STALE_BUTTON
            # approved drafts oldest first, each with its slot and destination and its buttons
            assert [m["text"].split("\n")[0] for m in (q1, q2, q3)] == [
                texts.QUEUE_ITEM.split("\n")[0].format(id=i) for i in (one, two, three)]
            now = dt.datetime.now(dt.timezone.utc)
            plan = desk.plan(db, service.publishers, SLOTS["publish_times"], "UTC", now)
            slots = [plan[i][0].at for i in (one, two, three)]
            assert slots[0] < slots[1] < slots[2] and all(p.where == f"telegram {CHANNEL}" for p in plan[one])
            for message, slot in zip((q1, q2, q3), slots):
                assert f"→ telegram {CHANNEL}: {slot:%d.%m %H:%M}" in message["text"]
                assert buttons(message) == [[texts.BUTTON_NOW, texts.BUTTON_LATER], ["+1 ч", "+6 ч", "+24 ч"],
                                            [texts.BUTTON_UNAPPROVE]]

            denied = await press(server, button_data(q1, texts.BUTTON_NOW), user_id=STRANGER, message=q1)
            assert denied["text"] == texts.NOT_ALLOWED and server.sent(CHANNEL) == []

            # "later": one goes after the others, and its message shows its new slot
            later = await press(server, button_data(q1, texts.BUTTON_LATER), user_id=MODERATOR, message=q1)
            assert later["text"] == texts.ANSWER_MOVED
            plan = desk.plan(db, service.publishers, SLOTS["publish_times"], "UTC", now)
            assert [plan[i][0].at for i in (two, three, one)] == slots
            await until(lambda: f"{slots[2]:%d.%m %H:%M}" in server.message(MODERATORS_CHAT, q1["message_id"])["text"])

            # "+24 h": two waits a day past its slot; three and one move up
            await press(server, button_data(q2, "+24 ч"), user_id=MODERATOR, message=q2)
            held = draft_rows.get_draft(db, two)["not_before"]
            assert held == (slots[0] + dt.timedelta(hours=24)).isoformat()
            plan = desk.plan(db, service.publishers, SLOTS["publish_times"], "UTC", now)
            assert plan[three][0].at == slots[0] and plan[one][0].at == slots[1]
            assert plan[two][0].at >= slots[0] + dt.timedelta(hours=24)

            # the publishing slot takes the first draft in queue order that is not held: three
            published = await service.publish()
            assert published["id"] == three
            assert [p["text"] for p in server.sent(CHANNEL)] == [f"ПРИХОДИШЬ НА РАБОТУ 2\n@\nТАМ ПЯТНИЦА\n\n#{three}"]

            # "back to pending": shown anew to the moderators with vote buttons
            before = len(server.sent(MODERATORS_CHAT))
            back = await press(server, button_data(q1, texts.BUTTON_UNAPPROVE), user_id=MODERATOR, message=q1)
            assert back["text"] == texts.ANSWER_UNAPPROVED
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            reshown = await until(lambda: [m for m in server.sent(MODERATORS_CHAT)[before:]
                                           if m["text"].startswith(f"Черновик #{one}")])
            assert buttons(reshown[0])[0][0] == texts.BUTTON_APPROVE
            assert desk_rows.votes_for(db, one) == [] and draft_rows.get_draft(db, one)["queue_order"] is None

            # "publish now" sends the held one at once
            answer = await press(server, button_data(q2, texts.BUTTON_NOW), user_id=MODERATOR, message=q2)
            assert answer["text"] == texts.ANSWER_PUBLISHED.format(where=f"telegram {CHANNEL}")
            assert draft_rows.get_draft(db, two)["status"] == "published" and len(server.sent(CHANNEL)) == 2
            gone = await press(server, button_data(q2, texts.BUTTON_LATER), user_id=MODERATOR, message=q2)
            assert gone["text"] == texts.QUEUE_GONE.format(id=two)
            assert [a["action"] for a in draft_rows.actions_for(db, two)] == ["approve", "hold", "publish_now"]

    asyncio.run(main())


def test_publish_now_that_sends_nothing_says_why_not_that_it_was_published(tmp_path, server):
    """🚀 on a draft that the channel refuses (the bot removed: 403), or that a word listed since
    its approval stops, answers that it was not published and why: it said 'published' for the
    stop-listed one and 'every channel is paused or has it' for the refused one."""
    settings = make_settings(tmp_path, server, schedule=SLOTS, filter={"words": ["пятница"]})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            listed, refused = add_pending(db, 1)[0], draft_rows.add_draft(
                db, text="ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КАНИКУЛЫ", model_version="v", temperature=0.8, seed=7,
                max_length=120, status="pending")
            await app.bot_data.service.dispatch_moderation()
            for draft_id in (listed, refused):
                await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=draft_message(server, db, draft_id))
            _, q_listed, q_refused = await command(server, "/queue", replies=3)

            answer = await press(server, button_data(q_listed, texts.BUTTON_NOW), user_id=MODERATOR, message=q_listed)
            assert answer["text"] == texts.ANSWER_NOT_SENT.format(
                where=f"telegram {CHANNEL}", why=texts.NOT_SENT_WHY["stop-list"])
            assert draft_rows.get_draft(db, listed)["status"] == "rejected_auto" and server.sent(CHANNEL) == []

            server.fail("sendMessage", 403, chat_id=CHANNEL)
            answer = await press(server, button_data(q_refused, texts.BUTTON_NOW), user_id=MODERATOR,
                                 message=q_refused)
            assert answer["text"] == texts.ANSWER_NOT_SENT.format(
                where=f"telegram {CHANNEL}", why=texts.NOT_SENT_WHY["failed"])
            assert draft_rows.get_draft(db, refused)["status"] == "queued" and server.sent(CHANNEL) == []
            assert any(m.startswith(f"Мем #{refused} не опубликован") for m in moderators_texts(server))

            answer = await press(server, button_data(q_refused, texts.BUTTON_NOW), user_id=MODERATOR,
                                 message=q_refused)   # the channel takes it now
            assert answer["text"] == texts.ANSWER_PUBLISHED.format(where=f"telegram {CHANNEL}")
            assert draft_rows.get_draft(db, refused)["status"] == "published" and len(server.sent(CHANNEL)) == 1

    asyncio.run(main())


def test_a_queue_message_from_before_the_draft_was_approved_again_is_refused_and_redrawn(tmp_path, server):
    """Two /queue messages show draft X; from the second it goes back to pending and is approved again
    with another text. 🚀 under the first (its old text) is refused politely, publishes nothing, and
    the first message is redrawn with X as it is now, whose buttons act."""
    settings = make_settings(tmp_path, server)
    edited = "МАМКА ЗОВЁТ\n@\nТАМ МАКАРОНЫ"

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            (x,) = add_pending(db, 1)
            await service.dispatch_moderation()
            await press(server, f"d:a:{x}", user_id=MODERATOR, message=draft_message(server, db, x))
            _, old = await command(server, "/queue", replies=2)
            _, new = await command(server, "/queue", replies=2)
            back = await press(server, button_data(new, texts.BUTTON_UNAPPROVE), user_id=MODERATOR, message=new)
            assert back["text"] == texts.ANSWER_UNAPPROVED
            shown = await until(lambda: draft_rows.get_draft(db, x)["moderation_message_id"]
                                and draft_message(server, db, x))
            done = await reply_to(server, MODERATORS_CHAT, edited, user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                                  reply_to=shown)
            assert done["text"] == texts.EDIT_DONE.format(id=x) and draft_rows.get_draft(db, x)["status"] == "queued"

            legacy = await press(server, f"q:n:{x}", user_id=MODERATOR, message=old)   # a button of an older version
            assert legacy["text"] == texts.STALE_BUTTON and server.sent(CHANNEL) == []
            stale = await press(server, button_data(old, texts.BUTTON_NOW), user_id=MODERATOR, message=old)
            assert stale["text"] == texts.STALE_BUTTON
            assert server.sent(CHANNEL) == [] and draft_rows.get_draft(db, x)["status"] == "queued"
            redrawn = await until(lambda: edited in (m := server.message(MODERATORS_CHAT, old["message_id"]))["text"]
                                  and m)
            now = await press(server, button_data(redrawn, texts.BUTTON_NOW), user_id=MODERATOR, message=redrawn)
            assert now["text"] == texts.ANSWER_PUBLISHED.format(where=f"telegram {CHANNEL}")
            assert [p["text"] for p in server.sent(CHANNEL)] == [f"{edited}\n\n#{x}"]

    asyncio.run(main())

def test_publish_now_during_a_publishing_slot_sends_each_draft_once(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            first, second = add_pending(db, 2)
            for draft_id in (first, second):
                draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            _, q_first, _ = await command(server, "/queue", replies=3)
            release = server.hold("sendMessage", CHANNEL)
            answers = len(server.calls_of("answerCallbackQuery"))
            server.press(button_data(q_first, texts.BUTTON_NOW), user_id=MODERATOR, message=q_first)
            await until(lambda: server.sent(CHANNEL))            # "publish now" is out, its answer held
            slot = asyncio.create_task(service.publish())       # a publishing time meanwhile
            await until(lambda: len(server.sent(CHANNEL)) == 2)
            release.set()
            await slot
            await until(lambda: len(server.calls_of("answerCallbackQuery")) > answers)
            return [p["text"] for p in server.sent(CHANNEL)]

    posts = asyncio.run(main())
    assert sorted(posts) == sorted(f"ПРИХОДИШЬ НА РАБОТУ {i}\n@\nТАМ ПЯТНИЦА\n\n#{i + 1}" for i in (0, 1))
    from corpus.db import open_db

    db = open_db(settings.database)
    assert [[p["status"] for p in pubs.publications_of(db, i)] for i in (1, 2)] == [["sent"], ["sent"]]
    db.close()
    assert not [t for t in moderators_texts(server) if "мог не дойти" in t]   # the slot left the other send alone


def test_a_quorum_of_distinct_moderators_decides_and_a_fast_approver_alone(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, SECOND, FAST]},
                             moderation={"votes": 2, "fast_approvers": [FAST]})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one, two, three = add_pending(db, 3)
            await service.dispatch_moderation()
            message = draft_message(server, db, one)
            answer = await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            assert answer["text"] == texts.ANSWER_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            voted = texts.VOTES.format(have=1, need=2, votes=f"✅ @user{MODERATOR}")
            await until(lambda: voted in server.message(MODERATORS_CHAT, message["message_id"])["text"])
            assert buttons(server.message(MODERATORS_CHAT, message["message_id"]))[0][0] == texts.BUTTON_APPROVE
            again = await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)   # one moderator, one vote
            assert again["text"] == texts.ANSWER_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            await press(server, f"d:a:{one}", user_id=SECOND, message=message)
            assert draft_rows.get_draft(db, one)["status"] == "queued"
            both = texts.VOTES.format(have=2, need=2, votes=f"✅ @user{MODERATOR} · ✅ @user{SECOND}")
            edited = await until(lambda: "✅ Одобрено" in (m := server.message(MODERATORS_CHAT, message["message_id"]))[
                "text"] and m)
            assert both in edited["text"] and "reply_markup" not in edited

            # split votes decide nothing; the fast approver's canned reason decides alone
            second = draft_message(server, db, two)
            await press(server, f"d:a:{two}", user_id=MODERATOR, message=second)
            await press(server, f"d:r:{two}", user_id=SECOND, message=second)
            assert draft_rows.get_draft(db, two)["status"] == "pending"
            await press(server, f"d:r1:{two}", user_id=FAST, message=second)
            row = draft_rows.get_draft(db, two)
            assert row["status"] == "rejected" and row["status_reason"] == "бессмыслица"
            (action,) = draft_rows.actions_for(db, two)
            assert (action["action"], action["actor_id"], action["detail"]) == ("reject", str(FAST), "бессмыслица")
            assert [v["vote"] for v in desk_rows.votes_for(db, two)] == ["approve", "reject", "reject"]

            # an edit by reply is its author's vote for the edited text
            third = draft_message(server, db, three)
            said = await reply_to(server, MODERATORS_CHAT, "МАМКА ЗОВЁТ\n@\nТАМ МАКАРОНЫ", user_id=MODERATOR,
                                  chat_id=MODERATORS_CHAT, reply_to=third)
            assert said["text"] == texts.EDIT_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, three)["status"] == "pending"
            await press(server, f"d:a:{three}", user_id=SECOND, message=third)
            row = draft_rows.get_draft(db, three)
            assert row["status"] == "queued" and row["final_text"] == "МАМКА ЗОВЁТ\n@\nТАМ МАКАРОНЫ"

    asyncio.run(main())


def test_reject_with_a_reason_by_reply_or_button_is_stored_and_counted(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one, two, three = add_pending(db, 3)
            await service.dispatch_moderation()
            first = draft_message(server, db, one)
            assert buttons(first)[1] == [f"❌ {reason}" for reason in settings.moderation.reject_reasons]
            (usage,) = await command(server, "/reject")
            assert usage["text"] == texts.REJECT_USAGE
            (denied,) = await command(server, "/reject скучно", user_id=STRANGER, reply_to_message=first)
            assert denied["text"] == texts.NOT_ALLOWED and draft_rows.get_draft(db, one)["status"] == "pending"
            (done,) = await command(server, "/reject баян из 2012", reply_to_message=first)
            assert done["text"] == texts.REJECT_DONE.format(id=one, reason="баян из 2012")
            assert draft_rows.get_draft(db, one)["status_reason"] == "баян из 2012"
            await until(lambda: "❌ Отклонено (баян из 2012)" in server.message(MODERATORS_CHAT,
                                                                               first["message_id"])["text"])
            await press(server, f"d:r0:{two}", user_id=MODERATOR, message=draft_message(server, db, two))
            await press(server, f"d:r:{three}", user_id=MODERATOR, message=draft_message(server, db, three))
            tampered = await press(server, f"d:r9:{three}", user_id=MODERATOR, message=draft_message(server, db, three))
            assert tampered["text"] == texts.STALE_BUTTON
            photo, numbers = await command(server, "/stats 3", replies=2)
            assert "photo" in photo
            return numbers["text"]

    text = asyncio.run(main())
    assert "Причины отказа: " in text
    assert "баян из 2012 — 1" in text and "не смешно — 1" in text and "без причины — 1" in text


def test_pause_and_resume_all_destinations_or_one(tmp_path, server, capsys):
    other = "@buhurt_second"
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, other]})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            first, second = add_pending(db, 2)
            for draft_id in (first, second):
                draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            (unknown,) = await command(server, "/pause @nowhere")
            assert unknown["text"] == texts.PAUSE_UNKNOWN.format(
                name="@nowhere", known=f"telegram {CHANNEL}, telegram {other}")
            (paused,) = await command(server, f"/pause {other}")
            assert paused["text"] == texts.PAUSE_DONE.format(where=f"telegram {other}")
            header, q_first, _ = await command(server, "/queue", replies=3)
            assert texts.QUEUE_PAUSED.format(where=f"telegram {other} (@user{MODERATOR})") in header["text"]
            assert f"→ telegram {other}: {texts.QUEUE_PLACE_PAUSED}" in q_first["text"]

            await service.publish()
            assert len(server.sent(CHANNEL)) == 1 and server.sent(other) == []
            assert draft_rows.get_draft(db, first)["status"] == "queued"  # the paused channel has not had it
            now = await press(server, button_data(q_first, texts.BUTTON_NOW), user_id=MODERATOR, message=q_first)
            assert now["text"] == texts.ANSWER_NOT_PUBLISHED and server.sent(other) == []   # paused: not even now
            under_way = await press(server, button_data(q_first, texts.BUTTON_UNAPPROVE), user_id=MODERATOR,
                                    message=q_first)
            assert under_way["text"] == texts.ANSWER_UNDER_WAY and draft_rows.get_draft(db, first)["status"] == "queued"

            (all_paused,) = await command(server, "/pause")
            assert all_paused["text"] == texts.PAUSE_DONE.format(where=f"telegram {CHANNEL}, telegram {other}")
            assert await service.publish() is None
            assert len(server.sent(CHANNEL)) == 1 and server.sent(other) == []

            (resumed,) = await command(server, f"/resume {other}")
            assert resumed["text"] == texts.RESUME_DONE.format(where=f"telegram {other}")
            await service.publish()
            assert len(server.sent(CHANNEL)) == 1 and len(server.sent(other)) == 1
            assert draft_rows.get_draft(db, first)["status"] == "published"

    asyncio.run(main())
    from bot.doctor import check_publishing

    check = check_publishing(settings)
    assert check.ok and "PAUSED" in check.detail and f"telegram {CHANNEL}" in check.detail
    assert f"telegram {other}" not in check.detail

    async def resume_all():
        async with bot_running(settings):
            (resumed,) = await command(server, "/resume")
            assert resumed["text"] == texts.RESUME_DONE.format(where=f"telegram {CHANNEL}")
            (again,) = await command(server, "/resume")
            assert again["text"] == texts.PAUSE_NONE

    asyncio.run(resume_all())
    assert check_publishing(settings).detail == "not paused"


def test_alerts_are_given_once_until_they_clear(tmp_path, server):
    from jobs.retrain import RetrainResult

    settings = make_settings(tmp_path, server, alerts={"min_queue": 1, "failures": 2})
    empty = notices.ALERT_EMPTY_SLOT.format(where=f"telegram {CHANNEL}")
    low = notices.ALERT_LOW_QUEUE.format(slots=0, least=1)
    failing = notices.ALERT_FAILING.format(where=f"telegram {CHANNEL}", count=2)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            assert await service.publish() is None
            assert await service.publish() is None
            await until(lambda: low in moderators_texts(server))
            assert moderators_texts(server).count(empty) == 1 and moderators_texts(server).count(low) == 1

            (draft_id,) = add_pending(db, 1)
            draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            await service.alert_low_queue()   # the queue holds a slot again: the alert clears
            server.fail("sendMessage", 403, chat_id=CHANNEL, times=3)
            for _ in range(3):
                await service.publish()
            assert moderators_texts(server).count(failing) == 1   # at the second failure in a row, only
            await service.publish()                                # the fourth try goes out
            assert len(server.sent(CHANNEL)) == 1
            assert moderators_texts(server).count(empty) == 1      # the destination had a draft every time
            await service.publish()                                # empty again, and the queue low again
            assert moderators_texts(server).count(empty) == 2 and moderators_texts(server).count(low) == 2

            def broken(stop):
                raise RuntimeError("CUDA out of memory")

            service.retrainer = broken
            assert await service.retrain() is None
            service.retrainer = lambda stop: RetrainResult(False, "v2 2.61 bits/char vs v1 2.55", "v2",
                                                      candidate_bpc=2.61, active_bpc=2.55)
            await service.retrain()
            service.retrainer = lambda stop: RetrainResult(False, "skipped: outside the night window")
            await service.retrain()

    asyncio.run(main())
    said = moderators_texts(server)
    assert said.count(notices.ALERT_RETRAIN_FAILED.format(error=notices.REASON_MEMORY)) == 1
    assert said.count(notices.ALERT_RETRAIN_KEPT.format(
        line="Бит на символ (меньше — лучше): новая v2 — 2.610, старая ? — 2.550.")) == 1
    assert not [t for t in said if "skipped" in t]


def test_the_empty_slot_alert_says_the_only_approved_draft_is_held_past_the_slot(tmp_path, server):
    """The only approved draft held (+24 h) past a publishing time: the alert said there were no
    approved memes, and moderators approved more needlessly; it says the meme is held, and until when."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            (draft_id,) = add_pending(db, 1)
            draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            desk.hold(db, draft_id, 24, None, dt.datetime(2100, 1, 1, 10, 0, tzinfo=dt.timezone.utc))
            assert await service.publish() is None

    asyncio.run(main())
    said = moderators_texts(server)
    assert notices.ALERT_EMPTY_SLOT.format(where=f"telegram {CHANNEL}") not in said
    assert notices.ALERT_EMPTY_SLOT_HELD.format(where=f"telegram {CHANNEL}", when="02.01 10:00") in said


def test_stats_sends_a_png_chart_and_the_same_numbers_as_text(tmp_path, server):
    from corpus.store import model_versions as model_rows
    from corpus.store import reactions

    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            ids = add_pending(db, 3)
            await service.dispatch_moderation()
            await press(server, f"d:a:{ids[0]}", user_id=MODERATOR, message=draft_message(server, db, ids[0]))
            await press(server, f"d:r2:{ids[1]}", user_id=MODERATOR, message=draft_message(server, db, ids[1]))
            await service.publish()
            (post,) = pubs.publications_of(db, ids[0])
            reactions.record_counts(db, "telegram", post["chat_id"], post["message_id"], {"👍": 5, "view": 200})
            model_rows.register_model(db, "retrained1", "/x/1.pt", val_bpc=2.43, metrics={"draft_pass_share": 0.31})
            tuned = {"temperature": 0.8, "rows": [{"temperature": 0.7, "pass_share": 0.2},
                                                  {"temperature": 0.8, "pass_share": 0.27}]}
            model_rows.register_model(db, "tuned2", "/x/2.pt", val_bpc=2.5, metrics={"tuned": tuned})
            rate_blind(db, "retrained1", readable=[True, True, False, False], publish=[True, False, False, False])
            rate_blind(db, None, readable=[True, True, True], publish=[True, True, False])
            (bad,) = await command(server, "/stats много")
            assert bad["text"] == texts.STATS_USAGE.format(most=366)
            before = len(server.photos)
            photo, numbers = await command(server, "/stats 7", replies=2)
            assert photo["caption"] == texts.STATS_CAPTION.format(days=7)
            return before, numbers["text"]

    before, text = asyncio.run(main())
    assert before == 0
    (chat, png), = server.photos
    assert chat == MODERATORS_CHAT and png.startswith(b"\x89PNG") and len(png) > 10_000
    (call,) = server.calls_of("sendPhoto")
    assert call.params["caption"] == texts.STATS_CAPTION.format(days=7)
    assert (settings.data_dir / "stats.png").read_bytes() == png
    assert text.startswith("Статистика за 7 дн.")
    assert "Черновиков: 3, одобрено: 1, отклонено: 1" in text
    assert "Причины отказа: повтор — 1" in text
    assert f"Публикаций: telegram {CHANNEL} — 1" in text
    assert "Реакций на просмотр: в среднем 2.50% (постов: 1)" in text
    assert "Модели (бит/символ" in text
    assert "  retrained1 (кандидат, " in text and "): 2.430 · 31%" in text   # the retrain's pass share
    assert "  tuned2 (кандидат, " in text and "): 2.500 · 27%" in text       # else the tune's, at its temperature
    assert "Оценки вслепую (читается · опубликовал бы" in text                 # issue 25: readable share when rated
    assert "  retrained1: 50% [15%-85%] (4) · 25% [5%-70%] (4)" in text
    assert "  настоящие посты: 100% [44%-100%] (3) · 67% [21%-94%] (3)" in text
    assert "tuned2: " not in text                                             # never rated: no line


def test_stats_over_many_busy_days_sends_every_line_in_messages_within_the_limit(tmp_path, server):
    """/stats 366 on a bot that made drafts every day: one line per day is more than one message
    holds; the numbers were cut at 4,096 characters, mid-line, and the publications, models and
    ratings below the days were lost. They come in as many messages as needed, each line whole."""
    from corpus.store import model_versions as model_rows
    from jobs import desk_stats

    settings = make_settings(tmp_path, server)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            for day in range(200):
                (draft_id,) = add_pending(db, 1)
                db.execute("UPDATE drafts SET created_at = ? WHERE id = ?",
                           [(today - dt.timedelta(days=day)).isoformat(), draft_id])
            model_rows.register_model(db, "retrained1", "/x/1.pt", val_bpc=2.43, metrics={"draft_pass_share": 0.31})
            before = len(bot_messages(server))
            server.send_text("/stats 366", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            await settled(server, app)   # the command handled, every reply sent
            photo, *numbers = bot_messages(server)[before:]
            assert photo["caption"] == texts.STATS_CAPTION.format(days=366)
            return [m["text"] for m in numbers], desk_stats.lines(desk_stats.gather(db, 366))

    texts_sent, expected = asyncio.run(main())
    assert all(len(t) <= 4096 for t in texts_sent)
    assert "\n".join(texts_sent).split("\n") == expected
    assert any(line.startswith("  retrained1 (кандидат, ") for line in expected)


def test_stats_count_each_draft_once_by_its_last_decision(tmp_path):
    """Approved, sent back to pending (↩️) and rejected the same day: rejected only; approved one
    day and edited the next: approved once, on the day of the edit; approved then sent back: not
    decided. /stats' sums are drafts, not button presses."""
    from corpus.db import open_db

    db = open_db(tmp_path / "b.sqlite3")
    ids = [draft_rows.add_draft(db, text=f"ПОСТ {i}\n@\nСТРОКА", model_version="v", temperature=0.8, seed=i,
                                max_length=500, status="pending") for i in range(3)]
    history = [(ids[0], "approve", "2026-03-02T10:00:00"), (ids[0], "unapprove", "2026-03-02T11:00:00"),
               (ids[0], "reject", "2026-03-02T12:00:00"),
               (ids[1], "approve", "2026-03-02T10:30:00"), (ids[1], "edit", "2026-03-03T09:00:00"),
               (ids[2], "approve", "2026-03-03T10:00:00"), (ids[2], "unapprove", "2026-03-03T10:05:00")]
    for draft_id, action, at in history:
        draft_rows.record_action(db, draft_id, action, actor_id=MODERATOR)
        db.execute("UPDATE moderation_actions SET at = ? WHERE id = (SELECT max(id) FROM moderation_actions)", [at])
    assert desk_rows.decisions_per_day(db, "2026-03-01T00:00:00") == {("2026-03-02", "rejected"): 1,
                                                                       ("2026-03-03", "approved"): 1}
    db.close()


def rate_blind(db, version: str | None, readable: list[bool], publish: list[bool]) -> None:
    """Blind ratings (jobs/rating.py) of a model version's drafts, or of real posts (version None)."""
    from corpus.store import ratings as rating_rows

    for i, (read, would) in enumerate(zip(readable, publish)):
        rid = rating_rows.add_shown(db, rater_id=100 + i, source="draft" if version else "corpus", item_id=1,
                                    model_version=version)
        rating_rows.answer(db, rid, "readable", read)
        rating_rows.answer(db, rid, "would_publish", would)


def test_the_footer_carries_the_meme_number_and_keeps_publishing_at_most_once(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            first, long = add_pending(db, 2)
            db.execute("UPDATE drafts SET text = ? WHERE id = ?", ["Я" * 4094, long])
            for draft_id in (first, long):
                draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            server.fail("sendMessage", 403, chat_id=CHANNEL)   # refused first: the retry sends the same words
            await service.publish()
            assert server.sent(CHANNEL) == []
            await service.publish()
            await service.publish()
            posts = [p["text"] for p in server.sent(CHANNEL)]
            assert posts == [f"ПРИХОДИШЬ НА РАБОТУ 0\n@\nТАМ ПЯТНИЦА\n\n#{first}", "Я" * 4094]  # too long for it
            assert [p["status"] for p in pubs.publications_of(db, first)] == ["sent"]
            # a reader asks for the number under the post
            reply = await reply_to(server, 5001, f"/meme {first}", user_id=5001)
            assert reply["text"].startswith(texts.MEME.format(id=first, text="ПРИХОДИШЬ НА РАБОТУ 0\n@\nТАМ ПЯТНИЦА"))

    asyncio.run(main())


def test_without_a_footer_the_post_is_the_text(tmp_path, server):
    settings = make_settings(tmp_path, server, publish={"footer": ""})

    async def main():
        async with bot_running(settings) as app:
            (draft_id,) = add_pending(app.bot_data.db, 1)
            draft_rows.transition(app.bot_data.db, draft_id, from_status=["pending"], to_status="queued")
            await app.bot_data.service.publish()

    asyncio.run(main())
    assert [p["text"] for p in server.sent(CHANNEL)] == ["ПРИХОДИШЬ НА РАБОТУ 0\n@\nТАМ ПЯТНИЦА"]


@pytest.mark.parametrize("table, values, named", [
    ("publish", {"footer": "#{x}"}, "publish.footer"),
    ("moderation", {"votes": 0}, "moderation.votes"),
    ("moderation", {"reject_reasons": [""]}, "moderation.reject_reasons"),
    ("alerts", {"min_queue": -1}, "alerts.min_queue"),
])
def test_bad_desk_settings_are_named(tmp_path, server, table, values, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write_config(tmp_path, server, **{table: values}), environ={})


def test_an_edit_after_another_moderators_approve_goes_to_the_vote_again(tmp_path, server):
    """votes = 2: @MODERATOR's ✅ was for the text shown then; @SECOND rewriting it by reply is one
    vote for a text nobody else saw, never the second vote that publishes it."""
    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, SECOND, FAST]},
                             moderation={"votes": 2})

    async def main():
        async with bot_running(settings) as app:
            db, one, message = await one_shown(server, app)
            await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            said = await reply_to(server, MODERATORS_CHAT, "СОВСЕМ ДРУГОЙ\n@\nТЕКСТ", user_id=SECOND,
                                  chat_id=MODERATORS_CHAT, reply_to=message)
            assert said["text"] == texts.EDIT_VOTED.format(have=1, need=2)
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "pending" and row["final_text"] == "СОВСЕМ ДРУГОЙ\n@\nТЕКСТ"
            assert [(v["actor_id"], v["vote"]) for v in desk_rows.votes_for(db, one)] == [(str(SECOND), "edit")]
            # the first moderator, now shown the new text, approves it: that is the quorum
            await press(server, f"d:a:{one}", user_id=MODERATOR, message=draft_message(server, db, one))
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "queued" and row["final_text"] == "СОВСЕМ ДРУГОЙ\n@\nТЕКСТ"

    asyncio.run(main())


def test_an_edit_the_quorum_approves_is_recorded_and_shown_as_an_approved_edit(tmp_path, server):
    """votes = 2: @SECOND's edit by reply, then @MODERATOR's ✅ on the new text. The decision was
    recorded as a plain approve: the message said '✅ Одобрено', and the ranker took the draft for
    one approved as generated, at full weight, without the edit's distance (docs/telegram.md: edited
    ones count less the more you changed), as when one moderator edits alone."""
    from jobs.ranker import labels

    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, SECOND]},
                             moderation={"votes": 2})

    async def main():
        async with bot_running(settings) as app:
            db, one, message = await one_shown(server, app)
            said = await reply_to(server, MODERATORS_CHAT, "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПОНЕДЕЛЬНИК", user_id=SECOND,
                                  chat_id=MODERATORS_CHAT, reply_to=message)
            assert said["text"] == texts.EDIT_VOTED.format(have=1, need=2)
            answer = await press(server, f"d:a:{one}", user_id=MODERATOR, message=draft_message(server, db, one))
            assert answer["text"] == texts.ANSWER_DONE
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "queued" and row["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nТАМ ПОНЕДЕЛЬНИК"
            assert draft_rows.actions_for(db, one)[-1]["action"] == "edit" and row["edit_distance"] > 0
            shown = await until(lambda: "Одобрено" in (m := draft_message(server, db, one))["text"] and m)
            assert texts.DECIDED_EDIT.split(":")[0] in shown["text"] and "reply_markup" not in shown
            decided = labels(db)
            (weight,) = [w for i, w in zip(decided.draft_ids, decided.weight) if i == one]
            assert weight < 1

    asyncio.run(main())


def test_the_vote_of_a_moderator_removed_from_the_config_no_longer_counts(tmp_path, server):
    """votes = 2: @MODERATOR voted ✅, then left telegram.moderators (a restart with the new config):
    one more ✅ is one vote of 2, not the quorum, and the draft's message counts only who may vote."""
    settings = make_settings(tmp_path, server, telegram={"moderators": [MODERATOR, SECOND, FAST]},
                             moderation={"votes": 2})

    async def vote_then_leave():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one, two = add_pending(db, 2)
            await service.dispatch_moderation()
            for draft_id in (one, two):
                await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=draft_message(server, db, draft_id))
            await press(server, f"d:r:{two}", user_id=SECOND, message=draft_message(server, db, two))
            return one, two

    one, two = asyncio.run(vote_then_leave())
    later = load_settings(write_config(tmp_path, server, telegram={"moderators": [SECOND, FAST]},
                                       moderation={"votes": 2}), environ={})

    async def after():
        async with bot_running(later) as app:
            db = app.bot_data.db
            message = draft_message(server, db, one)
            refused = await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            assert refused["text"] == texts.NOT_ALLOWED
            answer = await press(server, f"d:a:{one}", user_id=SECOND, message=message)
            assert answer["text"] == texts.ANSWER_VOTED.format(have=1, need=2)
            assert draft_rows.get_draft(db, one)["status"] == "pending"
            assert [v["actor_id"] for v in desk_rows.votes_for(db, one)] == [str(SECOND)]
            voted = texts.VOTES.format(have=1, need=2, votes=f"✅ @user{SECOND}")
            await until(lambda: voted in server.message(MODERATORS_CHAT, message["message_id"])["text"])
            # the split draft keeps the vote of the moderator who still may vote
            assert draft_rows.get_draft(db, two)["status"] == "pending"
            assert [v["actor_id"] for v in desk_rows.votes_for(db, two)] == [str(SECOND)]

    asyncio.run(after())


def test_an_edit_or_a_reject_replying_to_a_draft_message_that_queue_showed_anew_is_taken(tmp_path, server):
    """/queue shows a pending draft again (its old message loses its buttons, its text stays): a
    moderator who replies to the old message with an edit, or /reject, acts on the draft, as a
    reply to the new message would; it was ignored without a word."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            one, two = add_pending(db, 2)
            await service.dispatch_moderation()
            old_one, old_two = draft_message(server, db, one), draft_message(server, db, two)
            await command(server, "/queue", replies=3)
            assert draft_message(server, db, one)["message_id"] != old_one["message_id"]
            (done,) = await command(server, "ПРИХОДИШЬ НА РАБОТУ\n@\nА ТАМ СУББОТА", reply_to_message=old_one)
            assert done["text"] == texts.EDIT_DONE.format(id=one)
            row = draft_rows.get_draft(db, one)
            assert row["status"] == "queued" and row["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nА ТАМ СУББОТА"
            await until(lambda: "✏️" in draft_message(server, db, one)["text"])
            (rejected,) = await command(server, "/reject скучно", reply_to_message=old_two)
            assert rejected["text"] == texts.REJECT_DONE.format(id=two, reason="скучно")
            assert draft_rows.get_draft(db, two)["status"] == "rejected"

    asyncio.run(main())


def test_resume_lifts_a_pause_of_a_channel_since_renamed_in_the_config(tmp_path, server):
    """Paused as @buhurt_old, then telegram.channels names the channel otherwise (its new @name, or
    its -100 id): /queue and `buhurt doctor` still said it was paused, and /resume answered "not
    paused" for ever. /resume without an argument lifts every pause."""
    settings = make_settings(tmp_path, server, telegram={"channels": ["@buhurt_old"]})

    async def pause():
        async with bot_running(settings):
            (paused,) = await command(server, "/pause")
            assert paused["text"] == texts.PAUSE_DONE.format(where="telegram @buhurt_old")

    asyncio.run(pause())
    renamed = load_settings(write_config(tmp_path, server), environ={})   # channels = [CHANNEL]

    async def resume():
        async with bot_running(renamed) as app:
            (resumed,) = await command(server, "/resume")
            assert resumed["text"] == texts.RESUME_DONE.format(where="telegram @buhurt_old")
            assert desk.paused(app.bot_data.db) == {}

    asyncio.run(resume())
    from bot.doctor import check_publishing

    assert check_publishing(renamed).detail == "not paused"


def test_drafts_waiting_in_a_former_moderators_chat_are_shown_in_the_new_one_after_a_restart(tmp_path, server):
    """telegram.moderators_chat changed (a new group, or the group became a supergroup and got a new
    id): the drafts shown in the old chat and still pending are shown in the new one, with buttons
    that act there; they stayed pending unseen, and, filling the pool, no new draft came either."""
    settings = make_settings(tmp_path, server)
    new_chat = -1009876543210

    async def before():
        async with bot_running(settings) as app:
            db, draft_id, _ = await one_shown(server, app)
            return draft_id, draft_message(server, db, draft_id)

    draft_id, old = asyncio.run(before())
    moved = load_settings(write_config(tmp_path, server, telegram={"moderators_chat": new_chat}), environ={})

    async def after():
        async with bot_running(moved) as app:
            db = app.bot_data.db
            await app.bot_data.service.dispatch_moderation()
            row = draft_rows.get_draft(db, draft_id)
            assert row["moderation_chat_id"] == str(new_chat)   # shown there: it stayed pending, unseen
            shown = server.message(new_chat, int(row["moderation_message_id"]))
            assert shown["text"].startswith(f"Черновик #{draft_id}\n")
            stale = await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=old)
            assert stale["text"] == texts.STALE_BUTTON and draft_rows.get_draft(db, draft_id)["status"] == "pending"
            done = await press(server, f"d:a:{draft_id}", user_id=MODERATOR, message=shown)
            assert done["text"] == texts.ANSWER_DONE and draft_rows.get_draft(db, draft_id)["status"] == "queued"

    asyncio.run(after())


def test_an_edit_replying_to_an_approved_drafts_queue_message_is_taken(tmp_path, server):
    """/queue shows each approved draft with its text: a moderator who replies to that message with
    the correction (typed, or a copy of the whole message) edits the draft, as docs/telegram.md says
    edits work for an approved draft; the reply was ignored without a word. A copy of a preview
    that shows only the beginning of a long post is refused: the post's end would be lost."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, one, message = await one_shown(server, app)
            long = draft_rows.add_draft(db, text="ДЛИННЫЙ ПОСТ\n@\n" + "ОЧЕНЬ ДЛИННАЯ СТРОКА " * 50, model_version="v",
                                        temperature=0.8, seed=9, max_length=2000, status="pending")
            await app.bot_data.service.dispatch_moderation()
            await press(server, f"d:a:{one}", user_id=MODERATOR, message=message)
            await press(server, f"d:a:{long}", user_id=MODERATOR, message=draft_message(server, db, long))
            _, shown, shown_long = await command(server, "/queue", replies=3)
            assert shown["text"].startswith(f"В очереди: мем #{one}\n")
            (done,) = await command(server, "ПРИХОДИШЬ НА РАБОТУ\n@\nА ТАМ СУББОТА", reply_to_message=shown)
            assert done["text"] == texts.EDIT_DONE.format(id=one)
            assert draft_rows.get_draft(db, one)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ\n@\nА ТАМ СУББОТА"
            (done,) = await command(server, shown["text"].replace("ПЯТНИЦА", "СРЕДА"), reply_to_message=shown)
            assert done["text"] == texts.EDIT_DONE.format(id=one)
            assert draft_rows.get_draft(db, one)["final_text"] == "ПРИХОДИШЬ НА РАБОТУ 0\n@\nТАМ СРЕДА"
            (refused,) = await command(server, shown_long["text"].replace("ДЛИННЫЙ", "КОРОТКИЙ"),
                                       reply_to_message=shown_long)
            assert refused["text"] == texts.EDIT_SHORTENED
            assert draft_rows.get_draft(db, long)["final_text"] is None

    asyncio.run(main())


def test_stats_where_the_bot_may_not_send_photos_still_sends_its_numbers(tmp_path, server):
    """/stats in a moderators' group that forbids the bot photos: Telegram refused the chart, the
    handler stopped there and the numbers were never sent (only 'ошибка в боте' and a report with
    'BadRequest: ...'). The numbers go out after one line saying in Russian what Telegram refused,
    in its words, and what to do."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            add_pending(app.bot_data.db, 2)
            server.fail("sendPhoto", 400, description="Bad Request: not enough rights to send photos to the chat")
            refused, numbers = await command(server, "/stats 7", replies=2)
            await settled(server, app)
            return refused["text"], numbers["text"]

    refused, numbers = asyncio.run(main())
    assert refused == texts.STATS_PHOTO_REFUSED.format(said="Not enough rights to send photos to the chat")
    assert "Bad Request" not in refused and "BadRequest" not in refused
    assert numbers.startswith("Статистика за 7 дн.") and "Черновиков: 2" in numbers
    said = moderators_texts(server)
    assert not [t for t in said if t.startswith(texts.ERROR_REPORT.split("{")[0]) or t == texts.DESK_FAILED]


def test_a_regenerate_or_a_chart_that_fails_says_in_russian_what_happened(tmp_path, server, monkeypatch):
    """A 🔄 whose replacement met the database held past the busy timeout said 'Не удалось
    сгенерировать замену: DatabaseBusy', and a /stats chart on a full disk 'Не удалось построить
    статистику: OSError': Python's names, no advice. They say what happened and what to do; the
    technical detail stays in the log."""
    import errno

    from jobs import decisions, desk_stats
    from jobs.patience import DatabaseBusy

    settings = make_settings(tmp_path, server)

    async def busy(service):
        raise DatabaseBusy(f"{settings.database}: locked by another process for 10 s (paths.busy_timeout_seconds)")

    def full(figures, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(decisions, "replace_draft", busy)
    monkeypatch.setattr(desk_stats, "write_chart", full)

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            (one,) = add_pending(db, 1)
            await app.bot_data.service.dispatch_moderation()
            before = len(bot_messages(server))
            await press(server, f"d:g:{one}", user_id=MODERATOR, message=draft_message(server, db, one))
            (regenerate,) = await until(lambda: bot_messages(server)[before:])
            chart, numbers = await command(server, "/stats 7", replies=2)
            return regenerate["text"], chart["text"], numbers["text"]

    regenerate, chart, numbers = asyncio.run(main())
    assert regenerate == texts.REGENERATE_FAILED.format(error=notices.REASON_DATABASE_BUSY)
    assert chart == texts.STATS_FAILED.format(error=notices.REASON_DISK_FULL)
    assert "DatabaseBusy" not in regenerate and "OSError" not in chart and "paths." not in regenerate
    assert "пополнении" in regenerate and "освободите" in chart
    assert numbers.startswith("Статистика за 7 дн.")


def test_a_reject_of_an_approved_draft_says_how_to_take_the_approval_back(tmp_path, server):
    """'/reject скучно' in reply to a draft already approved (or ❌ under it) said only 'Этот
    черновик уже обработан': the moderator who changed their mind did not learn it can be taken
    back. It says the draft is approved and to return it to pending with ↩️ in /queue; a rejected
    draft still says it was decided."""
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            approved, rejected = add_pending(db, 2)
            await app.bot_data.service.dispatch_moderation()
            shown = draft_message(server, db, approved)
            await press(server, f"d:a:{approved}", user_id=MODERATOR, message=shown)
            await press(server, f"d:r:{rejected}", user_id=MODERATOR, message=draft_message(server, db, rejected))
            (late,) = await command(server, "/reject скучно", reply_to_message=shown)
            pressed = await press(server, f"d:r:{approved}", user_id=MODERATOR, message=shown)
            (again,) = await command(server, "/reject скучно", reply_to_message=draft_message(server, db, rejected))
            return late["text"], pressed["text"], again["text"], draft_rows.get_draft(db, approved)["status"]

    late, pressed, again, status = asyncio.run(main())
    assert late == pressed == texts.ALREADY_APPROVED and "↩️" in late and "/queue" in late
    assert again == texts.ALREADY_DECIDED
    assert status == "queued"


def test_the_low_queue_alert_says_its_counts_in_good_russian(tmp_path, server):
    """The 📉 alert said 'В очереди на 2 слот(ов) меньше 5': a bracketed ending instead of Russian.
    As the other counts (the reminder, 🚫), the noun comes first and then the number."""
    settings = make_settings(tmp_path, server, schedule=SLOTS, alerts={"min_queue": 5, "failures": 3})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            for draft_id in add_pending(db, 2):
                draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            assert await service.alert_low_queue()
            return await until(lambda: [t for t in moderators_texts(server) if t.startswith("📉")])

    (alert,) = asyncio.run(main())
    assert alert == notices.ALERT_LOW_QUEUE.format(slots=2, least=5)
    assert "(ов)" not in alert and "слотов публикации: 2" in alert and "5" in alert


def test_the_error_report_and_the_failed_retrain_say_what_happened_before_any_python(tmp_path, server):
    """A reply Telegram refused in the moderators' chat was reported as '⚠️ Ошибка в боте: Forbidden:
    Forbidden: bot is not a member' (the status word twice, nothing readable), and a failed night
    as '🧠 Ночное обучение не удалось (RuntimeError: CUDA out of memory ...)'. The report says in
    Russian what happened first, then one short technical line (Telegram's words once); the
    retrain's alert says what happened in Russian only, the exception stays in the log."""
    settings = make_settings(tmp_path, server)

    def broken(stop):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)")

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            server.fail("sendMessage", 403, description="Forbidden: bot is not a member of the supergroup chat",
                        chat_id=MODERATORS_CHAT)
            server.send_text("/queue", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            (report,) = await until(lambda: [t for t in moderators_texts(server) if t.startswith("⚠️")])
            service.retrainer = broken
            assert await service.retrain() is None
            (night,) = await until(lambda: [t for t in moderators_texts(server) if t.startswith("🧠")])
            return report, night

    report, night = asyncio.run(main())
    assert report == texts.ERROR_REPORT.format(what=texts.REPORT_FORBIDDEN,
                                               detail="Forbidden: bot is not a member of the supergroup chat")
    assert report.count("Forbidden") == 1
    assert night == notices.ALERT_RETRAIN_FAILED.format(error=notices.REASON_MEMORY)
    assert "RuntimeError" not in night and "CUDA" not in night


def test_the_model_file_alert_says_what_is_wrong_with_the_file_in_russian(tmp_path, server):
    """The active model's file deleted (or rewritten in place) was told as '🧠 Файл активной модели v9
    не годится (/srv/.../v9.pt: missing)' and '(...: version X, not v9 (its bytes changed after it was
    installed))': the English of the log inside a Russian line. The path stays, the why is Russian."""
    from corpus.store import model_versions as model_rows

    settings = make_settings(tmp_path, server)
    gone = tmp_path / "v9.pt"

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            using = service.holder.version
            model_rows.register_model(db, "v9", str(gone), val_bpc=2.4)
            model_rows.promote(db, "v9")
            assert await service.follow_active_model() is None
            (alert,) = await until(lambda: [t for t in moderators_texts(server) if t.startswith("🧠")])
            return alert, using

    alert, using = asyncio.run(main())
    assert alert == notices.ALERT_MODEL_FILE.format(version="v9", problem=f"{gone}: {notices.MODEL_FILE_MISSING}",
                                                    using=using)
    assert "missing" not in alert


def test_the_retrain_alerts_give_the_models_figures_in_russian(tmp_path, server):
    """'🧠 Ночное обучение: новая модель не лучше, осталась старая. kept the active model: candidate
    v2 2.6100 bits/char, 31% of drafts pass the screen; active v1 ... (warm start, 10 min of
    training)': the operator's English log line pasted after the Russian. The figures are said in
    Russian (bits per character, lower is better; the share of drafts that pass the screen)."""
    from jobs.retrain import RetrainResult

    settings = make_settings(tmp_path, server)
    kept = RetrainResult(False, "kept the active model: candidate v2 2.6100 bits/char, 31% of drafts pass the"
                         " screen; active v1 2.5500 bits/char, 40% of drafts pass the screen (warm start, 10 min"
                         " of training)", "v2", candidate_bpc=2.61, active_bpc=2.55, active_version="v1",
                         candidate_readability=0.31, active_readability=0.4, warm=True, minutes=10)
    awaits = RetrainResult(False, "the candidate waits for ratings: candidate v3 2.4000 bits/char; active v1"
                           " 2.5500 bits/char [waits for 20 ratings of its drafts before promotion]", "v3",
                           candidate_bpc=2.4, active_bpc=2.55, active_version="v1", awaiting_ratings=20)

    async def main():
        from corpus.store import model_versions as model_rows

        async with bot_running(settings) as app:
            service = app.bot_data.service
            model_rows.register_model(app.bot_data.db, "v1", "/x/v1.pt", val_bpc=2.55)
            model_rows.promote(app.bot_data.db, "v1")   # the model both were compared with
            for result in (kept, awaits):
                service.retrainer = lambda stop, result=result: result
                await service.retrain()
            return await until(lambda: len([t for t in moderators_texts(server) if t.startswith("🧠")]) == 2
                               and [t for t in moderators_texts(server) if t.startswith("🧠")])

    first, second = asyncio.run(main())
    assert first == notices.ALERT_RETRAIN_KEPT.format(
        line="Бит на символ (меньше — лучше): новая v2 — 2.610, старая v1 — 2.550."
             " Проходят фильтр: новая — 31%, старая — 40%.")
    assert second == notices.ALERT_RETRAIN_AWAITS.format(
        version="v3", ratings=20, line="Бит на символ (меньше — лучше): новая v3 — 2.400, старая v1 — 2.550.")
    assert "bits/char" not in first + second and "candidate" not in first + second


@pytest.mark.parametrize("ratings", [1, 21, 30])
def test_the_alert_of_a_candidate_waiting_for_ratings_says_its_count_in_good_russian(ratings):
    """retrain.promote_min_ratings = 1 or 21 made '... если после 1 оценок в /rate ...': the one
    plural form after every number. As the other counts, the noun comes first, then the number."""
    text = notices.ALERT_RETRAIN_AWAITS.format(version="v3", ratings=ratings, line="")
    assert f"{ratings} оценок" not in text and f"(нужно оценок: {ratings})" in text


def test_stats_name_each_models_state_in_russian(tmp_path):
    """/stats' model lines said '  v2 (candidate, ...)', '(active, ...)', '(retired, ...)': the
    database's English words in the Russian numbers. They say the state in Russian."""
    from corpus.db import open_db
    from corpus.store import model_versions as model_rows
    from jobs import desk_stats

    db = open_db(tmp_path / "b.sqlite3")
    for version in ("v1", "v2", "v3", "v4"):
        model_rows.register_model(db, version, f"/x/{version}.pt", val_bpc=2.5)
    model_rows.promote(db, "v1")
    model_rows.promote(db, "v2")                      # v1 retired
    model_rows.set_status(db, "v3", "rejected")
    text = "\n".join(desk_stats.lines(desk_stats.gather(db, 7)))
    for version, state in (("v1", "в запасе"), ("v2", "активная"), ("v3", "отклонена"), ("v4", "кандидат")):
        assert f"  {version} ({state}, " in text, text
    assert not any(word in text for word in ("candidate", "active", "retired", "rejected"))


def test_a_night_whose_candidate_was_kept_out_for_a_model_made_active_meanwhile_says_so(tmp_path, server):
    """The operator made v2 active while the night trained (buhurt models activate): the candidate,
    compared with v1, is kept out (jobs.retrain._promotion), and the moderators read '🧠 ...: новая
    модель не лучше, осталась старая', beside v1's figures: neither true, the candidate may have been
    better and v1 is no longer the model writing. They are told v2 was made active meanwhile, the
    candidate was not compared with it, and v2 writes the drafts."""
    from corpus.store import model_versions as model_rows
    from jobs.retrain import RetrainResult

    settings = make_settings(tmp_path, server)
    result = RetrainResult(False, "kept the active model: candidate v5 2.3000 bits/char; active v1 2.5000 bits/char"
                           " [model v2 was made active while it trained: the candidate was compared with v1]",
                           "v5", candidate_bpc=2.3, active_bpc=2.5, active_version="v1")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            for version in ("v1", "v2"):
                model_rows.register_model(db, version, f"/x/{version}.pt", val_bpc=2.5)
                model_rows.promote(db, version)
            service.retrainer = lambda stop: result
            await service.retrain()
            return await until(lambda: [t for t in moderators_texts(server) if t.startswith("🧠")])

    (alert,) = asyncio.run(main())
    assert alert == notices.ALERT_RETRAIN_SUPERSEDED.format(version="v5", active="v2", compared="v1")
    assert "не лучше" not in alert


def test_an_alert_given_while_another_process_writes_waits_for_its_lock(tmp_path, server, caplog):
    """A publishing time that finds the queue empty (or too short) while another process (a backup,
    `buhurt corpus clean`) takes the write lock for a moment: recording that the alert was given,
    written on the service's own connection without waiting off the loop, failed after 50 ms with
    'database is locked', so the moderators were never told ('could not check ...' in the log only).
    Now it waits for the lock, records the alert and tells them."""

    settings = make_settings(tmp_path, server, alerts={"min_queue": 1}, paths={"busy_timeout_seconds": 30})
    low = notices.ALERT_LOW_QUEUE.format(slots=0, least=1)
    waiting = waits_logged(caplog, "set_state")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            with another_writer_at(settings.database, db.conn, state_written("'alert:low_queue'")) as taken:
                alerting = asyncio.ensure_future(service.alert_low_queue())
                await until(lambda: alerting.done() or waiting())
            told = await alerting
            if told:
                await until(lambda: low in moderators_texts(server))
            return taken, told

    taken, told = asyncio.run(main())
    assert taken and told


def test_a_failed_send_is_counted_while_another_process_writes(tmp_path, server, caplog):
    """A send to the channel that fails (the bot removed from it, 403) while another process (a backup,
    `buhurt corpus clean`) takes the write lock for a moment: the count of failures in a row,
    written on the service's own connection without waiting off the loop, failed after 50 ms with
    'database is locked' ('could not count the outcome' in the log), so the moderators were not told
    at alerts.failures failures in a row. Now the count waits for the lock and the alert is given."""

    settings = make_settings(tmp_path, server, alerts={"min_queue": 0, "failures": 1},
                             paths={"busy_timeout_seconds": 30})
    failing = notices.ALERT_FAILING.format(where=f"telegram {CHANNEL}", count=1)
    waiting = waits_logged(caplog, "set_state")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            (draft_id,) = add_pending(db, 1)
            draft_rows.transition(db, draft_id, from_status=["pending"], to_status="queued")
            server.fail("sendMessage", 403, chat_id=CHANNEL, times=1)
            with another_writer_at(settings.database, db.conn, state_written("'publish_failures:")) as taken:
                publishing = asyncio.ensure_future(service.publish())
                await until(lambda: publishing.done() or waiting())
            await publishing
            return taken, db.execute("SELECT value FROM state WHERE key = ?",
                                     [f"publish_failures:telegram {CHANNEL}"]).fetchone()

    taken, count = asyncio.run(main())
    assert taken and count == ("1",)
    assert failing in moderators_texts(server)


def test_the_moderators_chat_answering_again_is_recorded_while_another_process_writes(tmp_path, server, caplog):
    """Drafts reach the moderators' chat again after it failed (`buhurt doctor` showed why) while
    another process (a backup, `buhurt corpus clean`) takes the write lock for a moment: clearing
    the recorded problem, written on the service's own connection without waiting off the loop,
    failed after 50 ms with 'database is locked', so the dispatch ended in a traceback and doctor
    kept showing the old problem. Now it waits for the lock and clears it."""

    from corpus.store.state import get_state, set_state
    from jobs.service import MODERATION_ERROR

    settings = make_settings(tmp_path, server, alerts={"min_queue": 0}, paths={"busy_timeout_seconds": 30})
    waiting = waits_logged(caplog, "set_state")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            set_state(db, MODERATION_ERROR, "2026-12-08T00:00:00+00:00 Forbidden: bot was kicked")
            add_pending(db, 1)
            with another_writer_at(settings.database, db.conn, state_written("'moderation_error', ''")) as taken:
                dispatching = asyncio.ensure_future(service.dispatch_moderation())
                await until(lambda: dispatching.done() or waiting())
            sent = await dispatching
            return taken, sent, get_state(db, MODERATION_ERROR)

    taken, sent, problem = asyncio.run(main())
    assert taken and sent == 1 and problem == ""
