"""Shared helpers and fixtures for tests/test_model_*.py (tiny corpora, a tiny trained model).

Imported by the test modules (``from fixtures_model import ...``) after they put tests/ on sys.path.
"""
from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

LINES = ["ТЫ ИДЁШЬ В МАГАЗИН", "ПОКУПАЕШЬ ХЛЕБ 🍞", "ХЛЕБ ЗАКОНЧИЛСЯ", "ОДНОКЛАССНИКИ СМЕЮТСЯ",
         "МАМА ГОВОРИТ НАДЕТЬ ШАПКУ", "НАДЕВАЕШЬ 😎"]
TINY = dict(batch_size=8, seq_length=32, rnn_size=32, wordvec_size=16, num_layers=2,
            checkpoint_every=10, print_every=5, progress=False)


@contextlib.contextmanager
def one_thread():
    """Tiny models run fastest on one thread, and two OpenMP threads crawl when another process
    (a parallel test run) holds a core of these 2-core machines."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(autouse=True)
def _model_tests_one_thread():
    with one_thread():
        yield


def subprocess_env(repo: Path) -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}


def make_posts(n: int = 200, seed: int = 0, lines=LINES) -> list[str]:
    rnd = random.Random(seed)
    return ["\n@\n".join(rnd.choice(lines) for _ in range(rnd.randint(2, 4))) for _ in range(n)]


def write_corpus(path: Path, n: int = 200, seed: int = 0, sep: str = "\n\n", lines=LINES) -> Path:
    path.write_text(sep.join(make_posts(n, seed, lines)) + "\n", encoding="utf-8", newline="")
    return path


def prepare(tmp: Path, n: int = 200, lines=LINES, name: str = "corpus") -> tuple[Path, Path, Path]:
    from model.preprocess import preprocess

    txt = write_corpus(tmp / f"{name}.txt", n, lines=lines)
    h5, js = tmp / f"{name}.h5", tmp / f"{name}.json"
    preprocess(txt, h5, js)
    return txt, h5, js


def tiny_config(h5: Path, js: Path, ckdir: Path, **kw):
    from model.train import TrainConfig

    return TrainConfig(input_h5=str(h5), input_json=str(js), checkpoint_dir=str(ckdir), **{**TINY, **kw})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny model trained for 120 iterations: (txt, h5, json, TrainResult)."""
    from model.train import train

    tmp = tmp_path_factory.mktemp("tiny_run")
    txt, h5, js = prepare(tmp)
    with one_thread():
        result = train(tiny_config(h5, js, tmp / "ck", max_iterations=120, checkpoint_every=40))
    return txt, h5, js, result


@pytest.fixture(scope="session")
def tiny_generator(tiny_run):
    from model.sample import Generator

    return Generator.load(tiny_run[3].best_path)
