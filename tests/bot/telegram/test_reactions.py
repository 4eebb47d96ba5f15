"""Reaction counts from `message_reaction_count` updates, and the error handler."""
from __future__ import annotations

import asyncio
import logging


from bot import texts
from corpus.db import open_db
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.desk import reactions_and_views
from corpus.store.reactions import latest_counts, publication_counts, record_counts, top_publications
from jobs.curation import digest_text
from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, bot_running, make_settings, until


USER = 5001


def reaction_rows(db) -> list[dict]:
    return list(db.query("SELECT * FROM reactions ORDER BY id"))


def test_reaction_counts_are_stored_as_a_time_series(tmp_path, server):
    settings = make_settings(tmp_path, server, telegram={"moderators": [], "moderators_chat": 0})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            draft_rows.add_draft(db, text="ПОСТ\n@\nС РЕАКЦИЯМИ", model_version="v", temperature=0.8, seed=1,
                                 max_length=120, status="queued")
            published = await service.publish()
            (publication,) = pubs.publications_of(db, published["id"])
            message_id = int(publication["message_id"])
            server.reaction_count(CHANNEL, message_id, {"👍": 3, "🔥": 1, "custom:5368324170671202286": 2})
            await until(lambda: len(reaction_rows(db)) == 3)
            server.reaction_count(CHANNEL, message_id, {"👍": 5, "paid": 1})  # 🔥 and custom were taken back
            await until(lambda: len(reaction_rows(db)) == 7)
            server.reaction_count(CHANNEL, 424242, {"👍": 1})  # not a post of ours
            await until(lambda: len(reaction_rows(db)) == 8)
            return publication["id"], reaction_rows(db), latest_counts(db, publication["id"])

    publication_id, rows, latest = asyncio.run(main())
    assert [r["publication_id"] for r in rows[:7]] == [publication_id] * 7
    assert {(r["kind"], r["count"]) for r in rows[:3]} == {("👍", 3), ("🔥", 1), ("custom:5368324170671202286", 2)}
    assert latest == {"👍": 5, "🔥": 0, "custom:5368324170671202286": 0, "paid": 1}
    unknown = rows[7]
    assert unknown["publication_id"] is None and unknown["message_id"] == "424242"
    assert not any(texts.ERROR_REPORT.split(":")[0] in m["text"] for m in server.sent())


def test_error_handler_logs_and_tells_the_moderators_without_the_token(tmp_path, server, caplog):
    settings = make_settings(tmp_path, server)
    token = server.token
    server.fail("sendMessage", 500, chat_id=USER, description=f"upstream failed for /bot{token}/sendMessage")

    async def main():
        async with bot_running(settings):
            server.send_text("/start", user_id=USER)
            return await until(lambda: [m for m in server.sent(MODERATORS_CHAT) if m["text"].startswith("⚠️")])

    with caplog.at_level(logging.ERROR):
        (report,) = asyncio.run(main())
    assert report["text"].startswith(texts.ERROR_REPORT.format(what=texts.REPORT_NETWORK, detail="NetworkError: "))
    assert "upstream failed for /bot***/sendMessage" in report["text"]
    assert token not in report["text"] and token.split(":")[1] not in report["text"]
    assert "error while handling update" in caplog.text and "Traceback" in caplog.text
    assert token not in caplog.text


def test_counts_stored_in_the_same_second_count_once_and_the_last_one_wins(tmp_path, server):
    """A backlog of message_reaction_count updates (the bot was down a while) is stored within one
    second: /top, the weekly best-of, the liked posts and the ranker took the older count of a kind,
    and /stats added both (👍 3 then 👍 5 made 3 there and 8 in /stats)."""
    db = open_db(tmp_path / "same_second.sqlite3")
    draft_id = draft_rows.add_draft(db, text="ПОСТ\n@\nС РЕАКЦИЯМИ", model_version="v", temperature=0.8, seed=1,
                                    max_length=120, status="published")
    publication = pubs.begin_publication(db, draft_id, "telegram", CHANNEL)
    pubs.finish_publication(db, publication, 7)
    at = pubs.publications_of(db, draft_id)[0]["published_at"]
    for thumbs in (3, 5):
        record_counts(db, "telegram", CHANNEL, 7, {"👍": thumbs, "🔥": 1}, observed_at=at)
    assert latest_counts(db, publication) == {"👍": 5, "🔥": 1}
    assert top_publications(db, "")[0]["score"] == 6
    assert publication_counts(db)[0]["reactions"] == 6
    assert [row["reactions"] for row in reactions_and_views(db, "")] == [6]
    record_counts(db, "telegram", CHANNEL, 7, {"👍": 0, "🔥": 0}, observed_at=at)   # all taken back
    assert top_publications(db, "")[0]["score"] == 0 and publication_counts(db)[0]["reactions"] == 0
    assert digest_text(db, "telegram", CHANNEL, StopList([], [])) is None
    db.close()
