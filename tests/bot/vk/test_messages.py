"""The VK community's messages: /generate, /meme N and /top answered there as in Telegram (the same
answers, per-user limits, screen and draft rows), through the real vk_api client (its bot long poll
and messages.send) against the fake VK API, beside the real PTB client on the fake Bot API; and
`buhurt doctor` checks that the community's long poll is on."""
from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest
import requests

from bot import texts
from corpus.db import open_db
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.reactions import record_counts
from jobs import on_request
from tests.fakes.fake_vk import COMMUNITY_TOKEN, FakeVk, FakeWall
from tests.fakes.telegram_app import bot_running, make_settings, reply_to, until, write_config
from tests.helpers import run_cli

ANNA, BORIS = 501, 502
VK = {"messages_group_id": 42, "community_token": COMMUNITY_TOKEN, "longpoll_wait_seconds": 1.0,
      "requests_per_second": 1000.0}


@pytest.fixture
def vk(monkeypatch):
    fake = FakeVk(FakeWall(42, "bugurt_test"))
    monkeypatch.setattr(requests, "Session", fake.session)
    return fake


async def listening(app) -> None:
    """The bot's VK long poll is set up (VK sends a long poll only what comes after it asked)."""
    await until(app.vk_messages.listening.is_set)


async def ask(vk: FakeVk, user: int, text: str) -> str:
    """Write `text` to the community as `user`; wait for the bot's next answer to them."""
    before = len(vk.sent_to(user))
    vk.user_message(user, text)
    answers = await until(lambda: len(vk.sent_to(user)) > before and vk.sent_to(user))
    return answers[before]


def test_generate_meme_and_top_answer_in_vk_messages(tmp_path, server, vk):
    settings = make_settings(tmp_path, server, vk=VK, generate={"popular_share": 0.0})   # fresh drafts only here
    db = open_db(settings.database)
    published = draft_rows.add_draft(db, text="МЕМ НА СТЕНЕ\n@\nКОНЕЦ", model_version="v", temperature=0.8, seed=1,
                                     max_length=120, status="published")
    pubs.finish_publication(db, pubs.begin_publication(db, published, "vk", "-42"), 7)
    record_counts(db, "vk", "-42", 7, {"like": 4})
    db.close()

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            service = app.bot_data.service
            await service.fill_pools()
            ready = draft_rows.with_status(service.db, "ready", purpose=draft_rows.SUBSCRIBER)
            assert await ask(vk, ANNA, "/start") == texts.VK_START
            assert await ask(vk, ANNA, "/generate") == texts.MEME.format(id=ready[0]["id"], text=ready[0]["text"])
            served = draft_rows.get_draft(service.db, ready[0]["id"])
            assert (served["status"], served["purpose"]) == ("served", draft_rows.SUBSCRIBER)
            await until(lambda: app.bot_data.limits.refill_task is not None)
            await app.bot_data.limits.refill_task        # the pool is topped up, as after a Telegram /generate
            meme = await ask(vk, BORIS, f"/meme {ready[0]['id']}")
            assert meme.startswith(f"Мем #{ready[0]['id']}\n\n")
            assert await ask(vk, BORIS, "/meme два") == texts.MEME_USAGE
            top = await ask(vk, BORIS, "/top")
            assert top.startswith(texts.TOP_HEADER) and f"Мем #{published}" in top and "wall-42_7" in top
            continued = await ask(vk, ANNA, "/generate ПРИХОДИШЬ")
            assert continued.startswith("Мем #") or continued == texts.NOTHING_GOOD
            assert await ask(vk, ANNA, "/generate \x07") == texts.START_CONTROL
            vk.user_message(ANNA, "/top", peer_id=2000000001)    # a conversation: not served, as Telegram groups
            vk.user_message(ANNA, "привет")                      # not a command: no answer
            assert await ask(vk, BORIS, "/start") == texts.VK_START    # ... and both were read before this one
            assert vk.sent_to(2000000001) == [] and len(vk.sent_to(ANNA)) == 4
            requests_ = [d for d in draft_rows.with_status(service.db, "served", purpose=draft_rows.REQUEST)]
            assert all(d["start_text"] == "ПРИХОДИШЬ" for d in requests_)

    asyncio.run(main())
    assert all(m["random_id"] for m in vk.sent)   # VK drops a messages.send without one


def test_vk_users_share_the_flood_limits_and_one_flood_holds_back_no_one(tmp_path, server, vk):
    settings = make_settings(tmp_path, server, vk=VK, telegram={"user_burst": 3, "user_window_seconds": 600.0})

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            for _ in range(20):
                vk.user_message(ANNA, "/start")
            assert await ask(vk, BORIS, "/start") == texts.VK_START
            assert (await reply_to(server, ANNA, "/start", user_id=ANNA))["text"] == texts.START   # Telegram's ANNA
            await until(lambda: vk.polls >= 3 and len(vk.sent_to(ANNA)) >= 4)

    asyncio.run(main())
    assert sorted(vk.sent_to(ANNA)) == sorted([texts.VK_START] * 3 + [texts.FLOOD.format(seconds=600)])


def test_vk_messages_that_are_not_commands_do_not_count_towards_the_flood_limit(tmp_path, server, vk):
    """The flood limit counts commands (docs/config.md), as in Telegram: a user who writes the community
    a few words or sends it photos and then /start is answered, not told to wait."""
    settings = make_settings(tmp_path, server, vk=VK, telegram={"user_burst": 2, "user_window_seconds": 600.0})

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            for text in ("привет?", "смотри какой пост", "", "ахах"):   # "" : a photo or a sticker alone
                vk.user_message(ANNA, text)
            assert await ask(vk, ANNA, "/start") == texts.VK_START
            assert await ask(vk, ANNA, "/help") == texts.VK_START
            assert await ask(vk, ANNA, "/start") == texts.FLOOD.format(seconds=600)   # the third command

    asyncio.run(main())


def test_a_long_poll_that_is_off_is_retried_and_said_in_the_log(tmp_path, server, vk, caplog):
    settings = make_settings(tmp_path, server, vk=VK)
    vk.walls[42].longpoll = False
    caplog.set_level(logging.INFO)

    async def main():
        async with bot_running(settings):
            await until(lambda: "long poll of community 42 failed" in caplog.text)
            assert (await reply_to(server, ANNA, "/start", user_id=ANNA))["text"] == texts.START   # Telegram goes on
            vk.walls[42].longpoll = True
            await until(lambda: "listening to community 42" in caplog.text)   # messages from now on are read
            assert await ask(vk, ANNA, "/start") == texts.VK_START

    asyncio.run(main())
    assert "longpoll for this group is not enabled" in caplog.text and COMMUNITY_TOKEN not in caplog.text


def test_without_telegram_the_local_service_answers_vk_messages(tmp_path, server, vk):
    from bot.answers import ServiceSubscribers, subscriber_limits
    from bot.app import build_services
    from bot.config import load_settings
    from bot.vk.messages import VkMessages
    from tests.fakes.telegram_app import install_model

    config = write_config(tmp_path, server, vk=VK)
    config.write_text(config.read_text(encoding="utf-8").replace(f'token = "{server.token}"', 'token = ""'),
                      encoding="utf-8")
    settings = load_settings(config, environ={})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_model(settings)
    services = build_services(settings)

    async def main():
        messages = VkMessages(settings.vk, ServiceSubscribers(settings, services, subscriber_limits(settings)))
        messages.start()
        await until(messages.listening.is_set)
        try:
            reply = await ask(vk, ANNA, "/generate")
        finally:
            await messages.stop(5)
        assert reply.startswith("Мем #") or reply == texts.NOTHING_GOOD

    asyncio.run(main())
    services.db.close()


def test_doctor_checks_the_communitys_long_poll(capsys, tmp_path, server, vk):
    make_settings(tmp_path, server)
    config = write_config(tmp_path, server, vk=VK)
    code, out, _ = run_cli(capsys, "--config", str(config), "doctor")
    (line,) = [line for line in out.splitlines() if "vk messages (long poll)" in line]
    assert line.startswith("ok  ") and "incoming messages" in line
    vk.walls[42].longpoll = False
    code, out, _ = run_cli(capsys, "--config", str(config), "doctor")
    (line,) = [line for line in out.splitlines() if "vk messages (long poll)" in line]
    assert code == 1 and line.startswith("FAIL") and "Long Poll API is off" in line
    assert COMMUNITY_TOKEN not in out


async def answered_after(app, vk: FakeVk) -> None:
    """BORIS's /start is answered and every message read before it is handled (the long poll hands
    them on in order; each answer is sent before its task ends)."""
    assert await ask(vk, BORIS, "/start") == texts.VK_START
    await until(lambda: not app.vk_messages.tasks)


def test_a_command_followed_by_a_new_line_is_answered_as_in_telegram(tmp_path, server, vk):
    """A multi-line start text ("/generate" then the text on the next lines) or "/meme<tab>N":
    Telegram splits the command off at any white space; VK read "/generate\\nприходишь" as an
    unknown command and said nothing."""
    settings = make_settings(tmp_path, server, vk=VK)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            vk.user_message(ANNA, "/meme\n999999")
            vk.user_message(ANNA, "/meme\t\u00a0два")
            await answered_after(app, vk)
            # each message is answered on its own: the usage line may come first
            assert sorted(vk.sent_to(ANNA)) == sorted([texts.MEME_NOT_FOUND.format(id=999999), texts.MEME_USAGE])

    asyncio.run(main())


def test_a_message_written_while_the_long_poll_was_down_is_answered(tmp_path, server, vk, caplog):
    """The long poll's connection drops (VK keeps the message for the next request with the same
    ts): after the back-off the bot asks on from where it was, never from VK's newest ts (the
    message was lost, its writer never answered)."""
    settings = make_settings(tmp_path, server, vk=VK)
    caplog.set_level(logging.INFO)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            vk.on_drop = lambda fake: fake.user_message(ANNA, "/start")
            vk.drop_polls = 1
            await until(lambda: "long poll of community 42 failed (ConnectionError)" in caplog.text)
            await until(lambda: caplog.text.count("listening to community 42") == 2)
            await answered_after(app, vk)
            assert vk.sent_to(ANNA) == [texts.VK_START]

    asyncio.run(main())


def test_meme_n_from_the_archive_fits_a_vk_message(tmp_path, server, vk):
    """/meme N of a long post whose model is gone: the text is shortened so that the note about the
    archive fits too (the note came after the shortened text, the message was over 4,096 and
    messages.send refused it: no answer)."""
    from bot.fit import LIMIT

    settings = make_settings(tmp_path, server, vk=VK)
    db = open_db(settings.database)
    text = "ПРИХОДИШЬ ДОМОЙ ПОСЛЕ РАБОТЫ\n@\nА ТАМ КОТ СИДИТ НА ДИВАНЕ 😺\n@\n" * 120
    old = draft_rows.add_draft(db, text=text, model_version="0123456789ab", temperature=0.8, seed=7,
                               max_length=16_384, status="published")
    db.close()

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            vk.user_message(ANNA, f"/meme {old}")
            await answered_after(app, vk)
            assert vk.refused == []
            (reply,) = vk.sent_to(ANNA)
            assert len(reply) <= LIMIT and reply.startswith(f"Мем #{old}\n\nПРИХОДИШЬ")
            assert reply.endswith(texts.MEME_FROM_ARCHIVE) and "симв.)" in reply

    asyncio.run(main())


def test_half_an_emoji_in_a_message_gets_an_answer(tmp_path, server, vk):
    """A message with a lone surrogate (half an emoji, escaped in VK's JSON): each command is
    answered like any other, never a traceback and silence."""
    settings = make_settings(tmp_path, server, vk=VK)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            for text in ("/generate ПРИХОДИШЬ \ud83d", "/generate про \ud83dкота", "/meme \ud83d7", "/top \udc00"):
                vk.user_message(ANNA, text)
            await answered_after(app, vk)
            assert len(vk.sent_to(ANNA)) == 4 and vk.refused == []

    asyncio.run(main())


def test_a_community_whose_long_poll_has_an_api_version_before_5_103_is_answered(tmp_path, server, vk):
    """The long poll's API version is the community's setting (5.80 here): its message_new event
    carries the message itself, not {"message": ...}; vk_api's event then has no `.message`, the
    listening thread ended in a TypeError, and no VK message was answered until a restart."""
    vk.walls[42].longpoll_version = "5.80"
    settings = make_settings(tmp_path, server, vk=VK)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            assert await ask(vk, ANNA, "/start") == texts.VK_START
            assert await ask(vk, BORIS, "/meme 999999") == texts.MEME_NOT_FOUND.format(id=999999)

    asyncio.run(main())


def test_the_vk_greeting_lists_only_commands_answered_in_vk_messages(tmp_path, server, vk):
    """/start and «Начать» in VK listed /rate (a Telegram private chat's blind rating): in VK it was
    met with silence."""
    from bot.vk.messages import COMMANDS

    settings = make_settings(tmp_path, server, vk=VK)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            for text in ("/start", "/help", "Начать"):
                listed = {line.split()[0] for line in (await ask(vk, ANNA, text)).splitlines() if line.startswith("/")}
                assert listed and listed <= set(COMMANDS), listed

    asyncio.run(main())


def test_a_meme_number_copied_with_its_hash_from_the_footer_is_meme_n(tmp_path, server, vk):
    """Readers copy the '#N' footer under a published post (publish.footer) into /meme: VK answered
    '/meme #N' (and a custom '№N' footer's) with the usage line instead of meme N."""
    settings = make_settings(tmp_path, server, vk=VK)
    db = open_db(settings.database)
    draft_id = draft_rows.add_draft(db, text="НА СТЕНЕ\n@\nС НОМЕРОМ", model_version="v", temperature=0.8, seed=3,
                                    max_length=120, status="published")
    draft_rows.transition(db, draft_id, from_status=["published"], to_status="published",
                          final_text="НА СТЕНЕ\n@\nС НОМЕРОМ")
    pubs.finish_publication(db, pubs.begin_publication(db, draft_id, "vk", "-42"), 7)
    db.close()
    shown = texts.MEME.format(id=draft_id, text="НА СТЕНЕ\n@\nС НОМЕРОМ")

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            assert await ask(vk, ANNA, f"/meme #{draft_id}") == shown
            assert await ask(vk, ANNA, f"/meme №{draft_id}") == shown
            assert await ask(vk, ANNA, "/meme #") == texts.MEME_USAGE

    asyncio.run(main())


def test_the_start_button_in_any_language_gets_the_greeting(tmp_path, server, vk):
    """VK's start button sends its label in the user's interface language ('Почати', 'Пачаць',
    'Başla' ...) with the payload {"command":"start"}: only 'Начать' and 'Start' were answered, the
    others met silence on their first message to the community."""
    settings = make_settings(tmp_path, server, vk=VK)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            for label in ("Почати", "Пачаць", "Başla"):
                vk.user_message(ANNA, label, payload='{"command":"start"}')
                assert await until(lambda: len(vk.sent_to(ANNA)) == 1 and vk.sent_to(ANNA)) == [texts.VK_START]
                vk.sent.clear()
            vk.user_message(ANNA, "Почати", payload='{"button":"1"}')   # another keyboard's button: no answer
            vk.user_message(ANNA, "Почати", payload="not json")
            await answered_after(app, vk)
            assert vk.sent_to(ANNA) == []

    asyncio.run(main())


def test_a_community_token_vk_refuses_is_told_to_the_moderators_once_until_it_works_again(tmp_path, server, vk,
                                                                                          caplog):
    """The community token revoked (error 5 at every new long poll): the long poll logged a warning
    every minute and nobody was told, while every subscriber's message went unanswered."""
    from tests.fakes.telegram_app import MODERATORS_CHAT

    settings = make_settings(tmp_path, server, vk=VK)
    caplog.set_level(logging.INFO)
    vk.tokens.discard(COMMUNITY_TOKEN)

    def told() -> list[str]:
        return [m["text"] for m in server.sent(MODERATORS_CHAT) if "VK" in m.get("text", "")]

    async def main():
        async with bot_running(settings) as app:
            await until(lambda: caplog.text.count("long poll of community 42 failed (error 5") >= 3)
            assert len(told()) == 1 and "ошибка 5" in told()[0] and COMMUNITY_TOKEN not in told()[0]
            vk.tokens.add(COMMUNITY_TOKEN)                   # a new token: the long poll works again
            await listening(app)
            assert await ask(vk, ANNA, "/start") == texts.VK_START
            vk.tokens.discard(COMMUNITY_TOKEN)               # revoked again later: told again
            vk.drop_polls = 1
            await until(lambda: len(told()) == 2)

    asyncio.run(main())


def test_a_command_that_fails_gets_a_polite_answer_in_vk_messages(tmp_path, server, vk, monkeypatch, caplog):
    """An error inside a command (here /top meeting damaged pages of the database) was a log line and
    the VK user got no answer at all."""
    settings = make_settings(tmp_path, server, vk=VK)

    def damaged(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(on_request, "top_of_week", damaged)

    async def main():
        async with bot_running(settings) as app:
            await listening(app)
            return await ask(vk, ANNA, "/top")

    assert asyncio.run(main()) == texts.HANDLER_FAILED
    assert "database disk image is malformed" in caplog.text   # the operator's log has the traceback


def test_the_moderators_alert_of_a_refused_long_poll_quotes_vk_in_russian(tmp_path, server, vk):
    """The 📵 alert said '... VK отказывает боту (error 100: One of the parameters ...)': the log's
    English 'error' inside the Russian line. It says 'ошибка 100' before VK's own words."""
    from tests.fakes.telegram_app import MODERATORS_CHAT

    settings = make_settings(tmp_path, server, vk=VK)
    vk.walls[42].longpoll = False

    async def main():
        async with bot_running(settings):
            return await until(lambda: [m["text"] for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("📵")])

    (alert,) = asyncio.run(main())
    assert alert == texts.VK_MESSAGES_REFUSED.format(
        group=42, said="ошибка 100: One of the parameters specified was missing or invalid: longpoll for this group"
                       " is not enabled")
