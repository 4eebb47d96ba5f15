"""Sampling: the fused step matches nn.LSTM, reproducibility per seed, batch independence, stopping."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from model.errors import ModelError
from model.fast_step import FastStep
from model.lstm import CharRNN, ModelConfig
from model.decoding import finish_capped as _finish_capped
from model.sample import Generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("model_type", ["lstm", "gru", "rnn"])
def test_fast_step_matches_the_fused_module(model_type):
    torch.manual_seed(0)
    m = CharRNN(ModelConfig(vocab_size=11, model_type=model_type, wordvec_size=5, rnn_size=7, num_layers=3)).eval()
    x = torch.randint(0, 11, (4, 9))
    with torch.no_grad():
        ref, _ = m(x)
        step = FastStep(m)
        state = step.zero_state(4, "cpu")
        outs = []
        for t in range(9):
            logits, state = step(x[:, t], state)
            outs.append(logits)
    assert torch.allclose(torch.stack(outs, 1), ref, atol=1e-5)


def test_batch_independence_and_determinism(tiny_generator):
    g = tiny_generator
    batch = g.generate(seeds=list(range(1, 9)), temperature=0.9)
    assert g.generate(seeds=[5], temperature=0.9)[0] == batch[4]
    assert g.generate(seeds=[7, 5, 3], temperature=0.9) == [batch[6], batch[4], batch[2]]
    assert g.generate(seeds=list(range(1, 9)), temperature=0.9) == batch
    assert len(set(batch)) > 1


def test_posts_stop_at_the_gap_and_keep_the_start_text(tiny_generator):
    posts = tiny_generator.generate(seeds=range(20), temperature=0.7, start_text="ТЫ ")
    for p in posts:
        assert p.startswith("ТЫ") and "\n\n" not in p and p == p.rstrip()
        assert len(p) <= 500
    # the tiny model learned that posts are short: most stop at the gap long before the cap
    assert sum(len(p) < 200 for p in posts) >= 15


def test_length_cap_cuts_at_a_line_end():
    assert _finish_capped("АБВ\nГДЕ\nЖЗ", 0) == "АБВ\nГДЕ"
    assert _finish_capped("АБВГД", 0) == "АБВГД"                # no line end: hard cut
    assert _finish_capped("СТАРТ ТЕКСТ", 6) == "СТАРТ ТЕКСТ"
    assert _finish_capped("СТАРТ\nX", 5) == "СТАРТ"


def test_max_length_is_a_hard_cap(tiny_generator):
    for p in tiny_generator.generate(seeds=range(16), temperature=1.5, max_length=25):
        assert len(p) <= 25


def test_argmax_and_top_k(tiny_generator):
    g = tiny_generator
    greedy = g.generate(seeds=[1, 2, 3], argmax=True)
    assert len(set(greedy)) == 1
    assert g.generate(seeds=[9], top_k=1, temperature=1.3) == greedy[:1]   # top-1 sampling is greedy
    assert g.generate(seeds=[4], top_k=10_000) == g.generate(seeds=[4], top_k=0)


def test_version_vocab_and_meta(tiny_run, tiny_generator):
    path = tiny_run[3].best_path
    assert tiny_generator.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert "🍞" in tiny_generator.vocab and "\n" in tiny_generator.vocab
    assert tiny_generator.checkpoint_meta["model_config"]["rnn_size"] == 32


def test_bad_requests(tiny_generator):
    g = tiny_generator
    with pytest.raises(ModelError, match=r"'Z' \(U\+005A\).*'q'") as ei:
        g.generate(seeds=[1], start_text="ТЫ Zq")
    assert "\n" not in str(ei.value)
    for t in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ModelError, match="temperature"):
            g.generate(seeds=[1], temperature=t)
    for n in (0, -5, 16_385, 99_999_999_999):   # past any network's longest post: refused, never allocated
        with pytest.raises(ModelError, match="max_length"):
            g.generate(seeds=[1], max_length=n)
    with pytest.raises(ModelError, match="top_k"):
        g.generate(seeds=[1], top_k=-1)
    assert g.generate(seeds=[]) == []


def test_bad_checkpoints(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Generator.load(tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="is a directory"):
        Generator.load(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ModelError, match="is not a file that torch.save wrote") as ei:
        Generator.load(tmp_path / "junk.pt")
    assert "\n" not in str(ei.value)
    torch.save({"hello": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a buhurt checkpoint"):
        Generator.load(tmp_path / "other.pt")


def test_samples_carry_their_measures(tiny_generator):
    g = tiny_generator
    samples = g.generate_samples(seeds=range(1, 13), temperature=0.9)
    assert [s.text for s in samples] == g.generate(seeds=range(1, 13), temperature=0.9)
    assert [s.seed for s in samples] == list(range(1, 13))
    assert all(s.reached_gap for s in samples)             # the tiny model's posts are short
    assert all(-20 < s.logprob_nats_per_char < 0 for s in samples)
    capped = g.generate_samples(seeds=range(1, 13), temperature=0.9, max_length=12)
    assert sum(not s.reached_gap for s in capped) >= 10   # cut at the cap, not ended at the gap
    assert all(len(s.text) <= 12 for s in capped)
    # greedy picks are the likeliest characters: a higher mean log-probability than sampling hot
    greedy = g.generate_samples(seeds=[1], argmax=True)[0]
    hot = g.generate_samples(seeds=range(1, 13), temperature=2.0)
    assert greedy.logprob_nats_per_char > max(s.logprob_nats_per_char for s in hot)


def test_pick_in_place_gives_the_picks_of_the_allocating_arithmetic(tiny_generator):
    import numpy as np

    from model.rng import seed_keys, uniforms
    from model.sample_options import SampleRequest

    rnd = np.random.default_rng(0)
    keys = seed_keys(range(1, 65))
    for t, k in ((0.8, 0), (1.3, 0), (0.5, 7)):
        o = SampleRequest(temperature=t, top_k=k)
        for step in range(20):
            logits = torch.from_numpy(rnd.normal(0, 4, (64, 571)).astype(np.float32))
            lg = logits.numpy().astype(np.float64)          # the former _pick, allocating at each step
            idx = None
            if k:
                idx = np.argsort(-lg, axis=1, kind="stable")[:, :k]
                lg = np.take_along_axis(lg, idx, axis=1)
            x = lg / t
            x -= x.max(axis=1, keepdims=True)
            cdf = np.cumsum(np.exp(x), axis=1)
            u = uniforms(keys, step)[:, None] * cdf[:, -1:]
            j = np.minimum((cdf <= u).sum(axis=1), lg.shape[1] - 1)
            ref = j if idx is None else idx[np.arange(len(j)), j]
            steps = np.full(64, step)
            assert (tiny_generator._pick(logits.numpy(), keys, steps, o) == ref).all()


GOLDEN = Path(__file__).parents[1] / "data" / "golden_samples.json"


def test_seeded_posts_are_the_ones_recorded_before_the_batched_rewrite():
    """Old drafts keep reproducing: the bundled model's posts for fixed seeds and options, recorded
    (tests/data/golden_samples.json) with the per-row decoding of commit b2b791a, come out the same,
    text and measures, from today's array-based decoding (known words with and without the
    dictionary, raw sampling, start texts, top-k, a short cap)."""
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    g = Generator.load(Path(__file__).parents[2] / recorded["checkpoint"])
    for case in recorded["cases"]:
        options = dict(case["options"])
        got = g.generate_samples(options.pop("seeds"), **options)
        want = case["samples"]
        assert [s.text for s in got] == [w["text"] for w in want], case["options"]
        assert [(s.reached_gap, s.known_share, s.word_count) for s in got] == \
            [(w["reached_gap"], w["known_share"], w["words"]) for w in want]
        assert [s.logprob_nats_per_char for s in got] == pytest.approx([w["logprob"] for w in want], abs=1e-12)
    assert any(not w["reached_gap"] for c in recorded["cases"] for w in c["samples"])   # caps were hit too


def test_a_prefix_table_begun_anew_gives_the_same_posts(tiny_generator, monkeypatch):
    import model.sample as sample

    g = tiny_generator
    first = g.generate(seeds=range(1, 9), temperature=1.2, words="known", dictionary="ru")
    table = g.prefix_table("ru")
    assert len(table) > 1
    monkeypatch.setattr(sample, "PREFIX_TABLE_LIMIT", 0)
    assert g.generate(seeds=range(1, 9), temperature=1.2, words="known", dictionary="ru") == first
    assert g.prefix_table("ru") is not table                     # past the limit: begun anew
