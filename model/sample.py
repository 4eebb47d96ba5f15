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

from model.checkpoint import TENSOR_KEYS, load_checkpoint
from model.distributed import resolve_device
from model.errors import ModelError, normalize_newlines
from model.fast_step import FastStep
from model.files import file_version
from model.lstm import model_from_checkpoint
from model.rng import seed_keys, uniforms
from model.vocab import Vocab, format_chars
from model.words import DICTIONARIES, WORD_MODES, KnownWords, words_of

MAX_LEADING_NEWLINES = 16
MAX_RETRIES = 20        # known-word decoding: resamples of one word before an unknown one is let through
STEP_FACTOR = 6         # known-word decoding: a row makes at most STEP_FACTOR * max_length picks


@dataclass(frozen=True)
class SampleOptions:
    temperature: float = 0.8
    start_text: str = ""
    max_length: int = 500
    top_k: int = 0
    argmax: bool = False
    words: str = "any"          # "known": only known words (model.words); "any": torch-rnn's sampling
    dictionary: str = "none"    # "ru": the OpenCorpora dictionary besides the checkpoint's lexicon

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
        if self.words not in WORD_MODES:
            raise ModelError(f"words={self.words!r}: expected one of {', '.join(map(repr, WORD_MODES))}")
        if self.dictionary not in DICTIONARIES:
            raise ModelError(f"dictionary={self.dictionary!r}: expected one of {', '.join(map(repr, DICTIONARIES))}")
        if not isinstance(self.start_text, str):
            raise ModelError(f"start_text={self.start_text!r}: expected a string")
        start = normalize_newlines(self.start_text)
        bad = vocab.missing(start)
        if bad:
            raise ModelError(f"start_text has characters not in the vocabulary of {source}: {format_chars(bad)}")
        if len(start) > ml:
            raise ModelError(f"start_text is {len(start)} characters, longer than max_length={ml}")
        return SampleOptions(float(t), start, ml, k, bool(self.argmax), self.words, self.dictionary)


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
    """Natural-log probability (temperature 1) of each row's picked token (numpy: at small batches
    torch's per-call overhead costs more than the arithmetic)."""
    lg = logits.detach().float().cpu().numpy()
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
        lex = ck.get("lexicon")
        self.lexicon: tuple[str, ...] = tuple(lex["words"]) if isinstance(lex, dict) else ()
        self.lexicon_min_count = lex.get("min_count") if isinstance(lex, dict) else None
        self._known: dict[str, KnownWords] = {}
        self._is_letter = [len(t) == 1 and t.isalpha() for t in self.vocab.tokens]
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

    def known_words(self, dictionary: str) -> KnownWords:
        """The words this model may write: its checkpoint's lexicon plus `dictionary` ("ru" | "none")."""
        kw = self._known.get(dictionary)
        if kw is None:
            kw = self._known[dictionary] = KnownWords(self.lexicon, dictionary)
        return kw

    def _pick(self, logits: torch.Tensor, keys: np.ndarray, steps, o: SampleOptions) -> np.ndarray:
        """Inverse-CDF sampling in float64, in place (the same arithmetic, so the same picks, as the
        allocating form lg / T - max, exp, cumsum, count of cdf <= u)."""
        lg = logits.detach().float().cpu().numpy()
        if o.argmax:
            return lg.argmax(axis=1)
        idx = None
        if 0 < o.top_k < lg.shape[1]:
            idx = np.argsort(-lg, axis=1, kind="stable")[:, :o.top_k]
            lg = np.take_along_axis(lg, idx, axis=1)
        x = lg.astype(np.float64)
        np.divide(x, o.temperature, out=x)
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        np.cumsum(x, axis=1, out=x)
        u = uniforms(keys, steps) * x[:, -1]
        over = x > u[:, None]
        j = over.argmax(axis=1)                      # first cdf > u = count of cdf <= u
        rows = np.arange(len(j))
        j[~over[rows, j]] = lg.shape[1] - 1          # none above u (rounding): the last token
        return j if idx is None else idx[rows, j]

    def generate(self, seeds, temperature: float = 0.8, start_text: str = "", max_length: int = 500,
                 top_k: int = 0, argmax: bool = False, words: str = "any", dictionary: str = "none") -> list[str]:
        """One post per seed: start_text + generated text up to the post gap (not included),
        at most max_length characters, trailing whitespace stripped."""
        return [s.text for s in self.generate_samples(seeds, temperature, start_text, max_length, top_k, argmax,
                                                      words, dictionary)]

    @torch.inference_mode()
    def generate_samples(self, seeds, temperature: float = 0.8, start_text: str = "", max_length: int = 500,
                         top_k: int = 0, argmax: bool = False, words: str = "any",
                         dictionary: str = "none") -> list[Sample]:
        """`generate`, with each post's measures (`Sample`).

        words="known": known-word decoding. When a row's word (a run of letters) can no longer become
        a known word (`known_words(dictionary)`: no known word starts so), or it ends (a non-letter
        follows) and is not known, the row goes back to where the word began (its recurrent state
        and logits there, saved when the word began) and samples again with its next random numbers;
        after MAX_RETRIES tries at one place the word is let through. A word begun in the start text
        is not checked. words="any" is torch-rnn's unconstrained sampling.
        """
        o = SampleOptions(temperature, start_text, max_length, top_k, argmax, words, dictionary).validate(
            self.vocab, source=f"checkpoint {str(self.path)!r}")
        seeds = list(seeds)
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise ModelError(f"seed={s!r}: expected an integer")
        if not seeds:
            return []
        known = self.known_words(o.dictionary)
        constrained = o.words == "known" and not known.empty and not o.argmax
        dev, tokens_of, is_letter = self.device, self.vocab.tokens, self._is_letter
        # the shared prefix (a post gap, then the start text) is run once with batch 1
        prefix = self._prime_ids + list(self.vocab.encode(o.start_text)) if o.start_text else self._prime_ids
        state = self.step.zero_state(1, dev)
        logits = None
        for t in prefix:
            logits, state = self.step(torch.tensor([t], device=dev), state)
        n = len(seeds)
        keys = seed_keys(seeds)
        rows = np.arange(n)                          # original index of each active row
        picks = np.zeros(n, dtype=np.int64)          # picks made per row: its position in its random stream
        leading = [0] * n                            # blank lines skipped before an empty-start post
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
        max_picks = (STEP_FACTOR * budget if constrained else budget) + MAX_LEADING_NEWLINES + 1
        if constrained:
            word_at = [-1] * n                       # where the row's current word began in its text, -1: none
            retries = [0] * n
            lp_at = [(0.0, 0)] * n
            saved_logits = torch.empty(n, logits.shape[1], device=dev)
            saved_state = torch.empty(n, _flat(state).shape[1], device=dev)
        while True:
            ids = self._pick(logits, keys[rows], picks[rows], o)
            picks[rows] += 1
            lp = _logprobs(logits, ids)
            keep = np.ones(len(rows), dtype=bool)
            back: list[int] = []                     # rows (positions j) going back to their word's start
            save_j: list[int] = []
            for j, (r, t) in enumerate(zip(rows, ids)):
                t = int(t)
                ch = tokens_of[t]
                buf = texts[r]
                if constrained:
                    w0 = word_at[r]
                    if is_letter[t]:
                        if w0 < 0 and not prev[r].isalpha():
                            word_at[r] = w0 = len(buf)   # a word begins: remember the state before it
                            lp_at[r] = (lp_sum[r], lp_count[r])
                            save_j.append(j)
                        bad = w0 >= 0 and retries[r] < MAX_RETRIES and not known.prefix_ok("".join(buf[w0:]) + ch)
                    elif w0 >= 0:
                        word_at[r] = -1
                        bad = retries[r] < MAX_RETRIES and "".join(buf[w0:]) not in known
                        if not bad:
                            retries[r] = 0
                    else:
                        bad = False
                        retries[r] = 0
                    if bad:                          # back to where the word began, sample it again
                        retries[r] += 1
                        word_at[r] = -1
                        del buf[w0:]
                        prev[r] = buf[-1] if buf else last
                        lp_sum[r], lp_count[r] = lp_at[r]
                        back.append(j)
                        if picks[r] >= max_picks:
                            out[r] = _finish_capped(o.start_text + "".join(buf), start_len)
                            keep[j] = False
                        continue
                if ch == "\n" and prev[r] == "\n":
                    out[r] = (o.start_text + "".join(buf)).rstrip()
                    gap[r] = True
                    lp_sum[r] += lp[j]
                    lp_count[r] += 1
                    keep[j] = False
                    continue
                if ch == "\n" and not buf and start_len == 0:
                    if leading[r] >= MAX_LEADING_NEWLINES:
                        out[r] = ""
                        keep[j] = False
                    leading[r] += 1
                    continue  # leading blank lines of an empty-start post: fed, not kept
                buf.append(ch)
                prev[r] = ch
                lp_sum[r] += lp[j]
                lp_count[r] += 1
                if len(buf) >= budget or picks[r] >= max_picks:
                    out[r] = _finish_capped(o.start_text + "".join(buf), start_len)
                    keep[j] = False
            if save_j:
                sj = torch.tensor(save_j, device=dev)
                sr = torch.from_numpy(rows[save_j]).to(dev)
                saved_logits[sr] = logits[sj]
                saved_state[sr] = _flat(state)[sj]
            if not keep.any():
                break
            if not keep.all():
                sel = torch.from_numpy(np.flatnonzero(keep)).to(dev)
                state = FastStep.select(state, sel)
                back = [int(x) for x in np.cumsum(keep)[[j for j in back if keep[j]]] - 1] if back else back
                back_rows = rows[np.flatnonzero(keep)]
                rows, ids = rows[keep], ids[keep]
            else:
                back_rows = rows
            logits, state = self.step(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(dev), state)
            if back:
                bj = torch.tensor(back, device=dev)
                br = torch.from_numpy(back_rows[back]).to(dev)
                logits[bj] = saved_logits[br]
                _set_flat(state, bj, saved_state[br])
        for r in range(n):   # rows still open (only when budget is exhausted by leading newlines)
            if out[r] is None:
                out[r] = _finish_capped(o.start_text + "".join(texts[r]), start_len)
        samples = []
        for r in range(n):
            k, w = known.count(out[r]) if not known.empty else (0, 0)
            share = (k / w if w else 0.0) if not known.empty else None
            samples.append(Sample(out[r], int(seeds[r]), gap[r], float(lp_sum[r] / max(1, lp_count[r])), share,
                                  w if not known.empty else len(words_of(out[r]))))
        return samples


def _flat(state: list) -> torch.Tensor:
    """A step state (per layer h, or (h, c)) as one (B, S) tensor."""
    parts = []
    for s in state:
        parts.extend(s if isinstance(s, tuple) else (s,))
    return torch.cat(parts, 1)


def _set_flat(state: list, rows: torch.Tensor, flat: torch.Tensor) -> None:
    """Write `flat` (from `_flat`) into `state`'s `rows`, in place."""
    i = 0
    for s in state:
        for t in (s if isinstance(s, tuple) else (s,)):
            t[rows] = flat[:, i:i + t.shape[1]]
            i += t.shape[1]
