"""Subscribers end to end: the real PTB client against the fake Bot API server, a real tiny model."""
from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from bot import texts
from corpus.db import open_db
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.reactions import record_counts
from jobs import notices, on_request
from tests.fakes.telegram_app import (
    CHANNEL, MODERATORS_CHAT, bot_running, make_settings, reply_to, settled, until,
)


USER = 5001


def run(coro):
    return asyncio.run(coro)


def top_reply(server, settings) -> str:
    """The bot's answer to a subscriber's /top, the bot started on `settings` for it."""
    async def main():
        async with bot_running(settings):
            return await reply_to(server, USER, "/top", user_id=USER)

    return run(main())["text"]


def test_start_help_and_commands_list(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def scenario():
        async with bot_running(settings):
            start = await reply_to(server, USER, "/start", user_id=USER)
            help_ = await reply_to(server, USER, "/help", user_id=USER)
            return start, help_

    start, help_ = run(scenario())
    assert start["text"] == texts.START and help_["text"] == texts.HELP
    assert "/generate" in start["text"] and "/meme" in start["text"] and "/top" in start["text"]
    subscribers, moderators = server.calls_of("setMyCommands")
    assert subscribers.params["scope"] == {"type": "all_private_chats"}
    assert [c["command"] for c in subscribers.params["commands"]] == ["generate", "meme", "top", "help"]
    assert moderators.params["scope"] == {"type": "chat", "chat_id": MODERATORS_CHAT}   # the desk's commands
    assert [c["command"] for c in moderators.params["commands"]] == ["queue", "pause", "resume", "stats", "rate",
                                                               "help"]
    (poll,) = server.calls_of("getUpdates")[:1]
    assert {"message", "callback_query", "message_reaction_count"} <= set(poll.params["allowed_updates"])


def test_the_subscribers_command_menu_has_rate_when_subscribers_may_rate(tmp_path, server):
    """With rate.subscribers = true (docs/telegram.md: any subscriber may /rate in a private chat)
    the private chats' menu still listed only generate, meme, top and help."""
    settings = make_settings(tmp_path, server, rate={"subscribers": True})

    async def scenario():
        async with bot_running(settings):
            await reply_to(server, USER, "/help", user_id=USER)

    run(scenario())
    subscribers = server.calls_of("setMyCommands")[0]
    assert subscribers.params["scope"] == {"type": "all_private_chats"}
    assert [c["command"] for c in subscribers.params["commands"]] == ["generate", "meme", "top", "rate", "help"]


def test_generate_serves_the_pool_fast_then_refills_it(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def scenario(app):
        db = app.bot_data.db
        await app.bot_data.service.fill_pools()
        ready = draft_rows.with_status(db, "ready", purpose=draft_rows.SUBSCRIBER)
        assert len(ready) == 3
        # "fast" without a clock: the model does not run between the command and the reply
        holder, replies_at_generation = app.bot_data.holder, []
        generate_samples = holder.generate_samples

        def recording(*args, **kwargs):
            replies_at_generation.append(len(server.sent(USER)))
            return generate_samples(*args, **kwargs)

        holder.generate_samples = recording
        reply = await reply_to(server, USER, "/generate", user_id=USER)
        assert reply["text"] == texts.MEME.format(id=ready[0]["id"], text=ready[0]["text"])
        assert draft_rows.get_draft(db, ready[0]["id"])["status"] == "served"
        await until(lambda: app.bot_data.limits.refill_task is not None)
        await app.bot_data.limits.refill_task
        assert draft_rows.count_by_status(db, draft_rows.SUBSCRIBER)["ready"] == 3
        assert replies_at_generation and replies_at_generation[0] == 1  # the refill ran after the reply

    async def main():
        async with bot_running(settings) as app:
            await scenario(app)

    run(main())


async def until_served(server, command: str, attempts: int = 20) -> tuple[dict, int]:
    """(the bot's reply to `command`, attempts made): random seeds, so the tiny model's candidates
    may all fail the screen ("nothing good", or about a topic "nothing decent about it"); ask again,
    as a user would. Needs a high user_burst."""
    nothing = {texts.NOTHING_GOOD, *(texts.TOPIC_FAILED.format(word=word) for word in command.split()[1:])}
    for attempt in range(1, attempts + 1):
        reply = await reply_to(server, USER, command, user_id=USER)
        if reply["text"] not in nothing:
            return reply, attempt
    raise AssertionError(f"{attempts} times nothing passed the screen")


def test_generate_with_start_text_and_meme_regenerates_it(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"user_burst": 100})   # retries are no flood

    async def main():
        async with bot_running(settings) as app:
            reply, _ = await until_served(server, "/generate приходишь в школу")
            meme_id = int(reply["text"].split("#")[1].split()[0])
            draft = draft_rows.get_draft(app.bot_data.db, meme_id)
            assert draft["purpose"] == draft_rows.REQUEST and draft["status"] == "served"
            assert draft["start_text"] == "ПРИХОДИШЬ В ШКОЛУ"  # upper-cased: the model knows capitals
            assert reply["text"] == texts.MEME.format(id=meme_id, text=draft["text"])
            assert draft["text"].startswith("ПРИХОДИШЬ В ШКОЛУ")
            calls = []
            holder = app.bot_data.holder
            original = holder.generate

            def spy(seeds, request, **kwargs):
                calls.append({**kwargs, "request": request})
                return original(seeds, request, **kwargs)

            holder.generate = spy
            again = await reply_to(server, USER, f"/meme {meme_id}", user_id=USER)
            assert again["text"] == reply["text"]
            assert calls and calls[0]["version"] == draft["model_version"]
            assert calls[0]["request"].start_text == draft["start_text"]
            # made for this subscriber's own start text: not shown to another one (as if there were none)
            other = await reply_to(server, 6001, f"/meme {meme_id}", user_id=6001)
            assert other["text"] == texts.MEME_NOT_FOUND.format(id=meme_id)
            missing = await reply_to(server, USER, "/meme 999999", user_id=USER)
            usage = await reply_to(server, USER, "/meme abc", user_id=USER)
            return missing, usage

    missing, usage = run(main())
    assert missing["text"] == texts.MEME_NOT_FOUND.format(id=999999)
    assert usage["text"] == texts.MEME_USAGE


def test_meme_falls_back_to_the_stored_text_when_the_model_is_gone(tmp_path, server):
    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    draft_id = draft_rows.add_draft(db, text="СТАРЫЙ\n@\nМЕМ", model_version="0123456789ab", temperature=0.8,
                                    seed=7, max_length=120, purpose=draft_rows.SUBSCRIBER, status="served")
    hidden = draft_rows.add_draft(db, text="ЕЩЁ\n@\nНЕ ВИДЕЛИ", model_version="0123456789ab", temperature=0.8,
                                  seed=8, max_length=120, status="pending")
    db.close()

    async def main():
        async with bot_running(settings):
            old = await reply_to(server, USER, f"/meme {draft_id}", user_id=USER)
            pending = await reply_to(server, USER, f"/meme {hidden}", user_id=USER)
            return old, pending

    old, pending = run(main())
    assert old["text"].startswith(texts.MEME.format(id=draft_id, text="СТАРЫЙ\n@\nМЕМ"))
    assert texts.MEME_FROM_ARCHIVE in old["text"]
    assert pending["text"] == texts.MEME_NOT_FOUND.format(id=hidden)


def test_meme_n_of_a_post_a_channel_has_while_another_destination_waits_is_shown(tmp_path, server):
    """The channel posted meme #N (its footer says so) while the second destination has not had it
    yet (paused, or failing): the draft stays queued, and a reader's /meme N shows it."""
    settings = make_settings(tmp_path, server, telegram={"channels": [CHANNEL, "@buhurt_second"]})
    db = open_db(settings.database)
    draft_id = draft_rows.add_draft(db, text="УЖЕ\n@\nВ КАНАЛЕ", model_version="v", temperature=0.8, seed=3,
                                    max_length=120, status="queued")
    draft_rows.transition(db, draft_id, from_status=["queued"], to_status="queued", final_text="УЖЕ\n@\nВ КАНАЛЕ")
    pubs.finish_publication(db, pubs.begin_publication(db, draft_id, "telegram", CHANNEL), 101)
    db.close()

    async def main():
        async with bot_running(settings) as app:
            assert draft_rows.get_draft(app.bot_data.db, draft_id)["status"] == "queued"
            return await reply_to(server, USER, f"/meme {draft_id}", user_id=USER)

    assert run(main())["text"] == texts.MEME.format(id=draft_id, text="УЖЕ\n@\nВ КАНАЛЕ")


def test_a_meme_number_copied_with_its_hash_from_the_channels_footer_is_meme_n(tmp_path, server):
    """Readers copy the '#N' footer under a channel post (publish.footer) into /meme: '/meme #N' got
    the usage line instead of meme N."""
    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    draft_id = draft_rows.add_draft(db, text="В КАНАЛЕ\n@\nС НОМЕРОМ", model_version="v", temperature=0.8, seed=3,
                                    max_length=120, status="published")
    draft_rows.transition(db, draft_id, from_status=["published"], to_status="published",
                          final_text="В КАНАЛЕ\n@\nС НОМЕРОМ")
    pubs.finish_publication(db, pubs.begin_publication(db, draft_id, "telegram", CHANNEL), 101)
    db.close()

    async def main():
        async with bot_running(settings):
            return await reply_to(server, USER, f"/meme #{draft_id}", user_id=USER)

    assert run(main())["text"] == texts.MEME.format(id=draft_id, text="В КАНАЛЕ\n@\nС НОМЕРОМ")


def test_top_ranks_last_week_by_reactions(tmp_path, server):
    settings = make_settings(tmp_path, server)
    db = open_db(settings.database)
    ids = []
    for n, score in ((1, 3), (2, 10), (3, 0)):
        draft_id = draft_rows.add_draft(db, text=f"МЕМ НОМЕР {n}\n@\nКОНЕЦ", model_version="v", temperature=0.8,
                                        seed=n, max_length=120, status="published")
        pub = pubs.begin_publication(db, draft_id, "telegram", CHANNEL)
        pubs.finish_publication(db, pub, 100 + n)
        if score:
            record_counts(db, "telegram", CHANNEL, 100 + n, {"👍": score})
        ids.append(draft_id)
    db.close()

    reply = top_reply(server, settings)
    assert reply.startswith(texts.TOP_HEADER)
    assert reply.index(f"Мем #{ids[1]}") < reply.index(f"Мем #{ids[0]}")
    assert f"Мем #{ids[2]}" not in reply  # no reactions: not "best"
    assert f"https://t.me/buhurt_test/{102}" in reply


def test_top_shows_five_posts_when_each_went_to_several_channels(tmp_path, server):
    """Each post published in three channels is one post of /top (its best publication): six liked
    posts fill its five places, whatever the channels' number."""
    channels = [CHANNEL, "@buhurt_second", "@buhurt_third"]
    settings = make_settings(tmp_path, server, telegram={"channels": channels})
    db = open_db(settings.database)
    ids = []
    for n in range(6):
        draft_id = draft_rows.add_draft(db, text=f"МЕМ НОМЕР {n}\n@\nКОНЕЦ", model_version="v", temperature=0.8,
                                        seed=n, max_length=120, status="published")
        for k, channel in enumerate(channels):
            pub = pubs.begin_publication(db, draft_id, "telegram", channel)
            pubs.finish_publication(db, pub, 100 + n)
            record_counts(db, "telegram", channel, 100 + n, {"👍": 50 - 5 * n - k})
        ids.append(draft_id)
    db.close()

    reply = top_reply(server, settings)
    assert [f"Мем #{n}" in reply for n in ids] == [True] * 5 + [False]
    assert [reply.index(f"Мем #{n}") for n in ids[:5]] == sorted(reply.index(f"Мем #{n}") for n in ids[:5])


def test_a_subscriber_who_blocked_the_bot_is_one_log_line_not_an_error_report(tmp_path, server, caplog):
    """A reply to a subscriber who blocked the bot (or deleted the chat) meanwhile: Telegram answers
    403. It went to the error handler: a traceback in the log and '⚠️ Ошибка в боте: Forbidden: bot
    was blocked by the user' in the moderators' chat, about which they can do nothing (and which took
    the one report of the next 30 s). Now one INFO line; the others are answered as ever."""
    import logging

    settings = make_settings(tmp_path, server)
    server.fail("sendMessage", 403, chat_id=USER, description="Forbidden: bot was blocked by the user")

    async def main():
        async with bot_running(settings) as app:
            server.send_text("/start", user_id=USER)
            await settled(server, app)
            return await reply_to(server, USER + 1, "/help", user_id=USER + 1)

    with caplog.at_level(logging.INFO):
        other = run(main())
    assert other["text"] == texts.HELP
    assert not [m for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("⚠️")]
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r for r in caplog.records if "blocked the bot" in r.getMessage() and str(USER) in r.getMessage()]


def test_top_with_nothing_published(tmp_path, server):
    settings = make_settings(tmp_path, server)

    assert top_reply(server, settings) == texts.TOP_EMPTY


def test_cooldown_and_busy_generator(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"cooldown_seconds": 60.0, "max_concurrent_generations": 1})

    async def main():
        async with bot_running(settings) as app:
            # from the pool: the tiny model's four on-demand candidates may all fail the screen
            await app.bot_data.service.fill_pools()
            first = await reply_to(server, USER, "/generate", user_id=USER)
            again = await reply_to(server, USER, "/generate", user_id=USER)
            holder = app.bot_data.holder
            original, gate = holder.generate, threading.Event()

            def slow(*args, **kwargs):
                gate.wait(10)
                return original(*args, **kwargs)

            holder.generate = slow
            if app.bot_data.limits.refill_task:
                app.bot_data.limits.refill_task.cancel()
            draft_rows_db = app.bot_data.db
            draft_rows_db.execute("UPDATE drafts SET status = 'served' WHERE status = 'ready'")
            server.send_text("/generate", user_id=6001)
            await until(lambda: app.bot_data.limits.generating == 1)
            busy = await reply_to(server, 6002, "/generate", user_id=6002)
            gate.set()
            await until(lambda: server.sent(6001))
            return first, again, busy

    first, again, busy = run(main())
    assert first["text"].startswith("Мем #")
    assert again["text"] == texts.COOLDOWN.format(seconds=60)
    assert busy["text"] == texts.BUSY


@pytest.mark.parametrize("start_text, expected", [
    ("Я" * 5000, texts.START_TOO_LONG.format(limit=200, length=5000)),
    ("ПРИВЕТ\x00\x07МИР", texts.START_CONTROL),
    ("😀😀🔥", None),  # only emoji: the model does not know them
    ("QWERTY Ж", None),
])
def test_bad_start_text_gets_a_short_reply_and_stores_nothing(tmp_path, server, start_text, expected):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            reply = await reply_to(server, USER, f"/generate {start_text}", user_id=USER)
            return reply, draft_rows.count_by_status(app.bot_data.db, draft_rows.REQUEST)

    reply, counts = run(main())
    if expected is None:
        assert reply["text"].startswith(texts.UNKNOWN_CHARS.split(":")[0])
        assert "😀" in reply["text"] or "Q" in reply["text"]
    else:
        assert reply["text"] == expected
    assert len(reply["text"]) < 300 and counts == {}


def test_commands_in_a_group_the_bot_does_not_serve_are_ignored(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            server.send_text("/generate", user_id=USER, chat_id=-100999)
            server.send_text("/start", user_id=USER, chat_id=-100999)
            helped = await reply_to(server, MODERATORS_CHAT, "/help", user_id=USER, chat_id=MODERATORS_CHAT)
            await settled(server, app)   # the two commands before /help were handled too
            return helped, draft_rows.count_by_status(app.bot_data.db, draft_rows.SUBSCRIBER)

    helped, counts = run(main())
    assert helped["text"] == texts.MODERATOR_HELP
    assert server.sent(-100999) == [] and counts == {}


def test_generate_and_meme_go_through_the_screen(tmp_path, server):
    from jobs.drafting import SEEDS_PER_REQUEST
    from corpus.store.posts import add_posts

    settings = make_settings(tmp_path, server, telegram={"user_burst": 100})   # retries are no flood

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            reply, attempt = await until_served(server, "/generate приходишь в школу")
            meme_id = int(reply["text"].split("#")[1].split()[0])
            every = list(db.query("SELECT * FROM drafts WHERE purpose = 'request' ORDER BY id"))
            assert len(every) == attempt * SEEDS_PER_REQUEST   # every candidate is stored, screened, measured
            assert all(r["status"] == "rejected_auto" for r in every[:-SEEDS_PER_REQUEST])
            rows = every[-SEEDS_PER_REQUEST:]
            assert [r["id"] for r in rows if r["status"] == "served"] == [meme_id]
            served = draft_rows.get_draft(db, meme_id)
            for row in rows:
                assert row["logprob_per_char"] is not None and row["shared_chars"] is not None
                if row["id"] != meme_id:
                    assert row["status"] == "rejected_auto" and row["status_reason"]
                    if row["status_reason"].startswith("outranked"):
                        assert row["score"] <= served["score"]
            add_posts(db, [{"source": "file", "text": served["text"]}])   # imported since: now a corpus copy
            return meme_id, await reply_to(server, USER, f"/meme {meme_id}", user_id=USER)

    meme_id, withheld = run(main())
    assert withheld["text"] == texts.MEME_WITHHELD.format(id=meme_id)


def test_generate_about_a_topic_starts_from_the_community_s_words_about_it(tmp_path, server):
    """/generate про хлеб: the post starts from a line of the corpus that uses the word (any form),
    so the word is in its first line; a word the model cannot spell is a polite reply."""
    from corpus.cleaning import clean_corpus
    from corpus.store.posts import add_posts
    from tests.helpers import varied_posts

    settings = make_settings(tmp_path, server, telegram={"user_burst": 100})
    db = open_db(settings.database)
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(60)])   # "ПОКУПАЕШЬ ХЛЕБ" among them
    clean_corpus(db)
    db.close()

    async def main():
        async with bot_running(settings) as app:
            firsts = []
            for _ in range(3):
                reply, _ = await until_served(server, "/generate про хлеб")
                meme_id = int(reply["text"].split("#")[1].split()[0])
                draft = draft_rows.get_draft(app.bot_data.db, meme_id)
                assert draft["start_text"] == "ПОКУПАЕШЬ ХЛЕБ" and draft["purpose"] == draft_rows.REQUEST
                firsts.append(draft["text"].split("\n")[0])
            assert all("ХЛЕБ" in line for line in firsts)
            odd = await reply_to(server, USER, "/generate про qwerty", user_id=USER)
            assert odd["text"] == texts.TOPIC_UNKNOWN.format(word="qwerty")
            plain = await until_served(server, "/generate хлеб")     # one word: a start text, as before
            assert plain[0]["text"].split("\n\n", 1)[1].startswith("ХЛЕБ")

    run(main())


def test_a_topic_whose_corpus_lines_hold_letters_the_model_lacks_is_written_about_all_the_same(tmp_path, server):
    """/generate про хлеб where the community's only line with the word also holds a letter the
    active model's vocabulary lacks (a model trained elsewhere, or on an older export): the post
    starts from a line the model can write, else from the word itself; it was told 'the model does
    not know such letters' about a word it spells."""
    from corpus.cleaning import clean_corpus
    from corpus.store.posts import add_posts

    settings = make_settings(tmp_path, server, telegram={"user_burst": 100})
    db = open_db(settings.database)
    add_posts(db, [{"source": "file", "text": f"ЦАРЬ ПОКУПАЕТ ХЛЕБ\n@\nОДНОКЛАССНИКИ СМЕЮТСЯ {n}\n@\nНАДЕВАЕШЬ ШАПКУ"}
                   for n in range(5)])
    clean_corpus(db)
    db.close()

    async def main():
        async with bot_running(settings) as app:
            assert "Ц" not in app.bot_data.holder.current.vocab.index    # the tiny model never saw it
            reply, _ = await until_served(server, "/generate про хлеб")
            assert reply["text"] != texts.TOPIC_UNKNOWN.format(word="хлеб"), reply["text"]
            meme_id = int(reply["text"].split("#")[1].split()[0])
            assert draft_rows.get_draft(app.bot_data.db, meme_id)["start_text"] == "ХЛЕБ"

    run(main())


def test_a_topic_word_the_model_cannot_spell_starts_the_cooldown_too(tmp_path, server):
    """/generate про qwerty searched the corpus for it: asked again at once, the user is told to wait,
    as after any topic request; a start text refused on sight (unknown characters) changes nothing."""
    settings = make_settings(tmp_path, server, telegram={"cooldown_seconds": 60.0})

    async def main():
        async with bot_running(settings) as app:
            odd = await reply_to(server, USER, "/generate про qwerty", user_id=USER)
            again = await reply_to(server, USER, "/generate про qwerty", user_id=USER)
            other = await reply_to(server, 6001, "/generate QWERTY", user_id=6001)
            retried = await reply_to(server, 6001, "/generate про qwerty", user_id=6001)
            return odd, again, other, retried, draft_rows.count_by_status(app.bot_data.db, draft_rows.REQUEST)

    odd, again, other, retried, counts = run(main())
    assert odd["text"] == texts.TOPIC_UNKNOWN.format(word="qwerty")
    assert again["text"].startswith(texts.COOLDOWN.split("{")[0])   # "... через 60 с." on a quick machine
    assert other["text"].startswith(texts.UNKNOWN_CHARS.split(":")[0])
    assert retried["text"] == texts.TOPIC_UNKNOWN.format(word="qwerty") and counts == {}


def test_a_command_that_fails_gets_a_polite_reply_and_the_moderators_the_report(tmp_path, server, monkeypatch):
    """An error inside a subscriber's command (here /top meeting damaged pages of the database) was
    logged and reported to the moderators, and the subscriber got no answer at all."""
    settings = make_settings(tmp_path, server)

    def damaged(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(on_request, "top_of_week", damaged)

    async def scenario():
        async with bot_running(settings):
            reply = await reply_to(server, USER, "/top", user_id=USER)
            reports = await until(lambda: [m for m in server.sent(MODERATORS_CHAT)
                                           if m["text"].startswith(texts.ERROR_REPORT.split("{")[0])])
            return reply, reports

    reply, reports = run(scenario())
    assert reply["text"] == texts.HANDLER_FAILED
    assert [m["text"] for m in reports] == [texts.ERROR_REPORT.format(
        what=notices.REASON_DAMAGED, detail="DatabaseError: database disk image is malformed")]
    assert len(server.sent(USER)) == 1


def test_a_start_text_over_the_limit_says_its_counts_in_good_russian(tmp_path, server):
    """telegram.start_text_max_chars = 21 made 'Слишком длинное начало: до 21 символов, а у тебя 22':
    one plural form after every number. As the other counts, the noun comes first, then the numbers."""
    settings = make_settings(tmp_path, server, telegram={"start_text_max_chars": 21})

    async def main():
        async with bot_running(settings):
            return await reply_to(server, USER, "/generate " + "Я" * 22, user_id=USER)

    reply = run(main())
    assert reply["text"] == texts.START_TOO_LONG.format(limit=21, length=22)
    assert "21 символов" not in reply["text"] and "символов — 22" in reply["text"]
