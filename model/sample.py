"""Sampling: a Generator loads a checkpoint once and serves many batched requests.

Each post depends only on (checkpoint, seed, SampleRequest): its randomness is a per-post
counter-based stream (model.rng), sampled by inverse CDF, and rows that finish (at the post gap, a
blank line) leave the batch. The recurrent step is the hand-fused model.fast_step.FastStep, not
nn.LSTM per character. What a row may write (known words, grammar, quotes, the post's end) is its
request's Decoding, applied by model.decoding.Rows.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from model.checkpoint import TENSOR_KEYS, load_checkpoint
from model.decoding import EndOdds, GrammarTable, Rows, Sample, SavedStarts, Tokens
from model.distributed import resolve_device
from model.errors import ModelError, normalize_newlines
from model.fast_step import FastStep
from model.files import file_version
from model.grammar import Grammar
from model.lstm import model_from_checkpoint
from model.rng import seed_keys, uniforms
from model.sample_options import SampleRequest
from model.vocab import Vocab, format_chars
from model.words import KnownWords, PrefixTable, russian_dictionary

__all__ = ["Generator", "Sample", "SampleRequest", "validated"]

PREFIX_TABLE_LIMIT = 1 << 15   # prefix-table states kept between calls (4 bytes per state and letter of the vocabulary)


def validated(request: SampleRequest, vocab: Vocab, source: str = "checkpoint") -> SampleRequest:
    """The request checked against the vocabulary, its start text's line ends normalised."""
    if isinstance(request.temperature, str):
        raise ModelError(f"temperature={request.temperature!r}: expected a finite number > 0 "
                         f"(the caller resolves \"auto\")")
    request.check()
    start = normalize_newlines(request.start_text)
    bad = vocab.missing(start)
    if bad:
        raise ModelError(f"start_text has characters not in the vocabulary of {source}: {format_chars(bad)}")
    if len(start) > request.max_length:
        raise ModelError(f"start_text is {len(start)} characters, longer than max_length={request.max_length}")
    return replace(request, temperature=float(request.temperature), start_text=start, argmax=bool(request.argmax))


def _logprobs(lg: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Natural-log probability (temperature 1) of each row's picked token, from the step's logits
    (float32, numpy: at small batches torch's per-call overhead costs more than the arithmetic)."""
    m = lg.max(axis=1)
    lse = m + np.log(np.exp(lg - m[:, None]).sum(axis=1))
    picked = lg[np.arange(len(lg)), np.asarray(ids, dtype=np.int64)]
    return (picked - lse).astype(np.float64)


class Generator:
    def __init__(self, ck: dict, path: Path, device: torch.device, version: str) -> None:
        self.path = path
        self.device = device
        self.version = version
        self.vocab = Vocab(ck["idx_to_token"])
        self.checkpoint_meta = {k: v for k, v in ck.items() if k not in TENSOR_KEYS and k != "lexicon"}
        lex = ck["lexicon"]   # every checkpoint has one since model.checkpoint.upgrade (maybe empty)
        self.lexicon: tuple[str, ...] = tuple(lex["words"])
        self.lexicon_min_count = lex["min_count"]
        self._known: dict[tuple[str, bool], KnownWords] = {}
        self._tables: dict[tuple[str, bool], PrefixTable] = {}
        self._grammar: Grammar | None = None
        self._agree: GrammarTable | None = None
        self._tokens = Tokens.of(self.vocab.tokens)
        self.post_lines: tuple[int, ...] = tuple(lex["post_lines"])   # content lines per post
        self.checkpoint_meta["path"] = str(path)
        self.checkpoint_meta["version"] = version
        model = model_from_checkpoint(ck, "cpu")
        self.model_config = model.cfg
        self.step = FastStep(model).to(device)
        del model
        nl = self.vocab.index.get("\n")
        self._prime_ids = [nl, nl] if nl is not None else []

    @classmethod
    def load(cls, path, device: str = "cpu") -> "Generator":
        dev = resolve_device(device)
        p = Path(path)
        ck = load_checkpoint(p, map_location="cpu")
        return cls(ck, p, dev, file_version(p))

    def __repr__(self) -> str:
        mc = self.model_config
        return f"Generator({str(self.path)!r}, version={self.version}, {mc.model_type} {mc.num_layers}x{mc.rnn_size})"

    def known_words(self, dictionary: str, strict: bool = False) -> KnownWords:
        """The words this model may write: its checkpoint's lexicon plus `dictionary` ("ru" | "none");
        `strict`: short words only as the lexicon or the dictionary's standalone words (KnownWords)."""
        kw = self._known.get((dictionary, strict))
        if kw is None:
            kw = self._known[(dictionary, strict)] = KnownWords(self.lexicon, dictionary, strict=strict)
        return kw

    @property
    def grammar(self) -> Grammar:
        if self._grammar is None:
            self._grammar = Grammar(russian_dictionary())
        return self._grammar

    @staticmethod
    def _pick(lg: np.ndarray, keys: np.ndarray, steps, o: SampleRequest,
              rules: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Inverse-CDF sampling in float64 from the step's logits (float32, numpy), in place (the same
        arithmetic, so the same picks, as the allocating form lg / T - max, exp, cumsum, count of cdf <= u).

        `rules` (`Rows.rules`) rewrite the float64 copy of the logits first, at one point: the
        characters a row may not pick get -inf (their odds may go to another character)."""
        x = lg.astype(np.float64)
        if rules is not None:
            rules(x)
        if o.argmax:
            return x.argmax(axis=1)
        idx = None
        if 0 < o.top_k < x.shape[1]:
            idx = np.argsort(-x, axis=1, kind="stable")[:, :o.top_k]
            x = np.take_along_axis(x, idx, axis=1)
        np.divide(x, o.temperature, out=x)
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        torch.from_numpy(x).cumsum_(1)               # numpy's sequential sums, bit for bit, ~7x faster
        u = uniforms(keys, steps) * x[:, -1]
        over = x > u[:, None]
        j = over.argmax(axis=1)                      # first cdf > u = count of cdf <= u
        rows = np.arange(len(j))
        none = ~over[rows, j]                        # none above u (rounding): the last token
        j[none] = x.shape[1] - 1
        if rules is not None and none.any():         # ... that may be picked: the last to add to the cdf
            j[none] = (x[none] >= x[none, -1:]).argmax(axis=1)
        return j if idx is None else idx[rows, j]

    def generate(self, seeds, request: SampleRequest | None = None, **fields) -> list[str]:
        """One post per seed: start_text + generated text up to the post gap (not included),
        at most max_length characters, trailing whitespace stripped."""
        return [s.text for s in self.generate_samples(seeds, request, **fields)]

    @torch.inference_mode()
    def generate_samples(self, seeds, request: SampleRequest | None = None, **fields) -> list[Sample]:
        """`generate`, with each post's measures (`Sample`). The request is a SampleRequest, or
        SampleRequest.of(**fields) (flat keyword arguments: temperature, words, quotes, ...); its
        Decoding says what a row may write (model.decoding)."""
        if request is None:
            request = SampleRequest.of(**fields)
        elif fields:
            raise ModelError(f"generate_samples takes a request or keyword arguments, not both ({', '.join(fields)})")
        o = validated(request, self.vocab, source=f"checkpoint {str(self.path)!r}")
        seeds = _checked_seeds(seeds)
        if not seeds:
            return []
        d = o.decoding
        known = self.known_words(d.dictionary, strict=d.agree)
        constrained = d.known and not known.empty and not o.argmax
        n, dev = len(seeds), self.device
        logits, state = self._primed(o, n)
        table = self.prefix_table(d.dictionary, strict=d.agree) if constrained else None
        agree = self._grammar_table(table) if table is not None and d.agree else None
        end = EndOdds(self.post_lines) if agree is not None else None
        batch = Rows(n, o, self._tokens, table, agree, end)
        saved = SavedStarts(n, logits.shape[1], state, dev) if constrained else None
        keys = seed_keys(seeds)
        rows = np.arange(n)                          # original index of each active row
        picks = np.zeros(n, dtype=np.int64)          # picks made per row: its position in its random stream
        while True:
            lg = logits.detach().float().cpu().numpy()
            ids = self._pick(lg, keys[rows], picks[rows], o, batch.rules(rows))
            picks[rows] += 1
            keep, back, starts = batch.feed(rows, ids, _logprobs(lg, ids), picks[rows])
            if saved is not None and len(starts):
                saved.save(rows, starts, logits, state)
            if not keep.any():
                break
            if not keep.all():                       # finished rows leave the batch
                back = np.cumsum(keep)[back[keep[back]]] - 1
                state = FastStep.select(state, torch.from_numpy(np.flatnonzero(keep)).to(dev))
                rows, ids = rows[keep], ids[keep]
            logits, state = self.step(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(dev), state)
            if saved is not None and len(back):
                saved.restore(back, rows[back], logits, state)
        return batch.samples(seeds, known, self.grammar if d.dictionary == "ru" else None)

    def prefix_table(self, dictionary: str, strict: bool = False) -> PrefixTable:
        """The known words' prefix table over this model's vocabulary (kept between calls; begun anew
        at a call once it has grown past PREFIX_TABLE_LIMIT states)."""
        table = self._tables.get((dictionary, strict))
        if table is None or len(table) > PREFIX_TABLE_LIMIT:
            table = self._tables[(dictionary, strict)] = PrefixTable(self.known_words(dictionary, strict),
                                                                     self.vocab.tokens)
        return table

    def _grammar_table(self, table: PrefixTable) -> GrammarTable:
        if self._agree is None or self._agree.table is not table:
            self._agree = GrammarTable(self.grammar, table)
        return self._agree

    def _primed(self, o: SampleRequest, n: int) -> tuple[torch.Tensor, list]:
        """Logits and state after the shared prefix (a post gap, then the start text), run once with
        batch 1 and expanded to `n` rows."""
        dev = self.device
        prefix = self._prime_ids + list(self.vocab.encode(o.start_text)) if o.start_text else self._prime_ids
        state = self.step.zero_state(1, dev)
        logits = None
        for t in prefix:
            logits, state = self.step(torch.tensor([t], device=dev), state)
        if logits is None:   # no newline in the vocabulary and no start text: first token uniform
            logits = torch.zeros(1, len(self.vocab), device=dev)
        return logits.expand(n, -1), FastStep.expand(state, n)


def _checked_seeds(seeds) -> list:
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise ModelError(f"seed={s!r}: expected an integer")
    return seeds


