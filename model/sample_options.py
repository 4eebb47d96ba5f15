"""How posts are sampled: the one dataclass of config [sample], the pool's drafts and `buhurt sample`.

No torch here (the config reader and `buhurt --help` import it). A request to the Generator adds
its start text and argmax (model.sample.SampleRequest).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from model.words import DICTIONARIES, QUOTE_MODES, WORD_MODES, decoding_name

DEFAULT_TEMPERATURE = 0.8


def _show(names) -> str:
    return " or ".join(f'"{n}"' for n in names)


@dataclass(frozen=True)
class SampleOptions:
    # a number > 0, or "auto": the active model's tuned temperature (`buhurt tune`, jobs.tune), else
    # DEFAULT_TEMPERATURE; the caller resolves "auto": the Generator takes numbers only
    temperature: float | str = DEFAULT_TEMPERATURE
    max_length: int = 500         # characters per post at most
    top_k: int = 0                # sample among the K likeliest characters; 0: all
    words: str = "known"          # "known": known-word decoding (model.words); "any": torch-rnn's sampling
    dictionary: str = "ru"        # "ru": the OpenCorpora dictionary besides the checkpoint's lexicon; "none"
    quotes: str = "balanced"      # "balanced": a quote (« or ") opened on a line closes on it; "any"

    def problems(self) -> dict[str, str]:
        problems = {}
        t = self.temperature
        if isinstance(t, str) and t != "auto" or not isinstance(t, str) and not (
                not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            problems["temperature"] = '"auto" or a number > 0'
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length <= 0:
            problems["max_length"] = "a positive integer"
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            problems["top_k"] = "an integer >= 0"
        if self.words not in WORD_MODES:
            problems["words"] = _show(WORD_MODES)
        if self.dictionary not in DICTIONARIES:
            problems["dictionary"] = _show(DICTIONARIES)
        if self.quotes not in QUOTE_MODES:
            problems["quotes"] = _show(QUOTE_MODES)
        return problems

    def options(self) -> "SampleOptions":
        """Only the SampleOptions fields (of a subclass such as the [sample] settings)."""
        return SampleOptions(self.temperature, self.max_length, self.top_k, self.words, self.dictionary, self.quotes)

    def as_kwargs(self) -> dict:
        """Generator.generate's keyword arguments."""
        return {**self.draft_columns(), **self.decoding_kwargs()}

    def decoding_kwargs(self) -> dict:
        """How posts are decoded, as Generator.generate's keyword arguments (model.words.decoding_options
        gives the same of a stored decoding name)."""
        return {"words": self.words, "dictionary": self.dictionary, "quotes": self.quotes}

    def decoding(self) -> str:
        """As stored with each draft (drafts.words), so it regenerates the same way."""
        return decoding_name(self.words, self.dictionary, self.quotes)

    def draft_columns(self) -> dict:
        return {"temperature": self.temperature, "max_length": self.max_length, "top_k": self.top_k}


TORCH_RNN_SAMPLING = SampleOptions(words="any", dictionary="none", quotes="any")   # sample.lua: unconstrained
