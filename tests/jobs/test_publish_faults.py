"""Publishing under faults (issue 14, points 1, 2, 3, 9), through the real python-telegram-bot
client against the fake Bot API server and vk_api against the fake VK transport: a row left
`sending` inside the running process, one destination refusing, a 429 on a channel post, a VK
call that never answers, a publishing time missed while the bot was down, the moderators' chat
gone, and the first publishing time after a crash."""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import sqlite3
from zoneinfo import ZoneInfo

import pytest
import requests

from bot.secrets import Secret
from corpus.db import open_db
from corpus.errors import CorpusError
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.state import get_state, set_state
from tests.fakes.fake_vk import GOOD_TOKEN, WALL_TOKEN, FakeVk, FakeWall
from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, bot_running, make_settings, reply_to, until


pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
HEALTHY = "@healthy_channel"


def queue_drafts(settings, n: int) -> list[int]:
    db = open_db(settings.database)
    try:
        return [draft_rows.add_draft(db, text=f"ПОСТ НОМЕР {i}\n@\nДЛЯ КАНАЛА", model_version="v", temperature=0.8,
                                     seed=i, max_length=120, status="queued") for i in range(1, n + 1)]
    finally:
        db.close()


def state(settings, draft_id: int) -> tuple[str, list[str]]:
    db = open_db(settings.database)
    try:
        return (draft_rows.get_draft(db, draft_id)["status"],
                [p["status"] for p in pubs.publications_of(db, draft_id)])
    finally:
        db.close()


def texts_in(server, chat) -> list[str]:
    return [m["text"] for m in server.sent(chat)]


# ---- 1. a row left `sending` inside the running process ---------------------------------------------

def test_a_post_recorded_while_the_database_is_locked_is_resolved_in_the_process(tmp_path, server, caplog):
    # "longer than the busy timeout", quickly: the service waits out a lock for paths.busy_timeout_seconds
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5})
    first, second = queue_drafts(settings, 2)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            release = server.hold("sendMessage", CHANNEL)
            publishing = asyncio.create_task(service.publish())
            await until(lambda: server.sent(CHANNEL))  # the post is out; its answer is held
            locker = sqlite3.connect(settings.database, isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")  # another process holds the database
            release.set()
            await publishing  # recording the message id fails: database is locked
            in_doubt = state(settings, first)
            locker.execute("ROLLBACK")
            locker.close()
            await service.publish()  # the next publishing time resolves it and moves on
            return in_doubt

    with caplog.at_level(logging.INFO):
        assert asyncio.run(main()) == ("queued", ["sending"])
    assert any(r.levelno == logging.ERROR and "could not record" in r.getMessage() for r in caplog.records)
    assert any("recorded late" in r.getMessage() for r in caplog.records)
    assert state(settings, first) == ("published", ["sent"])  # its message id was kept in memory
    assert state(settings, second) == ("published", ["sent"])
    assert len(texts_in(server, CHANNEL)) == 2


def test_a_send_cut_short_inside_the_process_becomes_unknown_and_the_queue_moves_on(tmp_path, server, caplog):
    settings = make_settings(tmp_path, server)
    first, second = queue_drafts(settings, 2)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            release = server.hold("sendMessage", CHANNEL)
            publishing = asyncio.create_task(service.publish())
            await until(lambda: server.sent(CHANNEL))
            publishing.cancel()  # the job dies between sending and recording, the process lives on
            with pytest.raises(asyncio.CancelledError):
                await publishing
            release.set()
            left = state(settings, first)
            await service.publish()
            return left

    with caplog.at_level(logging.INFO):
        assert asyncio.run(main()) == ("queued", ["sending"])
    assert state(settings, first) == ("published", ["unknown"])  # in doubt: never re-sent
    assert state(settings, second) == ("published", ["sent"])
    assert len(texts_in(server, CHANNEL)) == 2
    warned = [t for t in texts_in(server, MODERATORS_CHAT) if f"Мем #{first} мог не дойти" in t]
    assert len(warned) == 1 and "проверьте канал" in warned[0]
    assert any("left unfinished" in r.getMessage() for r in caplog.records)


# ---- 2. one refusing destination never holds back the others ------------------------------------------

def test_a_kicked_channel_and_an_expired_vk_token_do_not_starve_the_healthy_channel(tmp_path, server, monkeypatch):
    wall = FakeWall(42, "bugurt_test")
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, HEALTHY]},
                             vk={"publish_group_id": 42, "token": "expired-token", "requests_per_second": 1000.0})
    drafts = queue_drafts(settings, 3)
    server.fail("sendMessage", 403, description="Forbidden: bot was kicked from the channel chat",
                chat_id=CHANNEL, times=100)

    async def main():
        async with bot_running(settings) as app:
            for _ in range(3):  # three publishing times
                await app.bot_data.service.publish()

    asyncio.run(main())
    assert texts_in(server, HEALTHY) == [f"ПОСТ НОМЕР {i}\n@\nДЛЯ КАНАЛА\n\n#{i}" for i in (1, 2, 3)]  # + the footer
    refused = [c for c in server.calls_of("sendMessage", ok_only=False) if c.params["chat_id"] == CHANNEL]
    assert [c.status for c in refused] == [403, 403, 403]  # the first draft, retried at each time
    assert fake.methods["wall.post"] == 3 and wall.posts == {}  # VK error 5 each time, nothing posted
    assert state(settings, drafts[0])[0] == "queued"  # still owed to the kicked channel and to VK
    notices = texts_in(server, MODERATORS_CHAT)
    assert any("bot was kicked" in t for t in notices) and any("ошибка 5" in t for t in notices)

    # once the channel and the token are fixed, each catches up from its own queue position
    server._failures.clear()
    settings = dataclasses.replace(settings, vk=dataclasses.replace(settings.vk, token=Secret(WALL_TOKEN)))

    async def fixed():
        async with bot_running(settings) as app:
            await app.bot_data.service.publish()

    asyncio.run(fixed())
    assert len(texts_in(server, CHANNEL)) == 1 and len(wall.posts) == 1
    assert len(texts_in(server, HEALTHY)) == 3  # nothing left for it: not posted twice
    assert [p["text"] for p in wall.posts.values()] == ["ПОСТ НОМЕР 1\n@\nДЛЯ КАНАЛА\n\n#1"]
    assert state(settings, drafts[0]) == ("published", ["sent", "sent", "sent"])


def test_the_pool_refills_when_a_refusing_destination_holds_queued_drafts(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, HEALTHY], "moderators_chat": "",
                                                         "moderators": []})
    server.fail("sendMessage", 403, chat_id=CHANNEL, times=100)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            for _ in range(4):  # channel_size is 2: the healthy channel needs the pool refilled
                await service.fill_pools()
                await service.publish()

    asyncio.run(main())
    assert len(texts_in(server, HEALTHY)) == 4


# ---- 3. a 429 on a channel post never blocks replies ------------------------------------------------

def test_flood_control_on_a_channel_post_does_not_delay_replies(tmp_path, server):
    settings = make_settings(tmp_path, server)
    queue_drafts(settings, 1)
    server.fail("sendMessage", 429, retry_after=60, chat_id=CHANNEL)

    async def main():
        async with bot_running(settings) as app:
            publishing = asyncio.create_task(app.bot_data.service.publish())
            await until(lambda: server.calls_of("sendMessage", ok_only=False))  # the 429 arrived
            for user in range(301, 306):  # subscribers are answered meanwhile
                await reply_to(server, user, "/start", user_id=user)
            assert server.sent(CHANNEL) == []  # the channel is still waiting out its 60 s
            publishing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await publishing

    asyncio.run(main())
    assert len(server.sent()) - len(server.sent(MODERATORS_CHAT)) == 5   # the moderators hear it was not sent
    assert server.sent(CHANNEL) == []


# ---- 1. every VK request has a timeout --------------------------------------------------------------

def publish_twice_to_vk(tmp_path, server, monkeypatch, fault) -> tuple[FakeVk, object, int, int]:
    """Two drafts queued for Telegram and a VK wall whose first request gets `fault(fake)`; two
    publishing times. Returns (the fake VK, settings, first draft, second draft)."""
    fake = FakeVk(FakeWall(42, "bugurt_test"))
    fault(fake)
    monkeypatch.setattr(requests, "Session", fake.session)
    settings = make_settings(tmp_path, server,
                             vk={"publish_group_id": 42, "token": WALL_TOKEN, "requests_per_second": 1000.0})
    first, second = queue_drafts(settings, 2)

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.publish()
            await app.bot_data.service.publish()

    asyncio.run(main())
    return fake, settings, first, second


def test_a_vk_wall_post_that_never_answers_is_unknown_not_a_hang(tmp_path, server, monkeypatch):
    fake, settings, first, second = publish_twice_to_vk(tmp_path, server, monkeypatch,
                                                        lambda fake: fake.hang_at.add(1))
    assert fake.timeouts == [30.0, 30.0]  # vk.timeout_seconds' default on every request
    assert state(settings, first) == ("published", ["sent", "unknown"])  # VK may have it: never re-sent
    assert state(settings, second) == ("published", ["sent", "sent"])
    assert any("VK не ответил вовремя" in t for t in texts_in(server, MODERATORS_CHAT))


def test_a_vk_wall_post_answered_without_a_post_id_is_unknown_never_sent(tmp_path, server, monkeypatch):
    """Issue 26, point 12: `{"response": {"post_id": null}}` was recorded `sent` with message id
    "None": the post was lost silently. It is in doubt: `unknown`, never re-sent, the moderators told."""
    def null_post_id(fake):
        fake.rewrite[1] = lambda answer: {"response": {"post_id": None}}

    fake, settings, first, second = publish_twice_to_vk(tmp_path, server, monkeypatch, null_post_id)
    assert state(settings, first) == ("published", ["sent", "unknown"])
    assert state(settings, second) == ("published", ["sent", "sent"])
    db = open_db(settings.database)
    try:
        ids = [p["message_id"] for p in pubs.publications_of(db, first) + pubs.publications_of(db, second)]
    finally:
        db.close()
    assert "None" not in ids
    assert any("VK ответил без номера поста" in t for t in texts_in(server, MODERATORS_CHAT))
    assert fake.methods["wall.post"] == 2  # the one in doubt was not re-sent


def test_vk_timeout_seconds_reaches_every_request():
    from bot.config_sections import VkSettings
    from bot.vk.wall import vk_wall_publishing

    wall = FakeWall(42, "bugurt_test")
    fake = FakeVk(wall)
    vk = vk_wall_publishing(VkSettings(token=Secret(WALL_TOKEN), publish_group_id=42, requests_per_second=1000.0,
                                       timeout_seconds=2.5), session=fake.session())
    asyncio.run(vk.publisher.send("МЕМ"))
    vk.likes.fetch(["1"])
    assert fake.timeouts == [2.5, 2.5]


def test_a_vk_scrape_request_that_never_answers_stops_with_one_line(tmp_path):
    from bot.config_sections import VkSettings
    from corpus.vk import scrape, scrape_settings

    wall = FakeWall(42, "bugurt_test")
    wall.generate(300)
    fake = FakeVk(wall)
    fake.hang_at = {2}  # groups.getById answers, the first wall request never does
    db = open_db(tmp_path / "db.sqlite")
    with pytest.raises(CorpusError, match="cannot reach the VK API \\(ReadTimeout\\)"):
        scrape(db, ["bugurt_test"], token=GOOD_TOKEN, requests_per_second=1000.0, session=fake.session(),
               progress=False)
    assert fake.timeouts == [30.0, 30.0]
    fake.timeouts.clear()
    vk = VkSettings(token=Secret(GOOD_TOKEN), groups=["bugurt_test"], requests_per_second=1000.0, timeout_seconds=2.5)
    report = scrape_settings(db, vk, session=fake.session(), progress=False)
    assert report.added == 300 and set(fake.timeouts) == {2.5}  # resumed, with the configured timeout
    db.close()


# ---- 9. missed work -------------------------------------------------------------------------------

def test_a_publishing_time_missed_while_the_bot_was_down_runs_at_start(tmp_path, server):
    now = dt.datetime.now(dt.timezone.utc)
    slot = (now - dt.timedelta(minutes=3)).strftime("%H:%M")
    settings = make_settings(tmp_path, server, schedule={"publish_times": [slot], "retrain": False})
    queue_drafts(settings, 1)
    db = open_db(settings.database)
    set_state(db, "publish_covered_until", (now - dt.timedelta(hours=2)).replace(microsecond=0).isoformat())
    db.close()

    async def main():
        async with bot_running(settings) as app:
            app.bot_data.service.start_schedule()
            try:
                await until(lambda: server.sent(CHANNEL))
            finally:
                app.bot_data.service.stop_schedule()

    asyncio.run(main())
    assert len(server.sent(CHANNEL)) == 1


def test_a_publishing_time_already_covered_is_not_run_again(tmp_path, server):
    from jobs.scheduler import missed_slot

    now = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.timezone.utc)
    times, covered = ["09:00", "21:00"], now - dt.timedelta(hours=2)
    assert missed_slot(times, "UTC", covered_until=covered, now=now) == now - dt.timedelta(hours=1)
    assert missed_slot(times, "UTC", covered_until=now - dt.timedelta(minutes=30), now=now) is None
    assert missed_slot(times, "UTC", covered_until=now - dt.timedelta(days=3), now=now) == now - dt.timedelta(hours=1)
    late = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.timezone.utc)  # 11 h after 09:00: past the grace
    assert missed_slot(times, "UTC", covered_until=late - dt.timedelta(days=1), now=late) is None
    assert missed_slot(times, "Europe/Moscow", covered_until=now - dt.timedelta(hours=5), now=now) == dt.datetime(
        2026, 12, 1, 6, 0, tzinfo=dt.timezone.utc)  # 09:00 in Moscow


def fire_times(trigger, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """When APScheduler runs a job of `trigger` from `start` to `end` (each run takes a second):
    its next run is the trigger's next fire time after the one it ran at."""
    times, when = [], trigger.get_next_fire_time(None, start)
    while when is not None and when < end:
        times.append(when.astimezone(dt.timezone.utc))
        when = trigger.get_next_fire_time(when, when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=1))
    return times


@pytest.mark.parametrize("zone, repeated", [("Europe/Berlin", "02:30"), ("Europe/Kyiv", "03:30")])
def test_a_time_in_the_hour_the_clocks_go_back_runs_once(zone, repeated):
    # the night summer time ends, the wall clock passes 02:00-03:00 (Berlin; Kyiv 03:00-04:00) twice:
    # a publishing time there published two posts that night (APScheduler's CronTrigger fires at both),
    # a weekly best-of on that Sunday went out twice
    from jobs.scheduler import add_daily, add_weekly, build_scheduler, missed_slot

    async def job():
        return None

    scheduler = build_scheduler(zone)
    add_daily(scheduler, job, job_id="publish", times=[repeated, "09:00"], timezone=zone)
    add_weekly(scheduler, job, job_id="digest", when=f"sun {repeated}", timezone=zone)
    start, end = dt.datetime(2026, 10, 24, 12, tzinfo=dt.timezone.utc), dt.datetime(2026, 10, 26, 12,
                                                                                   tzinfo=dt.timezone.utc)
    tz = ZoneInfo(zone)
    hour, minute = map(int, repeated.split(":"))
    first = dt.datetime(2026, 10, 25, hour, minute, tzinfo=tz).astimezone(dt.timezone.utc)   # summer time's
    runs = {job.id: fire_times(job.trigger, start, end) for job in scheduler.get_jobs()}
    assert runs["publish-0"] == [first, first + dt.timedelta(days=1, hours=1)], runs
    assert runs["digest"] == [first], runs
    assert len(runs["publish-1"]) == 2    # 09:00 on the 25th and the 26th
    # the start-up catch-up of a bot down over that night names that one time
    missed = missed_slot([repeated], zone, covered_until=first - dt.timedelta(hours=1),
                         now=first + dt.timedelta(hours=2))
    assert missed is not None and missed.astimezone(dt.timezone.utc) == first
    # the night summer time starts, a time in the skipped hour runs once, when /queue says it does
    from jobs.desk import upcoming_slots

    spring = dt.datetime(2026, 3, 28, 12, tzinfo=dt.timezone.utc)
    runs = fire_times(scheduler.get_job("publish-0").trigger, spring, spring + dt.timedelta(days=2))
    assert len(runs) == 2 and runs == [slot for slot in upcoming_slots([repeated], zone, spring, days=2)
                                       if slot < spring + dt.timedelta(days=2)]


def test_the_moderators_chat_not_found_is_an_error_with_a_state_and_drafts_stay_pending(tmp_path, server, caplog):
    settings = make_settings(tmp_path, server)
    # the description echoes the request's URL, as a proxy may: the state doctor shows never holds the token
    server.fail("sendMessage", 400, description=f"Bad Request: chat not found (/bot{server.token}/sendMessage)",
                chat_id=MODERATORS_CHAT, times=1000)

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.fill_pools()
            db = app.bot_data.db
            broken = (get_state(db, "moderation_error"), draft_rows.count_by_status(db))
            server._failures.clear()  # the operator fixed telegram.moderators_chat
            await service.fill_pools()
            return broken, get_state(db, "moderation_error"), len(draft_rows.unsent_for_moderation(db))

    with caplog.at_level(logging.INFO):
        (error, counts), after, unsent = asyncio.run(main())
    # never auto-approved
    assert "BadRequest: Chat not found (/bot***/sendmessage)" in error and counts.get("pending") == 2
    assert "queued" not in counts and server.token.split(":")[1] not in error
    assert any(r.levelno == logging.ERROR and "moderators_chat" in r.getMessage()
               and "chat not found" in r.getMessage().lower() for r in caplog.records)
    assert after == "" and unsent == 0
    assert len(server.sent(MODERATORS_CHAT)) == 2


def test_after_a_crash_the_first_publishing_time_posts_a_new_draft(tmp_path, server):
    settings = make_settings(tmp_path, server)
    crashed, fresh = queue_drafts(settings, 2)
    db = open_db(settings.database)
    assert pubs.begin_publication(db, crashed, "telegram", CHANNEL) is not None  # the process died here
    db.close()

    async def main():
        async with bot_running(settings) as app:  # start-up reconciles the interrupted row
            return await app.bot_data.service.publish()

    assert asyncio.run(main())["id"] == fresh
    assert texts_in(server, CHANNEL) == [f"ПОСТ НОМЕР 2\n@\nДЛЯ КАНАЛА\n\n#{fresh}"]
    assert state(settings, crashed) == ("published", ["unknown"])
    assert state(settings, fresh) == ("published", ["sent"])


def test_the_bot_api_s_words_are_stored_and_shown_without_the_token(tmp_path, server):
    """A refusal (or an answer in doubt) whose description echoes the request's URL, as a proxy
    or a misbehaving API may: publications.error and the moderators' notices never hold the token."""
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, HEALTHY]})
    first, second = queue_drafts(settings, 2)
    secret = server.token.split(":")[1]
    server.fail("sendMessage", 400, description=f"Bad Request: bad url /bot{server.token}/sendMessage",
                chat_id=CHANNEL, times=1)
    server.fail("sendMessage", 500, description=f"Internal Server Error at /bot{server.token}/sendMessage",
                chat_id=HEALTHY, times=1)

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.publish()

    asyncio.run(main())
    db = open_db(settings.database)
    try:
        errors = {p["chat_id"]: (p["status"], p["error"]) for p in pubs.publications_of(db, first)}
    finally:
        db.close()
    # python-telegram-bot passes the description on lowercased ("Bad url /bot123456:test-.../sendmessage")
    assert errors[CHANNEL] == ("failed", "Telegram refused the post: Bad url /bot***/sendmessage")
    status, error = errors[HEALTHY]
    assert status == "unknown" and error.startswith("NetworkError: ") and "/bot***/" in error, error
    notices = texts_in(server, MODERATORS_CHAT)
    assert len(notices) == 2 and any("Bad url /bot***/sendmessage" in t for t in notices), notices
    assert not any(secret in t for t in notices) and secret not in repr(errors)
