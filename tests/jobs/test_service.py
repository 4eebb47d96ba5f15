"""jobs/: the draft pool, the stop-list screen, at-most-once publishing, reminders, the schedule,
and retraining that promotes only a better model. Real SQLite, a real tiny model."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corpus.stoplist import StopList
from corpus.store import drafts, publications
from corpus.store.posts import add_posts
from model.sample_options import SampleRequest
from jobs.generator import GeneratorHolder
from jobs.model_registry import bundled_checkpoint
from jobs.pool import PoolOptions, screen, stored_request
from model.sample_options import SampleOptions
from jobs.publish import publish_next, reconcile
from jobs.scheduler import ScheduleOptions, clock_time, weekly_at
from jobs.service import Service, ServicePlan
from tests.fakes.recording import Moderators, RecordingChannel


@pytest.fixture
def holder(tiny_checkpoint):
    return GeneratorHolder(tiny_checkpoint)


def make_service(db, holder, moderation=None, publishers=None, **plan):
    plan.setdefault("max_rounds", 20)  # the tiny model's drafts are often screened out; keep trying
    return Service(db, holder, plan=ServicePlan(sample=SampleOptions(0.8, 150, 0), **plan),
                   publishers=publishers or [RecordingChannel()], moderation=moderation or Moderators(),
                   stoplist=StopList(words=["ГРЕЧКА"]))


def test_screen_rejects_stoplisted_short_and_copied_texts(db):
    stop = StopList(words=["гречка"], patterns=[r"кр[аa]н"])
    add_posts(db, [{"source": "file", "text": "А\n@\nБ\n@\nВ"}])
    assert screen(db, "ТАМ ГРЕЧКА\n@\nОПЯТЬ", stop) == "stop-list: гречка"
    assert screen(db, "БАТЯ ЧИНИТ КРAН\n@\nДОВОЛЕН", stop).startswith("stop-list")
    assert screen(db, "ОДНА СТРОКА", stop) == "too short"
    assert screen(db, "А\n@\nБ\n@\nВ", stop) == "copy of a corpus post"
    assert screen(db, "ТАМ ГРЕЧИХА\n@\nНОРМ", stop) is None  # whole words only


def test_pool_fills_to_target_and_auto_approves_without_moderators(db, holder):
    service = make_service(db, holder, pool=PoolOptions(channel_size=3, subscriber_size=4, batch_size=4))
    created = asyncio.run(service.fill_pools())
    counts = drafts.count_by_status(db)
    assert counts.get("queued", 0) == 3 and drafts.count_by_status(db, "subscriber").get("ready", 0) == 4
    for draft_id in created:
        row = drafts.get_draft(db, draft_id)
        assert len(row["text"]) <= 150 and row["model_version"] == holder.version
        if row["purpose"] == "channel":
            assert [a["action"] for a in drafts.actions_for(db, draft_id)] == ["auto_approve"]
    assert asyncio.run(service.fill_pools()) == []  # already full: nothing generated
    for row in db.query("SELECT * FROM drafts WHERE status = 'rejected_auto'"):
        assert row["status_reason"]  # every automatic rejection says why


def test_moderated_pool_sends_each_draft_to_the_moderators_once(db, holder):
    moderation = Moderators(enabled=True)
    service = make_service(db, holder, moderation, pool=PoolOptions(channel_size=2, subscriber_size=0, batch_size=2))
    asyncio.run(service.fill_pools())
    asyncio.run(service.fill_pools())
    pending = drafts.with_status(db, "pending")
    assert len(pending) == 2 and sorted(moderation.shown) == sorted(d["id"] for d in pending)
    assert all(d["moderation_message_id"] for d in pending)


def test_two_dispatches_at_once_show_a_draft_once(db):
    """The pool job and a moderator's 🔄 (replace_draft) dispatching together: the second waits for
    the first, then finds the draft shown."""
    class GatedModerators:
        enabled = True

        def __init__(self) -> None:
            self.gate, self.shown, self.entered = asyncio.Event(), [], 0

        async def submit(self, draft):
            self.entered += 1
            await self.gate.wait()          # the Bot API round trip, held open by the test
            self.shown.append(draft["id"])
            return "-100", str(len(self.shown))

    draft_id = drafts.add_draft(db, text="А\n@\nБ", model_version="v", temperature=0.8, seed=1, max_length=100,
                                status="pending")
    moderators = GatedModerators()
    service = Service(db, holder=None, plan=ServicePlan(), publishers=[], moderation=moderators,
                      stoplist=StopList())

    async def main():
        both = [asyncio.create_task(service.dispatch_moderation()) for _ in range(2)]
        while moderators.entered == 0:
            await asyncio.sleep(0)
        for _ in range(10):                  # the second dispatch runs as far as it can
            await asyncio.sleep(0)
        moderators.gate.set()
        return await asyncio.gather(*both)

    assert sorted(asyncio.run(main())) == [0, 1]
    assert moderators.shown == [draft_id] and drafts.get_draft(db, draft_id)["moderation_message_id"] == "1"


def test_a_rating_pool_fill_waits_for_the_one_under_way(db, holder, tmp_path, tiny_checkpoint):
    """Raters who ran out of drafts together, and the pool job, start one generation at a time."""
    from jobs.rating import fill_rating_pool
    from tests.helpers import with_active

    with_active(db, tmp_path, tiny_checkpoint)
    calls = []

    class Counting:
        def __getattr__(self, name):
            return getattr(holder, name)

        def generate_samples(self, *args, **kwargs):
            calls.append(1)
            return holder.generate_samples(*args, **kwargs)

    service = make_service(db, Counting(), pool=PoolOptions(batch_size=2))

    async def main():
        await service.rating_lock.acquire()              # a fill under way
        waiting = asyncio.create_task(fill_rating_pool(service, target=2))
        for _ in range(20):
            await asyncio.sleep(0)
        before = len(calls)
        service.rating_lock.release()
        return before, await waiting

    before, _ = asyncio.run(main())
    assert before == 0 and calls            # it generated only once the fill under way was done


def test_pool_drafts_are_reproducible_from_their_seed(db, holder):
    service = make_service(db, holder, pool=PoolOptions(channel_size=0, subscriber_size=3, batch_size=3))
    asyncio.run(service.fill_pools())
    ready = drafts.with_status(db, "ready", purpose="subscriber")
    assert len(ready) == 3
    for row in ready:
        assert row["decoding"] == "known/ru+quotes+grammar+ends"     # the default decoding, stored with the draft
        _, (again,) = holder.generate([row["seed"]], stored_request(row))
        assert again == row["text"]


def test_generated_posts_come_in_the_corpus_form():
    # the bundled model often closes a post with "@" or glues one to a line; none of that gets out
    _, texts = GeneratorHolder(bundled_checkpoint()).generate(list(range(1, 41)), SampleRequest.of(temperature=0.8))
    for text in texts:
        lines = text.split("\n")
        assert "@" not in (lines[0], lines[-1]) and "" not in lines, text
        assert all(line == "@" or not (line.endswith("@") or line.startswith('@"')) for line in lines), text
        assert all(not (a == b == "@") for a, b in zip(lines, lines[1:])), text


def queue_draft(db, text="ПОСТ\n@\nДЛЯ КАНАЛА"):
    draft_id = drafts.add_draft(db, text=text, model_version="v", temperature=0.8, seed=1, max_length=500,
                                status="queued")
    return draft_id


def test_publish_sends_once_to_every_channel(db):
    draft_id = queue_draft(db)
    a, b = RecordingChannel(chat_id="a"), RecordingChannel(network="vk", chat_id="-1")
    note = Moderators().notify
    assert asyncio.run(publish_next(db, [a, b], note))["status"] == "published"
    assert a.sent == b.sent == [f"ПОСТ\n@\nДЛЯ КАНАЛА\n\n#{draft_id}"]   # with the footer (publish.footer)
    assert asyncio.run(publish_next(db, [a, b], note)) is None  # queue empty


def test_refused_post_stays_queued_and_moderators_are_told(db):
    draft_id = queue_draft(db)
    channel = RecordingChannel(refuse=1)
    moderation = Moderators()
    asyncio.run(publish_next(db, [channel], moderation.notify))
    assert drafts.get_draft(db, draft_id)["status"] == "queued"
    assert "Forbidden" in moderation.notes[0]
    assert publications.publications_of(db, draft_id)[0]["status"] == "failed"
    asyncio.run(publish_next(db, [channel], moderation.notify))  # the bot is back in the channel
    assert drafts.get_draft(db, draft_id)["status"] == "published" and len(channel.sent) == 1


def test_crash_between_sending_and_recording_never_publishes_twice(db):
    draft_id = queue_draft(db)
    # the process claimed the publication and sent it, then died before recording the message id
    assert publications.begin_publication(db, draft_id, "test", "chan") is not None
    moderation, channel = Moderators(), RecordingChannel()
    assert asyncio.run(reconcile(db, moderation.notify)) == 1
    assert "проверьте канал" in moderation.notes[0]
    asyncio.run(publish_next(db, [channel], moderation.notify))
    assert channel.sent == []  # in doubt: not re-sent
    assert publications.publications_of(db, draft_id)[0]["status"] == "unknown"
    assert drafts.get_draft(db, draft_id)["status"] == "published"  # and the queue moves on


def test_reminder_when_nothing_was_approved(db, holder):
    moderation = Moderators(enabled=True)
    service = make_service(db, holder, moderation, schedule=ScheduleOptions(remind_after_hours=0.0001))
    drafts.add_draft(db, text="X\n@\nY", model_version="v", temperature=1, seed=1, max_length=500, status="pending")
    assert asyncio.run(service.remind_if_idle()) is True and moderation.reminders == [1]
    assert asyncio.run(service.remind_if_idle()) is False  # not again right away


def test_a_missed_publishing_time_survives_a_stop_before_its_catch_up_ran(db, holder):
    """The start after downtime records that publishing is accounted for up to now, and only then
    schedules the missed time's run: a stop (or a crash) before that run left the time covered and
    never published, as the next start no longer saw it missed."""
    import datetime as dt

    from corpus.store.state import set_state

    now = dt.datetime.now(dt.timezone.utc)
    slot = (now - dt.timedelta(minutes=3)).strftime("%H:%M")
    set_state(db, "publish_covered_until", (now - dt.timedelta(hours=2)).replace(microsecond=0).isoformat())

    async def start_and_stop() -> bool:
        service = make_service(db, holder, schedule=ScheduleOptions(publish_times=[slot], retrain=False))
        service.start_schedule()
        assert service.scheduler is not None
        missed = service.scheduler.get_job("publish-missed") is not None
        await service.stop(5)        # before the loop ran any job: the catch-up never ran
        return missed

    assert asyncio.run(start_and_stop())
    assert asyncio.run(start_and_stop()), "the missed time was forgotten by the next start"


async def next_run_at_start(service, job_id: str, run=None):
    """When the started schedule first runs `job_id` (its catch-up: at once; else its next time);
    `run`, when given, is the job run here, once, before the service stops."""
    service.start_schedule()
    assert service.scheduler is not None
    service.scheduler.pause()   # the job runs here, once, not also on the scheduler
    when = service.scheduler.get_job(job_id).next_run_time
    if run is not None:
        await run()
    await service.stop(5)
    return when


def test_a_nightly_backup_missed_while_the_bot_was_down_is_written_at_the_next_start(db, holder, tmp_path):
    """A restart (a deploy, a crash, a reboot) across backup.at left that day without a backup: the
    job was scheduled for the next backup.at only. The first start has nothing to catch up; a start
    after the day's backup was written does not write it again."""
    import datetime as dt

    from corpus.store.state import set_state

    now = dt.datetime.now(dt.timezone.utc)
    at = (now - dt.timedelta(minutes=3)).strftime("%H:%M")
    written = []

    def backuper() -> Path:
        written.append(tmp_path / f"copy{len(written)}.sqlite3")
        return written[-1]

    async def start(run_it: bool) -> dt.datetime:
        service = make_service(db, holder, schedule=ScheduleOptions(publish_times=[], retrain=False), backup_at=at)
        service.backuper = backuper
        return await next_run_at_start(service, "backup-0", service.backup if run_it else None)

    assert asyncio.run(start(False)) > now + dt.timedelta(hours=12), "the first start wrote a backup"
    set_state(db, "backup_covered_until", (now - dt.timedelta(hours=2)).replace(microsecond=0).isoformat())
    assert asyncio.run(start(False)) <= dt.datetime.now(dt.timezone.utc), "the missed backup waited for tomorrow"
    assert asyncio.run(start(True)) <= dt.datetime.now(dt.timezone.utc), "a stop before it ran forgot it"
    assert asyncio.run(start(False)) > now + dt.timedelta(hours=12), "the day's written backup was written again"
    assert len(written) == 1


def test_a_weekly_best_of_missed_while_the_bot_was_down_is_posted_at_the_next_start(db, holder):
    """A restart across schedule.digest (a deploy on Sunday evening) left the channels without that
    week's best-of: the job was scheduled for the next week only. A week's digest that ran is not
    posted again by a later start, and one missed more than the publishing grace ago is let go."""
    import datetime as dt

    from corpus.store.state import set_state
    from jobs.scheduler import MISFIRE_GRACE_SECONDS, WEEKDAYS

    now = dt.datetime.now(dt.timezone.utc)
    slot = now - dt.timedelta(minutes=3)
    when = f"{WEEKDAYS[slot.weekday()]} {slot:%H:%M}"

    async def start(run_it: bool) -> dt.datetime:
        service = make_service(db, holder, schedule=ScheduleOptions(publish_times=[], retrain=False, digest=when))
        return await next_run_at_start(service, "digest", service.digest if run_it else None)

    assert asyncio.run(start(False)) > now + dt.timedelta(days=6), "the first start posted a best-of"
    set_state(db, "digest_covered_until", (now - dt.timedelta(hours=2)).replace(microsecond=0).isoformat())
    assert asyncio.run(start(True)) <= dt.datetime.now(dt.timezone.utc), "the missed best-of waited a week"
    assert asyncio.run(start(False)) > now + dt.timedelta(days=6), "the week's best-of was posted again"
    long_ago = now - dt.timedelta(seconds=MISFIRE_GRACE_SECONDS + 3600)
    set_state(db, "digest_covered_until", (long_ago - dt.timedelta(days=1)).replace(microsecond=0).isoformat())
    late = f"{WEEKDAYS[long_ago.weekday()]} {long_ago:%H:%M}"

    async def start_late() -> dt.datetime:
        service = make_service(db, holder, schedule=ScheduleOptions(publish_times=[], retrain=False, digest=late))
        service.start_schedule()
        assert service.scheduler is not None
        next_run = service.scheduler.get_job("digest").next_run_time
        service.stop_schedule()
        return next_run

    assert asyncio.run(start_late()) > now + dt.timedelta(days=5), "a best-of days late was posted"


def test_a_start_inside_the_night_window_runs_the_nights_retrain_it_missed(db, holder):
    """The retrain was scheduled for the next retrain_at only: a restart during the night (a deploy,
    a crash, a stop that interrupted the night's run) left the night without training. A night whose
    retrain ended is not run again by a later start; one that a stop interrupted is."""
    import datetime as dt

    from jobs.retrain import RetrainResult

    now = dt.datetime.now(dt.timezone.utc)
    window = ScheduleOptions(retrain_at=(now - dt.timedelta(minutes=30)).strftime("%H:%M"),
                             retrain_until=(now + dt.timedelta(hours=3)).strftime("%H:%M"), publish_times=[])
    service = make_service(db, holder, schedule=window)
    calls = []

    def retrainer(stop):
        calls.append(stop)
        if len(calls) == 1:   # the service stops during the night's run
            stop.set()
            raise RuntimeError("training stopped early: the service is stopping")
        return RetrainResult(False, "kept the active model")

    service.retrainer = retrainer

    async def start() -> dt.datetime:
        service.stopping.clear()
        service.start_schedule()
        assert service.scheduler is not None
        service.scheduler.pause()   # the job runs here, once, not also on the scheduler
        when = service.scheduler.get_job("retrain-0").next_run_time
        await service.retrain()
        await service.stop(5)
        return when

    assert asyncio.run(start()) <= dt.datetime.now(dt.timezone.utc), "the night's retrain was not run at start"
    assert asyncio.run(start()) <= dt.datetime.now(dt.timezone.utc), "a night a stop interrupted was given up"
    assert asyncio.run(start()) > now + dt.timedelta(hours=12), "the night's finished retrain ran again"
    assert len(calls) == 3


def test_the_nights_retrain_while_the_first_model_trains_is_no_failure(db, holder, tmp_path, caplog):
    """The first model on the corpus (startup.use_bundled_model = false) still training at
    retrain_at (a deploy at night): the night's retrain met its lock and the moderators were told
    the nightly training failed, naming 'another retrain' with the service's own pid, and the log
    had its traceback. It is the night's training: the retrain is skipped with one line."""
    import logging
    import threading

    from jobs import notices
    from jobs.first_run import FirstTraining
    from jobs.retrain import one_training, retrain
    from tests.helpers import plan_for

    plan = plan_for(tmp_path)
    training, done = threading.Event(), threading.Event()

    def first(stop):
        with one_training(plan):
            training.set()
            done.wait(30)
        return holder.version

    service = make_service(db, holder, moderation=Moderators(enabled=True))
    service.first_training = FirstTraining(first, minutes=10)
    service.retrainer = lambda stop: retrain(db, plan, stop=stop)

    async def night():
        await service.startup()
        await asyncio.to_thread(training.wait, 30)
        try:
            return await service.retrain()
        finally:
            done.set()
            await service.first_model_trained()

    with caplog.at_level(logging.INFO):
        assert asyncio.run(night()) is None
    assert not [n for n in service.moderation.notes if n.startswith(notices.ALERT_RETRAIN_FAILED.split(":")[0])]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "the first model is training" in caplog.text


def test_schedule_registers_every_job_with_shared_defaults(db, holder):
    service = make_service(db, holder, schedule=ScheduleOptions(publish_times=["09:00", "21:30"], retrain_at="03:30"))
    service.retrainer = lambda stop: None

    async def start():
        service.start_schedule()
        jobs = service.scheduler.get_jobs()
        service.stop_schedule()
        return jobs

    jobs = asyncio.run(start())
    names = sorted(job.name for job in jobs)
    assert names == ["pool", "publish", "publish", "remind", "retrain"]
    assert all(job.coalesce and job.max_instances == 1 and job.misfire_grace_time >= 3600 for job in jobs)


def test_retrain_promotes_only_a_better_model(db, tmp_path, tiny_checkpoint):
    from dataclasses import replace

    from corpus.store import model_versions as model_rows
    from jobs.model_registry import active_checkpoint_path, install_checkpoint
    from jobs.retrain import RetrainPlan, retrain, train_in_child
    from model.train_config import TrainConfig
    from tests.helpers import varied_posts

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(120)])
    version = install_checkpoint(db, tiny_checkpoint, tmp_path / "models", val_bpc=None)
    model_rows.promote(db, version)

    def run_training(cfg):
        train_in_child(replace(cfg, wordvec_size=8, rnn_size=8, num_layers=1, batch_size=4, seq_length=16,
                               max_iterations=3, checkpoint_every=1, progress=False))

    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models",
                       training=TrainConfig.torch_rnn_preset(progress=False))
    result = retrain(db, plan, run_training=run_training, from_scratch=True)  # 3 iterations of an 8-unit model: worse
    assert not result.promoted and result.candidate_bpc > result.active_bpc
    assert active_checkpoint_path(db) == tmp_path / "models" / f"{version}.pt"
    assert model_rows.get_model(db, result.candidate_version)["status"] == "rejected"
    assert not (tmp_path / "models" / f"{result.candidate_version}.pt").exists()  # not installed

    def run_better(cfg):  # a warm start: the active model fine-tuned further
        assert cfg.init_from == str(tmp_path / "models" / f"{version}.pt")
        train_in_child(replace(cfg, wordvec_size=16, rnn_size=48, num_layers=1, batch_size=16, seq_length=32,
                               max_iterations=150, checkpoint_every=50, learning_rate=0.005, progress=False))

    better = retrain(db, plan, run_training=run_better)
    assert better.promoted and better.candidate_bpc < better.active_bpc
    assert model_rows.active_model(db)["version"] == better.candidate_version
    assert model_rows.get_model(db, version)["status"] == "retired"


def test_a_send_in_doubt_is_never_retried_and_the_queue_moves_on(db):
    from jobs import notices

    class Flaky(RecordingChannel):
        async def send(self, text):
            if not self.sent and not getattr(self, "failed", False):
                self.failed = True
                raise TimeoutError("no answer from the server")
            return await super().send(text)

    first, second = queue_draft(db, "ПЕРВЫЙ\n@\nПОСТ"), queue_draft(db, "ВТОРОЙ\n@\nПОСТ")
    channel, moderation = Flaky(), Moderators()
    asyncio.run(publish_next(db, [channel], moderation.notify))
    asyncio.run(publish_next(db, [channel], moderation.notify))
    assert publications.publications_of(db, first)[0]["status"] == "unknown"
    assert channel.sent == [f"ВТОРОЙ\n@\nПОСТ\n\n#{second}"]
    assert drafts.get_draft(db, first)["status"] == drafts.get_draft(db, second)["status"] == "published"
    assert notices.REASON_NO_ANSWER in moderation.notes[0] and "TimeoutError" not in moderation.notes[0]


def test_retrain_keeps_only_the_newest_run_folders(db, tmp_path, tiny_checkpoint):
    import torch

    from corpus.store import model_versions as model_rows
    from jobs.model_registry import install_checkpoint
    from jobs.retrain import RetrainPlan, retrain
    from model.checkpoint import save_checkpoint
    from tests.helpers import varied_posts

    add_posts(db, [{"source": "file", "text": p} for p in varied_posts(60)])
    version = install_checkpoint(db, tiny_checkpoint, tmp_path / "models", val_bpc=None)
    model_rows.promote(db, version)
    ck = torch.load(tiny_checkpoint, weights_only=True)
    runs = []

    def run_training(cfg):   # the active model again, as a new file: never better, so rejected
        run_dir = Path(cfg.checkpoint_dir)
        runs.append(run_dir)
        save_checkpoint(run_dir / "best.pt", {**ck, "created_at": f"run {len(runs)}"})
        (run_dir / "latest.pt").write_bytes(b"optimizer state")

    plan = RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models", keep_runs=2)
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "notes.txt").write_text("the operator's file")
    results = [retrain(db, plan, run_training=run_training) for _ in range(4)]

    assert len(set(runs)) == 4 and not any(r.promoted for r in results)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted([runs[2].name, runs[3].name, "notes.txt"])
    statuses = [model_rows.get_model(db, r.candidate_version)["status"] for r in results]
    assert statuses == ["pruned", "pruned", "rejected", "rejected"]
    assert model_rows.active_model(db)["version"] == version   # the service's model is untouched
    assert (tmp_path / "models" / f"{version}.pt").is_file()

    plan_all = RetrainPlan(**{**plan.__dict__, "keep_runs": 0})
    retrain(db, plan_all, run_training=run_training)
    assert len(list((tmp_path / "ck").glob("run-*"))) == 3


def test_holder_gives_tidied_samples_with_their_measures(holder):
    version, samples = holder.generate_samples([1, 2, 3], SampleRequest.of(temperature=0.8, max_length=150))
    assert version == holder.version
    assert [s.text for s in samples] == holder.generate([1, 2, 3], SampleRequest.of(temperature=0.8, max_length=150))[1]
    assert all(isinstance(s.reached_gap, bool) and s.logprob_nats_per_char < 0 for s in samples)


def test_meme_regenerates_old_unconstrained_drafts_and_new_known_word_ones(db, holder, tiny_checkpoint, caplog):
    from corpus.store import model_versions as model_rows
    from jobs.drafting import Drafting

    regenerate = Drafting(db, holder, StopList()).regenerate

    model_rows.register_model(db, holder.version, str(tiny_checkpoint), val_bpc=None, status="active")
    seed = 7
    _, (raw,) = holder.generate([seed], SampleRequest.of(temperature=1.2, max_length=150, words="any"))
    _, (known,) = holder.generate([seed], SampleRequest.of(temperature=1.2, max_length=150, words="known",
                                                           dictionary="ru"))
    assert raw != known       # the tiny model's soup: known-word decoding took a word back
    old = drafts.add_draft(db, text=raw, model_version=holder.version, temperature=1.2, seed=seed,
                           max_length=150, purpose="subscriber", status="served")      # words NULL: made before
    new = drafts.add_draft(db, text=known, model_version=holder.version, temperature=1.2, seed=seed,
                           max_length=150, purpose="subscriber", status="served", measures={"decoding": "known/ru"})
    assert asyncio.run(regenerate(drafts.get_draft(db, old))) == (raw, True)
    assert asyncio.run(regenerate(drafts.get_draft(db, new))) == (known, True)
    assert "regenerated differently" not in caplog.text      # both made again, not the stored text shown
    wrong = drafts.add_draft(db, text=raw, model_version=holder.version, temperature=1.2, seed=seed,
                             max_length=150, purpose="subscriber", status="served", measures={"decoding": "known/ru"})
    asyncio.run(regenerate(drafts.get_draft(db, wrong)))
    assert "regenerated differently" in caplog.text          # the check above can fail


@pytest.mark.parametrize("text, want", [("09:00", (9, 0)), ("7:05", (7, 5)), ("23:59", (23, 59)), ("00:00", (0, 0))])
def test_clock_time_reads_hh_mm(text, want):
    assert clock_time(text) == want


@pytest.mark.parametrize("text", ["24:00", "12:60", "9", "09:", ":30", "-1:00", "9h30", ""])
def test_clock_time_refuses_what_is_not_a_time_and_every_setting_says_so(text):
    with pytest.raises(ValueError, match="HH:MM"):
        clock_time(text)
    assert "publish_times" in ScheduleOptions(publish_times=[text]).problems()
    assert weekly_at(f"sun {text}") is None
