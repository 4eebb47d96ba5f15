"""quotes="balanced": a quote opened on a line closes on that line, and the other characters keep their odds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.lstm import CharRNN, ModelConfig
from model.sample import Generator, SampleRequest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def line_problems(text: str) -> list[str]:
    """The lines of `text` that break the rule: a » before its «, a « or a " left open, an empty «» or
    "", or a " that opens right after a letter or digit."""
    bad = []
    for line in text.split("\n"):
        depth, straight, wrong, opened_at = 0, False, "«»" in line, -2
        for i, ch in enumerate(line):
            if ch == "«":
                depth += 1
            elif ch == "»":
                wrong |= depth == 0
                depth = max(0, depth - 1)
            elif ch == '"' and straight:
                wrong |= opened_at == i - 1
                straight = False
            elif ch == '"':
                wrong |= i > 0 and line[i - 1].isalnum()
                straight, opened_at = True, i
        if depth or straight or wrong:
            bad.append(line)
    return bad


def untrained_with(tiny_checkpoint, path: Path, extra: list[str], biases: dict[str, float], seed: int) -> Path:
    """An untrained model over the tiny model's vocabulary plus `extra`, its head's bias raised by
    `biases` (character: amount), saved as a checkpoint at `path`."""
    ck = load_checkpoint(tiny_checkpoint)
    vocab = list(ck["idx_to_token"]) + extra
    config = {**ck["model_config"], "vocab_size": len(vocab)}
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig.from_dict(config))
    with torch.no_grad():
        for t, bias in biases.items():
            model.head.bias[vocab.index(t)] += bias
    return save_checkpoint(path, {**ck, "idx_to_token": vocab, "model_state": dict(model.state_dict()),
                                  "model_config": config})


@pytest.fixture(scope="module")
def quoting(tmp_path_factory, tiny_checkpoint) -> Generator:
    """It writes quotes at random and never closes them on purpose (its head favours the quotes, the
    line end and the space)."""
    path = tmp_path_factory.mktemp("quoting") / "quoting.pt"
    return Generator.load(untrained_with(tiny_checkpoint, path, ["«", "»", '"'],
                                         {"«": 1.5, "»": 1.5, '"': 1.0, "\n": 2.5, " ": 1.5}, seed=3))


CASES = [dict(), dict(words="known", dictionary="none"), dict(top_k=6), dict(start_text="ОН ГОВОРИТ «")]
# greedy picks (argmax) follow the same rules: test_the_pick_moves_the_line_end_s_odds_to_the_closing_quote


def checked_lines(sample) -> str:
    """The lines the rule answers for: a post cut at the length cap keeps an unfinished last line
    when the cap fell inside its first line (model.sample._finish_capped), and that line is the screen's
    to reject ("cut at the length cap"), not the rule's."""
    return sample.text if sample.reached_gap else sample.text.rpartition("\n")[0]


@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_every_line_closes_what_it_opens(quoting, options):
    seeds = range(1, 41)
    kw = dict(temperature=1.0, max_length=160, **options)
    loose = quoting.generate_samples(seeds, quotes="any", **kw)
    balanced = quoting.generate_samples(seeds, quotes="balanced", **kw)
    assert sum(bool(line_problems(checked_lines(s))) for s in loose) >= len(loose) // 2   # the check can fail
    for s in balanced:
        assert line_problems(checked_lines(s)) == [], s.text
    assert sum(s.text.count("«") + s.text.count('"') for s in balanced) >= len(balanced)   # quotes still come
    assert sum(s.reached_gap for s in balanced) >= len(balanced) // 4


def test_the_start_text_s_open_quote_is_closed_on_its_line(quoting):
    samples = quoting.generate_samples(range(1, 21), temperature=1.0, max_length=160, start_text="ОН ГОВОРИТ «",
                                       quotes="balanced")
    closed = [s.text.split("\n")[0] for s in samples if "\n" in s.text]
    assert len(closed) >= 10
    for first in closed:
        assert first.startswith("ОН ГОВОРИТ «") and first.count("»") >= 1 and not line_problems(first)


def test_balanced_posts_are_the_same_whatever_shares_their_batch(quoting):
    kw = dict(temperature=1.0, max_length=160, quotes="balanced", words="known", dictionary="none")
    batch = quoting.generate(range(1, 9), **kw)
    assert quoting.generate([5], **kw) == [batch[4]]
    assert quoting.generate([7, 5, 3], **kw) == [batch[6], batch[4], batch[2]]
    assert quoting.generate(range(1, 9), quotes="any", temperature=1.0, max_length=160, words="known",
                            dictionary="none") != batch


def test_the_pick_moves_the_line_end_s_odds_to_the_closing_quote():
    """Where the model would end the line with a quote open, it closes the quote, unless the quote
    has only just opened; a » with no « open, and a " right after a letter with none open, are never
    picked, and the other characters keep their odds; rows the rules do not touch pick as before."""
    from model.rng import seed_keys
    from model.decoding import Rows, Tokens

    vocab = ["\n", "«", "»", '"'] + [chr(0x410 + i) for i in range(36)]
    nl, close, straight = 0, 2, 3
    n = 64
    o = SampleRequest.of(temperature=1.0, quotes="balanced")
    batch = Rows(n, o, Tokens.of(vocab), None)
    batch.quotes.depth[:16] = 1                                 # rows 0-15: a « open
    batch.quotes.straight[16:24] = True                         # rows 16-23: a " open
    batch.quotes.depth[24:28] = 1                               # rows 24-27: a « open just now
    batch.buf[24:28, 0], batch.length[24:28] = 1, 1
    batch.buf[48:56, 0], batch.length[48:56] = 10, 1      # rows 48-55: after a letter, nothing open
    rows, keys, steps = np.arange(n), seed_keys(range(1, n + 1)), np.zeros(n, dtype=np.int64)
    lg = np.random.default_rng(0).normal(0, 1, (n, len(vocab))).astype(np.float32)
    lg[:32, nl] = 30.0                                   # rows 0-31 would end the line
    lg[32:, close] = 30.0                                # rows 32-63 would close a quote none opened
    lg[48:56, straight] = 40.0                           # ... rows 48-55 with a " after the letter
    before = lg.copy()
    free = Generator._pick(lg, keys, steps, o)
    ruled = Generator._pick(lg, keys, steps, o, batch.rules(rows))
    assert (lg == before).all()                          # the step's logits are not touched
    assert (free[:32] == nl).all() and (free[32:48] == close).all() and (free[48:56] == straight).all()
    assert (ruled[:16] == close).all() and (ruled[16:24] == straight).all()
    assert not np.isin(ruled[24:28], [nl, close]).any()  # an empty «» is not written, nor the line ended
    assert (ruled[28:32] == nl).all()                    # nothing open: the line may end
    no_close = lg.copy()
    no_close[:, close] = -np.inf
    no_close[48:56, straight] = -np.inf
    assert (ruled[32:] == Generator._pick(no_close, keys, steps, o)[32:]).all()
    assert not np.isin(ruled[48:56], [close, straight]).any()
    for k, argmax in ((5, False), (0, True)):            # top-k and greedy follow the same rules
        oo = SampleRequest.of(temperature=1.0, top_k=k, argmax=argmax, quotes="balanced")
        picked = Generator._pick(lg, keys, steps, oo, batch.rules(rows))
        assert (picked[:16] == close).all() and (picked[16:24] == straight).all() and (picked[28:32] == nl).all()
        assert not np.isin(picked[24:28], [nl, close]).any() and (picked[32:] != close).all()


def test_a_vocabulary_without_the_closing_mark_counts_no_opening_one(tmp_path, tiny_checkpoint):
    g = Generator.load(untrained_with(tiny_checkpoint, tmp_path / "half.pt", ["«"], {"«": 3.0}, seed=4))
    kw = dict(temperature=1.0, max_length=120)
    posts = g.generate(range(1, 9), quotes="balanced", **kw)
    assert posts == g.generate(range(1, 9), quotes="any", **kw) and any("«" in p for p in posts)


def test_buhurt_sample_balances_quotes_by_default_and_raw_or_quotes_any_do_not(quoting, tmp_path, capsys,
                                                                                monkeypatch):
    from tests.helpers import run_cli

    monkeypatch.chdir(tmp_path)
    seeds = list(range(3, 11))
    args = ["sample", "--checkpoint", str(quoting.path), "--num", "8", "--seed", "3", "--temperature", "1",
            "--length", "160", "--exact"]
    product = dict(temperature=1.0, max_length=160, words="known", dictionary="ru", grammar="agree",
                   ending="community")
    want = {(): quoting.generate(seeds, quotes="balanced", **product),
            ("--quotes", "any"): quoting.generate(seeds, **product),
            ("--raw",): quoting.generate(seeds, temperature=1.0, max_length=160)}
    assert len({tuple(v) for v in want.values()}) == 3
    for extra, posts in want.items():
        code, out, err = run_cli(capsys, *args, *extra)
        assert code == 0, err
        assert out.rstrip("\n") == "\n\n".join(posts), extra
