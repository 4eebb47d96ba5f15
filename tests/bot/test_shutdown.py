"""SIGTERM and SIGINT end `buhurt run` cleanly (issue 14, operator basics): the local service lets
its running jobs finish and exits 0; `run --once` finishes its cycle and exits 0. Real processes,
waiting on what they write (the heartbeat, their log lines), never on a fixed delay."""
from __future__ import annotations

import os
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
