"""The draft ranker learned from the moderators (issue 24, part 2): labels from real decision
records, the time-ordered check, used by the pool only when it beats the hand-set score (a
simulated moderator with a known taste), refused when the decisions are random; the CLI."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest

from corpus.popularity import channel_percentiles
from corpus.store import drafts as draft_rows
from corpus.store import publications as pubs
from corpus.store.reactions import publication_counts, record_counts
from corpus.stoplist import StopList
from corpus.store.state import get_state, set_state
from jobs import ranker
from jobs.desk import back_to_pending
from jobs.pool import store_generated
from model.sample_options import SampleOptions
from tests.helpers import run_cli
from tests.simulated_moderator import draft_text, simulate


@dataclass
class Candidate:
    """A generated post with the generator's measures (the fields jobs.pool reads of model.sample.Sample)."""

    text: str
    reached_gap: bool = True
    logprob_nats_per_char: float = -1.6
    known_share: float | None = 0.97


def two_candidates() -> list[Candidate]:
    """One the simulated moderator likes but the hand-set score ranks lower, and the other way round."""
    import random

    rng = random.Random(5)
    liked = "\n@\n".join(["ПРИХОДИШЬ ДОМОЙ", "ТАМ БАТЯ", "ЧИНИТ КРАН", "КРАН ТЕЧЁТ", "БАТЯ ДОВОЛЕН", "МАМКА ОРЁТ"])
    disliked = draft_text(rng, 12, repetitive=True)
    return [Candidate(liked, logprob_nats_per_char=-2.2), Candidate(disliked, logprob_nats_per_char=-1.0)]


def test_labels_weigh_edits_and_reactions(db):
    base = dict(model_version="v", temperature=0.8, seed=1, max_length=500, status="pending")
    ids = [draft_rows.add_draft(db, text=f"ПОСТ {i}\n@\nСТРОКА ДЛИННАЯ ДОСТАТОЧНО", **base) for i in range(5)]
    draft_rows.decide(db, ids[0], action="approve", to_status="queued", actor_id=1)
    draft_rows.decide(db, ids[1], action="edit", to_status="queued", actor_id=1, final_text="ДРУГОЙ\n@\nТЕКСТ")
    draft_rows.set_edit_distance(db, ids[1], 20)
    draft_rows.decide(db, ids[2], action="reject", to_status="rejected", actor_id=1)
    draft_rows.decide(db, ids[3], action="regenerate", to_status="rejected", actor_id=1)
    draft_rows.add_draft(db, text="АВТО\n@\nОДОБРЕН", **{**base, "status": "queued"})   # no human decision
    for draft_id, likes_, views in ((ids[0], 30, 100), (ids[1], 1, 100)):
        pid = pubs.begin_publication(db, draft_id, "vk", "-1")
        pubs.finish_publication(db, pid, str(draft_id))
        record_counts(db, "vk", "-1", str(draft_id), {"like": likes_, "view": views})
    data = ranker.labels(db)
    assert data.draft_ids == ids[:4] and data.y == [1, 1, 0, 0]
    assert data.weight[0] == 1.5      # the channel's best by reactions per view
    text = draft_rows.get_draft(db, ids[1])["text"]
    assert data.weight[1] == pytest.approx(0.5 * (1 - 20 / len(text)))   # edited, and the channel's least liked
    assert data.weight[2:] == [1.0, 1.0]
    liked = channel_percentiles(publication_counts(db))
    assert liked == {ids[0]: 1.0, ids[1]: 0.0}


def test_an_approval_sent_back_to_pending_is_no_label_until_it_is_decided_again(db):
    """↩️ В ожидание takes an approval back: the draft waits for the moderators again, but the ranker
    (and ranker.min_labels' count) still took it as approved."""
    base = dict(model_version="v", temperature=0.8, seed=1, max_length=500, status="pending")
    kept, sent_back, rejected_after = [draft_rows.add_draft(db, text=f"ПОСТ {i}\n@\nСТРОКА", **base) for i in range(3)]
    for draft_id in (kept, sent_back, rejected_after):
        draft_rows.decide(db, draft_id, action="approve", to_status="queued", actor_id=1)
    for draft_id in (sent_back, rejected_after):
        assert back_to_pending(db, draft_id, actor_id=1, actor_name="@anna")
    draft_rows.decide(db, rejected_after, action="reject", to_status="rejected", actor_id=1)
    data = ranker.labels(db)
    assert data.draft_ids == [kept, rejected_after] and data.y == [1, 0]
    assert ranker.count_labels(db) == 2
    draft_rows.decide(db, sent_back, action="approve", to_status="queued", actor_id=1)   # approved again
    assert ranker.labels(db).draft_ids == [kept, rejected_after, sent_back] and ranker.count_labels(db) == 3


def test_the_learned_ranker_beats_the_hand_set_score_on_a_known_taste_and_the_pool_uses_it(db):
    simulate(db, 400, taste="lines", seed=1)
    fitted = ranker.train(db)
    assert fitted.learned_auc is not None and fitted.hand_auc is not None
    assert fitted.learned_auc > fitted.hand_auc + 0.1 and fitted.learned_low > 0.5 and fitted.used
    names = [name for name, _ in fitted.weights()]
    assert set(names[:3]) & {"lines_squared", "repeated_words", "lines"}
    rank = ranker.learned_ranker(db)
    assert rank is not None

    candidates = two_candidates()
    kept = store_generated(db, candidates, [1, 2], version="v", request=SampleOptions(temperature=0.8).request(),
                           purpose="channel", ok_status="pending", stoplist=StopList([], []), keep=1)
    (draft,) = [draft_rows.get_draft(db, draft_id) for draft_id in kept]
    assert draft["text"] == candidates[0].text and draft["ranker_score"] is not None
    other = db.execute("SELECT status, status_reason, ranker_score, score FROM drafts WHERE text = ?",
                       [candidates[1].text]).fetchone()
    assert other[0] == "rejected_auto" and other[1].startswith("outranked") and other[2] < draft["ranker_score"]
    assert other[3] > draft["score"]   # the hand-set score would have kept the other one


def test_a_ranker_stored_with_other_features_is_not_used_until_it_is_trained_again(db, caplog):
    """After an upgrade that changes FEATURES, the stored weights would fall on other features."""
    simulate(db, 400, taste="lines", seed=1)
    fitted = ranker.train(db)
    assert fitted.used and ranker.learned_ranker(db) is not None
    stored = json.loads(get_state(db, ranker.STATE_KEY))
    stored["features"] = ["chars", "known_share", *stored["features"][2:]]   # an older release's order
    set_state(db, ranker.STATE_KEY, json.dumps(stored))
    with caplog.at_level(logging.WARNING, logger="jobs.ranker"):
        assert ranker.learned_ranker(db) is None
    assert "trained on other features" in caplog.text
    set_state(db, ranker.STATE_KEY, json.dumps({**stored, "calibration": 1.0}))   # another release's fields
    assert ranker.learned_ranker(db) is None and ranker.stored(db) is None
    assert ranker.train(db).used and ranker.learned_ranker(db) is not None


def test_random_decisions_never_replace_the_hand_set_score(db):
    simulate(db, 400, taste="random", seed=2)
    fitted = ranker.train(db)
    assert not fitted.used
    assert ranker.learned_ranker(db) is None
    candidates = two_candidates()
    kept = store_generated(db, candidates, [1, 2], version="v", request=SampleOptions(temperature=0.8).request(),
                           purpose="channel", ok_status="pending", stoplist=StopList([], []), keep=1)
    (draft,) = [draft_rows.get_draft(db, draft_id) for draft_id in kept]
    assert draft["text"] == candidates[1].text and draft["ranker_score"] is None   # the hand-set winner


def test_random_decisions_are_refused_across_seeds(tmp_path):
    from corpus.db import open_db

    for seed in range(3, 8):
        db = open_db(tmp_path / f"r{seed}.sqlite3")
        simulate(db, 300, taste="random", seed=seed)
        assert not ranker.train(db).used, seed
        db.close()


def test_the_nightly_job_waits_for_min_labels(db):
    simulate(db, 60, taste="lines", seed=3)
    assert ranker.maybe_train(db, ranker.RankerOptions(min_labels=100)) is None and ranker.stored(db) is None
    simulate(db, 60, taste="lines", seed=4)
    fitted = ranker.maybe_train(db, ranker.RankerOptions(min_labels=100))
    assert fitted is not None and fitted.labels == 120 and ranker.stored(db).labels == 120


def test_the_ranker_cli_trains_and_reports(tmp_path, capsys, monkeypatch):
    from corpus.db import open_db

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[paths]\ndata_dir = 'data'\n[startup]\nuse_bundled_model = false\n")
    code, out, err = run_cli(capsys, "ranker", "report")
    assert code == 0 and out.startswith("no ranker yet: 0 decisions"), err
    code, out, err = run_cli(capsys, "ranker", "train")
    assert code == 2 and err.startswith("error: ranker not trained: 0 decisions") and err.count("\n") == 1
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    simulate(db, 300, taste="lines", seed=6)
    db.close()
    code, out, err = run_cli(capsys, "ranker", "train")
    assert code == 0, err
    assert "AUC approved vs rejected: learned 0." in out and "hand-set score 0." in out
    assert "the pool ranks drafts with the learned ranker" in out and "repeated_words" in out
    code, again, err = run_cli(capsys, "ranker", "report")
    assert code == 0 and again.startswith(out.splitlines()[0]) and "decisions now: 300" in again


def test_reactions_rank_within_their_channel_per_view_with_ties_sharing_a_place():
    rows = [{"publication_id": i, "draft_id": 10 + i, "network": net, "chat_id": chat, "reactions": r, "views": v}
            for i, (net, chat, r, v) in enumerate([
                ("vk", "-1", 10, 100), ("vk", "-1", 10, 1000), ("vk", "-1", 30, 1000), ("vk", "-1", 10, 1000),
                ("telegram", "@c", 4, None), ("telegram", "@c", 2, None)])]
    assert channel_percentiles(rows) == {10: 1.0, 11: 1 / 6, 12: 2 / 3, 13: 1 / 6, 14: 1.0, 15: 0.0}


def test_decisions_in_the_moderators_chat_are_the_rankers_labels(tmp_path, server):
    import asyncio

    from tests.fakes.telegram_app import (
        MODERATOR, MODERATORS_CHAT, bot_running, draft_id_of, draft_messages, make_settings, press, reply_to,
    )

    settings = make_settings(tmp_path, server, pool={"channel_size": 3, "subscriber_size": 0, "batch_size": 4})

    async def main():
        async with bot_running(settings) as app:
            db = app.bot_data.db
            for _ in range(5):   # the tiny model's drafts are often screened out: until three wait
                if len(draft_messages(server)) >= 3:
                    break
                await app.bot_data.service.fill_pools()
            first, second, third = draft_messages(server)[:3]
            await press(server, f"d:a:{draft_id_of(first)}", user_id=MODERATOR, message=first)
            await press(server, f"d:r:{draft_id_of(second)}", user_id=MODERATOR, message=second)
            edited = draft_rows.get_draft(db, draft_id_of(third))["text"] + "\n@\nЭХ"
            await reply_to(server, MODERATORS_CHAT, edited, user_id=MODERATOR, chat_id=MODERATORS_CHAT,
                           reply_to=third)
            data = ranker.labels(db)
            assert data.draft_ids == [draft_id_of(m) for m in (first, second, third)] and data.y == [1, 0, 1]
            assert draft_rows.get_draft(db, draft_id_of(third))["edit_distance"] == 5
            text = draft_rows.get_draft(db, draft_id_of(third))["text"]
            assert data.weight == [1.0, 1.0, pytest.approx(1 - 5 / len(text))]

    asyncio.run(main())


def test_the_nightly_ranker_job_trains_in_a_worker_thread_while_the_bot_answers(db, tiny_checkpoint, caplog):
    """The nightly job fitted scikit-learn on the event loop: for the seconds the folds took, no chat
    message, button or other job was answered."""
    import asyncio
    import threading

    from jobs.generator import GeneratorHolder
    from jobs.service import Service, ServicePlan
    from tests.fakes.recording import Moderators, RecordingChannel

    simulate(db, 300, taste="lines", seed=2)
    plan = ServicePlan(ranker=ranker.RankerOptions(min_labels=100))
    service = Service(db, GeneratorHolder(tiny_checkpoint), plan=plan,
                      publishers=[RecordingChannel()], moderation=Moderators(enabled=True), stoplist=StopList([], []))

    async def night() -> tuple[int, list[str], object]:
        order: list[str] = []

        async def a_chat_message() -> None:
            order.append("answered")

        answer = asyncio.ensure_future(a_chat_message())
        fitted = await service.train_ranker()
        order.append("trained")
        await answer
        return threading.get_ident(), order, fitted

    with caplog.at_level(logging.INFO, logger="jobs.ranker"):
        loop_thread, order, fitted = asyncio.run(night())
    assert fitted is not None and ranker.stored(db) is not None and ranker.stored(db).labels == 300
    assert order == ["answered", "trained"], "a chat message waited for the ranker's training"
    trained = [r for r in caplog.records if r.name == "jobs.ranker" and "ranker trained" in r.getMessage()]
    assert trained and all(record.thread != loop_thread for record in trained)


def test_the_report_of_a_ranker_stored_with_other_features_says_the_pool_keeps_the_hand_set_score(
        tmp_path, capsys, monkeypatch):
    """After an upgrade that changed FEATURES the pool ignores the stored ranker, but `buhurt ranker
    report` said 'the pool ranks drafts with the learned ranker'."""
    from corpus.db import open_db

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[paths]\ndata_dir = 'data'\n[startup]\nuse_bundled_model = false\n")
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    simulate(db, 300, taste="lines", seed=6)
    assert ranker.train(db).used
    stored = json.loads(get_state(db, ranker.STATE_KEY))
    older = ["chars", "known_share", *stored["features"][2:]]   # an older release's order
    set_state(db, ranker.STATE_KEY, json.dumps({**stored, "features": older}))
    db.close()
    code, out, err = run_cli(capsys, "ranker", "report")
    assert code == 0, err
    assert "the pool ranks drafts with the learned ranker" not in out
    assert "the pool keeps the hand-set score (trained on other features" in out and "buhurt ranker train" in out


@pytest.mark.parametrize("n, seed", [(20, 13), (20, 28), (20, 40), (25, 48)])
def test_random_decisions_too_few_to_tell_never_replace_the_hand_set_score(tmp_path, capsys, monkeypatch, n, seed):
    """`buhurt ranker train` on a few dozen random decisions: the time-ordered check tested a handful
    of them (an AUC of 1.0 on 9 decisions has a Hanley-McNeil error of 0), and the pool ranked with
    noise. The check now needs 10 approved and 10 rejected newer decisions before it can win."""
    from corpus.db import open_db

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text("[paths]\ndata_dir = 'data'\n[startup]\nuse_bundled_model = false\n")
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    simulate(db, n, taste="random", seed=seed)
    db.close()
    code, out, err = run_cli(capsys, "ranker", "train")
    assert code == 0, err
    assert "the pool ranks drafts with the learned ranker" not in out
    assert "the pool keeps the hand-set score (too few newer decisions to tell:" in out
    assert "10 of each needed)" in out
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    assert ranker.learned_ranker(db) is None and not ranker.stored(db).used
    db.close()
