"""Input that used to hurt (issue 14, point 8), through the real PTB client against the fake Bot API
server: `/meme ²`, one user's flood of commands, and cooldown notices without end."""
from __future__ import annotations

import asyncio

import pytest

from bot import texts
from tests.fakes.telegram_app import bot_running, make_settings, reply_to, settled, until

FLOODER = 7001
OTHERS = [7101, 7102, 7103, 7104, 7105]


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("argument", ["²", "1²", "٣", "¹²", "0x10", "-1", "1" * 13])
def test_meme_with_a_number_that_is_not_one_gets_the_usage_reply(tmp_path, server, argument):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings):
            return await reply_to(server, 5001, f"/meme {argument}", user_id=5001)

    assert run(main())["text"] == texts.MEME_USAGE


def test_one_users_flood_does_not_hold_back_the_others(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"user_burst": 5, "user_window_seconds": 600.0})

    async def main():
        async with bot_running(settings) as app:
            for index in range(300):
                server.send_text("/start", user_id=FLOODER)
                if index == 150:
                    for user in OTHERS:
                        server.send_text("/start", user_id=user)
            for user in OTHERS:
                await until(lambda u=user: server.sent(u))
            await settled(server, app)

    run(main())
    for user in OTHERS:
        assert [m["text"] for m in server.sent(user)] == [texts.START]
    to_flooder = [m["text"] for m in server.sent(FLOODER)]
    # handled concurrently, so in any order: the burst's five answers and one notice, not 295
    assert sorted(to_flooder) == sorted([texts.START] * 5 + [texts.FLOOD.format(seconds=600)])


def test_messages_that_are_not_commands_do_not_count_towards_the_flood_limit(tmp_path, server):
    """telegram.user_burst counts commands (docs/config.md). A subscriber who forwarded the bot a
    few posts (or sent an album of photos, stickers, a 'привет') and then /start got 'Слишком много
    команд подряд' and no answer: every private message counted. Messages the bot does not answer
    cost nothing and are not counted; commands still are."""
    settings = make_settings(tmp_path, server, telegram={"user_burst": 5, "user_window_seconds": 600.0})

    async def main():
        async with bot_running(settings) as app:
            for index in range(6):
                server.send_text(f"ПЕРЕСЛАННЫЙ ПОСТ {index}", user_id=FLOODER)
            await settled(server, app)
            first = await reply_to(server, FLOODER, "/start", user_id=FLOODER)
            for _ in range(5):
                server.send_text("/start", user_id=FLOODER)
            await settled(server, app)
            return first

    assert run(main())["text"] == texts.START
    to_flooder = [m["text"] for m in server.sent(FLOODER)]
    assert sorted(to_flooder) == sorted([texts.START] * 5 + [texts.FLOOD.format(seconds=600)])


def test_the_flood_window_slides_and_notices_once_per_window():
    from bot.telegram.limits import Limits

    now = [1000.0]
    limits = Limits(0.0, 1, burst=2, window_seconds=10.0, clock=lambda: now[0])
    got = [limits.admit(1) for _ in range(5)]
    assert got == [(True, False), (True, False), (False, True), (False, False), (False, False)]
    assert limits.admit(2) == (True, False)  # another user is not affected
    now[0] += 9.9
    assert limits.admit(1) == (False, False)  # still inside the window of the first two
    now[0] += 0.2
    assert limits.admit(1) == (True, False)   # the oldest command left the window
    assert limits.admit(1) == (True, False)
    assert limits.admit(1) == (False, True)   # a new window: one new notice


def test_cooldown_notice_once_per_cooldown(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"cooldown_seconds": 600.0, "user_burst": 100})

    async def main():
        async with bot_running(settings) as app:
            await app.bot_data.service.fill_pools()   # a ready post: no chance of "nothing good"
            first = await reply_to(server, 5001, "/generate", user_id=5001)
            for _ in range(10):
                server.send_text("/generate", user_id=5001)
            await until(lambda: len(server.sent(5001)) >= 2)
            await settled(server, app)
            return first

    first = run(main())
    texts_sent = [m["text"] for m in server.sent(5001)]
    assert first["text"].startswith("Мем #")
    assert texts_sent[1:] == [texts.COOLDOWN.format(seconds=600)]  # one notice, not ten
