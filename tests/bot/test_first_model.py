"""The first model on the operator's corpus trains in the background (a child process; a worker
thread waits on it): the bot answers Telegram meanwhile, says that the bundled model writes the
drafts until then, and switches to the new model when it is done. Real PTB client against the fake
Bot API, real SQLite, a real (tiny) training run."""
from __future__ import annotations

import asyncio
import logging
import threading

from bot import texts
from corpus.db import open_db
from corpus.importer import import_text_file
from corpus.store import model_versions as model_rows
from jobs.model_registry import bundled_checkpoint
from model.files import file_version
from tests.fakes.telegram_app import reply_to, until, write_config

USER = 5001
TINY = {"rnn_size": 16, "wordvec_size": 8, "num_layers": 1}


def first_run_settings(tmp_path, server, tiny_corpus_file, **train):
    from bot.config import load_settings

    settings = load_settings(write_config(tmp_path, server, model=TINY, startup={"use_bundled_model": False}, train={
        "batch_size": 4, "seq_length": 16, "checkpoint_every": 2, "threads": 1, **train}), environ={})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_db(settings.database)
    try:
        import_text_file(db, tiny_corpus_file, community="ours")
    finally:
        db.close()
    return settings


def test_start_is_answered_while_the_first_model_trains(tmp_path, server, tiny_corpus_file, caplog):
    from bot.telegram.runner import build_application, running

    settings = first_run_settings(tmp_path, server, tiny_corpus_file, max_iterations=4)
    caplog.set_level(logging.INFO)
    application = build_application(settings)   # returns at once: no training yet
    service = application.bot_data.service
    bundled = file_version(bundled_checkpoint())
    assert service.holder.version == bundled and service.first_training is not None
    gate, started = threading.Event(), threading.Event()
    train = service.first_training.train

    def gated(stop):   # the real training, held until /start was answered
        started.set()
        gate.wait(120)
        return train(stop)

    service.first_training.train = gated

    async def main():
        async with running(application, schedule=False, poll_timeout=1):
            await until(started.is_set)
            answer = await reply_to(server, USER, "/start", user_id=USER)
            assert answer["text"] == texts.START + "\n\n" + texts.FIRST_MODEL_TRAINING
            assert service.training_first_model and service.holder.version == bundled
            gate.set()
            version = await service.first_model_trained()
            assert version and service.holder.version == version != bundled
            assert model_rows.active_model(service.db)["version"] == version
            again = await reply_to(server, USER, "/start", user_id=USER)
            assert again["text"] == texts.START

    asyncio.run(main())
    assert "drafts come from the bundled model" in caplog.text
    assert "is trained and active: drafts come from it now" in caplog.text


def test_stopping_the_service_stops_the_first_training(tmp_path, server, tiny_corpus_file, caplog):
    from bot.telegram.runner import build_application, running

    settings = first_run_settings(tmp_path, server, tiny_corpus_file, max_iterations=10**7, max_minutes=30.0)
    caplog.set_level(logging.INFO)
    application = build_application(settings)
    service = application.bot_data.service

    async def main():
        async with running(application, schedule=False, poll_timeout=1):
            await until(lambda: service.training_first_model)
            await until(lambda: list((settings.data_dir / "checkpoints").glob("run-*/run.json")))   # the child runs

    asyncio.run(main())   # the stop waits for the training at most the shutdown grace, then goes on
    assert not service.training_first_model   # it ended within the grace: the child was stopped
    assert "the first model's training stopped with the service" in caplog.text
    db = open_db(settings.database)
    try:
        assert model_rows.active_model(db) is None   # it trains again at the next start
    finally:
        db.close()


def test_a_stop_once_the_first_model_trained_ends_before_its_drafts_are_judged(tmp_path, server, tiny_corpus_file,
                                                                               caplog):
    """The first model's drafts and the bundled model's (retrain.readability_drafts each) were judged
    whatever a stop said: a SIGTERM just after its training kept the service past the grace time, and
    the model it went down with was made active. Now nothing is registered; it trains at the next start."""
    import pytest

    from bot.telegram.runner import build_application
    from jobs.errors import JobError

    settings = first_run_settings(tmp_path, server, tiny_corpus_file, max_iterations=4)
    application = build_application(settings)
    first = application.bot_data.service.first_training
    assert first is not None and settings.retrain.readability_drafts > 0

    class SigtermWhenTrained(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("retrain: training finished"):
                first.stop.set()

    sigterm = SigtermWhenTrained()
    logging.getLogger("jobs.retrain").addHandler(sigterm)
    caplog.set_level(logging.INFO)
    try:
        with pytest.raises(JobError, match="the service is stopping"):
            first.run()
    finally:
        logging.getLogger("jobs.retrain").removeHandler(sigterm)
        application.bot_data.service.db.close()
    assert first.stop.is_set() and "trained and activated" not in caplog.text and "kept out" not in caplog.text
    db = open_db(settings.database)
    try:
        bundled = file_version(bundled_checkpoint())   # installed at start; the first model joined it not
        assert model_rows.active_model(db) is None and [r["version"] for r in db["model_versions"].rows] == [bundled]
    finally:
        db.close()


def test_a_model_the_operator_activates_while_the_first_model_trains_stays_active(tmp_path, server, tiny_corpus_file,
                                                                                 tiny_checkpoint, caplog):
    """docs/deployment.md step 8 while the first model trains (train.max_minutes, else 10 minutes):
    `buhurt models install best.pt --activate` of a model from the GPU box. The first model, done
    later, was made active over it. Now the operator's model stays active and writes; the first
    model is installed beside it as a candidate (`buhurt models activate` it to switch)."""
    from bot.telegram.runner import build_application, running
    from tests.helpers import buhurt

    settings = first_run_settings(tmp_path, server, tiny_corpus_file, max_iterations=4)
    caplog.set_level(logging.INFO)
    application = build_application(settings)
    service = application.bot_data.service
    train = service.first_training.train
    gate, started = threading.Event(), threading.Event()

    def gated(stop):   # the real training, held until the operator installed the model
        started.set()
        gate.wait(120)
        return train(stop)

    service.first_training.train = gated
    theirs = file_version(tiny_checkpoint)

    async def main():
        async with running(application, schedule=False, poll_timeout=1):
            await until(started.is_set)
            installed = await asyncio.to_thread(buhurt, "--config", str(tmp_path / "config.toml"), "models",
                                                "install", str(tiny_checkpoint), "--activate", "--no-tune")
            assert installed.returncode == 0 and f"installed model {theirs} (active)" in installed.stdout, \
                installed.stderr[-3000:]
            gate.set()
            first = await service.first_model_trained()
            assert first and first != theirs
            assert model_rows.active_model(service.db)["version"] == theirs
            assert model_rows.get_model(service.db, first)["status"] == "candidate"
            await until(lambda: service.holder.version == theirs)

    asyncio.run(main())
    assert "is trained and active" not in caplog.text
    assert f"model {theirs} was made active while it trained" in caplog.text
