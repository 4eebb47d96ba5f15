"""Fresh posts and serving what people liked (issue 24, part 3), through the real python-telegram-bot
client against the fake Bot API server and real SQLite: no near-copy of a post already published
to a channel reaches it, a subscriber never gets the same post twice, /generate serves a liked
published post with probability generate.popular_share, and the weekly best-of."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot import texts
from bot.config import ConfigError, load_settings
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.clock import ago
from jobs.curation import DIGEST_HEADER, GenerateOptions
from jobs.scheduler import ScheduleOptions, weekly_at
from tests.fakes.telegram_app import (
    CHANNEL, MODERATOR, MODERATORS_CHAT, another_writer_at, bot_running, make_settings, reply_to, until,
    waits_logged, write_config,
)

LONG = "ПРИХОДИШЬ ДОМОЙ ПОСЛЕ ШКОЛЫ\n@\nА ТАМ БАТЯ ЧИНИТ КРАН УЖЕ ТРЕТИЙ ЧАС ПОДРЯД\n@\nКРАН ТЕЧЁТ СИЛЬНЕЕ"
USER = 333


def queued(db, text: str, purpose: str = "channel", status: str = "queued") -> int:
    return draft_rows.add_draft(db, text=text, model_version="v", temperature=0.8, seed=1, max_length=500,
                                purpose=purpose, status=status)


async def publish_all(server, service, n: int) -> list[dict]:
    """Run n publishing times; the channel's messages."""
    for _ in range(n):
        await service.publish()
    return server.sent(CHANNEL)


async def react(server, db, message_id: int, count: int) -> None:
    before = db.execute("SELECT count(*) FROM reactions").fetchone()[0]
    server.reaction_count(CHANNEL, message_id, {"👍": count})
    await until(lambda: db.execute("SELECT count(*) FROM reactions").fetchone()[0] > before)


async def ten_published_one_liked(server, app, template: str) -> int:
    """Ten posts (`template` with {i}) published to the channel, the ninth (the channel's top tenth)
    liked far above the others; its draft id."""
    db = app.bot_data.db
    ids = [queued(db, template.format(i=i)) for i in range(10)]
    await publish_all(server, app.bot_data.service, 10)
    messages = [m for (c, _), m in sorted(server.messages.items()) if c == server.chat(CHANNEL)["id"]]
    for i, message in enumerate(messages):
        await react(server, db, message["message_id"], 50 if i == 8 else 1 + i % 3)
    return ids[8]


def test_a_near_copy_of_a_published_post_never_reaches_the_channel(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            first = queued(db, LONG)
            await publish_all(server, service, 1)
            again = queued(db, LONG.replace("КРАН ТЕЧЁТ СИЛЬНЕЕ", "БАТЯ ДОВОЛЕН"))   # 70 characters the same
            short = queued(db, "ПРИХОДИШЬ ДОМОЙ ПОСЛЕ ШКОЛЫ\n@\nТАМ ГРЕЧКА")            # 27 the same: fresh
            sent = await publish_all(server, service, 2)
            fresh = draft_rows.get_draft(db, short)["text"]
            assert [m["text"] for m in sent] == [f"{LONG}\n\n#{first}", f"{fresh}\n\n#{short}"]   # + the footer
            (skipped,) = pubs.publications_of(db, again)
            assert skipped["status"] == "skipped" and f"shared with meme {first}" in skipped["error"]
            row = draft_rows.get_draft(db, again)
            assert row["status"] == "rejected_auto" and "near-copy" in row["status_reason"]
            assert draft_rows.get_draft(db, short)["status"] == "published"
            assert await service.publish() is None and len(server.sent(CHANNEL)) == 2

    asyncio.run(main())


def test_a_subscriber_never_gets_the_same_post_twice(tmp_path, server):
    settings = make_settings(tmp_path, server, generate={"popular_share": 0.0}, pool={"subscriber_size": 0})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            one = queued(db, LONG, purpose="subscriber", status="ready")
            twin = queued(db, LONG, purpose="subscriber", status="ready")   # the same text again
            other = queued(db, "ТАМ ГРЕЧКА\n@\nОПЯТЬ ГРЕЧКА", purpose="subscriber", status="ready")
            first = await reply_to(server, USER, "/generate", user_id=USER)
            assert first["text"] == texts.MEME.format(id=one, text=LONG)
            second = await reply_to(server, USER, "/generate", user_id=USER)
            assert second["text"].startswith(f"Мем #{other}\n")
            assert draft_rows.get_draft(db, twin)["status"] == "ready"        # kept for someone else
            someone = await reply_to(server, USER + 1, "/generate", user_id=USER + 1)
            assert someone["text"] == texts.MEME.format(id=twin, text=LONG)
            got = [r[0] for r in db.execute("SELECT draft_id FROM served WHERE user_id = ? ORDER BY at", [str(USER)])]
            assert sorted(got) == sorted([one, other])

    asyncio.run(main())


def test_generate_serves_a_liked_published_post_with_its_meme_number(tmp_path, server):
    settings = make_settings(tmp_path, server, generate={"popular_share": 1.0}, pool={"subscriber_size": 0})

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            best = await ten_published_one_liked(server, app, "ПОСТ НОМЕР {i}\n@\nСТРОКА {i}")
            liked = await reply_to(server, USER, "/generate", user_id=USER)
            assert liked["text"] == texts.POPULAR.format(id=best, text="ПОСТ НОМЕР 8\n@\nСТРОКА 8")
            fresh = await reply_to(server, USER, "/generate", user_id=USER)   # the liked one was served already
            assert not fresh["text"].startswith(f"Мем #{best} ") and "из лучшего" not in fresh["text"]
            other = await reply_to(server, USER + 1, "/generate", user_id=USER + 1)
            assert other["text"] == liked["text"]
            app.bot_data.services.service.plan = replace(service.plan, generate=GenerateOptions(popular_share=0.0))
            never = await reply_to(server, USER + 2, "/generate", user_id=USER + 2)
            assert "из лучшего" not in never["text"]

    asyncio.run(main())


def test_generate_never_serves_a_ready_draft_a_word_listed_since_then_matches(tmp_path, server):
    settings = make_settings(tmp_path, server, generate={"popular_share": 0.0}, pool={"subscriber_size": 0},
                             filter={"words": ["ёлку"]})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            listed = queued(db, "ПОКУПАЕШЬ ЁЛКУ\n@\nОНА ГОРИТ", purpose="subscriber", status="ready")   # made before
            clean = queued(db, "ТАМ ГРЕЧКА\n@\nОПЯТЬ ГРЕЧКА", purpose="subscriber", status="ready")
            reply = await reply_to(server, USER, "/generate", user_id=USER)
            assert reply["text"] == texts.MEME.format(id=clean, text="ТАМ ГРЕЧКА\n@\nОПЯТЬ ГРЕЧКА")
            row = draft_rows.get_draft(db, listed)
            assert row["status"] == "rejected_auto" and row["status_reason"] == "stop-list: 'елку'"   # as read
            assert "ЁЛКУ" not in "".join(m["text"] for m in server.sent(USER))

    asyncio.run(main())


def test_a_published_post_a_word_listed_since_then_matches_is_not_shown_again(tmp_path, server):
    """Not by /generate as a liked post, not in /top, not in the weekly best-of."""
    settings = make_settings(tmp_path, server, generate={"popular_share": 1.0}, pool={"subscriber_size": 0})

    async def main():
        async with bot_running(settings) as app:
            best = await ten_published_one_liked(server, app, "ПОСТ НОМЕР {i} ПРО ЁЛКУ\n@\nСТРОКА {i}")
        # the operator lists the word and restarts
        async with bot_running(replace(settings, filter=replace(settings.filter, words=["ёлку"]))) as app:
            reply = await reply_to(server, USER, "/generate", user_id=USER)
            assert f"#{best}" not in reply["text"] and "ЁЛКУ" not in reply["text"]
            top = await reply_to(server, USER, "/top", user_id=USER)
            assert top["text"] == texts.TOP_EMPTY
            assert await app.bot_data.service.digest() == 0
            assert not any(DIGEST_HEADER in m["text"] for m in server.sent(CHANNEL))

    asyncio.run(main())


def test_the_weekly_best_of_goes_to_each_channel(tmp_path, server):
    settings = make_settings(tmp_path, server, schedule={"retrain": False, "digest": "sun 19:00"})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            assert await service.digest() == 0 and server.sent(CHANNEL) == []   # nothing liked yet: no post
            ids = [queued(db, f"НЕДЕЛЯ {i}\n@\nСТРОКА {i}") for i in range(4)]
            await publish_all(server, service, 4)
            messages = [m for (c, _), m in sorted(server.messages.items()) if c == server.chat(CHANNEL)["id"]]
            for message, count in zip(messages, (5, 0, 9, 2)):
                if count:
                    await react(server, db, message["message_id"], count)
            db.execute("UPDATE publications SET published_at = ? WHERE draft_id = ?", [ago(days=8), ids[2]])
            assert await service.digest() == 1
            digest = server.sent(CHANNEL)[-1]["text"]
            assert digest == "\n\n".join([DIGEST_HEADER, f"1. Мем #{ids[0]}\nНЕДЕЛЯ 0\n@\nСТРОКА 0",
                                          f"2. Мем #{ids[3]}\nНЕДЕЛЯ 3\n@\nСТРОКА 3"])
            service.start_schedule()
            names = sorted(job.name for job in service.scheduler.get_jobs())
            service.stop_schedule()
            assert "digest" in names and "ranker" in names

    asyncio.run(main())


def test_a_post_too_long_for_the_best_of_gives_its_place_to_the_next(tmp_path, server):
    settings = make_settings(tmp_path, server, schedule={"retrain": False, "digest": "sun 19:00"})
    line = "ОЧЕНЬ ДЛИННАЯ СТРОКА ПРО ТО КАК ТЫ ЖДЁШЬ АВТОБУС НА ОСТАНОВКЕ"
    long_text = "\n@\n".join([line] * 70)[:4085]   # fits a post with its footer, not the best-of's header

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            ids = [queued(db, long_text), queued(db, "КОРОТКИЙ\n@\nПОСТ")]
            await publish_all(server, service, 2)
            messages = [m for (c, _), m in sorted(server.messages.items()) if c == server.chat(CHANNEL)["id"]]
            for message, count in zip(messages, (9, 2)):   # the long one is the week's best
                await react(server, db, message["message_id"], count)
            assert await service.digest() == 1
            assert server.sent(CHANNEL)[-1]["text"] == f"{DIGEST_HEADER}\n\n1. Мем #{ids[1]}\nКОРОТКИЙ\n@\nПОСТ"

    asyncio.run(main())


def test_the_digest_setting_is_checked(tmp_path, server):
    assert weekly_at("sun 19:00") == ("sun", 19, 0) and weekly_at("Mon 7:05") == ("mon", 7, 5)
    assert weekly_at("sunday 19:00") is None and weekly_at("sun 25:00") is None
    assert ScheduleOptions(digest="").problems() == {}
    with pytest.raises(ConfigError, match=r"schedule\.digest must be a day and time as 'sun 19:00'"):
        load_settings(write_config(tmp_path, server, schedule={"digest": "воскресенье"}), environ={})
    with pytest.raises(ConfigError, match=r"generate\.popular_share must be a number from 0 to 1"):
        load_settings(write_config(tmp_path, server, generate={"popular_share": 1.5}), environ={})


async def published_and_liked(server, db, service) -> int:
    """A post of the week published to every channel and liked in each (reaction counts stored)."""
    draft_id = queued(db, "НЕДЕЛЯ\n@\nСТРОКА")
    await service.publish()
    publications = pubs.publications_of(db, draft_id)
    for publication in publications:
        server.reaction_count(publication["chat_id"], int(publication["message_id"]), {"👍": 3})
    await until(lambda: db.execute("SELECT count(*) FROM reactions").fetchone()[0] == len(publications))
    return draft_id


def test_the_weekly_best_of_skips_a_paused_channel(tmp_path, server):
    """/pause stops publishing to a channel until /resume, but the weekly best-of still went out there."""
    other = "@buhurt_second"
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, other]},
                             schedule={"retrain": False, "digest": "sun 19:00"})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            draft_id = await published_and_liked(server, db, service)
            server.send_text(f"/pause {other}", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
            await until(lambda: any(m["text"] == texts.PAUSE_DONE.format(where=f"telegram {other}")
                                    for m in server.sent(MODERATORS_CHAT)))
            assert await service.digest() == 1
            assert server.sent(CHANNEL)[-1]["text"].startswith(f"{DIGEST_HEADER}\n\n1. Мем #{draft_id}")
            assert len(server.sent(other)) == 1   # its post of the week only

    asyncio.run(main())


def test_a_best_of_a_channel_refused_is_tried_again_and_the_moderators_are_told(tmp_path, server):
    """A best-of that a channel refused (a network error, the bot demoted at 19:00 on Sunday) was one
    WARNING line: the week's best-of was lost there and nobody knew. Now the moderators are told, it
    is tried again at that channel alone, and after the last try they are told it was given up."""
    from jobs import notices
    from jobs.service import DIGEST_RETRY_MINUTES, DIGEST_TRIES

    other = "@buhurt_second"
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, other]},
                             schedule={"retrain": False, "digest": "sun 19:00"})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            await published_and_liked(server, db, service)
            service.start_schedule()
            try:
                server.fail("sendMessage", 403, description="Forbidden: bot is not a member of the channel chat",
                            chat_id=other, times=DIGEST_TRIES)
                assert await service.digest() == 1
                told = [m["text"] for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("🏆")]
                (first,) = told
                assert first.startswith(notices.DIGEST_RETRY.split("{")[0] + f"telegram {other}: ") and \
                    "bot is not a member of the channel chat" in first and f"{DIGEST_RETRY_MINUTES} мин" in first
                def due_retry():   # the retry's one run, taken off the schedule as APScheduler does
                    job = service.scheduler.get_job("digest-retry")
                    job.remove()
                    return job.func()

                for _ in range(2, DIGEST_TRIES + 1):
                    assert await due_retry() == 0
                assert not [j for j in service.scheduler.get_jobs() if j.id == "digest-retry"]
                told = [m["text"] for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("🏆")]
                assert len(told) == DIGEST_TRIES and told[-1].startswith(
                    notices.DIGEST_GIVEN_UP.split("{")[0] + f"telegram {other}"), told
                assert [m["text"] for m in server.sent(CHANNEL)].count(server.sent(CHANNEL)[-1]["text"]) == 1
                assert server.sent(CHANNEL)[-1]["text"].startswith(DIGEST_HEADER)
                assert len(server.sent(other)) == 1   # its post of the week only

                server.fail("sendMessage", 400, description="Bad Request: not enough rights", chat_id=other, times=1)
                assert await service.digest() == 1                   # the next week: refused once ...
                assert await due_retry() == 1                         # ... and out at the second try
                assert server.sent(other)[-1]["text"].startswith(DIGEST_HEADER)
                assert [m["text"] for m in server.sent(CHANNEL)].count(server.sent(CHANNEL)[-1]["text"]) == 2
            finally:
                service.stop_schedule()

    asyncio.run(main())


def test_a_draft_taken_for_generate_while_another_process_writes_is_served_to_the_subscriber(tmp_path, server, caplog):
    """/generate takes the oldest ready draft (served) and then records it as the subscriber's: two
    commits. Another process (a backup, `buhurt corpus clean`) taking the write lock between them
    made the record wait past 50 ms and fail, and patiently's retry took the next draft: the first
    one was left served to nobody, lost from the pool. Now both are one transaction."""
    settings = make_settings(tmp_path, server, generate={"popular_share": 0.0}, pool={"subscriber_size": 0},
                             paths={"busy_timeout_seconds": 30})
    waiting = waits_logged(caplog, "next_for_subscriber")

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            ids = [queued(db, f"ГОТОВЫЙ ПОСТ {i}\n@\nСТРОКА {i}", purpose="subscriber", status="ready")
                   for i in range(3)]
            with another_writer_at(settings.database, db.conn,
                                   lambda sql: sql.startswith("INSERT OR IGNORE INTO served")) as taken:
                server.send_text("/generate", user_id=USER, chat_id=USER)
                await until(lambda: server.sent(USER) or waiting())
            (reply,) = await until(lambda: server.sent(USER))
            served = [r["id"] for r in db.query("SELECT id FROM drafts WHERE status = 'served' ORDER BY id")]
            recorded = [r["draft_id"] for r in db.query("SELECT draft_id FROM served WHERE user_id = ?", [str(USER)])]
            return ids, taken, reply["text"], served, recorded

    ids, taken, text, served, recorded = asyncio.run(main())
    assert served == recorded == [ids[0]], (taken, served, recorded)
    assert text.startswith(f"Мем #{ids[0]}")
