"""Shared fixtures. Every test runs with the network blocked except loopback (nedbat/scriv's habit)."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_LOOPBACK = ("127.", "::1", "localhost")
_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not host.startswith(_LOOPBACK) and self.family in (socket.AF_INET, socket.AF_INET6):
        raise RuntimeError(f"tests must not reach the network: attempted connection to {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.delenv("BUHURT_TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("BUHURT_VK_TOKEN", raising=False)
    monkeypatch.delenv("BUHURT_CONFIG", raising=False)


@pytest.fixture
def db(tmp_path):
    """A real, migrated SQLite database file."""
    from corpus.db import open_db

    database = open_db(tmp_path / "test.sqlite3")
    yield database
    database.close()


TINY_POSTS = [
    "ПРИХОДИШЬ В ШКОЛУ\n@\nТАМ КОНТРОЛЬНАЯ\n@\nТЫ НЕ ГОТОВ",
    "ПОКУПАЕШЬ ХЛЕБ\n@\nОН ЧЁРСТВЫЙ\n@\nИДЁШЬ ОБРАТНО\n@\nМАГАЗИН ЗАКРЫТ",
    "ВКЛЮЧАЕШЬ КОМПЬЮТЕР\n@\nОБНОВЛЕНИЕ 1 ИЗ 47\n@\nИДЁШЬ СПАТЬ",
    "МАМКА ЗОВЁТ ЕСТЬ\n@\nПРИХОДИШЬ НА КУХНЮ\n@\nТАМ ГРЕЧКА\n@\nОПЯТЬ",
    "БАТЯ ЧИНИТ КРАН\n@\nКРАН ТЕЧЁТ СИЛЬНЕЕ\n@\nБАТЯ ДОВОЛЕН",
]


def varied_posts(n: int = 80, seed: int = 0) -> list[str]:
    """`n` distinct posts in the genre's format, built from the lines of TINY_POSTS."""
    import random

    lines = sorted({line for post in TINY_POSTS for line in post.split("\n") if line != "@"})
    rnd = random.Random(seed)
    posts: list[str] = []
    while len(posts) < n:
        post = "\n@\n".join(rnd.sample(lines, rnd.randint(3, 5)))
        if post not in posts:
            posts.append(post)
    return posts


@pytest.fixture
def server():
    """The fake Bot API server on 127.0.0.1 that the real python-telegram-bot client talks to."""
    from tests.fakes.telegram_server import FakeBotApi

    with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def tiny_corpus_file(tmp_path) -> Path:
    """A small corpus in the import format (posts separated by blank lines), repeated for volume."""
    path = tmp_path / "tiny.txt"
    path.write_text("\n\n".join(TINY_POSTS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A real char-LSTM trained for a few seconds on varied_posts(): good enough to emit posts."""
    from model.preprocess import preprocess
    from model.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("tiny_model")
    text = tmp / "corpus.txt"
    text.write_text("\n\n".join(varied_posts(120)) + "\n\n", encoding="utf-8")
    preprocess(text, tmp / "c.h5", tmp / "c.json")
    result = train(TrainConfig(
        input_h5=str(tmp / "c.h5"), input_json=str(tmp / "c.json"), checkpoint_dir=str(tmp / "ck"),
        wordvec_size=16, rnn_size=48, num_layers=1, batch_size=16, seq_length=32, max_iterations=250,
        checkpoint_every=50, learning_rate=0.01, progress=False,
    ))
    return Path(result.best_path)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`buhurt ARGV` through the real entry point: (exit code, stdout, stderr)."""
    from bot.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return info.value.code or 0, out.out, out.err
