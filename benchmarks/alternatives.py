"""Two levers for readable stories that issue 23's panels did not need readers to close.

- `coherence`: do a post's lines tell one story? A proxy from the corpus itself: the mean pointwise
  mutual information, over the channel's training posts, of the content lemmas (pymorphy3's normal
  forms of nouns, verbs, adjectives, participles) of every two different lines of a post. Printed for
  held-out real posts, for posts made of five lines of five different held-out posts (no story by
  construction), and, with --word-lstm F, for benchmarks/word_lstm.py's posts, whose highest-scoring
  3- to 6-line posts are printed to be read: is re-ranking many candidates by coherence a lever?
- `mutate`: the one way to make every post readable on this CPU: take a training post and swap some
  of its content lemmas for corpus lemmas of the same class (part of speech, gender, animacy, aspect,
  transitivity), inflected by pymorphy3 to the original's tags, one replacement per lemma throughout
  the post so the story holds. Printed: how many such posts the product's screen passes (near-copies
  above all) and the median share of words changed. It asks whether the readable posts would be the
  channel's own posts again.

    python benchmarks/alternatives.py coherence [--real POOL] [--word-lstm F] [--n 400] [--seed 1]
    python benchmarks/alternatives.py mutate [--real POOL] [--n 200] [--share 0.4] [--seed 7]

Prints figures (and, for coherence, model posts to read), asserts nothing; never commit its output
posts next to the channel's texts.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pymorphy3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_panel import POOL, chain_screen, split_posts  # noqa: E402  (a benchmark beside its peers)

MORPH = pymorphy3.MorphAnalyzer()
WORD = re.compile(r"[А-ЯЁа-яё]+(?:-[А-ЯЁа-яё]+)?")
CONTENT = frozenset({"NOUN", "VERB", "INFN", "ADJF", "ADJS", "PRTF", "PRTS", "GRND"})
SWAPPED = frozenset({"NOUN", "ADJF", "VERB", "INFN"})
NOT_SWAPPED = frozenset({"Name", "Surn", "Patr", "Abbr", "Init", "Apro", "Anum"})


def best_parse(word: str, cache: dict = {}):   # noqa: B006  (a cache for the run)
    word = word.lower()
    if word not in cache:
        cache[word] = MORPH.parse(word)[0]
    return cache[word]


def post_lines(post: str) -> list[str]:
    return [line for line in post.split("\n") if line.strip() and line.strip() != "@"]


# coherence ------------------------------------------------------------------------------------

def lemmas(line: str) -> set[str]:
    parses = (best_parse(w) for w in WORD.findall(line) if len(w) >= 3)
    return {p.normal_form for p in parses if p.tag.POS in CONTENT}


class Cooccurrence:
    """Which content lemmas the channel's posts use together."""

    def __init__(self, posts: list[str], min_df: int = 3) -> None:
        self.n, self.min_df = len(posts), min_df
        self.df: Counter[str] = Counter()
        self.pairs: Counter[tuple[str, str]] = Counter()
        for post in posts:
            seen = sorted(set().union(*map(lemmas, post_lines(post))))
            self.df.update(seen)
            self.pairs.update((a, b) for i, a in enumerate(seen) for b in seen[i + 1:])

    def pmi(self, a: str, b: str) -> float | None:
        if a == b or self.df[a] < self.min_df or self.df[b] < self.min_df:
            return None
        k = self.pairs[(min(a, b), max(a, b))]
        return math.log((k + 0.1) * self.n / (self.df[a] * self.df[b]))

    def coherence(self, post: str) -> float | None:
        lines = [lemmas(line) for line in post_lines(post)]
        values = [v for i, x in enumerate(lines) for y in lines[i + 1:] for a in x for b in y
                  if (v := self.pmi(a, b)) is not None]
        return statistics.fmean(values) if values else None


def summary(name: str, scores: list[float | None]) -> None:
    kept = [s for s in scores if s is not None]
    print(f"{name:<34} {len(kept):>4} posts  coherence mean {statistics.fmean(kept):.2f}"
          f"  median {statistics.median(kept):.2f}")


def coherence(args) -> None:
    parts = split_posts(args.real)
    t0 = time.perf_counter()
    co = Cooccurrence(parts["train"])
    print(f"co-occurrence of {len(co.df)} lemmas over {co.n} training posts: {time.perf_counter() - t0:.0f} s")
    rnd = random.Random(args.seed)
    held = [p for p in parts["held"] if len(p) <= 500]
    summary("real held-out posts", [co.coherence(p) for p in rnd.sample(held, min(args.n, len(held)))])
    mixed = ["\n@\n".join(rnd.choice(post_lines(p)) for p in rnd.sample(held, 5)) for _ in range(args.n)]
    summary("lines of 5 different real posts", [co.coherence(p) for p in mixed])
    if args.word_lstm is None:
        return
    import word_lstm

    net, vocab = word_lstm.load(args.word_lstm)
    grammar = word_lstm.grammar_rules()
    t0 = time.perf_counter()
    posts: list[str] = []
    for batch in range(math.ceil(args.n / 20)):
        posts += word_lstm.sample(net, vocab, 20, args.temperature, args.seed * 1000 + batch, grammar=grammar)
    under = [p for p in posts if len(p) <= 500]
    print(f"word LSTM: {len(posts)} posts in {time.perf_counter() - t0:.0f} s, {len(under)} within 500 characters")
    scored = [(co.coherence(p), p) for p in under]
    summary("word LSTM posts within the cap", [s for s, _ in scored])
    short = sorted(((s, p) for s, p in scored if s is not None and 3 <= len(post_lines(p)) <= 6), reverse=True)
    print(f"the {min(args.show, len(short))} most coherent of its {len(short)} posts of 3 to 6 lines, to read:")
    for s, p in short[:args.show]:
        print(f"{s:5.2f}  " + " / ".join(post_lines(p)))


# mutate ---------------------------------------------------------------------------------------

def swappable(word: str):
    p = best_parse(word)
    if len(word) < 4 or p.score < 0.6 or p.tag.POS not in SWAPPED or NOT_SWAPPED & p.tag.grammemes:
        return None
    return p


def word_class(p) -> tuple:
    t = p.tag
    if t.POS == "NOUN":
        return ("NOUN", t.gender, t.animacy, "Geox" in t, "Pltm" in t)
    if t.POS == "ADJF":
        return ("ADJF", "Qual" in t)
    return (t.POS, t.aspect, t.transitivity)


def inflected(lemma: str, like) -> str | None:
    t = like.tag
    wanted = {"NOUN": (t.case, t.number), "ADJF": (t.case, t.number, t.gender, t.animacy),
              "VERB": (t.person, t.number, t.tense, t.mood, t.gender, t.involvement)}.get(t.POS, ())
    for q in MORPH.parse(lemma):
        if q.normal_form == lemma and q.tag.POS == t.POS:
            form = q.inflect({g for g in wanted if g})
            if form:
                return form.word
    return None


def mutation(post: str, lexicon: dict[tuple, list[str]], rnd: random.Random, share: float) -> str | None:
    first: dict[str, object] = {}
    for w in WORD.findall(post):
        if p := swappable(w):
            first.setdefault(p.normal_form, p)
    if len(first) < 2:
        return None
    chosen = rnd.sample(sorted(first), max(2, round(share * len(first))))
    swap = {lemma: rnd.choice(others) for lemma in chosen
            if (others := [x for x in lexicon[word_class(first[lemma])] if x != lemma])}
    if not swap:
        return None

    def one(m: re.Match) -> str:
        p = swappable(m.group(0))
        new = inflected(swap[p.normal_form], p) if p and p.normal_form in swap else None
        return new.upper() if new else m.group(0)
    return WORD.sub(one, post)


def mutate(args) -> None:
    train = split_posts(args.real)["train"]
    counts: Counter[tuple[tuple, str]] = Counter()
    for post in train:
        for w in WORD.findall(post):
            if p := swappable(w):
                counts[(word_class(p), p.normal_form)] += 1
    lexicon: dict[tuple, list[str]] = defaultdict(list)
    for (cls, lemma), c in sorted(counts.items(), key=lambda kv: kv[0][1]):
        if c >= 3:
            lexicon[cls].append(lemma)
    rejects = chain_screen(train)
    rnd = random.Random(args.seed)
    sources = [p for p in train if len(p) <= 500]
    why: Counter[str] = Counter()
    changed: list[float] = []
    for _ in range(args.n):
        source = rnd.choice(sources)
        post = mutation(source, lexicon, rnd, args.share)
        if post is None:
            why["fewer than 2 words to swap"] += 1
            continue
        a, b = source.split(), post.split()
        changed.append(sum(x != y for x, y in zip(a, b)) / len(a))
        reason = rejects(post)
        why["passes the screen" if reason is None else "near-copy" if reason.startswith("near-copy")
            else reason] += 1
    print(f"{args.n} mutated training posts (share {args.share} of their content lemmas swapped):")
    for reason, k in why.most_common():
        print(f"  {reason:<28} {k:>4} ({k / args.n:.0%})")
    print(f"words changed per post: median {statistics.median(changed):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    co = sub.add_parser("coherence")
    co.add_argument("--real", type=Path, default=POOL)
    co.add_argument("--word-lstm", type=Path)
    co.add_argument("--temperature", type=float, default=0.7)
    co.add_argument("--n", type=int, default=400)
    co.add_argument("--show", type=int, default=15)
    co.add_argument("--seed", type=int, default=1)
    mu = sub.add_parser("mutate")
    mu.add_argument("--real", type=Path, default=POOL)
    mu.add_argument("--n", type=int, default=200)
    mu.add_argument("--share", type=float, default=0.4)
    mu.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    (coherence if args.command == "coherence" else mutate)(args)


if __name__ == "__main__":
    main()
