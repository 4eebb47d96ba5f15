"""One loaded Generator shared by the pool, /generate and /meme, behind a lock; hot-swappable."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from corpus.rules import tidy_generated
from model.sample_options import SampleRequest


class GeneratorHolder:
    """Holds the active model's Generator; `reload` swaps it in place after a promotion.

    Generation is blocking: call `generate` from a worker thread (asyncio.to_thread), never on the
    event loop. The lock serialises generations so two threads never share one model at once.
    """

    def __init__(self, checkpoint: Path, device: str = "cpu", keep_old: int = 2) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._old: OrderedDict[str, Any] = OrderedDict()
        self._keep_old = keep_old
        self._current = self._load(checkpoint)

    def _load(self, checkpoint: Path):
        from model.sample import Generator

        return Generator.load(checkpoint, device=self.device)

    @property
    def version(self) -> str:
        return self._current.version

    @property
    def current(self):
        return self._current

    def reload(self, checkpoint: Path, expected: str | None = None) -> str:
        """Generate with `checkpoint` from now on; with `expected` (its registered version), only
        when its bytes are that version: LookupError otherwise, and the loaded model stays."""
        fresh = self._load(checkpoint)
        if expected is not None and fresh.version != expected:
            raise LookupError(f"its bytes are version {fresh.version}, not {expected} (they changed after it was "
                              f"installed)")
        with self._lock:
            self._old[self._current.version] = self._current
            while len(self._old) > self._keep_old:
                self._old.popitem(last=False)
            self._current = fresh
        return fresh.version

    def generate(self, seeds: list[int], request: SampleRequest, *, version: str | None = None,
                 checkpoint: Path | None = None) -> tuple[str, list[str]]:
        """Generate one post per seed; returns (model version, texts), each in the corpus's canonical
        form (`tidy_generated`: no separator glued to a line or dangling at an end). With `version`,
        use that model (loading `checkpoint` if it is not the current or a recent one) for /meme N."""
        version, samples = self.generate_samples(seeds, request, version=version, checkpoint=checkpoint)
        return version, [s.text for s in samples]

    def generate_samples(self, seeds: list[int], request: SampleRequest, *, version: str | None = None,
                         checkpoint: Path | None = None) -> tuple[str, list]:
        """`generate` with each post's measures: (model version, [model.sample.Sample]), texts tidied."""
        with self._lock:
            generator = self._current
            if version is not None and version != generator.version:
                generator = self._old.get(version)
                if generator is None:
                    if checkpoint is None:
                        raise LookupError(f"model version {version} is not loaded")
                    generator = self._load(checkpoint)
                    if generator.version != version:   # the file was rewritten: another model's texts
                        raise LookupError(f"{checkpoint} is version {generator.version} now, not {version}")
                    self._old[version] = generator
                    while len(self._old) > self._keep_old:
                        self._old.popitem(last=False)
            samples = generator.generate_samples(seeds, request)
        return generator.version, [replace(s, text=tidy_generated(s.text)) for s in samples]
