"""Reader panel: what readers, not proxies, think of the drafts.

`make` writes a blind set into a folder outside the repository: N posts from each source, shuffled
under numbers (panel.txt, the only file a rater sees, with benchmarks/panel_rubric.md), and the key
apart (key.json: number -> source). Sources:

- real: held-out posts of the real channel (pool.txt; held out by the nightly split's hash,
  model.preprocess.post_split, so a model trained on pool.txt never saw them): the calibration;
- product: drafts through the pool's own path (the product's decoding, jobs.pool's measures, screen
  and ranking against a database holding the model's training corpus; the best of --oversample
  candidates that pass, as moderators get them);
- before: the same with the decoding the product used before grammar (known/<dict>+quotes);
- raw (with --raw): torch-rnn's unconstrained sampling, screened the same way;
- cold (with --cold T): the product at temperature T (safer, duller);
- words3 (with --words3): a word 3-gram chain over the real posts' training part (every three
  neighbouring words seen in the corpus, lines and the end of a post included; posts over 500
  characters dropped, and, like the product's drafts, posts the product's screen rejects against
  those training posts: near-copies above all). It is not the product: it asks whether local
  fluency without a model of the story moves readers at all.
- wordlstm (with --word-lstm F): benchmarks/word_lstm.py's word-level LSTM from checkpoint F, at
  --word-temperature with its grammar rule (model.grammar), screened like words3; posts cut at 500
  characters, of one line, or repeating a line three times are dropped too. Not the product either:
  it asks whether a model over words moves readers where the product's model over characters does not.

`score` reads the raters' answer files (one line per post: `N readable publish coherence funny
human`, e.g. `17 yes no 2 1 no`; see the rubric) and prints, per source, the majority share of
"readable start to end" and "would publish" with a 95% Wilson interval, the mean coherence and
funniness, the majority "taken for human" share, and the raters' agreement (Fleiss' kappa on
"readable", and the share of posts all raters agreed on). With --screen-chain it also puts the words3
posts through the product's screen against --real's training part and counts "readable" among those
that pass and those it rejects (panels made before the chain was screened; stop 29's was).

    python benchmarks/reader_panel.py make --checkpoint F --corpus TRAINING_TEXT --out DIR [--n 40]
        [--temperature 0.8] [--oversample 3] [--raw] [--cold 0.5] [--words3] [--seed 1]
        [--word-lstm F [--word-temperature 0.7]]
    python benchmarks/reader_panel.py score --out DIR [--screen-chain] ANSWERS1 ANSWERS2 ANSWERS3

Never commit panel.txt: it holds the channel's texts. Prints figures, asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
POOL = REPO.parent / "shared" / "data" / "bugurtthread" / "pool.txt"
RUBRIC = REPO / "benchmarks" / "panel_rubric.md"
FIELDS = ("readable", "publish", "coherence", "funny", "human")


def split_posts(path: Path) -> dict[str, list[str]]:
    """The posts of `path` (blank-line separated) by the nightly split's hash: "train" and the rest."""
    from model.preprocess import post_split

    posts = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    parts: dict[str, list[str]] = {"train": [], "held": []}
    for p in posts:
        parts["train" if post_split(p, 0.1, 0.1) == "train" else "held"].append(p)
    return parts


def held_out_posts(path: Path, n: int, rnd: random.Random) -> list[str]:
    return rnd.sample([p for p in split_posts(path)["held"] if len(p) <= 500], n)


def chain_screen(train: list[str]):
    """The product's screen (jobs.pool.screen: near-copies, stop-list, ...) against a fresh database
    of the posts `train`: a function text -> the reason it is rejected, or None."""
    from draft_quality import corpus_db

    from jobs.pool import measure, screen
    from model.sample_options import SampleOptions

    work = Path(tempfile.mkdtemp(prefix="buhurt-panel-chain-"))
    (work / "train.txt").write_text("\n\n".join(train) + "\n", encoding="utf-8")
    db, stoplist = corpus_db(work / "train.txt", work)
    name = SampleOptions().decoding.name
    return lambda text: screen(db, text, stoplist, measure(db, text, None, name))


def word_chain_posts(train: list[str], n: int, rnd: random.Random, rejects, max_chars: int = 500) -> list[str]:
    """`n` posts of a word 3-gram chain over the posts `train`; "@" lines are tokens, so lines and
    the post's end are learned too. A post that `rejects` (text -> reason or None) is dropped, as the
    pool drops drafts its screen rejects."""
    follows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for post in train:
        lines = [line.split() for line in post.split("\n") if line.strip() and line.strip() != "@"]
        tokens = ["<s>", "<s>"] + [w for line in lines for w in (*line, "@")][:-1] + ["</s>"]
        for i in range(2, len(tokens)):
            follows[(tokens[i - 2], tokens[i - 1])].append(tokens[i])
    out: list[str] = []
    tried = 0
    while len(out) < n:
        a, b, words = "<s>", "<s>", []
        while len(words) < 200:
            word = rnd.choice(follows[(a, b)])
            if word == "</s>":
                break
            words.append(word)
            a, b = b, word
        text = " ".join(words).replace(" @ ", "\n@\n")
        if len(text) <= max_chars and "\n@\n" in text:
            tried += 1
            if rejects(text) is None:
                out.append(text)
    print(f"words3: {n} of {tried} chain posts passed the product's screen")
    return out


def word_lstm_posts(checkpoint: Path, n: int, temperature: float, seed: int, rejects,
                    max_chars: int = 500) -> list[str]:
    """`n` posts of benchmarks/word_lstm.py's model (with its grammar rule) that `rejects` passes."""
    import word_lstm

    net, vocab = word_lstm.load(checkpoint)
    grammar = word_lstm.grammar_rules()
    out: list[str] = []
    dropped: dict[str, int] = defaultdict(int)
    tried, base = 0, seed * 1000
    while len(out) < n:
        for text in word_lstm.sample(net, vocab, 20, temperature, base, grammar=grammar, max_chars=max_chars):
            tried += 1
            lines = [line for line in text.split("\n") if line.strip() != "@"]
            why = ("cut at the cap" if len(text) > max_chars else "one line" if len(lines) < 2
                   else "a line thrice" if max(lines.count(line) for line in lines) >= 3 else rejects(text))
            if why:
                dropped[why] += 1
            elif len(out) < n:
                out.append(text)
        base += 1
    print(f"wordlstm: {n} of {tried} posts kept; dropped: {dict(dropped)}")
    return out


def drafts(holder, db, stoplist, options, n: int, oversample: int, seed: int) -> list[str]:
    """`n` drafts through jobs.pool.store_generated: batches of `oversample` candidates, the best one
    that passes the screen kept (as the pool keeps them)."""
    from corpus.store import drafts as draft_rows
    from jobs.pool import store_generated

    out: list[str] = []
    request = options.request()
    base = seed * 1_000_000
    while len(out) < n:
        seeds = list(range(base, base + 16 * oversample))
        base += len(seeds)
        version, samples = holder.generate_samples(seeds, request)
        for i in range(0, len(samples), oversample):
            kept = store_generated(db, samples[i:i + oversample], seeds[i:i + oversample], version=version,
                                   request=request, purpose=draft_rows.SUBSCRIBER, ok_status="ready",
                                   stoplist=stoplist, keep=1)
            if kept and len(out) < n:
                out.append(draft_rows.get_draft(db, kept[0])["text"])
    return out


def make(args) -> None:
    from draft_quality import corpus_db

    from jobs.generator import GeneratorHolder
    from model.sample_options import SampleOptions

    rnd = random.Random(args.seed)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"load: {open('/proc/loadavg').read().strip()}")
    db, stoplist = corpus_db(args.corpus, Path(tempfile.mkdtemp(prefix="buhurt-panel-")))
    holder = GeneratorHolder(args.checkpoint)
    product = replace(SampleOptions(), temperature=args.temperature)
    sources = {"real": held_out_posts(args.real, args.n, rnd)}
    for name, options in (("product", product), ("before", replace(product, grammar="any")),
                          *((("raw", replace(product, words="any", quotes="any", grammar="any")),)
                            if args.raw else ()),
                          *((("cold", replace(product, temperature=args.cold)),) if args.cold else ())):
        t = time.perf_counter()
        sources[name] = drafts(holder, db, stoplist, options, args.n, args.oversample, args.seed)
        print(f"{name}: {args.n} drafts ({options.decoding.name}) in {time.perf_counter() - t:.0f} s")
    if args.words3:
        train = split_posts(args.real)["train"]
        sources["words3"] = word_chain_posts(train, args.n, rnd, chain_screen(train))
    if args.word_lstm:
        train = split_posts(args.real)["train"]
        sources["wordlstm"] = word_lstm_posts(args.word_lstm, args.n, args.word_temperature, args.seed,
                                              chain_screen(train))
    items = [(source, text) for source, texts in sources.items() for text in texts]
    rnd.shuffle(items)
    (out / "panel.txt").write_text(
        "".join(f"=== {i} ===\n{text}\n\n" for i, (_, text) in enumerate(items, 1)), encoding="utf-8")
    (out / "key.json").write_text(json.dumps({
        "checkpoint": str(args.checkpoint), "version": holder.version, "temperature": args.temperature,
        "cold": args.cold,
        "sources": {str(i): source for i, (source, _) in enumerate(items, 1)}}, indent=1), encoding="utf-8")
    print(f"{len(items)} posts: {out / 'panel.txt'} (give raters only this and {RUBRIC.name}); key: {out / 'key.json'}")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def read_answers(path: Path) -> dict[str, dict]:
    answers = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) < 6 or not parts[0].isdigit():
            continue
        n, readable, publish, coherence, funny, human = parts[:6]
        answers[n] = {"readable": readable.lower().startswith("y"), "publish": publish.lower().startswith("y"),
                      "coherence": int(coherence), "funny": int(funny), "human": human.lower().startswith("y")}
    return answers


def fleiss_kappa(votes: list[list[bool]]) -> float:
    """Fleiss' kappa of yes/no votes, one list of rater votes per item."""
    items = [v for v in votes if len(v) >= 2]
    if not items:
        return float("nan")
    r = len(items[0])
    p_yes = sum(sum(v) for v in items) / (len(items) * r)
    p_e = p_yes ** 2 + (1 - p_yes) ** 2
    p_i = [(sum(v) * (sum(v) - 1) + (r - sum(v)) * (r - sum(v) - 1)) / (r * (r - 1)) for v in items]
    p_bar = sum(p_i) / len(p_i)
    return (p_bar - p_e) / (1 - p_e) if p_e < 1 else 1.0


def score(args) -> None:
    key = json.loads((args.out / "key.json").read_text(encoding="utf-8"))
    sources: dict[str, str] = key["sources"]
    raters = [read_answers(p) for p in args.answers]
    for p, a in zip(args.answers, raters):
        missing = [n for n in sources if n not in a]
        print(f"{p.parent.name}/{p.name}: {len(a)} answers" + (f", missing {len(missing)}" if missing else ""))
    print(f"model {key['version']} ({key['checkpoint']}), temperature {key['temperature']}"
          + (f" (cold: {key['cold']})" if key.get("cold") else "") + f", {len(raters)} raters")
    print(f"{'source':<10} {'posts':>5}  {'readable (95% CI)':<22} {'publish (95% CI)':<22} {'coher':>5} "
          f"{'funny':>5} {'human':>6}")
    for source in dict.fromkeys(sources.values()):
        numbers = [n for n, s in sources.items() if s == source and all(n in a for a in raters)]
        row = []
        for field in ("readable", "publish"):
            k = sum(sum(a[n][field] for a in raters) * 2 > len(raters) for n in numbers)
            lo, hi = wilson(k, len(numbers))
            row.append(f"{k / max(1, len(numbers)):>5.0%} ({lo:.0%}-{hi:.0%})".ljust(22))
        coherence = sum(a[n]["coherence"] for a in raters for n in numbers) / max(1, len(numbers) * len(raters))
        funny = sum(a[n]["funny"] for a in raters for n in numbers) / max(1, len(numbers) * len(raters))
        human = sum(sum(a[n]["human"] for a in raters) * 2 > len(raters) for n in numbers) / max(1, len(numbers))
        print(f"{source:<10} {len(numbers):>5}  {row[0]} {row[1]} {coherence:>5.2f} {funny:>5.2f} {human:>6.0%}")
    if args.screen_chain:
        screen_chain(args, sources, raters)
    common = [n for n in sources if all(n in a for a in raters)]
    votes = [[a[n]["readable"] for a in raters] for n in common]
    unanimous = sum(len(set(v)) == 1 for v in votes) / max(1, len(votes))
    print(f"agreement on 'readable': Fleiss' kappa {fleiss_kappa(votes):.2f}, unanimous on {unanimous:.0%} of "
          f"{len(votes)} posts")


def screen_chain(args, sources: dict[str, str], raters: list[dict]) -> None:
    """The words3 posts through the product's screen: "readable" among those it passes and rejects."""
    texts = panel_texts(args.out / "panel.txt")
    rejects = chain_screen(split_posts(args.real)["train"])
    verdicts: dict[bool, list[bool]] = {True: [], False: []}
    for n, source in sources.items():
        if source == "words3" and all(n in a for a in raters):
            readable = sum(a[n]["readable"] for a in raters) * 2 > len(raters)
            verdicts[rejects(texts[n]) is None].append(readable)
    for passed, label in ((True, "passes the screen"), (False, "rejected (near-copy, ...)")):
        v = verdicts[passed]
        lo, hi = wilson(sum(v), len(v))
        print(f"words3 {label:<26} {len(v):>3} posts, readable {sum(v):>2} "
              f"({sum(v) / max(1, len(v)):.0%}, {lo:.0%}-{hi:.0%})")
    total = len(verdicts[True]) + len(verdicts[False])
    print(f"words3 readable and passing the screen: {sum(verdicts[True])} of {total} posts")


def panel_texts(path: Path) -> dict[str, str]:
    """number -> post text of a panel.txt."""
    text = path.read_text(encoding="utf-8")
    parts = re.split(r"^=== (\d+) ===\n", text, flags=re.M)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--checkpoint", type=Path, required=True)
    mk.add_argument("--corpus", type=Path, required=True, help="the model's training text (the screen's corpus)")
    mk.add_argument("--real", type=Path, default=POOL, help="real posts for calibration (held out by hash)")
    mk.add_argument("--out", type=Path, required=True)
    mk.add_argument("--n", type=int, default=40)
    mk.add_argument("--temperature", type=float, default=0.8)
    mk.add_argument("--oversample", type=int, default=3)
    mk.add_argument("--raw", action="store_true")
    mk.add_argument("--cold", type=float, default=0.0, help="also the product at this temperature (source cold)")
    mk.add_argument("--words3", action="store_true", help="also a word 3-gram chain over --real's training part")
    mk.add_argument("--word-lstm", type=Path, help="also the posts of benchmarks/word_lstm.py's checkpoint")
    mk.add_argument("--word-temperature", type=float, default=0.7, help="its temperature")
    mk.add_argument("--seed", type=int, default=1)
    sc = sub.add_parser("score")
    sc.add_argument("--out", type=Path, required=True)
    sc.add_argument("--real", type=Path, default=POOL, help="the posts words3 was built from (with --screen-chain)")
    sc.add_argument("--screen-chain", action="store_true",
                    help="also the words3 posts through the product's screen against --real's training part")
    sc.add_argument("answers", type=Path, nargs="+")
    args = ap.parse_args()
    if args.command == "make":
        if not args.real.is_file():
            print(f"skipped: {args.real} is absent")
            return
        import torch

        torch.set_num_threads(1)
        make(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
