"""VK wall publishing and likes (bot/vk/wall.py), and the scrape job, against the fake VK API."""
from __future__ import annotations

import asyncio

import pytest
import requests

from bot.errors import BotError
from bot.secrets import Secret
from bot.config_sections import VkSettings
from bot.vk.wall import vk_wall_publishing
from jobs.publish import PublishError, PublishInDoubt
from tests.fakes.fake_vk import GOOD_TOKEN, WALL_TOKEN, FakeVk, FakeWall
from tests.fakes.vk_wall import setup


def test_publish_then_fetch_likes():
    wall, fake, vk = setup()
    publisher, likes = vk.publisher, vk.likes
    assert (publisher.network, publisher.chat_id, likes.network) == ("vk", "-42", "vk")
    message_id = asyncio.run(publisher.send("МЕМ\n@\nОТ БОТА\n@\nВОТ"))
    assert wall.posts[int(message_id)]["text"] == "МЕМ\n@\nОТ БОТА\n@\nВОТ"
    wall.posts[int(message_id)]["likes"]["count"] = 17
    counts = likes.fetch([message_id, "5", "999999"])
    assert counts[message_id] == {"like": 17, "repost": int(message_id) % 5, "view": 1000 + int(message_id)}
    assert set(counts) == {message_id, "5"}
    assert fake.methods == {"wall.post": 1, "wall.getById": 1}


def test_likes_are_collected_only_for_posts_of_the_wall_polled(tmp_path):
    """After vk.publish_group_id changed, the old wall's post ids are other posts on the new wall:
    only the polled wall's publications are asked for."""
    from corpus.db import open_db
    from corpus.store import drafts, publications
    from corpus.store.reactions import latest_counts
    from jobs.reactions import collect_reactions

    wall, fake, vk = setup()
    db = open_db(tmp_path / "b.sqlite3")
    here, old = (drafts.add_draft(db, text=f"МЕМ {i}\n@\nВОТ", model_version="v", temperature=0.8, seed=i,
                                  max_length=100, status="queued") for i in (1, 2))
    message_id = asyncio.run(vk.publisher.send("МЕМ 1\n@\nВОТ"))
    ours = publications.begin_publication(db, here, "vk", vk.likes.chat_id)
    publications.finish_publication(db, ours, message_id)
    theirs = publications.begin_publication(db, old, "vk", "-7")     # the wall before the change
    publications.finish_publication(db, theirs, "5")                 # post 5 on the new wall is someone else's
    assert asyncio.run(collect_reactions(db, [vk.likes])) == 1
    assert latest_counts(db, theirs) == {}
    assert latest_counts(db, ours)["view"] == 1000 + int(message_id)


def test_many_ids_are_fetched_in_chunks_of_100():
    wall, fake, vk = setup()
    assert len(vk.likes.fetch([str(i) for i in range(1, 251)])) == len([i for i in wall.posts if i <= 250])
    assert fake.methods["wall.getById"] == 3


@pytest.mark.parametrize("token, code", [(GOOD_TOKEN, 214), ("expired", 5)])
def test_a_refusal_is_a_publish_error(token, code):
    _, _, vk = setup(token=token)
    with pytest.raises(PublishError, match=f"error {code}"):
        asyncio.run(vk.publisher.send("МЕМ"))


def test_a_dropped_connection_is_not_a_refusal():
    """The post may have gone out: the publication must stay in doubt, never be retried."""
    _, fake, vk = setup()
    fake.fail_at = 1
    with pytest.raises(PublishInDoubt, match=r"VK did not answer wall.post \(ConnectionError\)"):
        asyncio.run(vk.publisher.send("МЕМ"))


def test_an_http_error_on_wall_post_is_in_doubt_and_says_the_status():
    """VK's gateway answered 502 after the post was made: the moderators were told only
    'ApiHttpError' (the exception's type), not that VK answered HTTP 502 and the post may be out."""
    wall, fake, vk = setup()
    fake.http_status[1] = 502
    with pytest.raises(PublishInDoubt, match=r"VK answered HTTP 502 to wall.post: the post may be out"):
        asyncio.run(vk.publisher.send("МЕМ\n@\nЗА ШЛЮЗОМ"))
    assert [p["text"] for p in wall.posts.values()].count("МЕМ\n@\nЗА ШЛЮЗОМ") == 1

@pytest.mark.parametrize("response", [{"post_id": None}, {}, {"post_id": 0}, {"post_id": "abc"}, [], None])
def test_an_answer_without_a_post_id_is_in_doubt(response):
    """VK took the request (the post is on the wall) but named no post: never `sent` with id "None"."""
    wall, fake, vk = setup()
    fake.rewrite[1] = lambda answer: {"response": response}
    with pytest.raises(PublishInDoubt, match="VK answered wall.post without a post id"):
        asyncio.run(vk.publisher.send("МЕМ\n@\nБЕЗ НОМЕРА"))
    assert [p["text"] for p in wall.posts.values()].count("МЕМ\n@\nБЕЗ НОМЕРА") == 1
    fake.rewrite[2] = lambda answer: {"response": {"post_id": str(answer["response"]["post_id"])}}
    assert asyncio.run(vk.publisher.send("ВТОРОЙ")) == str(max(wall.posts))  # a numeric string is an id


def test_settings_errors():
    with pytest.raises(BotError, match="no VK token"):
        vk_wall_publishing(VkSettings(publish_group_id=42))
    with pytest.raises(BotError, match="publish_group_id is 0"):
        vk_wall_publishing(VkSettings(token=Secret(WALL_TOKEN)))


def test_the_service_scrape_job_runs_the_scraper(tmp_path, monkeypatch):
    from bot.app import _scraper
    from bot.config import load_settings
    from corpus.db import open_db
    from jobs.service import Service, ServicePlan

    wall = FakeWall(42, "bugurt_test")
    wall.generate(400)
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path}"\n[vk]\ngroups = ["bugurt_test"]\n'
                      f'requests_per_second = 1000.0\n', encoding="utf-8")
    monkeypatch.setenv("BUHURT_VK_TOKEN", GOOD_TOKEN)
    settings = load_settings(config)
    db = open_db(settings.database)
    service = Service(db, None, plan=ServicePlan(), publishers=[], moderation=None, stoplist=None,
                      scraper=_scraper(settings))
    report = asyncio.run(service.scrape())
    assert report.added == 400 and db["posts"].count == 400
    assert asyncio.run(service.scrape()).added == 0
    db.close()


def test_a_post_of_vks_longest_length_goes_out_without_the_footer(db):
    """A draft of sample.max_length's most (16,384 characters, VK's longest post): the footer would
    push it over what wall.post takes, so it goes without it, as on Telegram past 4,096; VK refused
    it at every publishing time, and the wall's queue never moved past it."""
    from corpus.store import drafts as draft_rows
    from corpus.store import publications as pubs
    from jobs.publish import PublishOptions, publish_next
    from model.sample_options import MAX_LENGTH

    wall, fake, vk = setup()
    long = draft_rows.add_draft(db, text="Я" * MAX_LENGTH, model_version="v", temperature=0.8, seed=1,
                                max_length=MAX_LENGTH, status="queued")
    short = draft_rows.add_draft(db, text="МЕМ\n@\nКОРОТКИЙ", model_version="v", temperature=0.8, seed=2,
                                 max_length=100, status="queued")
    notices = []

    async def notify(text):
        notices.append(text)

    for _ in range(2):
        asyncio.run(publish_next(db, [vk.publisher], notify, options=PublishOptions(footer="#{n}")))
    assert fake.refused == [] and notices == []
    texts = [post["text"] for post in wall.posts.values()]
    assert "Я" * MAX_LENGTH in texts and f"МЕМ\n@\nКОРОТКИЙ\n\n#{short}" in texts
    assert [row["status"] for row in pubs.publications_of(db, long)] == ["sent"]


@pytest.mark.parametrize("code, said", [(10, "Internal server error"), (1, "Unknown error occurred")])
def test_a_server_error_on_wall_post_is_in_doubt_not_a_refusal(code, said):
    """VK's own failure after it took the request: the post may be on the wall (here it is), so a
    retry at the next publishing time would publish it twice."""
    wall, fake, vk = setup()
    fake.rewrite[1] = lambda answer: {"error": {"error_code": code, "error_msg": said}}
    with pytest.raises(PublishInDoubt, match=f"error {code}"):
        asyncio.run(vk.publisher.send("МЕМ\n@\nУЖЕ НА СТЕНЕ"))
    assert [p["text"] for p in wall.posts.values()].count("МЕМ\n@\nУЖЕ НА СТЕНЕ") == 1


def test_a_count_vk_leaves_out_is_not_stored_as_zero(tmp_path):
    """VK leaves "views" out of some posts (old ones, counting switched off): the last view count
    seen stands; a zero over it made the post look unread to curation."""
    from corpus.db import open_db
    from corpus.store import drafts, publications
    from corpus.store.reactions import latest_counts
    from jobs.reactions import collect_reactions

    wall, fake, vk = setup()
    db = open_db(tmp_path / "b.sqlite3")
    draft = drafts.add_draft(db, text="МЕМ\n@\nВОТ", model_version="v", temperature=0.8, seed=1,
                             max_length=100, status="queued")
    message_id = asyncio.run(vk.publisher.send("МЕМ\n@\nВОТ"))
    publication = publications.begin_publication(db, draft, "vk", vk.likes.chat_id)
    publications.finish_publication(db, publication, message_id)
    assert asyncio.run(collect_reactions(db, [vk.likes])) == 1
    seen = latest_counts(db, publication)["view"]
    assert seen == 1000 + int(message_id)
    wall.posts[int(message_id)]["likes"]["count"] = 3
    del wall.posts[int(message_id)]["views"]
    assert "view" not in vk.likes.fetch([message_id])[message_id]
    assert asyncio.run(collect_reactions(db, [vk.likes])) == 1
    assert latest_counts(db, publication)["view"] == seen and latest_counts(db, publication)["like"] == 3


def test_a_failed_chunk_of_likes_keeps_the_counts_of_the_other_chunks(caplog):
    """One wall.getById of several failing (VK's error 10 here, or a timeout): the counts already
    read in that run were thrown away with it, and every recent post went without its likes; now
    only that chunk's posts wait for the next run. Every chunk failing is still the run's failure."""
    wall, fake, vk = setup()
    wall.generate(250, deleted_every=0)
    ids = [str(i) for i in range(1, 251)]
    fake.errors[2] = 10
    counts = vk.likes.fetch(ids)
    assert set(counts) == {str(i) for i in (*range(1, 101), *range(201, 251))}
    assert counts["250"]["like"] == 250 % 50
    assert "100 of 250 posts" in caplog.text and "error 10" in caplog.text and WALL_TOKEN not in caplog.text
    fake.errors.update({4: 10, 5: 10, 6: 10})
    with pytest.raises(Exception, match="Internal server error"):
        vk.likes.fetch(ids)


def test_the_likes_job_that_meets_the_database_locked_by_another_process_is_one_warning(tmp_path, caplog):
    """A `buhurt corpus clean` (or a backup) holding the database past paths.busy_timeout_seconds while
    the likes job stored VK's counts: DatabaseBusy left the job with APScheduler's traceback ('Job
    raised an exception') at every run while the lock lasted; now one WARNING, the next run stores them."""
    import logging
    import sqlite3

    from corpus.db import open_db
    from corpus.store import drafts, publications
    from corpus.store.reactions import latest_counts
    from jobs.patience import on_the_loop
    from jobs.reactions import collect_reactions

    wall, fake, vk = setup()
    database = tmp_path / "b.sqlite3"
    db = open_db(database)
    on_the_loop(db, 0.3)   # as the service's own connection: writes wait off the loop, this long
    draft = drafts.add_draft(db, text="МЕМ\n@\nВОТ", model_version="v", temperature=0.8, seed=1,
                             max_length=100, status="queued")
    message_id = asyncio.run(vk.publisher.send("МЕМ\n@\nВОТ"))
    publication = publications.begin_publication(db, draft, "vk", vk.likes.chat_id)
    publications.finish_publication(db, publication, message_id)
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")   # another process's write transaction, held throughout
    try:
        with caplog.at_level(logging.INFO):
            stored = asyncio.run(collect_reactions(db, [vk.likes]))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert stored == 0 and latest_counts(db, publication) == {}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("reactions from vk -42 not stored: ") and str(database) in warning
    assert asyncio.run(collect_reactions(db, [vk.likes])) == 1 and "like" in latest_counts(db, publication)
