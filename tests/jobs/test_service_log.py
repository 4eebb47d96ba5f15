"""The running service says what it does: one INFO line per event an operator cares about (a pool
run, a draft shown to the moderators, a decision, a publication, a reaction sweep, a scrape, a
retrain's phases), through a real cycle against the fake Bot API and the fake VK API; no secret
in any of them."""
from __future__ import annotations

import asyncio
import logging
import re

import requests

from tests.fakes.fake_vk import WALL_TOKEN, FakeVk, FakeWall
from tests.fakes.telegram_app import (
    CHANNEL, MODERATOR, bot_running, draft_id_of, draft_messages, make_settings, press, until,
)


def info_lines(caplog) -> list[str]:
    """The INFO lines of the service's own loggers (httpx's request lines are silenced by bot/secrets.py)."""
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.INFO and r.name.startswith(("jobs.", "bot."))]


def test_a_cycle_logs_each_event_once_without_secrets(tmp_path, server, monkeypatch, caplog):
    wall = FakeWall(42, "bugurt_test")
    wall.generate(30)
    fake = FakeVk(wall)
    monkeypatch.setattr(requests, "Session", fake.session)
    settings = make_settings(tmp_path, server, vk={"token": WALL_TOKEN, "groups": ["bugurt_test"],
                                                   "publish_group_id": 42, "requests_per_second": 1000.0})
    caplog.set_level(logging.INFO)
    chosen = []

    async def main():
        async with bot_running(settings) as app:
            service = app.bot_data.service
            await service.fill_pools()
            first = draft_messages(server)[0]
            draft = draft_id_of(first)
            chosen.append(draft)
            await press(server, f"d:a:{draft}", user_id=MODERATOR, message=first)
            await until(lambda: any("approved by" in line for line in info_lines(caplog)))
            published = await service.publish()
            assert published["id"] == draft
            await service.collect()
            await service.scrape()

    asyncio.run(main())
    (draft,) = chosen
    lines = info_lines(caplog)
    text = "\n".join(lines)
    pool = [line for line in lines if line.startswith("pool run (channel): ")]
    assert len(pool) == 1, text
    made, passed, kept, outranked = map(int, re.match(
        r"pool run \(channel\): made (\d+), passed (\d+), kept (\d+), outranked (\d+)", pool[0]).groups())
    assert kept == 2 and passed == kept + outranked and made >= passed
    rejected = re.search(r"; rejected (\d+): (.*)$", pool[0])
    assert made - passed == (int(rejected.group(1)) if rejected else 0)
    if rejected:   # by reason, each reason's count, no stop-listed word or post number spelled out
        counts = [int(part.rsplit(" ", 1)[1]) for part in rejected.group(2).split(", ")]
        assert sum(counts) == made - passed
    assert any(line.startswith("pool run (subscriber): made ") for line in lines), text
    assert sum("sent to the moderators (message" in line for line in lines) == 2, text
    assert f"draft {draft} approved by @user{MODERATOR} ({MODERATOR})" in text
    assert re.search(rf"published meme #{draft} to telegram {CHANNEL} as message \d+", text), text
    assert re.search(rf"published meme #{draft} to vk -42 as message \d+", text), text
    assert "reactions from vk: 1 of 1 recent posts updated" in text
    assert f"VK scrape: {len(wall.posts)} new posts from 1 walls" in text   # with the one just published
    for secret in (server.token, WALL_TOKEN):
        assert secret not in text


def test_a_retrain_logs_its_phases_and_both_figures(db, tmp_path, tiny_checkpoint, caplog):
    from dataclasses import replace

    from corpus.store import model_versions as model_rows
    from corpus.store.posts import add_posts
    from jobs.model_registry import install_checkpoint
    from jobs.retrain import RetrainPlan, retrain, train_in_child
    from model.train_config import TrainConfig
    from tests.helpers import varied_posts

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    model_rows.promote(db, install_checkpoint(db, tiny_checkpoint, tmp_path / "models", val_bpc=None))

    def run_training(cfg):
        train_in_child(replace(cfg, wordvec_size=8, rnn_size=8, num_layers=1, batch_size=4, seq_length=16,
                               max_iterations=3, checkpoint_every=1, progress=False))

    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models", readability_drafts=2,
                       training=TrainConfig.torch_rnn_preset(progress=False))
    caplog.set_level(logging.INFO)
    retrain(db, plan, run_training=run_training, from_scratch=True, minutes=1)
    text = "\n".join(info_lines(caplog))
    order = ["retrain: exported", "retrain: training from scratch for at most 1 minutes",
             "retrain: training finished", "retrain: scoring", "retrain kept the active model: candidate"]
    at = [text.find(needle) for needle in order]
    assert -1 not in at and at == sorted(at), text
    assert re.search(r"candidate \w+ [0-9.]+ bits/char, [0-9.]+% of drafts pass the screen; active \w+ [0-9.]+"
                     r" bits/char", text), text


