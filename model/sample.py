"""Sampling: a Generator loads a checkpoint once and serves many batched requests.

Each post depends only on (checkpoint, seed, temperature, start_text, top_k, max_length, argmax):
its randomness is a per-post counter-based stream (model.rng), sampled by inverse CDF, and rows
that finish (at the post gap, a blank line) leave the batch. The recurrent step is the hand-fused
model.fast_step.FastStep, not nn.LSTM per character.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
from model.sample_options import DEFAULT_TEMPERATURE, SampleOptions
from model.words import KnownWords, words_of

MAX_LEADING_NEWLINES = 16
MAX_RETRIES = 20        # known-word decoding: resamples of one word before an unknown one is let through
STEP_FACTOR = 6         # known-word decoding: a row makes at most STEP_FACTOR * max_length picks


@dataclass(frozen=True)
class SampleRequest(SampleOptions):
    """One call's options: how to sample (model.sample_options.SampleOptions), its start text, argmax."""

    start_text: str = ""
    argmax: bool = False

    def validate(self, vocab: Vocab, source: str = "checkpoint") -> "SampleRequest":
        t = self.temperature
        if isinstance(t, str):
            raise ModelError(f"temperature={t!r}: expected a finite number > 0 (the caller resolves \"auto\")")
        for key, expected in self.problems().items():
            raise ModelError(f"{key}={getattr(self, key)!r}: expected {expected}")
        if not isinstance(self.start_text, str):
            raise ModelError(f"start_text={self.start_text!r}: expected a string")
        start = normalize_newlines(self.start_text)
        bad = vocab.missing(start)
        if bad:
            raise ModelError(f"start_text has characters not in the vocabulary of {source}: {format_chars(bad)}")
        if len(start) > self.max_length:
            raise ModelError(f"start_text is {len(start)} characters, longer than max_length={self.max_length}")
        return replace(self, temperature=float(t), start_text=start, argmax=bool(self.argmax))


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

    def _pick(self, logits: torch.Tensor, keys: np.ndarray, steps, o: SampleRequest) -> np.ndarray:
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

    def generate(self, seeds, temperature: float = DEFAULT_TEMPERATURE, start_text: str = "",
                 max_length: int = SampleOptions.max_length,
                 top_k: int = 0, argmax: bool = False, words: str = "any", dictionary: str = "none") -> list[str]:
        """One post per seed: start_text + generated text up to the post gap (not included),
        at most max_length characters, trailing whitespace stripped."""
        return [s.text for s in self.generate_samples(seeds, temperature, start_text, max_length, top_k, argmax,
                                                      words, dictionary)]

    @torch.inference_mode()
    def generate_samples(self, seeds, temperature: float = DEFAULT_TEMPERATURE, start_text: str = "",
                         max_length: int = SampleOptions.max_length, top_k: int = 0, argmax: bool = False,
                         words: str = "any", dictionary: str = "none") -> list[Sample]:
        """`generate`, with each post's measures (`Sample`).

        words="known": known-word decoding. When a row's word (a run of letters) can no longer become
        a known word (`known_words(dictionary)`: no known word starts so), or it ends (a non-letter
        follows) and is not known, the row goes back to where the word began (its recurrent state
        and logits there, saved when the word began) and samples again with its next random numbers;
        after MAX_RETRIES tries at one place the word is let through. A word begun in the start text
        is not checked. words="any" is torch-rnn's unconstrained sampling.
        """
        o = SampleRequest(temperature=temperature, max_length=max_length, top_k=top_k, words=words,
                          dictionary=dictionary, start_text=start_text, argmax=argmax).validate(
            self.vocab, source=f"checkpoint {str(self.path)!r}")
        seeds = _checked_seeds(seeds)
        if not seeds:
            return []
        known = self.known_words(o.dictionary)
        constrained = o.words == "known" and not known.empty and not o.argmax
        n, dev = len(seeds), self.device
        logits, state = self._primed(o, n)
        posts = _Posts(n, o, constrained)
        guard = _WordGuard(n, known, self._is_letter, logits.shape[1], _flat(state).shape[1], dev) \
            if constrained else None
        keys = seed_keys(seeds)
        rows = np.arange(n)                          # original index of each active row
        picks = np.zeros(n, dtype=np.int64)          # picks made per row: its position in its random stream
        while True:
            ids = self._pick(logits, keys[rows], picks[rows], o)
            picks[rows] += 1
            keep, back = self._feed(posts, guard, rows, ids, _logprobs(logits, ids), picks)
            if guard is not None:
                guard.save_word_starts(rows, logits, state)
            if not keep.any():
                break
            if not keep.all():                       # finished rows leave the batch
                back = [int(x) for x in np.cumsum(keep)[[j for j in back if keep[j]]] - 1] if back else back
                state = FastStep.select(state, torch.from_numpy(np.flatnonzero(keep)).to(dev))
                rows, ids = rows[keep], ids[keep]
            logits, state = self.step(torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(dev), state)
            if back and guard is not None:
                guard.take_back_states(back, rows[back], logits, state)
        posts.close_open_rows()
        return posts.samples(seeds, known)

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

    def _feed(self, posts: "_Posts", guard: "_WordGuard | None", rows: np.ndarray, ids: np.ndarray,
              lp: np.ndarray, picks: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Give each active row its picked character. Returns which rows stay in the batch and the
        rows (positions in `rows`) that go back to where their word began."""
        keep = np.ones(len(rows), dtype=bool)
        back: list[int] = []
        tokens_of = self.vocab.tokens
        for j, (r, t) in enumerate(zip(rows.tolist(), ids.tolist())):
            ch = tokens_of[t]
            if guard is not None and guard.rejects(posts, r, j, t, ch):
                guard.take_back(posts, r)
                back.append(j)
                if picks[r] >= posts.max_picks:
                    posts.finish_capped(r)
                    keep[j] = False
            elif not posts.emit(r, ch, lp[j], picks[r]):
                keep[j] = False
        return keep, back


def _checked_seeds(seeds) -> list:
    seeds = list(seeds)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise ModelError(f"seed={s!r}: expected an integer")
    return seeds


class _Posts:
    """The posts of one `generate_samples` call as they grow, indexed by the row they started in."""

    def __init__(self, n: int, o: SampleRequest, constrained: bool) -> None:
        self.o = o
        self.start_len = len(o.start_text)
        self.last = o.start_text[-1:] if o.start_text else ""   # the character before the first generated one
        self.budget = o.max_length - self.start_len
        self.max_picks = (STEP_FACTOR * self.budget if constrained else self.budget) + MAX_LEADING_NEWLINES + 1
        self.texts: list[list[str]] = [[] for _ in range(n)]    # generated characters per post
        self.prev = [self.last] * n                   # each post's last character
        self.leading = [0] * n                        # blank lines skipped before an empty-start post
        self.out: list = [None] * n                   # the finished text
        self.gap = [False] * n                        # it ended at the post gap
        self.lp_sum = np.zeros(n)                     # log-probability of the emitted characters
        self.lp_count = np.zeros(n, dtype=np.int64)

    def emit(self, r: int, ch: str, lp: float, picks: int) -> bool:
        """Add `ch` (log-probability `lp`, the row's `picks`-th pick) to post `r`; False: it is finished."""
        buf = self.texts[r]
        if ch == "\n" and self.prev[r] == "\n":      # the post gap: the post is done
            self.out[r] = (self.o.start_text + "".join(buf)).rstrip()
            self.gap[r] = True
            self.lp_sum[r] += lp
            self.lp_count[r] += 1
            return False
        if ch == "\n" and not buf and self.start_len == 0:
            if self.leading[r] >= MAX_LEADING_NEWLINES:
                self.out[r] = ""
                self.leading[r] += 1
                return False
            self.leading[r] += 1
            return True          # leading blank lines of an empty-start post: fed, not kept
        buf.append(ch)
        self.prev[r] = ch
        self.lp_sum[r] += lp
        self.lp_count[r] += 1
        if len(buf) >= self.budget or picks >= self.max_picks:
            self.finish_capped(r)
            return False
        return True

    def finish_capped(self, r: int) -> None:
        self.out[r] = _finish_capped(self.o.start_text + "".join(self.texts[r]), self.start_len)

    def close_open_rows(self) -> None:
        """Rows still open (only when the budget is exhausted by leading newlines) end where they are."""
        for r, text in enumerate(self.out):
            if text is None:
                self.finish_capped(r)

    def samples(self, seeds: list, known: KnownWords) -> list[Sample]:
        out = []
        for r, text in enumerate(self.out):
            k, w = known.count(text) if not known.empty else (0, len(words_of(text)))
            share = (k / w if w else 0.0) if not known.empty else None
            lp = float(self.lp_sum[r] / max(1, self.lp_count[r]))
            out.append(Sample(text, int(seeds[r]), self.gap[r], lp, share, w))
        return out


class _WordGuard:
    """Known-word decoding's bookkeeping per row: where its current word began (in its text, and the
    logits, recurrent state and log-probability there), the word so far, and the retries at that place."""

    def __init__(self, n: int, known: KnownWords, is_letter: list[bool], vocab_size: int, state_size: int,
                 device: torch.device) -> None:
        self.known, self.is_letter, self.device = known, is_letter, device
        self.word_at = [-1] * n                       # where the row's current word began in its text, -1: none
        self.word = [""] * n                          # the current word's letters so far
        self.retries = [0] * n
        self.lp_at = [(0.0, 0)] * n
        self.saved_logits = torch.empty(n, vocab_size, device=device)
        self.saved_state = torch.empty(n, state_size, device=device)
        self.to_save: list[int] = []                  # positions (in this step's rows) where a word begins

    def rejects(self, posts: _Posts, r: int, j: int, t: int, ch: str) -> bool:
        """Does picking `ch` (token `t`) for row `r` (position `j`) make its word one no known word
        can be? Tracks the word as it begins, grows and ends."""
        w0 = self.word_at[r]
        if self.is_letter[t]:
            if w0 < 0 and not posts.prev[r].isalpha():   # a word begins: remember the state before it
                self.word_at[r] = w0 = len(posts.texts[r])
                self.word[r] = ""
                self.lp_at[r] = (posts.lp_sum[r], posts.lp_count[r])
                self.to_save.append(j)
            if w0 < 0:
                return False
            word = self.word[r] + ch
            if self.retries[r] < MAX_RETRIES and not self.known.prefix_ok(word):
                return True
            self.word[r] = word
            return False
        if w0 >= 0:                                   # the word ends
            if self.retries[r] < MAX_RETRIES and self.word[r] not in self.known:
                return True
            self.word_at[r] = -1
        self.retries[r] = 0
        return False

    def take_back(self, posts: _Posts, r: int) -> None:
        """Row `r` goes back to where its word began (the state there comes in `take_back_states`)."""
        self.retries[r] += 1
        buf = posts.texts[r]
        del buf[self.word_at[r]:]
        self.word_at[r] = -1
        posts.prev[r] = buf[-1] if buf else posts.last
        posts.lp_sum[r], posts.lp_count[r] = self.lp_at[r]

    def save_word_starts(self, rows: np.ndarray, logits: torch.Tensor, state: list) -> None:
        if self.to_save:
            sj = torch.tensor(self.to_save, device=self.device)
            sr = torch.from_numpy(rows[self.to_save]).to(self.device)
            self.saved_logits[sr] = logits[sj]
            self.saved_state[sr] = _flat(state)[sj]
            self.to_save = []

    def take_back_states(self, back: list[int], back_rows: np.ndarray, logits: torch.Tensor, state: list) -> None:
        bj = torch.tensor(back, device=self.device)
        br = torch.from_numpy(back_rows).to(self.device)
        logits[bj] = self.saved_logits[br]
        _set_flat(state, bj, self.saved_state[br])


def _flat(state: list) -> torch.Tensor:
    """A step state (per layer h, or (h, c)) as one (B, S) tensor."""
    parts: list[torch.Tensor] = []
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
