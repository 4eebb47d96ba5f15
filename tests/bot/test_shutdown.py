"""SIGTERM and SIGINT end `buhurt run` cleanly (issue 14, operator basics): the local service lets
its running jobs finish and exits 0; `run --once` finishes its cycle and exits 0. Real processes,
waiting on what they write (the heartbeat, their log lines), never on a fixed delay."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corpus.db import open_db
from corpus.store import drafts as draft_rows
from tests.helpers import PATIENCE, ROOT
from tests.fakes.telegram_app import install_model


def config_for(tmp_path: Path, **pool) -> Path:
    from bot.config import load_settings

    config = tmp_path / "config.toml"
    sizes = {"channel_size": 2, "subscriber_size": 3, "batch_size": 4, **pool}
    config.write_text(
        f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[corpus]\nseed_with_sample = false\n[sample]\nmax_length = 120\n"
        f"[schedule]\nretrain = false\n[pool]\n" + "".join(f"{k} = {v}\n" for k, v in sizes.items()),
        encoding="utf-8")
    settings = load_settings(config, environ={})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_model(settings)
    return config


class Service:
    """`buhurt ARGS` as a child process whose stderr is collected line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for var in ("BUHURT_TELEGRAM_TOKEN", "BUHURT_VK_TOKEN", "BUHURT_CONFIG"):
            env.pop(var, None)
        self.process = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def wait_line(self, needle: str, timeout: float = PATIENCE) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(needle in line for line in self.lines):
                if "<eof>" in self.lines or time.monotonic() > deadline:
                    raise AssertionError(f"no {needle!r} in:\n{''.join(self.lines)[-3000:]}")
                self._cond.wait(0.1)

    def finish(self, timeout: float = PATIENCE) -> tuple[int, str]:
        code = self.process.wait(timeout)
        self.wait_line("<eof>")
        return code, "".join(self.lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_local_service_stops_cleanly_after_its_running_jobs(tmp_path, sig):
    config = config_for(tmp_path, subscriber_size=12)
    service = Service("--config", str(config), "run")
    service.wait_line("scheduled pool")  # the pool job starts at once: it is in flight now
    service.process.send_signal(sig)
    code, err = service.finish()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "stopping: no new jobs" in err
    assert err.rstrip().endswith("stopped\n<eof>".rstrip())
    db = open_db(tmp_path / "data" / "buhurt.sqlite3")
    counts = draft_rows.count_by_status(db, draft_rows.SUBSCRIBER)
    db.close()
    assert sum(counts.values()) >= 12, counts  # the pool run in flight was finished, not cut
    assert "CancelledError" not in err and "raised an exception" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_once_finishes_its_cycle_on_a_signal(tmp_path, sig):
    config = config_for(tmp_path, subscriber_size=12)
    service = Service("--config", str(config), "run", "--once")
    service.wait_line("generating with model")  # the cycle starts now
    service.process.send_signal(sig)
    code, err = service.finish()
    assert code == 0, err[-3000:]
    assert "finishing the current cycle" in err and "cycle done" in err and "Traceback" not in err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training child through /proc")
def test_a_stop_during_the_nightly_retrain_stops_its_training_child(tmp_path, capsys, caplog, tiny_corpus_file):
    """A SIGTERM while the nightly retrain trains (its budget: the rest of the night) ends the
    training child and the job within the grace time: the job is not cancelled while its worker
    thread and child train on (asyncio.run then waited for that thread, hours, and the process did
    not exit until SIGKILL), and it is no 'retrain failed' alert. The active model stays."""
    import asyncio
    import datetime as dt
    import logging

    from bot.app import build_services
    from bot.config import load_settings
    from corpus.store import model_versions as model_rows
    from tests.helpers import gone, retrain_config, run_cli, training_children, wait_for

    config = retrain_config(tmp_path, "max_epochs = 1000000")
    config.write_text(config.read_text(encoding="utf-8").replace("max_minutes = 0.03", "max_minutes = 30"),
                      encoding="utf-8")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(tiny_corpus_file))[0] == 0
    settings = load_settings(config, environ={})
    active = install_model(settings)
    if caplog.handler not in logging.getLogger().handlers:   # the CLI's logging set-up took it off
        logging.getLogger().addHandler(caplog.handler)

    async def scenario() -> tuple[int, bool]:
        services = build_services(settings)
        service = services.service
        service.start_schedule()
        assert service.scheduler is not None
        service.scheduler.get_job("retrain-0").modify(next_run_time=dt.datetime.now(dt.timezone.utc))
        child = 0
        try:
            child = (await asyncio.to_thread(wait_for, lambda: training_children(os.getpid()),
                                             "the training child"))[0]
            jobs = set(service.running_jobs)    # the retrain (and the pool run started with the schedule)
            await service.stop(PATIENCE)
            return child, any(job.cancelled() for job in jobs)
        finally:
            if child and not gone(child):
                os.kill(child, signal.SIGKILL)   # only the child this test's job started, by its pid
            services.db.close()

    with caplog.at_level(logging.INFO):
        child, cancelled = asyncio.run(scenario())
    assert gone(child) and not cancelled, caplog.text
    assert "the nightly retrain failed" not in caplog.text and "stopped with the service" in caplog.text
    db = open_db(settings.database)
    try:
        assert model_rows.active_model(db)["version"] == active
    finally:
        db.close()


@pytest.mark.parametrize("stopped_at, never", [
    ("retrain: scoring the candidate and the active model", "retrain: scoring: the candidate"),
    ("retrain: judging", "retrain: scoring: the candidate's drafts"),   # amid the candidate's 64 drafts
])
def test_a_stop_while_the_nightly_retrain_scores_its_candidate_ends_the_job_before_the_scoring(
        tmp_path, capsys, caplog, tiny_corpus_file, stopped_at, never):
    """A SIGTERM after the training child ended, while both models were scored (their bits/char on
    the held-out text, then each model's readability_drafts drafts: minutes on a production model),
    was not heard: the job scored, registered and promoted on past the grace time, and the process
    outlived `docker stop`'s wait until SIGKILL. Now the scoring ends at the stop, nothing is
    registered, and the night's retrain runs again at the next start in the window."""
    import logging

    from bot.app import build_services
    from bot.config import load_settings
    from corpus.store import model_versions as model_rows
    from jobs.errors import JobError
    from tests.helpers import retrain_config, run_cli

    config = retrain_config(tmp_path)
    config.write_text(config.read_text(encoding="utf-8").replace("readability_drafts = 4", "readability_drafts = 64"),
                      encoding="utf-8")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(tiny_corpus_file))[0] == 0
    settings = load_settings(config, environ={})
    active = install_model(settings)
    stop = threading.Event()

    class SigtermWhenScoringStarts(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(stopped_at):
                stop.set()

    sigterm = SigtermWhenScoringStarts()
    logging.getLogger("jobs.retrain").addHandler(sigterm)
    if caplog.handler not in logging.getLogger().handlers:   # the CLI's logging set-up took it off
        logging.getLogger().addHandler(caplog.handler)
    services = build_services(settings)
    try:
        assert services.service.retrainer is not None
        with caplog.at_level(logging.INFO), pytest.raises(JobError, match="the service is stopping"):
            services.service.retrainer(stop)
    finally:
        logging.getLogger("jobs.retrain").removeHandler(sigterm)
        services.db.close()
    assert stop.is_set() and never not in caplog.text and "retrain promoted" not in caplog.text
    db = open_db(settings.database)
    try:
        assert model_rows.active_model(db)["version"] == active
        assert [row["version"] for row in db["model_versions"].rows] == [active]
    finally:
        db.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training child through /proc")
@pytest.mark.parametrize("whole_group", [True, False])   # Ctrl-C in a terminal; kill -INT of the command's pid
def test_ctrl_c_of_buhurt_retrain_keeps_the_lock_until_its_training_child_has_exited(tmp_path, capsys,
                                                                                       tiny_corpus_file, whole_group):
    """Ctrl-C during `buhurt retrain` (SIGINT to the terminal's process group, or to its pid alone):
    the command exited about 0.25 s later, its lock released, while its training child was still
    training or writing latest.pt, so another retrain could start on the same folder. Now it exits
    only after the child has (the child stopped as by Ctrl-C); the child's resumable checkpoint is
    whole. The child never gets the tokens of the environment (it needs none): they stayed in
    /proc/PID/environ of a process that runs for hours."""
    from bot.config import load_settings
    from common.locks import exclusive
    from jobs.retrain import LOCK_SUFFIX
    from model.checkpoint import load_checkpoint
    from tests.helpers import gone, retrain_config, run_cli, training_children, wait_for

    config = retrain_config(tmp_path, "max_epochs = 1000000")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(tiny_corpus_file))[0] == 0
    settings = load_settings(config, environ={})
    install_model(settings)
    checkpoints = tmp_path / "data" / "checkpoints"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BUHURT_VK_TOKEN": "vk-secret-1",
           "BUHURT_VK_COMMUNITY_TOKEN": "vk-secret-2"}
    for var in ("BUHURT_TELEGRAM_TOKEN", "BUHURT_CONFIG"):
        env.pop(var, None)
    process = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "retrain", "--minutes", "30",
                                "--no-tune", "--no-progress"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    child = 0
    try:
        child = wait_for(lambda: training_children(process.pid), "the training child")[0]
        environ = Path(f"/proc/{child}/environ").read_bytes().decode().split("\0")
        assert any(v.startswith("BUHURT_TRAIN_PARENT=") for v in environ)
        assert not [v for v in environ if "vk-secret" in v or re.match(r"BUHURT_\w*TOKEN=", v)]
        run_dir = wait_for(lambda: [p.parent for p in checkpoints.glob("run-*/*.pt")],
                           "the run's first checkpoint")[0]
        if whole_group:
            os.killpg(process.pid, signal.SIGINT)   # Ctrl-C: the whole foreground group, the child too
        else:
            os.kill(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 130, err
        assert gone(child), "the retrain exited while its training child still ran"
        lock = checkpoints.with_name(checkpoints.name + LOCK_SUFFIX)
        with exclusive(lock):   # free
            pass
        assert load_checkpoint(run_dir / "latest.pt")["iteration"] > 0, err
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)   # only the group this test started
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the training child through /proc")
def test_a_retrain_killed_keeps_its_lock_held_until_its_training_child_has_exited(tmp_path, capsys,
                                                                                    tiny_corpus_file):
    """`kill -9` of `buhurt retrain`: its lock went with it while the orphaned training child went on
    to notice, write latest.pt and exit, so another retrain could start (and prune or rewrite under
    it) in that time. The child holds the lock too now, until it has exited."""
    from bot.config import load_settings
    from common.locks import LockHeld, exclusive
    from jobs.retrain import LOCK_SUFFIX
    from tests.helpers import gone, retrain_config, run_cli, training_children, wait_for

    config = retrain_config(tmp_path, "max_epochs = 1000000")
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(tiny_corpus_file))[0] == 0
    install_model(load_settings(config, environ={}))
    checkpoints = tmp_path / "data" / "checkpoints"
    lock = checkpoints.with_name(checkpoints.name + LOCK_SUFFIX)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("BUHURT_TELEGRAM_TOKEN", "BUHURT_VK_TOKEN", "BUHURT_CONFIG"):
        env.pop(var, None)
    process = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "retrain", "--minutes", "30",
                                "--no-tune", "--no-progress"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = 0
    try:
        child = wait_for(lambda: training_children(process.pid), "the training child")[0]
        wait_for(lambda: list(checkpoints.glob("run-*/*.pt")), "the run's first checkpoint")
        process.kill()
        process.wait(PATIENCE)
        held = []
        while not gone(child):   # the child notices within a second, saves and exits
            try:
                with exclusive(lock):
                    held.append(False)
            except LockHeld:
                held.append(True)
            time.sleep(0.05)
        assert held and all(held), "another retrain could take the lock while the training child still ran"

        def free() -> bool:
            try:
                with exclusive(lock):
                    return True
            except LockHeld:
                return False

        # free once it has exited (the kernel drops an exited process's lock as it closes its files,
        # which a sandboxed kernel may finish a moment after the process is reaped)
        wait_for(free, "the lock freed after the training child exited")
    finally:
        if process.poll() is None:
            process.kill()
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)   # only the child this test's command started, by its pid
