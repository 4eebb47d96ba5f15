"""`buhurt tune`: the temperature chosen through the product's decoding and screen, stored with the
model version, used by sample.temperature = "auto"."""
from __future__ import annotations

import json

from corpus.cleaning import clean_corpus
from corpus.rules import CleanOptions
from corpus.stoplist import StopList
from corpus.store import model_versions as model_rows
from corpus.store.posts import add_posts
from jobs.generator import GeneratorHolder
from jobs.pool import PoolOptions
from model.sample_options import DEFAULT_TEMPERATURE, SampleOptions, resolved_temperature
from jobs.tune import FALLBACK_TEMPERATURE, resolve_options, store_tuned, tune, tuned_temperature, word_pairs
from tests.helpers import run_cli, varied_posts


def _corpus(db):
    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    clean_corpus(db, CleanOptions(), StopList())


def test_word_pairs_are_adjacent_words_of_a_line():
    assert word_pairs("ТЫ ИДЁШЬ В ШКОЛУ\n@\nТАМ") == {("ты", "идешь"), ("идешь", "в"), ("в", "школу")}


def test_tune_rejects_soup_and_repetition(db, tiny_checkpoint):
    """The tiny model learned its corpus: near 0 every seed writes the same greedy post (few
    distinct pairs), at 6 it writes soup (invented words, posts cut at the cap: screened out)."""
    _corpus(db)
    holder = GeneratorHolder(tiny_checkpoint)
    options = SampleOptions("auto", 200, 0, "known", "none")
    result = tune(db, holder, StopList(), options=options, k=16, temperatures=(0.05, 0.8, 6.0))
    by_t = {r.temperature: r for r in result.rows}
    assert result.temperature == 0.8
    # soup fails the screen, and what passes is word salad: pairs the corpus never used
    assert by_t[6.0].pass_share < by_t[0.8].pass_share and by_t[6.0].score < by_t[0.8].score / 2
    assert by_t[0.05].corpus_pairs < by_t[0.8].corpus_pairs   # copies of one post add nothing
    assert by_t[0.8].score > 0 and "<- best" in "\n".join(result.lines())
    # stored with the version; "auto" then means that temperature
    model_rows.register_model(db, holder.version, str(tiny_checkpoint), val_bpc=None, status="active")
    assert tuned_temperature(db, holder.version) is None
    assert resolve_options(db, holder.version, options).temperature == FALLBACK_TEMPERATURE
    store_tuned(db, holder.version, result)
    assert tuned_temperature(db, holder.version) == 0.8
    assert resolve_options(db, holder.version, options).temperature == 0.8
    assert resolve_options(db, holder.version, SampleOptions(1.1)).temperature == 1.1   # a number pins it
    stored = json.loads(model_rows.get_model(db, holder.version)["metrics_json"])["tuned"]
    assert stored["k"] == 16 and len(stored["rows"]) == 3 and stored["decoding"] == "known/none+quotes"


def test_tune_cli_prints_the_table_and_stores_it(tmp_path, capsys, monkeypatch, tiny_checkpoint):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text('[paths]\ndata_dir = "d"\n[corpus]\nseed_with_sample = false\n'
                                          '[sample]\ndictionary = "none"\n', encoding="utf-8")
    (tmp_path / "posts.txt").write_text("\n\n".join(varied_posts(120)) + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "corpus", "import", "posts.txt")
    assert code == 0, err
    code, out, err = run_cli(capsys, "models", "install", str(tiny_checkpoint), "--activate", "--tune-posts", "2")
    assert code == 0 and "stored with model" in out, err          # installing tunes it
    code, out, err = run_cli(capsys, "tune", "--posts", "8", "--temperatures", "0.05,0.8,6")
    assert code == 0, err
    assert "temperature: 0.8" in out and "stored with model" in out
    code, out, err = run_cli(capsys, "tune", "--temperatures", "hot")
    assert code == 2 and "--temperatures" in err


def test_a_promoted_model_is_tuned_and_auto_uses_it(db, tiny_checkpoint):
    import asyncio
    from types import SimpleNamespace

    from jobs.service import Service, ServicePlan
    from tests.fakes.recording import Moderators, RecordingChannel

    _corpus(db)
    holder = GeneratorHolder(tiny_checkpoint)
    model_rows.register_model(db, holder.version, str(tiny_checkpoint), val_bpc=None, status="active")
    plan = ServicePlan(sample=SampleOptions("auto", 150, 0, "known", "none"), tune_posts=2,
                       pool=PoolOptions(channel_size=0, subscriber_size=0))
    service = Service(db, holder, plan=plan, publishers=[RecordingChannel()], moderation=Moderators(),
                      stoplist=StopList())
    assert service.drafting.options().temperature == FALLBACK_TEMPERATURE
    service.retrainer = lambda stop: SimpleNamespace(promoted=True, checkpoint=tiny_checkpoint)
    asyncio.run(service.retrain())
    tuned = tuned_temperature(db, holder.version)
    assert tuned is not None and service.drafting.options().temperature == tuned


def test_auto_is_resolved_one_way_everywhere():
    assert resolved_temperature("auto", 1.1) == 1.1                  # the model's tuned temperature
    assert resolved_temperature("auto") == DEFAULT_TEMPERATURE == FALLBACK_TEMPERATURE   # not tuned yet
    assert resolved_temperature(0.7, 1.1) == 0.7 and resolved_temperature(1) == 1.0   # a number pins it


def test_the_first_model_trained_on_the_corpus_is_tuned_too(db, tmp_path, tiny_checkpoint):
    """The first model replaces the bundled one while the service runs (Service.start_first_training):
    like a retrain's promotion it is tuned, else sample.temperature = "auto" wrote at the fallback
    temperature until the first night promoted another model."""
    import asyncio

    from corpus.db import open_db
    from jobs.first_run import FirstTraining
    from jobs.model_registry import install_checkpoint
    from jobs.service import Service, ServicePlan
    from tests.fakes.recording import Moderators, RecordingChannel
    from tests.tiny_model import variant

    _corpus(db)
    bundled = GeneratorHolder(tiny_checkpoint)

    def train(stop):   # what jobs.retrain.bootstrap ends with: the trained model installed and active
        own = open_db(tmp_path / "test.sqlite3")   # a worker thread's own connection, as bot.app's
        try:
            version = install_checkpoint(own, variant(tiny_checkpoint, tmp_path / "first.pt", "first"),
                                         tmp_path / "models", val_bpc=None, metrics={"origin": "bootstrap"})
            model_rows.promote(own, version)
        finally:
            own.close()
        return version

    plan = ServicePlan(sample=SampleOptions("auto", 150, 0, "known", "none"), tune_posts=2,
                       pool=PoolOptions(channel_size=0, subscriber_size=0))
    service = Service(db, bundled, plan=plan, publishers=[RecordingChannel()], moderation=Moderators(),
                      stoplist=StopList(), first_training=FirstTraining(train, minutes=1))

    async def main():
        await service.startup()
        return await service.first_model_trained()

    first = asyncio.run(main())
    assert service.holder.version == first
    tuned = tuned_temperature(db, first)
    assert tuned is not None and service.drafting.options().temperature == tuned


def test_a_tune_during_which_another_model_was_loaded_stores_nothing(db, tmp_path, tiny_checkpoint, monkeypatch):
    """The grid sampled partly from each model measures neither: it was stored under the version
    loaded at the end (`buhurt models activate` while a promotion's tune ran)."""
    import asyncio

    import jobs.drafting
    from jobs.service import Service, ServicePlan
    from tests.fakes.recording import Moderators, RecordingChannel
    from tests.tiny_model import variant

    from jobs.model_registry import install_checkpoint
    from tests.helpers import with_active

    _corpus(db)
    first = with_active(db, tmp_path, tiny_checkpoint)
    other = variant(tiny_checkpoint, tmp_path / "other.pt", "other")
    install_checkpoint(db, other, tmp_path / "models", val_bpc=None)
    holder = GeneratorHolder(tiny_checkpoint)
    assert holder.version == first
    real_grid = jobs.drafting.sample_grid

    def grid_then_switch(*args, **kwargs):
        grid = real_grid(*args, **kwargs)
        holder.reload(other)
        return grid

    monkeypatch.setattr(jobs.drafting, "sample_grid", grid_then_switch)
    plan = ServicePlan(sample=SampleOptions("auto", 150, 0, "known", "none"), tune_posts=2,
                       pool=PoolOptions(channel_size=0, subscriber_size=0))
    service = Service(db, holder, plan=plan, publishers=[RecordingChannel()], moderation=Moderators(),
                      stoplist=StopList())
    assert asyncio.run(service.tune()) is None
    assert holder.version != first
    assert tuned_temperature(db, first) is None and tuned_temperature(db, holder.version) is None
