"""The blind rating flow (issue 24, part 1) end to end: /rate through the real python-telegram-bot
client against the fake Bot API server, real SQLite, the tiny real model. A rater gets real
held-out posts and drafts mixed, never told which, answers two questions per post, never sees a
post twice; the shares per model version with their Wilson intervals; the promotion gate."""
from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot import texts
from corpus.db import open_db
from corpus.store import model_versions as model_rows
from corpus.store.drafts import add_draft
from corpus.store.posts import add_posts
from corpus.stoplist import StopList
from jobs import rating
from jobs.model_registry import install_checkpoint
from jobs.retrain import retrain
from jobs.tune import tuned_temperature
from model.preprocess import post_split
from tests.fakes.telegram_app import (
    MODERATOR, MODERATORS_CHAT, STRANGER, another_writer_at, bot_running, make_settings, press, reply_to, settled,
    until, waits_logged,
)
from tests.helpers import plan_for, run_cli, varied_posts, with_active
from tests.tiny_model import variant

CORPUS = varied_posts(80, seed=3)


def card_id(message: dict) -> int:
    return int(message["reply_markup"]["inline_keyboard"][0][0]["callback_data"].split(":")[1])


async def rate_card(server, chat, user, message: dict, readable: int, publish: int) -> dict | None:
    """Answer both questions of a card; returns the next card (or None when the reply is not one)."""
    rid = card_id(message)
    before = len(server.sent(chat))
    answer = await press(server, f"v:{rid}:r:{readable}", user_id=user, message=message)
    assert answer["text"] == texts.ANSWER_DONE
    await until(lambda: "✓ " in json.dumps(server.message(chat, message["message_id"]).get("reply_markup", {}),
                                            ensure_ascii=False))
    await press(server, f"v:{rid}:p:{publish}", user_id=user, message=message)
    sent = await until(lambda: len(server.sent(chat)) > before and server.sent(chat))
    done = await until(lambda: "Спасибо" in (m := server.message(chat, message["message_id"]))["text"] and m)
    assert "reply_markup" not in done
    nxt = sent[before]
    if "reply_markup" not in nxt:
        return None
    (found,) = [m for (c, _), m in server.messages.items()
                if c == server.chat(chat)["id"] and m.get("reply_markup") == nxt["reply_markup"]
                and m["text"] == nxt["text"]]
    return found


async def first_card(server, chat, user, chat_id=None) -> dict:
    reply = await reply_to(server, chat, "/rate", user_id=user, chat_id=chat_id)
    assert "reply_markup" in reply, reply["text"]
    return [m for (c, _), m in sorted(server.messages.items())
            if c == server.chat(chat)["id"] and m["text"] == reply["text"]][-1]


def test_rate_mixes_held_out_posts_and_drafts_blind_and_never_repeats(tmp_path, server):
    settings = make_settings(tmp_path, server, rate={"drafts": 4})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            await service.fill_pools()
            assert db.execute("SELECT count(*) FROM drafts WHERE purpose = 'rating' AND status = 'ready'"
                              ).fetchone()[0] == 4
            card = await first_card(server, MODERATORS_CHAT, MODERATOR, chat_id=MODERATORS_CHAT)
            rows = card["reply_markup"]["inline_keyboard"]
            assert [[b["text"] for b in row] for row in rows] == [
                [texts.RATE_READABLE_YES, texts.RATE_NO], [texts.RATE_PUBLISH_YES, texts.RATE_NO]]
            stranger = await press(server, f"v:{card_id(card)}:r:1", user_id=STRANGER, message=card)
            assert stranger["text"] == texts.RATE_NOT_YOURS
            assert rating.rating_rows.get_rating(db, card_id(card))["readable"] is None
            texts_seen, sources = [], set()
            for turn in range(30):
                row = rating.rating_rows.get_rating(db, card_id(card))
                sources.add(row["source"])
                texts_seen.append(card["text"])
                assert "Черновик" not in card["text"] and "#" not in card["text"]   # blind: no draft number
                card = await rate_card(server, MODERATORS_CHAT, MODERATOR, card, turn % 2, 1)
                if sources == {"corpus", "draft"} and turn >= 5:
                    break
            assert sources == {"corpus", "draft"}
            rows = list(db.query("SELECT * FROM ratings WHERE readable IS NOT NULL ORDER BY id"))
            assert len({(r["source"], r["item_id"]) for r in rows}) == len(rows)   # never the same post twice
            active = model_rows.active_model(db)["version"]
            for r in rows:
                assert r["rater_id"] == str(MODERATOR) and r["would_publish"] == 1 and r["rated_at"]
                if r["source"] == "corpus":
                    text = db.execute("SELECT COALESCE(clean_text, text) FROM posts WHERE id = ?",
                                      [r["item_id"]]).fetchone()[0]
                    assert r["model_version"] is None and post_split(text, 0.1, 0.1) != "train"
                else:
                    draft = db["drafts"].get(r["item_id"])
                    assert r["model_version"] == draft["model_version"] == active
                    assert draft["purpose"] == "rating" and draft["status"] == "ready"
                    text = draft["text"]
                assert any(text in seen for seen in texts_seen)
            shares = rating.shares_by_version(db)
            assert shares[None].would_publish.n == sum(r["source"] == "corpus" for r in rows)
            assert shares[active].readable.n == sum(r["source"] == "draft" for r in rows)

    asyncio.run(main())


def test_rate_never_shows_a_post_or_a_draft_a_word_listed_since_then_matches(tmp_path, server):
    """Posts kept before the word was listed (only new posts are cleaned again) and rating drafts
    made before it: raters (subscribers too, with rate.subscribers) must not get them."""
    settings = make_settings(tmp_path, server, rate={"drafts": 2}, filter={"words": ["ёлку"]})
    listed = [f"ПОКУПАЕШЬ ЁЛКУ НОМЕР {i}\n@\nОНА ГОРИТ" for i in range(200)]
    listed = [t for t in listed if post_split(t, 0.1, 0.1) != "train"][:10]   # held out: shown to raters

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            add_posts(db, [{"source": "file", "text": t} for t in [*CORPUS, *listed]])
            await service.fill_pools()
            version = model_rows.active_model(db)["version"]
            draft = add_draft(db, text="ЁЛКУ ПРИНОСИШЬ\n@\nВСЕ РАДЫ", model_version=version, temperature=0.8,
                              seed=99, max_length=500, purpose="rating", status="ready")
            rng, shown = random.Random(4), []
            for _ in range(40):
                card = await rating.next_card(service, MODERATOR, rng)
                if card is None:
                    break
                shown.append(card.text)
            assert shown and not [t for t in shown if "ЁЛКУ" in t]
            assert db["drafts"].get(draft)["status"] == "rejected_auto"

    asyncio.run(main())


def test_subscribers_rate_only_when_enabled(tmp_path, server):
    settings = make_settings(tmp_path, server, rate={"subscribers": True, "drafts": 2})

    async def main():
        async with bot_running(settings) as app:
            add_posts(app.bot_data.db, [{"source": "file", "text": t} for t in CORPUS])
            card = await first_card(server, STRANGER, STRANGER)
            assert card["text"].startswith("Оценка вслепую")
            denied = await reply_to(server, MODERATORS_CHAT, "/rate", user_id=STRANGER, chat_id=MODERATORS_CHAT)
            assert denied["text"] == texts.RATE_NOT_ALLOWED

    asyncio.run(main())


def test_a_second_tap_on_a_rated_card_changes_nothing_and_sends_no_second_card(tmp_path, server):
    """A double tap on the last answer (the second press carries the card as it was, buttons and
    all): the card is closed once both questions are answered; the late press neither rewrites the
    answer nor sends the rater one more card."""
    settings = make_settings(tmp_path, server, rate={"drafts": 4})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            card = await first_card(server, MODERATORS_CHAT, MODERATOR, chat_id=MODERATORS_CHAT)
            rid = card_id(card)
            await rate_card(server, MODERATORS_CHAT, MODERATOR, card, 1, 1)
            cards = len(server.sent(MODERATORS_CHAT))
            late = await press(server, f"v:{rid}:r:0", user_id=MODERATOR, message=card)
            assert late["text"] == texts.RATE_ALREADY
            row = rating.rating_rows.get_rating(db, rid)
            assert (row["readable"], row["would_publish"]) == (1, 1)
            await settled(server, app)
            assert len(server.sent(MODERATORS_CHAT)) == cards

    asyncio.run(main())


def test_a_card_of_a_post_near_telegrams_limit_shows_the_thanks_and_loses_its_buttons(tmp_path, server, monkeypatch):
    """A held-out corpus post of nearly 4,096 characters fills its card (shortened, with the
    marker): answered, the card still says thank you and loses its buttons, the post shortened
    further to leave room for the line (Telegram refuses an edit over 4,096 characters)."""
    settings = make_settings(tmp_path, server, rate={"drafts": 2})
    monkeypatch.setattr(rating, "REAL_SHARE", 1.0)   # the held-out post first
    train = [t for t in CORPUS if post_split(t, 0.1, 0.1) == "train"]
    line = "ПРИХОДИШЬ НА РАБОТУ В ПОНЕДЕЛЬНИК УТРОМ"
    long = next(t for i in range(200) if post_split(t := "\n@\n".join([f"{line} {i}"] * 100), 0.1, 0.1) != "train")
    assert len(long) > 4096

    async def main():
        async with bot_running(settings) as app:
            add_posts(app.bot_data.db, [{"source": "file", "text": t} for t in [*train, long]])
            card = await first_card(server, MODERATORS_CHAT, MODERATOR, chat_id=MODERATORS_CHAT)
            assert card["text"].startswith("Оценка вслепую") and "ещё" in card["text"][-40:]
            rid, before = card_id(card), len(server.sent(MODERATORS_CHAT))
            await press(server, f"v:{rid}:r:1", user_id=MODERATOR, message=card)
            await press(server, f"v:{rid}:p:0", user_id=MODERATOR, message=card)
            await until(lambda: len(server.sent(MODERATORS_CHAT)) > before)   # the next card
            done = server.message(MODERATORS_CHAT, card["message_id"])
            assert texts.RATE_THANKS.format(readable=texts.RATE_READABLE_YES, publish=texts.RATE_NO) in done["text"]
            assert "reply_markup" not in done and len(done["text"]) <= 4096
            body = done["text"].split("\n\n", 1)[1].rsplit("\n\n", 1)[0]   # between the header and the thanks
            kept, left = body.rsplit("\n… (ещё ", 1)
            assert long.startswith(kept) and len(kept) + int(left.split()[0]) == len(long)

    asyncio.run(main())


def test_a_rater_answering_cards_quickly_is_not_taken_for_a_flood(tmp_path, server):
    """Two taps per card: a rater in a private chat who answers three cards within the flood window
    (5 commands) has every tap answered and stored, and is not told to slow down: the taps answer
    the bot's own cards, they are not commands."""
    settings = make_settings(tmp_path, server, rate={"subscribers": True, "drafts": 4},
                             telegram={"user_burst": 5, "user_window_seconds": 600.0})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            card = await first_card(server, STRANGER, STRANGER)
            for _ in range(2):
                card = await rate_card(server, STRANGER, STRANGER, card, 1, 0)
            answered = len(server.calls_of("answerCallbackQuery"))
            server.press(f"v:{card_id(card)}:r:1", user_id=STRANGER, message=card)
            await settled(server, app)
            assert len(server.calls_of("answerCallbackQuery")) == answered + 1
            assert rating.rating_rows.get_rating(db, card_id(card))["readable"] == 1
            assert texts.FLOOD.format(seconds=600) not in [m["text"] for m in server.sent(STRANGER)]

    asyncio.run(main())


def test_subscribers_may_not_rate_by_default(tmp_path, server):
    settings = make_settings(tmp_path, server)

    async def main():
        async with bot_running(settings) as app:
            denied = await reply_to(server, STRANGER, "/rate", user_id=STRANGER)
            assert denied["text"] == texts.RATE_NOT_ALLOWED
            assert app.bot_data.db.execute("SELECT count(*) FROM ratings").fetchone()[0] == 0

    asyncio.run(main())


def test_wilson_interval_and_shares(db):
    assert rating.wilson(0, 0) is None
    low, high = rating.wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = rating.wilson(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    add_posts(db, [{"source": "file", "text": t} for t in CORPUS[:3]])
    ids = [r[0] for r in db.execute("SELECT id FROM posts ORDER BY id")]
    for i, post_id in enumerate(ids):
        rid = rating.rating_rows.add_shown(db, rater_id=1, source="corpus", item_id=post_id, model_version=None)
        rating.rating_rows.answer(db, rid, "readable", True)
        rating.rating_rows.answer(db, rid, "would_publish", i == 0)
    assert rating.rating_rows.add_shown(db, rater_id=1, source="corpus", item_id=ids[0], model_version=None) is None
    for item in range(4):
        rid = rating.rating_rows.add_shown(db, rater_id=2, source="draft", item_id=item + 1, model_version="v1")
        rating.rating_rows.answer(db, rid, "readable", item == 0)
    rating.rating_rows.add_shown(db, rater_id=3, source="draft", item_id=1, model_version="v1")  # shown, unanswered
    real, v1 = rating.rating_shares(db)
    assert (real.version, real.readable.yes, real.readable.n, real.would_publish.yes, real.would_publish.n) == (
        None, 3, 3, 1, 3)
    assert (v1.version, v1.readable.yes, v1.readable.n, v1.would_publish.n) == ("v1", 1, 4, 0)
    assert str(v1.readable) == "25% [5%-70%] (4)" and str(v1.would_publish) == "- (0)"


def test_models_list_shows_the_shares_beside_the_real_posts(tmp_path, capsys, tiny_checkpoint, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[paths]\ndata_dir = 'data'\n[startup]\nuse_bundled_model = false\n")
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    version = install_checkpoint(db, tiny_checkpoint, tmp_path / "data" / "models", val_bpc=None)
    model_rows.promote(db, version)
    for item in range(10):
        rid = rating.rating_rows.add_shown(db, rater_id=7, source="draft", item_id=item + 1, model_version=version)
        rating.rating_rows.answer(db, rid, "readable", item < 6)
        rating.rating_rows.answer(db, rid, "would_publish", item < 2)
        rid = rating.rating_rows.add_shown(db, rater_id=7, source="corpus", item_id=item + 1, model_version=None)
        rating.rating_rows.answer(db, rid, "readable", item < 9)
    db.close()
    code, out, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    assert "readable" in out and "would publish" in out
    (line,) = [line for line in out.splitlines() if line.startswith(version)]
    assert "60% [31%-83%] (10)" in line and "20% [6%-51%] (10)" in line
    (real,) = [line for line in out.splitlines() if line.startswith("real posts")]
    assert "90% [60%-98%] (10)" in real and "- (0)" in real


def test_a_retrained_model_waits_for_ratings_then_is_promoted_or_rejected(db, tmp_path, tiny_checkpoint):

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    active = with_active(db, tmp_path, tiny_checkpoint)

    def run_training(cfg):   # the candidate: the active model's weights in the run folder (another file)
        Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        variant(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", "cand")

    plan = plan_for(tmp_path, min_improvement=-1.0, promote_min_ratings=3)
    result = retrain(db, plan, run_training)
    assert not result.promoted and "waits for 3 ratings" in result.reason
    candidate = result.candidate_version
    assert model_rows.get_model(db, candidate)["status"] == "candidate"
    assert [r["version"] for r in rating.awaiting(db)] == [candidate]
    assert [v for v, _ in rating.rated_versions(db)] == [active, candidate]

    def rate(version, yes, n, rater):
        for i in range(n):
            rid = rating.rating_rows.add_shown(db, rater_id=rater, source="draft", item_id=1000 * rater + i,
                                               model_version=version)
            rating.rating_rows.answer(db, rid, "readable", i < yes)

    rate(active, 2, 4, rater=1)            # the active model: 50% readable
    rate(candidate, 2, 2, rater=2)
    assert rating.settle_candidates(db, 3) == []            # 2 of 3 ratings: it waits
    rate(candidate, 0, 1, rater=3)                          # 2 of 3 = 67% >= 50%
    assert rating.settle_candidates(db, 3) == [(candidate, True)]
    assert model_rows.active_model(db)["version"] == candidate
    assert model_rows.get_model(db, active)["status"] == "retired"

    assert not rating.awaiting(db)
    db.execute("UPDATE model_versions SET status = 'candidate', metrics_json = ? WHERE version = ?",
               [json.dumps({"awaiting_ratings": 3}), active])
    assert rating.settle_candidates(db, 3) == [(active, False)]   # 2 of 4 = 50% < the new active's 67%
    assert model_rows.get_model(db, active)["status"] == "rejected"


def test_a_newer_night_s_waiting_candidate_supersedes_the_one_still_waiting(db, tmp_path, tiny_checkpoint, caplog):
    """retrain.promote_min_ratings with slow raters: each winning night added one more waiting
    candidate, each with rate.drafts drafts of its own in the raters' mix, the raters' answers spread
    ever thinner. Now the newer candidate (trained on more of the corpus, compared with the same
    active model) replaces the one still waiting at once: one candidate waits at a time."""
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    active = with_active(db, tmp_path, tiny_checkpoint)
    plan = plan_for(tmp_path, min_improvement=-1.0, promote_min_ratings=3)
    candidates = []
    for night in ("first", "second"):
        def run_training(cfg, night=night):
            Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
            variant(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", night)

        with caplog.at_level("INFO", logger="jobs"):
            result = retrain(db, plan, run_training)
        assert not result.promoted and "waits for 3 ratings" in result.reason
        candidates.append(result.candidate_version)
    first, second = candidates
    assert model_rows.get_model(db, first)["status"] == "rejected"
    assert [r["version"] for r in rating.awaiting(db)] == [second]
    assert [v for v, _ in rating.rated_versions(db)] == [active, second]
    assert f"candidate {first}: rejected, superseded by the newer candidate {second}" in caplog.text


def test_the_gate_promotes_through_the_chat_and_the_bot_follows(tmp_path, server, tiny_checkpoint):
    settings = make_settings(tmp_path, server, rate={"drafts": 2}, retrain={"promote_min_ratings": 2})

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            active = model_rows.active_model(db)["version"]
            candidate = install_checkpoint(db, variant(tiny_checkpoint, tmp_path / "cand.pt", "cand"),
                                           settings.data_dir / "models", val_bpc=1.0,
                                           metrics={"awaiting_ratings": 2})
            await service.fill_pools()
            for version in (active, candidate):
                assert db.execute("SELECT count(*) FROM drafts WHERE purpose = 'rating' AND status = 'ready'"
                                  " AND model_version = ?", [version]).fetchone()[0] == 2
            card = await first_card(server, MODERATORS_CHAT, MODERATOR, chat_id=MODERATORS_CHAT)
            for _ in range(40):
                row = rating.rating_rows.get_rating(db, card_id(card))
                good = int(row["model_version"] == candidate)   # the candidate's drafts read, the active's not
                card = await rate_card(server, MODERATORS_CHAT, MODERATOR, card, good, good)
                if model_rows.active_model(db)["version"] == candidate:
                    break
            assert model_rows.active_model(db)["version"] == candidate
            await until(lambda: service.holder.version == candidate)
            # and tuned, as a retrain's promotion is: it wrote at the fallback temperature for good
            await until(lambda: tuned_temperature(db, candidate) is not None)

    asyncio.run(main())


def test_a_candidate_waiting_for_ratings_is_announced_as_such_not_as_the_old_model_kept(tmp_path, server,
                                                                                        tiny_checkpoint):
    # the night's candidate beat the active model and waits for the moderators' /rate: the chat was
    # told the new model was no better and the old one stayed, so nobody rated and it never went in
    from jobs import notices

    settings = make_settings(tmp_path, server, retrain={"promote_min_ratings": 2})

    def run_training(cfg):
        Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        variant(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", "cand")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
            night = tmp_path / "night"
            result = retrain(db, plan_for(night, min_improvement=-1.0, promote_min_ratings=2), run_training)
            assert rating.awaiting(db) and not result.promoted
            service.retrainer = lambda stop: result
            await service.retrain()
            return result

    result = asyncio.run(main())
    assert "kept the active model" not in result.reason and "waits for 2 ratings" in result.reason
    said = [m["text"] for m in server.sent(MODERATORS_CHAT)]
    assert not [t for t in said if t.startswith(notices.ALERT_RETRAIN_KEPT.split("{")[0])], said
    (told,) = [t for t in said if t.startswith("🧠")]
    assert result.candidate_version in told and "/rate" in told and "2" in told


def test_a_candidate_older_than_the_one_the_ratings_promoted_is_never_promoted_over_it(db, tmp_path,
                                                                                       tiny_checkpoint):
    # two nights' candidates wait for ratings; the newer one reached them first and was promoted;
    # the older one, trained on less of the corpus and never compared with it, then replaced it as
    # soon as its own ratings were as good
    active = with_active(db, tmp_path, tiny_checkpoint)
    older, newer = (install_checkpoint(db, variant(tiny_checkpoint, tmp_path / f"{name}.pt", name), tmp_path / "models",
                                       val_bpc=1.0, metrics={"awaiting_ratings": 2}) for name in ("older", "newer"))
    for version, night in ((older, "2026-12-01T03:30:00+00:00"), (newer, "2026-12-02T03:30:00+00:00")):
        db.execute("UPDATE model_versions SET created_at = ? WHERE version = ?", [night, version])

    def rate(version, yes, n, rater):
        for i in range(n):
            rid = rating.rating_rows.add_shown(db, rater_id=rater, source="draft", item_id=1000 * rater + i,
                                               model_version=version)
            rating.rating_rows.answer(db, rid, "readable", i < yes)

    rate(active, 1, 2, rater=1)
    rate(newer, 1, 2, rater=2)
    assert (newer, True) in rating.settle_candidates(db, 2)
    assert model_rows.active_model(db)["version"] == newer
    rate(older, 2, 2, rater=3)                    # 100% readable, better than the newer's 50%
    rating.settle_candidates(db, 2)
    assert model_rows.active_model(db)["version"] == newer
    assert model_rows.get_model(db, older)["status"] == "rejected"
    assert rating.awaiting(db) == []


def test_a_rating_answer_while_another_process_holds_the_database_is_a_polite_answer(tmp_path, server):
    """A rater's press on a /rate card while a backup or `buhurt corpus clean` holds the database past
    paths.busy_timeout_seconds: the press was left unanswered and the error handler reported it in the
    moderators' chat; now the press is answered that the database is busy and nothing changed, and
    the same press works once the lock is gone."""
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 0.5}, rate={"drafts": 4})
    report = texts.ERROR_REPORT.split(":")[0]

    def answers() -> list[dict]:
        return [c.params for c in server.calls_of("answerCallbackQuery")]

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            card = await first_card(server, MODERATORS_CHAT, MODERATOR, chat_id=MODERATORS_CHAT)
            rid = card_id(card)
            other = sqlite3.connect(settings.database, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")   # another process's write transaction (a backup, a clean)
            try:
                before = len(answers())
                server.press(f"v:{rid}:r:1", user_id=MODERATOR, message=card)
                await until(lambda: len(answers()) > before
                            or any(report in m["text"] for m in server.sent(MODERATORS_CHAT)))
                busy = answers()[before:]
            finally:
                other.execute("ROLLBACK")
                other.close()
            before = len(answers())
            server.press(f"v:{rid}:r:1", user_id=MODERATOR, message=card)
            done = (await until(lambda: answers()[before:]))[0]
            return busy, done, app.bot_data.db.execute("SELECT readable FROM ratings WHERE id = ?", [rid]).fetchone()

    busy, done, (readable,) = asyncio.run(main())
    assert not any(report in m["text"] for m in server.sent(MODERATORS_CHAT))
    assert [a["text"] for a in busy] == [texts.DESK_BUSY]
    assert done["text"] == texts.ANSWER_DONE and readable == 1


def test_a_candidate_waiting_for_ratings_is_not_promoted_over_a_model_made_active_since(db, tmp_path,
                                                                                      tiny_checkpoint):
    """retrain.promote_min_ratings: the night's candidate beat model A and waits for ratings; the
    operator then activates model B (`buhurt models install F --activate`, the GPU box's). Its
    ratings in, the candidate was promoted over B (B had no ratings yet), never compared with it.
    Now it is rejected: it was compared with A, and B stays active."""
    from jobs.model_registry import activate

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    with_active(db, tmp_path, tiny_checkpoint)

    def run_training(cfg):
        Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        variant(tiny_checkpoint, Path(cfg.checkpoint_dir) / "best.pt", "cand")

    result = retrain(db, plan_for(tmp_path, min_improvement=-1.0, promote_min_ratings=3), run_training)
    candidate = result.candidate_version
    assert model_rows.get_model(db, candidate)["status"] == "candidate"
    theirs = install_checkpoint(db, variant(tiny_checkpoint, tmp_path / "gpu.pt", "the GPU box"), tmp_path / "models",
                                val_bpc=None)
    activate(db, theirs)
    for i in range(3):
        rid = rating.rating_rows.add_shown(db, rater_id=i + 1, source="draft", item_id=1000 + i,
                                           model_version=candidate)
        rating.rating_rows.answer(db, rid, "readable", True)
    assert rating.settle_candidates(db, 3) == [(candidate, False)]
    assert model_rows.active_model(db)["version"] == theirs
    assert model_rows.get_model(db, candidate)["status"] == "rejected"


def test_rate_finds_the_last_held_out_posts_among_many_trained_ones(tmp_path):
    """/rate drew 200 random unrated posts and kept the held-out ones: with thousands of trained
    posts and the last few held-out ones left, a rater got none and was told they had rated all."""
    texts_ = [f"ПОСТ НОМЕР {i}\n@\nКОНЕЦ" for i in range(3000)]
    trained = [t for t in texts_ if post_split(t, 0.1, 0.1) == "train"][:2000]
    held = [t for t in texts_ if post_split(t, 0.1, 0.1) != "train"][:2]
    db = open_db(tmp_path / "buhurt.db")
    add_posts(db, [{"source": "file", "text": t} for t in [*trained, *held]])
    stored = [r[0] for r in db.execute("SELECT COALESCE(clean_text, text) FROM posts WHERE excluded_reason IS NULL")]
    assert sorted(t for t in stored if post_split(t, 0.1, 0.1) != "train") == sorted(held)
    service = SimpleNamespace(db=db, plan=SimpleNamespace(held_out=(0.1, 0.1)),
                              drafting=SimpleNamespace(stoplist=StopList()))

    async def main():
        return [await rating.next_card(service, MODERATOR, random.Random(1)) for _ in range(3)]

    first, second, third = asyncio.run(main())
    assert first is not None and second is not None and third is None
    assert sorted([first.text, second.text]) == sorted(held)


def test_the_rating_pool_waits_for_another_process_s_lock_to_store_its_drafts(tmp_path, server, caplog):
    """A pool run (or a /rate that found no draft left) while another process (a backup, `buhurt
    corpus clean`, an import) held the write lock for a moment, far shorter than
    paths.busy_timeout_seconds: the rating drafts, generated, were never stored ('database is
    locked' at once: the store reads before it writes, and it was called on the service's own
    connection without waiting off the loop). Now it waits, and stores them once the lock is gone."""
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 30}, rate={"drafts": 3})
    waiting = waits_logged(caplog, "store_generated")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            other = sqlite3.connect(settings.database, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")   # another process's write transaction
            other.execute("INSERT INTO state (key, value, updated_at) VALUES ('other', 'writer', '')")
            try:
                filling = asyncio.ensure_future(rating.fill_rating_pool(service))
                await until(lambda: filling.done() or waiting())
            finally:
                other.execute("COMMIT")
                other.close()
            created = await filling
            ready = db.execute("SELECT count(*) FROM drafts WHERE purpose = 'rating' AND status = 'ready'"
                               ).fetchone()[0]
            return created, ready

    created, ready = asyncio.run(main())
    assert len(created) == ready == 3


def test_an_answer_that_settles_a_candidate_waits_for_another_process_s_lock(tmp_path, server, tiny_checkpoint,
                                                                             caplog):
    """The readable answer that completes a waiting candidate's ratings (retrain.promote_min_ratings)
    while another process (a backup, `buhurt corpus clean`) takes the write lock for a moment: the
    answer was stored, then the promotion, written on the service's own connection without waiting
    off the loop, failed after 50 ms with 'database is locked'; the press ended in the error
    handler's 'failed' and a report to the moderators. Now the promotion waits for the lock, as
    the answer itself does, and the candidate becomes the active model."""
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 30},
                             retrain={"promote_min_ratings": 1})
    waiting = waits_logged(caplog, "settle_candidates")

    async def main():
        async with bot_running(settings) as app:
            db, service = app.bot_data.db, app.bot_data.service
            candidate = install_checkpoint(db, variant(tiny_checkpoint, tmp_path / "cand.pt", "cand"),
                                           settings.data_dir / "models", val_bpc=1.0,
                                           metrics={"awaiting_ratings": 1})
            rid = rating.rating_rows.add_shown(db, rater_id=MODERATOR, source="draft", item_id=1,
                                               model_version=candidate)
            stored: list[str] = []

            def at_the_settling(sql: str) -> bool:   # the other process writes once the answer is stored
                if sql.startswith("UPDATE ratings"):
                    stored.append(sql)
                return bool(stored) and sql.startswith(("BEGIN IMMEDIATE", "SELECT * FROM model_versions"))

            with another_writer_at(settings.database, db.conn, at_the_settling) as taken:
                answering = asyncio.ensure_future(rating.answer(service, rid, MODERATOR, MODERATORS_CHAT, None,
                                                                "readable", True))
                await until(lambda: answering.done() or waiting())
                locked = bool(taken)
            row = await answering
            return locked, row, candidate, model_rows.active_model(db)["version"]

    locked, row, candidate, active = asyncio.run(main())
    assert locked and row["readable"] == 1
    assert active == candidate


def test_a_card_sent_while_another_process_writes_is_recorded_without_an_error_reply(tmp_path, server, caplog):
    """/rate while another process (a backup, `buhurt corpus clean`) took the write lock just as the
    card went out: recording the card's message, written on the service's own connection without
    waiting off the loop, failed after 50 ms with 'database is locked', so the rater got the card
    and then 'something went wrong' under it, and the moderators an error report. Now it waits for
    the lock, and the card's message is recorded."""
    settings = make_settings(tmp_path, server, paths={"busy_timeout_seconds": 30}, rate={"drafts": 2})
    waiting = waits_logged(caplog, "set_message")
    report = texts.ERROR_REPORT.split(":")[0]

    def failed() -> bool:   # the error handler's answer in the moderators' chat, or its report there
        return any(m["text"] == texts.DESK_FAILED or m["text"].startswith(report) for m in server.sent(MODERATORS_CHAT))

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            add_posts(db, [{"source": "file", "text": t} for t in CORPUS])
            with another_writer_at(settings.database, db.conn,
                                   lambda sql: sql.startswith("UPDATE ratings SET chat_id")) as taken:
                server.send_text("/rate", user_id=MODERATOR, chat_id=MODERATORS_CHAT)
                await until(lambda: waiting() or failed())
            await until(lambda: db.execute("SELECT message_id FROM ratings").fetchone()[0] is not None or failed())
            return taken, failed(), list(db.query("SELECT * FROM ratings"))

    taken, failures, rows = asyncio.run(main())
    assert taken and not failures
    (row,) = rows
    assert row["chat_id"] is not None and row["message_id"] is not None
