"""Sampling: a Generator loads a checkpoint once and serves many batched requests.

Each post depends only on (checkpoint, seed, temperature, start_text, top_k, max_length, argmax):
its randomness is a per-post counter-based stream (model.rng), sampled by inverse CDF, and rows
that finish (at the post gap, a blank line) leave the batch. The recurrent step is the hand-fused
model.fast_step.FastStep, not nn.LSTM per character.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

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
from model.words import KnownWords, PrefixTable, words_of

MAX_LEADING_NEWLINES = 16
MAX_RETRIES = 20        # known-word decoding: resamples of one word before an unknown one is let through
STEP_FACTOR = 6         # known-word decoding: a row makes at most STEP_FACTOR * max_length picks
PREFIX_TABLE_LIMIT = 1 << 15   # prefix-table states kept between calls (4 bytes per state and letter of the vocabulary)


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
        lex = ck.get("lexicon")
        self.lexicon: tuple[str, ...] = tuple(lex["words"]) if isinstance(lex, dict) else ()
        self.lexicon_min_count = lex.get("min_count") if isinstance(lex, dict) else None
        self._known: dict[str, KnownWords] = {}
        self._tables: dict[str, PrefixTable] = {}
        self._tokens = _Tokens.of(self.vocab.tokens)
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

    @staticmethod
    def _pick(lg: np.ndarray, keys: np.ndarray, steps, o: SampleRequest,
              rules: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Inverse-CDF sampling in float64 from the step's logits (float32, numpy), in place (the same
        arithmetic, so the same picks, as the allocating form lg / T - max, exp, cumsum, count of cdf <= u).

        `rules` (`_Batch.quote_rules`) rewrites a copy of the logits in place before the temperature:
        the characters a row may not pick get -inf (their odds may go to another character)."""
        masked = rules is not None
        if rules is not None and (o.argmax or 0 < o.top_k < lg.shape[1]):
            lg = lg.astype(np.float64)
            rules(lg)
            rules = None
        if o.argmax:
            return lg.argmax(axis=1)
        idx = None
        if 0 < o.top_k < lg.shape[1]:
            idx = np.argsort(-lg, axis=1, kind="stable")[:, :o.top_k]
            lg = np.take_along_axis(lg, idx, axis=1)
        x = lg.astype(np.float64)
        if rules is not None:
            rules(x)
        np.divide(x, o.temperature, out=x)
        x -= x.max(axis=1, keepdims=True)
        np.exp(x, out=x)
        torch.from_numpy(x).cumsum_(1)               # numpy's sequential sums, bit for bit, ~7x faster
        u = uniforms(keys, steps) * x[:, -1]
        over = x > u[:, None]
        j = over.argmax(axis=1)                      # first cdf > u = count of cdf <= u
        rows = np.arange(len(j))
        none = ~over[rows, j]                        # none above u (rounding): the last token
        j[none] = lg.shape[1] - 1
        if masked and none.any():                    # ... that may be picked: the last to add to the cdf
            j[none] = (x[none] >= x[none, -1:]).argmax(axis=1)
        return j if idx is None else idx[rows, j]

    def generate(self, seeds, temperature: float = DEFAULT_TEMPERATURE, start_text: str = "",
                 max_length: int = SampleOptions.max_length,
                 top_k: int = 0, argmax: bool = False, words: str = "any", dictionary: str = "none",
                 quotes: str = "any") -> list[str]:
        """One post per seed: start_text + generated text up to the post gap (not included),
        at most max_length characters, trailing whitespace stripped."""
        return [s.text for s in self.generate_samples(seeds, temperature, start_text, max_length, top_k, argmax,
                                                      words, dictionary, quotes)]

    @torch.inference_mode()
    def generate_samples(self, seeds, temperature: float = DEFAULT_TEMPERATURE, start_text: str = "",
                         max_length: int = SampleOptions.max_length, top_k: int = 0, argmax: bool = False,
                         words: str = "any", dictionary: str = "none", quotes: str = "any") -> list[Sample]:
        """`generate`, with each post's measures (`Sample`).

        words="known": known-word decoding. When a row's word (a run of letters) can no longer become
        a known word (`known_words(dictionary)`: no known word starts so), or it ends (a non-letter
        follows) and is not known, the row goes back to where the word began (its recurrent state
        and logits there, saved when the word began) and samples again with its next random numbers;
        after MAX_RETRIES tries at one place the word is let through. A word begun in the start text
        is not checked. words="any" is torch-rnn's unconstrained sampling.

        quotes="balanced": a quote opened on a line closes on that line. While a row has a " or a «
        open, it may not end the line: the line end's probability goes to the closing quote (" first,
        then »), so where the model would end the line it closes the quote; but a quote does not close
        right after it opened (no empty «» or ""). With no « open, » gets probability 0, and so does a
        " right after a letter or digit with none open (it would close, not open, a quote). The other
        characters keep their odds; the start text's last line counts. quotes="any": no such rule.

        The rows' bookkeeping is arrays over the batch (`_Batch`), the words' prefixes a table the
        batch reads at once (`model.words.PrefixTable`): no Python loop per row and step.
        """
        o = SampleRequest(temperature=temperature, max_length=max_length, top_k=top_k, words=words,
                          dictionary=dictionary, quotes=quotes, start_text=start_text, argmax=argmax).validate(
            self.vocab, source=f"checkpoint {str(self.path)!r}")
        seeds = _checked_seeds(seeds)
        if not seeds:
            return []
        known = self.known_words(o.dictionary)
        constrained = o.words == "known" and not known.empty and not o.argmax
        n, dev = len(seeds), self.device
        logits, state = self._primed(o, n)
        batch = _Batch(n, o, self._tokens, self.prefix_table(o.dictionary) if constrained else None)
        saved = _SavedStarts(n, logits.shape[1], state, dev) if constrained else None
        keys = seed_keys(seeds)
        rows = np.arange(n)                          # original index of each active row
        picks = np.zeros(n, dtype=np.int64)          # picks made per row: its position in its random stream
        while True:
            lg = logits.detach().float().cpu().numpy()
            ids = self._pick(lg, keys[rows], picks[rows], o, batch.quote_rules(rows))
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
        return batch.samples(seeds, known)

    def prefix_table(self, dictionary: str) -> PrefixTable:
        """The known words' prefix table over this model's vocabulary (kept between calls; begun anew
        at a call once it has grown past PREFIX_TABLE_LIMIT states)."""
        table = self._tables.get(dictionary)
        if table is None or len(table) > PREFIX_TABLE_LIMIT:
            table = self._tables[dictionary] = PrefixTable(self.known_words(dictionary), self.vocab.tokens)
        return table

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


@dataclass(frozen=True)
class _Tokens:
    """What the batch needs to know of each token id, as arrays."""

    strings: list[str]
    alpha: np.ndarray         # str.isalpha(): what the character before a word must not be
    alnum: np.ndarray         # str.isalnum(): a " right after one closes a quote, it opens none
    newline: int              # the id of "\n", -1 when the vocabulary has none
    opening: int              # the ids of «, » and ", -1 for one the vocabulary lacks
    closing: int
    straight: int

    @classmethod
    def of(cls, tokens: list[str]) -> "_Tokens":
        alpha = np.array([t.isalpha() for t in tokens], dtype=bool)
        alnum = np.array([t.isalnum() for t in tokens], dtype=bool)
        at = lambda t: tokens.index(t) if t in tokens else -1  # noqa: E731
        pair = OPENING in tokens and CLOSING in tokens       # a « the vocabulary cannot close is not counted
        return cls(list(tokens), alpha, alnum, at("\n"), at(OPENING) if pair else -1, at(CLOSING) if pair else -1,
                   at(STRAIGHT))


OPEN, GAP, CAPPED, EMPTY = 0, 1, 2, 3     # a row's status
OPENING, CLOSING, STRAIGHT = "«", "»", '"'   # the quotes quotes="balanced" keeps balanced on each line


def _quotes_of(line: str) -> tuple[int, bool, bool]:
    """(« open, " open, a stray) at the end of `line`, as quotes="balanced" counts them. A stray is a
    quote it would not write: a » with no « open, a " right after a letter or digit with none open
    (that closes, it opens nothing: it stays closed), or a quote closed right after it opened."""
    depth, straight, stray, prev = 0, False, False, ""
    for ch in line:
        if ch == OPENING:
            depth += 1
        elif ch == CLOSING:
            stray |= depth == 0 or prev == OPENING
            depth = max(0, depth - 1)
        elif ch == STRAIGHT:
            if straight:
                stray |= prev == STRAIGHT
                straight = False
            elif prev.isalnum():
                stray = True
            else:
                straight = True
        prev = ch
    return depth, straight, stray


def unbalanced_lines(text: str) -> list[str]:
    """The lines of `text` that quotes="balanced" would not have written: a « or " left open, a »
    with no « before it, a " opening right after a letter or digit, an empty «» or ""."""
    return [line for line in text.split("\n") if any(_quotes_of(line))]


class _Batch:
    """The posts of one `generate_samples` call as they grow, indexed by the row they started in:
    token buffers, lengths and each row's known-word bookkeeping (where its current word began, its
    state in the prefix table, the log-probability there, the retries at that place), all arrays."""

    def __init__(self, n: int, o: SampleRequest, tokens: _Tokens, table: PrefixTable | None) -> None:
        self.o, self.tok, self.table = o, tokens, table
        self.start_len = len(o.start_text)
        last = o.start_text[-1:]                      # the character before the first generated one
        self.last_nl, self.last_alpha = last == "\n", last.isalpha()
        self.budget = o.max_length - self.start_len
        self.max_picks = (STEP_FACTOR * self.budget if table is not None else self.budget) + MAX_LEADING_NEWLINES + 1
        self.buf = np.zeros((n, self.budget + 1), dtype=np.int64)   # generated token ids per post
        self.length = np.zeros(n, dtype=np.int64)
        self.prev_nl = np.full(n, self.last_nl)       # each post's last character is a newline
        self.prev_alpha = np.full(n, self.last_alpha)  # ... is a letter (str.isalpha)
        self.leading = np.zeros(n, dtype=np.int64)    # blank lines skipped before an empty-start post
        self.status = np.full(n, OPEN, dtype=np.int8)
        self.lp_sum = np.zeros(n)                     # log-probability of the emitted characters
        self.lp_count = np.zeros(n, dtype=np.int64)
        self.word_at = np.full(n, -1, dtype=np.int64)   # where the row's current word began, -1: none
        self.word = np.zeros(n, dtype=np.int64)         # the word so far: its state in the prefix table
        self.retries = np.zeros(n, dtype=np.int64)
        self.lp_at = np.zeros(n)
        self.count_at = np.zeros(n, dtype=np.int64)
        self.quotes = o.quotes == "balanced"
        depth, straight, _ = _quotes_of(o.start_text.rpartition("\n")[2])
        depth = depth if tokens.opening >= 0 else 0
        self.depth = np.full(n, depth, dtype=np.int64)      # « open on the row's current line
        self.straight = np.full(n, straight)                # a " open on it
        # the character before a row's first one: the start text's last, -1 for a line start
        self.start_last = tokens.strings.index(last) if last and last != "\n" else -1

    def quote_rules(self, rows: np.ndarray) -> Callable[[np.ndarray], None] | None:
        """quotes="balanced": the rules of the active `rows` for `Generator._pick`, which applies them
        to a copy of their logits: while a quote is open the line end may not be picked, its odds
        going to the closing " (when one is open) or »; no quote closes right after it opened (and
        then the line end's odds go nowhere); while no « is open, » may not be picked, nor, while
        no " is open, a " right after a letter or digit."""
        if not self.quotes:
            return None
        tok = self.tok
        depth, straight = self.depth[rows], self.straight[rows]
        n = self.length[rows]
        prev = np.where(n > 0, self.buf[rows, np.maximum(n - 1, 0)], self.start_last)   # -1: a line start
        fresh = straight & (prev == tok.straight) if tok.straight >= 0 else np.zeros(len(rows), dtype=bool)
        if tok.opening >= 0:
            fresh |= prev == tok.opening                  # the quote just opened: it cannot close yet
        no_close = (depth == 0) | fresh

        def apply(lg: np.ndarray) -> None:
            if tok.closing >= 0:
                lg[:, tok.closing][no_close] = -np.inf        # a column view
            if tok.straight >= 0:
                lg[:, tok.straight][(straight & fresh) | (~straight & (prev >= 0) & tok.alnum[prev])] = -np.inf
            if tok.newline >= 0:
                p = (((depth > 0) | straight) & ~fresh).nonzero()[0]
                if len(p):
                    to = np.where(straight[p], tok.straight, tok.closing)
                    lg[p, to] = np.logaddexp(lg[p, to], lg[p, tok.newline])
                lg[:, tok.newline][(depth > 0) | straight] = -np.inf
        return apply

    def feed(self, rows: np.ndarray, ids: np.ndarray, lp: np.ndarray,
             picks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Give each active row (`rows`) its picked token (`ids`, log-probability `lp`, the row's
        `picks`-th pick). Returns which rows stay in the batch, the rows that go back to where their
        word began, and the rows where a word began (positions in `rows`)."""
        done = np.zeros(len(rows), dtype=bool)
        if self.table is not None:
            rejected, starts = self._check_words(rows, ids)
            back = rejected.nonzero()[0]
            if len(back):
                self._take_back(rows[back])
                done[back[picks[back] >= self.max_picks]] = True
                self.status[rows[done]] = CAPPED
        else:
            rejected = np.zeros(len(rows), dtype=bool)
            back = starts = rejected.nonzero()[0]
        self._emit(rows, ids, lp, picks, ~rejected, done)
        return ~done, back, starts

    def _check_words(self, rows: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which picks make their row's word one no known word can be (the word begins, grows or
        ends with this pick); and where a word begins."""
        table = self.table
        assert table is not None
        letter = table.column[ids] >= 0               # a one-letter token: a word's letter
        word_at = self.word_at[rows]
        starts = (letter & (word_at < 0) & ~self.prev_alpha[rows]).nonzero()[0]
        if len(starts):                               # a word begins: remember where
            r = rows[starts]
            word_at[starts] = self.word_at[r] = self.length[r]
            self.word[r] = 0
            self.lp_at[r], self.count_at[r] = self.lp_sum[r], self.lp_count[r]
        checked = self.retries[rows] < MAX_RETRIES    # after MAX_RETRIES the word is let through
        rejected = np.zeros(len(rows), dtype=bool)
        grows = (letter & (word_at >= 0) & checked).nonzero()[0]
        if len(grows):
            nxt = table.step(self.word[rows[grows]], ids[grows])
            dead = nxt == PrefixTable.DEAD
            rejected[grows[dead]] = True
            self.word[rows[grows[~dead]]] = nxt[~dead]
        ends = (~letter & (word_at >= 0)).nonzero()[0]
        if len(ends):
            judged = ends[checked[ends]]
            rejected[judged[~table.complete(self.word[rows[judged]])]] = True
            self.word_at[rows[ends[~rejected[ends]]]] = -1
        self.retries[rows[~letter & ~rejected]] = 0
        return rejected, starts

    def _take_back(self, r: np.ndarray) -> None:
        """Rows `r` go back to where their word began (the state there is restored by `_SavedStarts`)."""
        self.retries[r] += 1
        n = self.length[r] = self.word_at[r]
        self.word_at[r] = -1
        prev = self.buf[r, np.maximum(n - 1, 0)]
        self.prev_nl[r] = np.where(n > 0, prev == self.tok.newline, self.last_nl)
        self.prev_alpha[r] = np.where(n > 0, self.tok.alpha[prev], self.last_alpha)
        self.lp_sum[r], self.lp_count[r] = self.lp_at[r], self.count_at[r]

    def _emit(self, rows: np.ndarray, ids: np.ndarray, lp: np.ndarray, picks: np.ndarray,
              accepted: np.ndarray, done: np.ndarray) -> None:
        """Add the accepted picks to their posts; mark in `done` the rows that finish."""
        newline = ids == self.tok.newline
        gap = accepted & newline & self.prev_nl[rows]            # the post gap: the post is done
        leading = accepted & newline & ~gap & (self.length[rows] == 0) if self.start_len == 0 \
            else np.zeros(len(rows), dtype=bool)                # blank lines before an empty-start post
        grow = accepted & ~gap & ~leading
        counted = gap | grow
        r = rows[counted]
        self.lp_sum[r] += lp[counted]
        self.lp_count[r] += 1
        self.status[rows[gap]] = GAP
        done |= gap
        lead = leading.nonzero()[0]
        if len(lead):
            over = lead[self.leading[rows[lead]] >= MAX_LEADING_NEWLINES]
            self.status[rows[over]] = EMPTY
            done[over] = True
            self.leading[rows[lead]] += 1
        g = grow.nonzero()[0]
        r, t = rows[g], ids[g]
        self.buf[r, self.length[r]] = t
        self.length[r] += 1
        self.prev_nl[r], self.prev_alpha[r] = newline[g], self.tok.alpha[t]
        if self.quotes:
            self.depth[r] = np.where(newline[g], 0, np.maximum(0, self.depth[r] + (t == self.tok.opening)
                                                                - (t == self.tok.closing)))
            self.straight[r] = ~newline[g] & (self.straight[r] ^ (t == self.tok.straight))
        full = g[(self.length[r] >= self.budget) | (picks[g] >= self.max_picks)]
        self.status[rows[full]] = CAPPED
        done[full] = True

    def text(self, r: int) -> str:
        strings = self.tok.strings
        generated = "".join([strings[t] for t in self.buf[r, :self.length[r]].tolist()])
        if self.status[r] == EMPTY:
            return ""
        if self.status[r] == GAP:
            return (self.o.start_text + generated).rstrip()
        return _finish_capped(self.o.start_text + generated, self.start_len)   # capped, or still open

    def samples(self, seeds: list, known: KnownWords) -> list[Sample]:
        out = []
        for r in range(len(seeds)):
            text = self.text(r)
            k, w = known.count(text) if not known.empty else (0, len(words_of(text)))
            share = (k / w if w else 0.0) if not known.empty else None
            lp = float(self.lp_sum[r] / max(1, self.lp_count[r]))
            out.append(Sample(text, int(seeds[r]), bool(self.status[r] == GAP), lp, share, w))
        return out


class _SavedStarts:
    """Known-word decoding's saved logits and recurrent state at the start of each row's current word."""

    def __init__(self, n: int, vocab_size: int, state: list, device: torch.device) -> None:
        self.device = device
        self.logits = torch.empty(n, vocab_size, device=device)
        self.parts = [torch.empty(n, t.shape[1], device=device) for t in _parts(state)]

    def save(self, rows: np.ndarray, starts: np.ndarray, logits: torch.Tensor, state: list) -> None:
        sj = torch.from_numpy(starts).to(self.device)
        sr = torch.from_numpy(rows[starts]).to(self.device)
        self.logits.index_copy_(0, sr, logits.index_select(0, sj))
        for saved, t in zip(self.parts, _parts(state)):
            saved.index_copy_(0, sr, t.index_select(0, sj))

    def restore(self, back: np.ndarray, back_rows: np.ndarray, logits: torch.Tensor, state: list) -> None:
        bj = torch.from_numpy(back).to(self.device)
        br = torch.from_numpy(back_rows).to(self.device)
        logits.index_copy_(0, bj, self.logits.index_select(0, br))
        for saved, t in zip(self.parts, _parts(state)):
            t.index_copy_(0, bj, saved.index_select(0, br))


def _parts(state: list) -> list[torch.Tensor]:
    """A step state (per layer h, or (h, c)) as its tensors, in order."""
    parts: list[torch.Tensor] = []
    for s in state:
        parts.extend(s if isinstance(s, tuple) else (s,))
    return parts
