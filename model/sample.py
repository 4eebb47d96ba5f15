"""Sampling: a Generator loads a checkpoint once and serves many batched requests.

Each post depends only on (checkpoint, seed, temperature, start_text, top_k, max_length, argmax):
its randomness is a per-post counter-based stream (model.rng), sampled by inverse CDF, and rows
that finish (at the post gap, a blank line) leave the batch. The recurrent step is the hand-fused
model.fast_step.FastStep, not nn.LSTM per character.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import TENSOR_KEYS, file_version, load_checkpoint
from model.distributed import resolve_device
from model.errors import ModelError, normalize_newlines
from model.fast_step import FastStep
from model.lstm import model_from_checkpoint
from model.rng import seed_keys, uniforms
from model.vocab import Vocab, format_chars

GAP = "\n\n"
MAX_LEADING_NEWLINES = 16


@dataclass(frozen=True)
class SampleOptions:
    temperature: float = 0.8
    start_text: str = ""
    max_length: int = 500
    top_k: int = 0
    argmax: bool = False

    def validate(self, vocab: Vocab, source: str = "checkpoint") -> "SampleOptions":
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) or not t > 0 or math.isinf(t):
            raise ModelError(f"temperature={t!r}: expected a finite number > 0")
        ml = self.max_length
        if isinstance(ml, bool) or not isinstance(ml, int) or ml <= 0:
            raise ModelError(f"max_length={ml!r}: expected a positive integer")
        k = self.top_k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ModelError(f"top_k={k!r}: expected an integer >= 0 (0 = no limit)")
        if not isinstance(self.start_text, str):
            raise ModelError(f"start_text={self.start_text!r}: expected a string")
        start = normalize_newlines(self.start_text)
        bad = vocab.missing(start)
        if bad:
            raise ModelError(f"start_text has characters not in the vocabulary of {source}: {format_chars(bad)}")
        if len(start) > ml:
            raise ModelError(f"start_text is {len(start)} characters, longer than max_length={ml}")
        return SampleOptions(float(t), start, ml, k, bool(self.argmax))


def _finish_capped(text: str, start_len: int) -> str:
    """Cut a post that hit the length cap at its last line end, when there is one after the start."""
    cut = text.rfind("\n")
    if cut >= max(start_len, 1):
        text = text[:cut]
    return text.rstrip()


@dataclass(frozen=True)
class Sample:
    """One generated post and its measures.

    reached_gap: the post ended at the post gap (a blank line); False when it was cut at max_length.
    logprob_nats_per_char: mean natural-log probability, under the model at temperature 1, of the
        characters the model emitted for this post (its text after the start text, plus the gap).
    known_share: share of its words (runs of letters) that are known words (see model.words), or
        None when the Generator has nothing to judge words by (no lexicon, no dictionary).
    words: how many words (runs of letters) the text has.
    """
    text: str
    seed: int
    reached_gap: bool
    logprob_nats_per_char: float
    known_share: float | None = None
    words: int = 0


def _logprobs(logits: torch.Tensor, ids: np.ndarray) -> np.ndarray:
    """Natural-log probability (temperature 1) of each row's picked token."""
    lg = logits.detach().float()
    picked = lg.gather(1, torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(lg.device)[:, None])[:, 0]
    return (picked - torch.logsumexp(lg, dim=1)).cpu().numpy().astype(np.float64)


class Generator:
    def __init__(self, ck: dict, path: Path, device: torch.device, version: str) -> None:
        self.path = path
        self.device = device
        self.version = version
        self.vocab = Vocab(ck["idx_to_token"])
        self.checkpoint_meta = {k: v for k, v in ck.items() if k not in TENSOR_KEYS}
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

    def _pick(self, logits: torch.Tensor, keys: np.ndarray, step: int, o: SampleOptions) -> np.ndarray:
        lg = logits.detach().float().cpu().numpy().astype(np.float64)
        if o.argmax:
            return lg.argmax(axis=1)
        idx = None
        if 0 < o.top_k < lg.shape[1]:
            idx = np.argsort(-lg, axis=1, kind="stable")[:, :o.top_k]
            lg = np.take_along_axis(lg, idx, axis=1)
        x = lg / o.temperature
        x -= x.max(axis=1, keepdims=True)
        cdf = np.cumsum(np.exp(x), axis=1)
        u = uniforms(keys, step)[:, None] * cdf[:, -1:]
        j = np.minimum((cdf <= u).sum(axis=1), lg.shape[1] - 1)
        return j if idx is None else idx[np.arange(len(j)), j]

    def generate(self, seeds, temperature: float = 0.8, start_text: str = "", max_length: int = 500,
                 top_k: int = 0, argmax: bool = False) -> list[str]:
        """One post per seed: start_text + generated text up to the post gap (not included),
        at most max_length characters, trailing whitespace stripped."""
        return [s.text for s in self.generate_samples(seeds, temperature, start_text, max_length, top_k, argmax)]

    @torch.inference_mode()
    def generate_samples(self, seeds, temperature: float = 0.8, start_text: str = "", max_length: int = 500,
                         top_k: int = 0, argmax: bool = False) -> list[Sample]:
        """`generate`, with each post's measures (`Sample`)."""
        o = SampleOptions(temperature, start_text, max_length, top_k, argmax).validate(
            self.vocab, source=f"checkpoint {str(self.path)!r}")
        seeds = list(seeds)
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise ModelError(f"seed={s!r}: expected an integer")
        if not seeds:
            return []
        dev, tokens_of = self.device, self.vocab.tokens
        # the shared prefix (a post gap, then the start text) is run once with batch 1
        prefix = self._prime_ids + list(self.vocab.encode(o.start_text)) if o.start_text else self._prime_ids
        state = self.step.zero_state(1, dev)
        logits = None
        for t in prefix:
            logits, state = self.step(torch.tensor([t], device=dev), state)
        n = len(seeds)
        keys = seed_keys(seeds)
        rows = np.arange(n)                          # original index of each active row
        texts = [[] for _ in range(n)]               # generated characters per post
        out: list = [None] * n
        gap = [False] * n
        lp_sum = np.zeros(n)                         # log-probability of the emitted characters
        lp_count = np.zeros(n, dtype=np.int64)
        start_len = len(o.start_text)
        last = o.start_text[-1:] if o.start_text else ""
        prev = [last] * n
        if logits is None:   # no newline in the vocabulary and no start text: first token uniform
            logits = torch.zeros(1, len(self.vocab), device=dev)
        logits = logits.expand(n, -1)
        state = FastStep.expand(state, n)
        budget = o.max_length - start_len
        for step in range(budget + MAX_LEADING_NEWLINES + 1):
            ids = self._pick(logits, keys[rows], step, o)
            lp = _logprobs(logits, ids)
            keep = np.ones(len(rows), dtype=bool)
            for j, (r, t) in enumerate(zip(rows, ids)):
                ch = tokens_of[int(t)]
                buf = texts[r]
                if ch == "\n" and prev[r] == "\n":
                    out[r] = (o.start_text + "".join(buf)).rstrip()
                    gap[r] = True
                    lp_sum[r] += lp[j]
                    lp_count[r] += 1
                    keep[j] = False
                    continue
                if ch == "\n" and not buf and start_len == 0:
                    if step >= MAX_LEADING_NEWLINES:
                        out[r] = ""
                        keep[j] = False
                    continue  # leading blank lines of an empty-start post: fed, not kept
                buf.append(ch)
                prev[r] = ch
                lp_sum[r] += lp[j]
                lp_count[r] += 1
                if len(buf) >= budget:
                    out[r] = _finish_capped(o.start_text + "".join(buf), start_len)
                    keep[j] = False
            if not keep.any():
                break
            if not keep.all():
                sel = torch.from_numpy(np.flatnonzero(keep)).to(dev)
                state = FastStep.select(state, sel)
                rows, ids = rows[keep], ids[keep]
            logits, state = self.step(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(dev), state)
        for r in range(n):   # rows still open (only when budget is exhausted by leading newlines)
            if out[r] is None:
                out[r] = _finish_capped(o.start_text + "".join(texts[r]), start_len)
        return [Sample(out[r], int(seeds[r]), gap[r], float(lp_sum[r] / max(1, lp_count[r])))
                for r in range(n)]
