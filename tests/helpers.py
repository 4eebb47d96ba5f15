"""Plain helpers the tests import (`from tests.helpers import ...`); fixtures live in conftest.py."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.store import model_versions as model_rows
from jobs.model_registry import install_checkpoint
from jobs.retrain import RetrainPlan
from model.train_config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent

# How long a test waits for a condition (a message sent, a child process done) before it fails. It
# bounds a hang and is never reached by a test that passes, so it is generous: two copies of the
# suite side by side on a 2-core machine must not fail a test that is merely slow (60 s did).
# pytest-timeout (pyproject.toml) stops a whole test after twice as long.
PATIENCE = 300.0

TINY_POSTS = [
    "ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КОНТРОЛЬНАЯ\n@\nТЫ НЕ ГОТОВ",
    "ПОКУПАЕШЬ ХЛЕБ\n@\nОН ЧЁРСТВЫЙ\n@\nИДЁШЬ ОБРАТНО\n@\nМАГАЗИН ЗАКРЫТ",
    "ВКЛЮЧАЕШЬ КОМПЬЮТЕР\n@\nОБНОВЛЕНИЕ 1 ИЗ 47\n@\nИДЁШЬ СПАТЬ",
    "МАМКА ЗОВЁТ ЕСТЬ\n@\nПРИХОДИШЬ НА КУХНЮ\n@\nТАМ ГРЕЧКА\n@\nОПЯТЬ",
    "БАТЯ ЧИНИТ КРАН\n@\nКРАН ТЕЧЁТ СИЛЬНЕЕ\n@\nБАТЯ ДОВОЛЕН",
]


def varied_posts(n: int = 80, seed: int = 0) -> list[str]:
    """`n` distinct posts in the genre's format, built from the lines of TINY_POSTS."""
    lines = sorted({line for post in TINY_POSTS for line in post.split("\n") if line != "@"})
    rnd = random.Random(seed)
    posts: list[str] = []
    while len(posts) < n:
        post = "\n@\n".join(rnd.sample(lines, rnd.randint(3, 5)))
        if post not in posts:
            posts.append(post)
    return posts


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`buhurt ARGV` through the real entry point: (exit code, stdout, stderr)."""
    from bot.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return info.value.code or 0, out.out, out.err


def buhurt(*args: str, timeout: float = PATIENCE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("BUHURT_TELEGRAM_TOKEN", "BUHURT_VK_TOKEN", "BUHURT_CONFIG", "BUHURT_DEBUG"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def assert_one_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = error_lines(result.stderr)
    for needle in needles:
        assert needle in line, line
    return line


def plan_for(tmp_path, **kw) -> RetrainPlan:
    return RetrainPlan(train_txt=tmp_path / "t.txt", train_h5=tmp_path / "t.h5", train_json=tmp_path / "t.json",
                       checkpoint_dir=tmp_path / "ck", models_dir=tmp_path / "models", readability_drafts=4,
                       sample_length=80, **{"training": TrainConfig.torch_rnn_preset(progress=False), **kw})


def with_active(db, tmp_path, checkpoint) -> str:
    version = install_checkpoint(db, checkpoint, tmp_path / "models", val_bpc=None)
    model_rows.promote(db, version)
    return version


def retrain_config(tmp_path: Path, extra: str = "") -> Path:
    """A config.toml for the retrain tests' 1x16 model, trained for about 2 seconds (`extra`: lines
    appended to [train])."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[paths]
data_dir = "{tmp_path / 'data'}"
[model]
rnn_size = 16
wordvec_size = 8
num_layers = 1
[retrain]
readability_drafts = 4
[train]
batch_size = 4
seq_length = 16
max_minutes = 0.03
threads = 1
{extra}
""", encoding="utf-8")
    return path


def wait_for(predicate, what: str, timeout: float = PATIENCE):
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, None when it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def training_children(parent: int) -> list[int]:
    """The pids of `python -m model.run` processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[1] != parent:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"model.run" in cmdline:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")
