"""Shared fixtures. Every test runs with the network blocked except loopback (nedbat/scriv's habit).

Plain helpers live in tests/helpers.py and tests/tiny_model.py (imported as `tests.*`: tests/ is a
package, so pytest puts the repository root on the path itself)."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import TINY_POSTS
from tests.tiny_model import one_thread, tiny_model

_LOOPBACK = ("127.", "::1", "localhost")
# what puts a test in the end-to-end tier (`pytest -m e2e`; `-m "not e2e"` runs the rest in about a
# third of the time): a fake server on 127.0.0.1, or a child process
_E2E_SIGNS = ("subprocess", "Popen", "telegram_server", "fake_vk", "telegram_app")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: talks to a fake server on 127.0.0.1 or runs a child process "
                                       "(conftest marks these by what the test module uses)")


def pytest_collection_modifyitems(config, items):
    sources: dict[str, bool] = {}
    for item in items:
        path = str(item.fspath)
        if path not in sources:
            text = Path(path).read_text(encoding="utf-8")
            sources[path] = any(sign in text for sign in _E2E_SIGNS)
        if sources[path] or "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
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


@pytest.fixture(autouse=True)
def one_torch_thread():
    """torch on one thread for every test: the tiny models run fastest so, and two OpenMP threads
    crawl when a parallel run holds the other core of a 2-core machine (subprocesses get
    OMP_NUM_THREADS=1 from tests.tiny_model.subprocess_env)."""
    with one_thread():
        yield


@pytest.fixture
def db(tmp_path):
    """A real, migrated SQLite database file."""
    from corpus.db import open_db

    database = open_db(tmp_path / "test.sqlite3")
    yield database
    database.close()


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
def tiny_run(tmp_path_factory):
    """The suite's one tiny model (tests/tiny_model.py): (corpus txt, h5, json, TrainResult)."""
    model = tiny_model(tmp_path_factory.mktemp("tiny_model"))
    return model.text, model.h5, model.json, model.result


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """The tiny model's best checkpoint."""
    return Path(tiny_run[3].best_path)


@pytest.fixture(scope="session")
def tiny_generator(tiny_run):
    from model.sample import Generator

    return Generator.load(tiny_run[3].best_path)
