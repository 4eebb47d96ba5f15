"""The stop-list at publishing time: a word added to [filter] after a draft was queued stops that
draft in every destination (skipped, then rejected_auto, the moderators told); a moderator's
"publish now" sends the draft as it is now. Real SQLite files; the last test goes through the real
python-telegram-bot client against the fake Bot API server."""
from __future__ import annotations

import asyncio

import pytest

from corpus.db import open_db
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from jobs.publish import PublishOptions, PublishState, publish_draft, publish_next
from tests.fakes.telegram_app import CHANNEL, MODERATORS_CHAT, bot_running, make_settings, until

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class Destination:
    def __init__(self, network: str, chat_id: str) -> None:
        self.network, self.chat_id, self.sent = network, chat_id, []

    async def send(self, text: str) -> str:
        self.sent.append(text)
        return str(len(self.sent))


def queued(db, text: str, seed: int = 1) -> int:
    return draft_rows.add_draft(db, text=text, model_version="v", temperature=0.8, seed=seed, max_length=120,
                                status="queued")


def test_a_word_listed_after_queueing_stops_the_draft_everywhere_and_the_next_goes_out(tmp_path):
    db = open_db(tmp_path / "b.sqlite3")
    listed = queued(db, "ПОКУПАЕШЬ ЁЛКУ\n@\nЕЛКА ГОРИТ", seed=1)
    clean = queued(db, "ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ", seed=2)
    told: list[str] = []

    async def notify(text: str) -> None:
        told.append(text)

    tg, vk = Destination("telegram", "@ch"), Destination("vk", "-1")
    options = PublishOptions(footer="", stoplist=StopList(words=["елка", "елку"]))
    first = asyncio.run(publish_next(db, [tg, vk], notify, PublishState(), options=options))
    assert first["id"] == clean
    assert tg.sent == vk.sent == ["ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ"]
    row = draft_rows.get_draft(db, listed)
    assert row["status"] == "rejected_auto" and row["status_reason"] == "stop-list: 'елку'"
    assert sorted(p["status"] for p in pubs.publications_of(db, listed)) == ["skipped", "skipped"]
    assert len(told) == 2 and all("#%d" % listed in t and "стоп-лист" in t for t in told)


def test_a_moderators_edit_is_checked_as_it_would_go_out(tmp_path):
    db = open_db(tmp_path / "b.sqlite3")
    draft_id = queued(db, "ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ")
    db.execute("UPDATE drafts SET final_text = ? WHERE id = ?", ["ПОКУПАЕШЬ ХЛЕБ\n@\nХЕP ТЕБЕ", draft_id])
    tg = Destination("telegram", "@ch")

    async def notify(text: str) -> None:
        pass

    options = PublishOptions(footer="", stoplist=StopList(words=["хер"]))
    assert asyncio.run(publish_next(db, [tg], notify, PublishState(), options=options)) is None
    assert tg.sent == []
    assert draft_rows.get_draft(db, draft_id)["status"] == "rejected_auto"


def test_publish_now_sends_the_draft_as_it_is_now_not_as_the_button_saw_it(tmp_path):
    db = open_db(tmp_path / "b.sqlite3")
    draft_id = queued(db, "ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ")
    seen = draft_rows.get_draft(db, draft_id)
    db.execute("UPDATE drafts SET final_text = ? WHERE id = ?", ["ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ СВЕЖИЙ", draft_id])
    tg = Destination("telegram", "@ch")

    async def notify(text: str) -> None:
        pass

    assert asyncio.run(publish_draft(db, seen, [tg], notify, options=PublishOptions(footer="")))
    assert tg.sent == ["ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ СВЕЖИЙ"]


def test_the_running_bot_checks_its_configured_stop_list_at_publishing(tmp_path, server):
    settings = make_settings(tmp_path, server, filter={"words": ["ёлка", "ёлку"]})
    db = open_db(settings.database)
    listed = queued(db, "ПОКУПАЕШЬ ЁЛКУ\n@\nЁЛКА ГОРИТ", seed=1)
    clean = queued(db, "ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ", seed=2)
    db.close()

    async def main():
        async with bot_running(settings) as app:
            published = await app.bot_data.service.publish()
            await until(lambda: any("стоп-лист" in m["text"] for m in server.sent(MODERATORS_CHAT)))
            return published

    assert asyncio.run(main())["id"] == clean
    assert [m["text"] for m in server.sent(CHANNEL)] == [f"ПОКУПАЕШЬ ХЛЕБ\n@\nХЛЕБ ЧЁРСТВЫЙ\n\n#{clean}"]
    db = open_db(settings.database)
    assert draft_rows.get_draft(db, listed)["status"] == "rejected_auto"
    db.close()


def test_the_log_names_the_local_channel_once_not_local_local(tmp_path, caplog):
    """The tokenless local channel's network and chat are both 'local': its publishing log line
    said 'published meme #1 to local local as message 1'."""
    import io
    import logging

    from jobs.local_channel import LocalChannel

    db = open_db(tmp_path / "db.sqlite3")
    draft_id = queued(db, "ПРИШЁЛ НА РАБОТУ\n@\nЛОКАЛЬНО")
    with caplog.at_level(logging.INFO, logger="jobs.publish"):
        asyncio.run(publish_next(db, [LocalChannel(db, out=io.StringIO())], _no_notice))
    said = [r.getMessage() for r in caplog.records if f"#{draft_id}" in r.getMessage()]
    assert said == [f"published meme #{draft_id} to the local channel as message 1"], caplog.text
    db.close()


async def _no_notice(text: str) -> None:
    raise AssertionError(text)
