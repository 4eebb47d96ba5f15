"""The one tiny model of the test suite, and the tiny corpora the model tests build.

`tiny_model()` trains a real char-LSTM once per process (120 iterations of a 2x32 LSTM, a few
seconds on one thread); the `tiny_run`, `tiny_generator` and `tiny_checkpoint` fixtures in
conftest.py and the Telegram helpers (tests/fakes/telegram_app.py, benchmarks/bot_latency.py) all
use that same model.
"""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

LINES = ["ТЫ ИДЁШЬ В МАГАЗИН", "ПОКУПАЕШЬ ХЛЕБ 🍞", "ХЛЕБ ЗАКОНЧИЛСЯ", "ОДНОКЛАССНИКИ СМЕЮТСЯ",
         "МАМА ГОВОРИТ НАДЕТЬ ШАПКУ", "НАДЕВАЕШЬ 😎"]
TINY = dict(batch_size=8, seq_length=32, rnn_size=32, wordvec_size=16, num_layers=2,
            checkpoint_every=10, print_every=5, progress=False)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and two OpenMP threads crawl when another process
    (a parallel test run) holds a core of these 2-core machines."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def subprocess_env(repo: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}


def make_posts(n: int = 200, seed: int = 0, lines: list[str] = LINES) -> list[str]:
    rnd = random.Random(seed)
    return ["\n@\n".join(rnd.choice(lines) for _ in range(rnd.randint(2, 4))) for _ in range(n)]


def write_corpus(path: Path, n: int = 200, seed: int = 0, sep: str = "\n\n", lines: list[str] = LINES) -> Path:
    path.write_text(sep.join(make_posts(n, seed, lines)) + "\n", encoding="utf-8", newline="")
    return path


def prepare(tmp: Path, n: int = 200, lines: list[str] = LINES, name: str = "corpus") -> tuple[Path, Path, Path]:
    from model.preprocess import preprocess

    txt = write_corpus(tmp / f"{name}.txt", n, lines=lines)
    h5, js = tmp / f"{name}.h5", tmp / f"{name}.json"
    preprocess(txt, h5, js)
    return txt, h5, js


def tiny_config(h5: Path, js: Path, ckdir: Path, **kw: Any):
    from model.train import TrainConfig

    return TrainConfig.torch_rnn_preset(input_h5=str(h5), input_json=str(js), checkpoint_dir=str(ckdir),
                                        **{**TINY, **kw})


@dataclass(frozen=True)
class TinyModel:
    text: Path      # the corpus it was trained on
    h5: Path
    json: Path
    result: Any     # model.train.TrainResult

    @property
    def checkpoint(self) -> Path:
        return Path(self.result.best_path)


_trained: list[TinyModel] = []


def tiny_model_posts() -> list[str]:
    """The tiny model's corpus: the model tests' posts (LINES, with emoji) and the posts the other
    tests put in their databases (tests.helpers.varied_posts), shuffled together."""
    from tests.helpers import varied_posts

    posts = make_posts(200, 0) + varied_posts(120)
    random.Random(0).shuffle(posts)
    return posts


def tiny_model(workdir: Path | None = None) -> TinyModel:
    """The tiny model, trained on the first call of the process (into `workdir`, or a temporary
    folder) and the same object on every later call."""
    if not _trained:
        from model.train import train

        from model.preprocess import preprocess

        work = workdir or Path(tempfile.mkdtemp(prefix="buhurt-tiny-model-"))
        txt, h5, js = work / "corpus.txt", work / "corpus.h5", work / "corpus.json"
        txt.write_text("\n\n".join(tiny_model_posts()) + "\n", encoding="utf-8", newline="")
        preprocess(txt, h5, js)
        with one_thread():
            result = train(tiny_config(h5, js, work / "ck", max_iterations=120, checkpoint_every=40,
                                               learning_rate=0.01))
        _trained.append(TinyModel(txt, h5, js, result))
    return _trained[0]


def variant(tiny_checkpoint: Path, path: Path, tag: str) -> Path:
    """The tiny model saved again as another file: another version, same weights."""
    import torch

    from model.checkpoint import save_checkpoint

    ck = torch.load(tiny_checkpoint, weights_only=True)
    return save_checkpoint(path, {**ck, "created_at": tag})
