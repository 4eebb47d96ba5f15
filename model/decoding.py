"""The posts of one Generator call as they grow: `Rows`, arrays over the batch, no Python loop per
row and step. What each row may write is its `Decoding` (model.sample_options):

- known words (model.words): when a row's word (a run of letters) can no longer become a known
  word, or it ends and is not known, the row goes back to where the word began (its recurrent state
  and logits there, kept by `SavedStarts`) and samples again with its next random numbers; after
  MAX_RETRIES tries at one place the word is let through. A word begun in the start text is not judged.
- grammar (model.grammar): a known word that cannot follow the word before it is taken back the same
  way; the row's words are also held to the dictionary's standalone short words (model.words.KnownWords
  strict) and no letter touches a digit ("У4S20").
- quotes (model.quotes): a mask on the row's logits.
- the post's end: with grammar, after a line of text the post gap gets the community's odds of ending
  after that many lines (`EndOdds`, from the training posts' line counts): exactly (ending
  "community") or at least (ending "floor"), rising to certainty as the length cap nears, so posts
  end where the community's end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from model.grammar import Grammar
from model.quotes import QuoteIds, QuoteState
from model.sample_options import SampleRequest
from model.words import KnownWords, PrefixTable, words_of

MAX_LEADING_NEWLINES = 16
MAX_RETRIES = 20        # known-word decoding: resamples of one word before an unknown one is let through
STEP_FACTOR = 6         # known-word decoding: a row makes at most STEP_FACTOR * max_length picks
OPEN, GAP, CAPPED, EMPTY = 0, 1, 2, 3     # a row's status
CAP_NEAR = 0.75         # past this share of its length budget a post's end odds rise to 1 at the cap


@dataclass(frozen=True)
class Sample:
    """One generated post and its measures.

    reached_gap: the post ended at the post gap (a blank line); False when it was cut at max_length.
    logprob_nats_per_char: mean natural-log probability, under the model at temperature 1, of the
        characters the model emitted for this post (its text after the start text, plus the gap).
    known_share: share of its words (runs of letters) that are known words (see model.words), or
        None when the Generator has nothing to judge words by (no lexicon, no dictionary).
    word_count: how many words (runs of letters) the text has.
    grammar: share of its lines with words that break no agreement rule (model.grammar), or None
        without the dictionary.
    """
    text: str
    seed: int
    reached_gap: bool
    logprob_nats_per_char: float
    known_share: float | None = None
    word_count: int = 0
    grammar: float | None = None


def finish_capped(text: str, start_len: int) -> str:
    """Cut a post that hit the length cap at its last line end, when there is one after the start."""
    cut = text.rfind("\n")
    if cut >= max(start_len, 1):
        text = text[:cut]
    return text.rstrip()


@dataclass(frozen=True)
class Tokens:
    """What the batch needs to know of each token id, as arrays."""

    strings: list[str]
    alpha: np.ndarray         # str.isalpha(): what the character before a word must not be
    digit: np.ndarray         # str.isdigit()
    newline: int              # the ids of "\n" and " ", -1 for one the vocabulary lacks
    space: int
    quotes: QuoteIds

    @classmethod
    def of(cls, tokens: list[str]) -> "Tokens":
        return cls(list(tokens), np.array([t.isalpha() for t in tokens], dtype=bool),
                   np.array([t.isdigit() for t in tokens], dtype=bool),
                   tokens.index("\n") if "\n" in tokens else -1, tokens.index(" ") if " " in tokens else -1,
                   QuoteIds.of(list(tokens)))


class EndOdds:
    """The community's odds of a post ending after k lines of text: posts of k lines / posts of k or
    more, from a histogram of lines per post (the last bin: that many or more, odds 1)."""

    def __init__(self, post_lines) -> None:
        h = np.asarray(post_lines, dtype=np.float64)
        left = np.cumsum(h[::-1])[::-1]
        self.odds = np.divide(h, left, out=np.ones_like(h), where=left > 0)
        self.odds[-1] = 1.0

    def __call__(self, lines: np.ndarray) -> np.ndarray:
        return self.odds[np.minimum(lines, len(self.odds) - 1)]


class GrammarTable:
    """model.grammar's word classes and word ids for the states of a PrefixTable (arrays the batch
    reads at once, filled as states are first judged)."""

    def __init__(self, grammar: Grammar, table: PrefixTable) -> None:
        self.grammar, self.table = grammar, table
        self._cls = np.full(256, -1, dtype=np.int64)
        self._wid = np.full(256, -2, dtype=np.int64)

    def of(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class, word id) of each state's word."""
        if len(self._cls) < len(self.table):
            grow = max(len(self.table), 2 * len(self._cls)) - len(self._cls)
            self._cls = np.concatenate([self._cls, np.full(grow, -1, dtype=np.int64)])
            self._wid = np.concatenate([self._wid, np.full(grow, -2, dtype=np.int64)])
        cls = self._cls[states]
        for k in (cls < 0).nonzero()[0].tolist():
            s = int(states[k])
            word = self.table.prefixes[s]
            self._cls[s], self._wid[s] = self.grammar.word_class(word), self.grammar.word_id(word)
            cls[k] = self._cls[s]
        return cls, self._wid[states]


class Rows:
    """The posts of one `generate_samples` call as they grow, indexed by the row they started in:
    token buffers, lengths and each row's decoding bookkeeping (where its current word began, its
    state in the prefix table, the log-probability there, the retries at that place; the words
    before it for grammar; open quotes; lines of text so far), all arrays."""

    def __init__(self, n: int, o: SampleRequest, tokens: Tokens, table: PrefixTable | None,
                 grammar: GrammarTable | None = None, end_odds: EndOdds | None = None) -> None:
        self.o, self.tok, self.table, self.grammar, self.end_odds = o, tokens, table, grammar, end_odds
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
        self.quotes = QuoteState(tokens.quotes, n, o.start_text) if o.decoding.quotes == "balanced" else None
        # grammar: the class of the last word that is not looked through, and the last word's id, of
        # the words joined by single spaces before the current one (-1, -2: none)
        self.left = np.full(n, -1, dtype=np.int64)
        self.prev_word = np.full(n, -2, dtype=np.int64)
        # the post's end: lines of text so far, the current line has text (and had at its word's start)
        lines = o.start_text.split("\n")
        self.lines = np.full(n, sum(1 for line in lines[:-1] if _has_text(line)), dtype=np.int64)
        self.line_text = np.full(n, _has_text(lines[-1]))
        self.text_at = self.line_text.copy()
        self.ended_text = np.full(n, len(lines) > 1 and _has_text(lines[-2]) and not lines[-1])
        self.ended_at = self.ended_text.copy()
        # the character before a row's first one: the start text's last, -1 for a line start
        self.start_last = tokens.strings.index(last) if last and last != "\n" else -1

    def rules(self, rows: np.ndarray) -> Callable[[np.ndarray], None] | None:
        """The active `rows`' rules for `Generator._pick`, which applies them to a float64 copy of
        their logits before anything else: balanced quotes, no letter touching a digit and the
        post's end odds (with grammar). None when the decoding has none."""
        agree = self.grammar is not None
        if self.quotes is None and not agree:
            return None
        n = self.length[rows]
        prev = np.where(n > 0, self.buf[rows, np.maximum(n - 1, 0)], self.start_last)   # -1: a line start
        tok = self.tok

        def apply(lg: np.ndarray) -> None:
            if self.quotes is not None:
                self.quotes.mask(rows, prev, lg)
            if agree:
                seen = prev >= 0
                lg[np.ix_(seen & tok.alpha[np.maximum(prev, 0)], tok.digit)] = -np.inf
                lg[np.ix_(seen & tok.digit[np.maximum(prev, 0)], tok.alpha)] = -np.inf
                if self.end_odds is not None and tok.newline >= 0:
                    self._end_odds(rows, lg)
        return apply

    def _end_odds(self, rows: np.ndarray, lg: np.ndarray) -> None:
        """After a line of text, the post gap's probability (at the request's temperature) is the
        community's odds of ending after that many lines (ending "community"; with "floor", at least
        those odds), and rises to 1 as the cap nears."""
        at = (self.prev_nl[rows] & self.ended_text[rows] & (self.length[rows] > 0)).nonzero()[0]
        if not len(at):
            return
        assert self.end_odds is not None
        r = rows[at]
        near = np.clip((self.length[r] / max(1, self.budget) - CAP_NEAR) / (1 - CAP_NEAR), 0.0, 1.0)
        odds = np.minimum(np.maximum(self.end_odds(self.lines[r]), near), 1 - 1e-9)
        t, nl = self.o.temperature, self.tok.newline
        exact = self.o.decoding.ending == "community"
        if exact:
            lg[at[odds <= 0], nl] = -np.inf                              # the community never ends there
        some = odds > 0
        at, odds = at[some], odds[some]
        if not len(at):
            return
        x = lg[at] / t
        own = x[:, nl].copy()
        x[:, nl] = -np.inf
        m = x.max(axis=1)
        other = m + np.log(np.exp(x - m[:, None]).sum(axis=1))          # log of the other characters' odds
        want = np.log(odds) - np.log1p(-odds) + other                    # the gap's logit for p = odds
        set_to = np.ones(len(at), dtype=bool) if exact else own < want
        lg[at[set_to], nl] = t * want[set_to]

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
        ends with this pick), or one that cannot agree with the word before it; and where a word begins."""
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
            self.text_at[r], self.ended_at[r] = self.line_text[r], self.ended_text[r]
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
            if self.grammar is not None:
                self._agree(rows, ids, ends, checked[ends], rejected)
            self.word_at[rows[ends[~rejected[ends]]]] = -1
        if self.grammar is not None:                  # a non-letter that ends no word: nothing joins
            apart = (~letter & (word_at < 0)).nonzero()[0]
            self.left[rows[apart]], self.prev_word[rows[apart]] = -1, -2
        self.retries[rows[~letter & ~rejected]] = 0
        return rejected, starts

    def _agree(self, rows: np.ndarray, ids: np.ndarray, ends: np.ndarray, checked: np.ndarray,
               rejected: np.ndarray) -> None:
        """Grammar at the words that end (positions `ends` in `rows`): reject a known word that
        cannot follow the word before it; for the others, remember what the next word follows."""
        assert self.grammar is not None
        g = self.grammar.grammar
        judge = ends[checked & ~rejected[ends]]
        if len(judge):
            r = rows[judge]
            cls, wid = self.grammar.of(self.word[r])
            doubled = (wid >= 0) & (wid == self.prev_word[r])
            left = self.left[r]
            clash = np.array([not (g.transparent[k] or g.pair_ok(a, k)) for a, k in zip(left.tolist(), cls.tolist())],
                             dtype=bool)
            bad = doubled | clash
            rejected[judge[bad]] = True
            ok, k = r[~bad], cls[~bad]
            keep = np.array([g.transparent[c] for c in k.tolist()], dtype=bool)
            self.left[ok] = np.where(keep, self.left[ok], k)
            self.prev_word[ok] = wid[~bad]
        let = ends[~checked]                          # let through unjudged: nothing to agree with
        self.left[rows[let]], self.prev_word[rows[let]] = -1, -2
        apart = ends[~rejected[ends] & (ids[ends] != self.tok.space)]
        self.left[rows[apart]], self.prev_word[rows[apart]] = -1, -2

    def _take_back(self, r: np.ndarray) -> None:
        """Rows `r` go back to where their word began (the state there is restored by `SavedStarts`)."""
        self.retries[r] += 1
        n = self.length[r] = self.word_at[r]
        self.word_at[r] = -1
        prev = self.buf[r, np.maximum(n - 1, 0)]
        self.prev_nl[r] = np.where(n > 0, prev == self.tok.newline, self.last_nl)
        self.prev_alpha[r] = np.where(n > 0, self.tok.alpha[prev], self.last_alpha)
        self.lp_sum[r], self.lp_count[r] = self.lp_at[r], self.count_at[r]
        self.line_text[r], self.ended_text[r] = self.text_at[r], self.ended_at[r]

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
        if self.quotes is not None:
            self.quotes.add(r, t)
        text = self.tok.alpha[t] | self.tok.digit[t]
        nl = newline[g]
        self.ended_text[r] = nl & self.line_text[r]
        self.lines[r] += self.ended_text[r]
        self.line_text[r] = ~nl & (self.line_text[r] | text)
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
        return finish_capped(self.o.start_text + generated, self.start_len)   # capped, or still open

    def samples(self, seeds: list, known: KnownWords, grammar: Grammar | None) -> list[Sample]:
        out = []
        for r in range(len(seeds)):
            text = self.text(r)
            k, w = known.count(text) if not known.empty else (0, len(words_of(text)))
            share = (k / w if w else 0.0) if not known.empty else None
            lp = float(self.lp_sum[r] / max(1, self.lp_count[r]))
            g = grammar.share(text) if grammar is not None else None
            out.append(Sample(text, int(seeds[r]), bool(self.status[r] == GAP), lp, share, w, g))
        return out


def _has_text(line: str) -> bool:
    return any(ch.isalnum() for ch in line)


class SavedStarts:
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
