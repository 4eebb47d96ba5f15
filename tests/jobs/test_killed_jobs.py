"""Issue 26, points 9 and 10: what a killed job must not leave. Killing `buhurt retrain` (SIGKILL,
no chance to clean up) takes its training child down with it; the temp files of killed atomic
writes (backups, checkpoints) are removed at the next start or backup. Real processes, real files."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import gone, retrain_config, run_cli, training_children, wait_for
from tests.tiny_model import subprocess_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the child through /proc")
def test_killing_buhurt_retrain_kills_its_training_child(tmp_path, capsys, tiny_corpus_file):
    config = retrain_config(tmp_path, "max_epochs = 1000000")   # the retrain tests' tiny 1x16 model
    assert run_cli(capsys, "--config", str(config), "corpus", "import", str(tiny_corpus_file))[0] == 0
    log = tmp_path / "retrain.log"
    with open(log, "w", encoding="utf-8") as stderr:
        # a budget of 30 minutes and a million epochs: on its own the child trains on for half an hour
        parent = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(config), "retrain", "--minutes", "30",
                                   "--no-progress"], cwd=ROOT, env=subprocess_env(ROOT), stdout=subprocess.DEVNULL,
                                  stderr=stderr)
    child = None
    try:
        child = wait_for(lambda: training_children(parent.pid), "the training child")[0]
        wait_for(lambda: "training on cpu" in log.read_text(encoding="utf-8"), "the child to start training")
        os.kill(parent.pid, signal.SIGKILL)          # no handler runs: only the child can notice
        parent.wait()
        wait_for(lambda: gone(child), "the training child to exit after its parent was killed")
        text = log.read_text(encoding="utf-8")
        assert f"the process that started it (pid {parent.pid}) is gone" in text, text
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and not gone(child):
            os.kill(child, signal.SIGKILL)       # only what this test started, by its pid


def leftovers(folder: Path, pid: int, sizes: list[int], suffix: str, stem: str = "x") -> list[Path]:
    """Temp files as the atomic writes name them (.<stem>.tmp-<pid>-<n><suffix>) of a killed copy."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for n, size in enumerate(sizes):
        path = folder / f".{stem}.tmp-{pid}-{n}{suffix}"
        path.write_bytes(b"\0" * size)
        made.append(path)
    return made


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): what a killed copy's pid is now."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_backups_temp_files_go_at_the_next_backup(tmp_path, caplog):
    from corpus.backup import nightly_backup
    from corpus.db import open_db
    from common.files import atomic_path

    db = open_db(tmp_path / "buhurt.sqlite3")
    db.close()
    folder = tmp_path / "backups"
    pid = dead_pid()
    stale = leftovers(folder, pid, [3 << 20, 1 << 20], ".sqlite3", stem="buhurt-20260101-033000")
    stale += leftovers(folder, pid, [4096], ".sqlite3-journal", stem="buhurt-20260101-033000")
    with atomic_path(folder / "live.sqlite3") as writing:     # a live writer's temp file (this process)
        writing.write_bytes(b"being written")
        other = folder / "notes.tmp.txt"                      # the operator's own file
        other.write_text("keep me")
        with caplog.at_level(logging.INFO):
            made = nightly_backup(tmp_path / "buhurt.sqlite3", folder, keep=3)
        assert writing.exists() and other.exists() and made.is_file()
    assert not any(p.exists() for p in stale)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "temp file" in r.getMessage()]
    assert said and "3 temp files" in said[0] and "4.0 MiB" in said[0] and str(folder) in said[0], caplog.text


def test_half_written_checkpoints_go_at_the_next_start(tmp_path, caplog):
    from bot.app import build_services
    from bot.config import load_settings
    from corpus import outputs
    from tests.fakes.telegram_app import install_model

    config = tmp_path / "config.toml"
    config.write_text(f"[paths]\ndata_dir = '{tmp_path / 'data'}'\n[corpus]\nseed_with_sample = false\n"
                      "[schedule]\nretrain = false\n", encoding="utf-8")
    settings = load_settings(config)
    settings.data_dir.mkdir(parents=True)
    install_model(settings)
    pid = dead_pid()
    models = settings.data_dir / "models"
    stale = leftovers(models, pid, [2 << 20, 1 << 20], ".pt", stem="0123456789ab")
    stale += leftovers(models, pid, [1 << 19], ".json", stem="0123456789ab")
    stale += leftovers(settings.data_dir / "checkpoints" / "run-20260101-033000-000000", pid, [1 << 20], ".pt",
                       stem="best")
    stale += leftovers(settings.backup_dir, pid, [1 << 20], ".sqlite3", stem="buhurt-20260101-033000")
    # this very pid, from before this process started (a container restarted with the same pid)
    old_own = leftovers(models, os.getpid(), [1000], ".pt", stem="ffffffffffff")
    os.utime(old_own[0], (outputs._STARTED - 30, outputs._STARTED - 30))
    ancient = leftovers(models, os.getppid(), [10], ".pt", stem="eeeeeeeeeeee")   # a live pid, but 2 days old
    os.utime(ancient[0], (time.time() - 2 * 86400, time.time() - 2 * 86400))
    keep = models / "notes.txt"
    keep.write_text("the operator's")
    before = sorted(p.name for p in models.iterdir() if p.name.endswith(".pt") and not p.name.startswith("."))
    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE) as live:
        running = leftovers(models, live.pid, [10], ".pt", stem="dddddddddddd")   # a write still going on
        try:
            with caplog.at_level(logging.INFO):
                services = build_services(settings)
            services.db.close()
        finally:
            live.stdin.close()
    assert running[0].exists()
    assert not any(p.exists() for p in stale + old_own + ancient) and keep.exists()
    assert sorted(p.name for p in models.iterdir() if p.name.endswith(".pt") and not p.name.startswith(".")) == before
    said = [r.getMessage() for r in caplog.records if "temp file" in r.getMessage()]
    assert said and all(r.levelno == logging.INFO for r in caplog.records if "temp file" in r.getMessage())
    text = " ".join(said)
    assert "5 temp files (3.5 MiB)" in text and str(models) in text, text
