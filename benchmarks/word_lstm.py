"""A word-level LSTM, for the reader panel: does a model over words, not characters, move readers?

The product's model reads characters (model/): on pool.txt its drafts have real words in no order
and every reader panel put them at 0% readable. This benchmark trains the same kind of network over
words on the same posts and the same CPU, so a panel can compare the two (reader_panel.py make
--word-lstm). It is a measurement, not the product: nothing under model/ or jobs/ uses it.

- Tokens: words (hyphenated words whole) and punctuation marks, "@" for a line break inside a post,
  "</s>" for a post's end. A token seen fewer than --min-count times in the training part is <unk>,
  which is never sampled: every word written is a word the community used.
- Network: embedding 256, a 2x512 LSTM (dropout 0.25), a projection back to 256 and an adaptive
  softmax (torch.nn.AdaptiveLogSoftmaxWithLoss; cut-offs 2,000 and 8,000 words), AdamW, the learning
  rate on a cosine from 2e-3 to 2e-4 over the time budget, batches of 32 x 64 tokens carrying the
  state across batches (torch-rnn's way). The posts are shuffled each epoch.
- Training part and held-out part: the nightly split's hash (model.preprocess.post_split), as the
  product's model and the panel's real posts use it. The held-out loss is printed after each epoch.
  --keep last (the default) saves the last epoch's weights, --keep best the epoch with the lowest
  held-out loss.
- Sampling: temperature, nucleus (top-p 0.95); with --grammar a word that breaks model.grammar's
  agreement rules with the words before it on its line is taken back and drawn again (20 tries).

    python benchmarks/word_lstm.py train --out F.pt [--minutes 35] [--corpus pool.txt] [--keep last]
    python benchmarks/word_lstm.py sample --checkpoint F.pt [--n 8] [--temperature 0.7] [--grammar] [--seed 1]

Prints figures and posts, asserts nothing. Never commit what it writes from the channel's posts.
"""
from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POOL = REPO.parent / "shared" / "data" / "bugurtthread" / "pool.txt"
TOKEN = re.compile(r"\w+(?:-\w+)*|[^\w\s]")
END, UNK, LINE = "</s>", "<unk>", "@"
BATCH, STEPS = 32, 64
LR, LR_FLOOR = 2e-3, 0.1


def corpus_parts(path: Path) -> tuple[list[str], list[str]]:
    from model.preprocess import post_split

    posts = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    train = [p for p in posts if post_split(p, 0.1, 0.1) == "train"]
    return train, [p for p in posts if post_split(p, 0.1, 0.1) != "train"]


def tokens(post: str) -> list[str]:
    out: list[str] = []
    for line in post.split("\n"):
        line = line.strip()
        if line and line != "@":
            out.extend(([LINE] if out else []) + TOKEN.findall(line))
    return out


def detokenize(toks: list[str]) -> str:
    """Tokens back to a post: punctuation against the word before it, quotes around what they quote;
    empty lines left out."""
    lines: list[list[str]] = [[]]
    for t in toks:
        if t == LINE:
            lines.append([])
        else:
            lines[-1].append(t)
    out = []
    for line in lines:
        s, quoted = "", False
        for t in line:
            if t in ",.!?:;…)%»":
                s += t
            elif t == '"':
                s += t if quoted else (" " if s else "") + t
                quoted = not quoted
            elif s.endswith(("(", "«")) or (quoted and s.endswith('"') and (len(s) == 1 or s[-2] == " ")):
                s += t
            else:
                s += (" " if s else "") + t
        if s:
            out.append(s)
    return "\n@\n".join(out)


class WordLSTM(nn.Module):
    def __init__(self, vocab_size: int, emb: int = 256, hidden: int = 512, layers: int = 2,
                 dropout: float = 0.25) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, batch_first=True, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, emb)
        cutoffs = [c for c in (2000, 8000) if c < vocab_size - 1]
        self.out = nn.AdaptiveLogSoftmaxWithLoss(emb, vocab_size, cutoffs=cutoffs, div_value=2.0)

    def forward(self, x, state=None):
        h, state = self.lstm(self.drop(self.emb(x)), state)
        return self.proj(self.drop(h)), state


def train(args) -> None:
    torch.manual_seed(args.seed)
    print(f"load: {open('/proc/loadavg').read().strip()}")
    train_posts, held = corpus_parts(args.corpus)
    counts = Counter(t for p in train_posts for t in tokens(p))
    vocab = [END, UNK, LINE] + [w for w, c in counts.most_common() if c >= args.min_count and w != LINE]
    index = {w: i for i, w in enumerate(vocab)}
    covered = sum(c for w, c in counts.items() if w in index) / sum(counts.values())
    print(f"{len(train_posts)} training posts, {len(held)} held out; {len(vocab)} tokens, "
          f"{covered:.1%} of the training text's tokens")

    def ids(posts: list[str]) -> torch.Tensor:
        return torch.tensor([i for p in posts for i in (*(index.get(t, 1) for t in tokens(p)), 0)])

    held_ids = ids(held)
    net = WordLSTM(len(vocab))
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.01)
    budget, start, step, epoch, best = args.minutes * 60, time.monotonic(), 0, 0, math.inf
    while time.monotonic() - start < budget:
        order = train_posts[:]
        random.Random(args.seed + epoch).shuffle(order)
        data = ids(order)
        n = (len(data) - 1) // (BATCH * STEPS) * (BATCH * STEPS)
        xs, ys = data[:n].view(BATCH, -1), data[1:n + 1].view(BATCH, -1)
        state = None
        net.train()
        for i in range(0, xs.size(1), STEPS):
            progress = min(1.0, (time.monotonic() - start) / budget)
            for group in opt.param_groups:
                group["lr"] = LR * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))
            h, state = net(xs[:, i:i + STEPS], state)
            state = tuple(s.detach() for s in state)
            loss = net.out(h.reshape(-1, h.size(-1)), ys[:, i:i + STEPS].reshape(-1)).loss
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            step += 1
            if time.monotonic() - start > budget:
                break
        epoch += 1
        net.eval()
        with torch.no_grad():
            h, _ = net(held_ids[:-1].unsqueeze(0))
            held_loss = net.out(h[0], held_ids[1:]).loss.item()
        print(f"epoch {epoch}: {step} steps, {time.monotonic() - start:.0f} s, training loss {loss.item():.3f}, "
              f"held-out loss {held_loss:.3f} (perplexity {math.exp(held_loss):.0f})", flush=True)
        if args.keep == "last" or held_loss < best:
            best = min(best, held_loss)
            tmp = args.out.with_suffix(".tmp")
            torch.save({"vocab": vocab, "state": net.state_dict(), "epoch": epoch, "held_loss": held_loss}, tmp)
            tmp.replace(args.out)
    print(f"saved {args.out}")


def load(path: Path) -> tuple[WordLSTM, list[str]]:
    saved = torch.load(path)
    net = WordLSTM(len(saved["vocab"]))
    net.load_state_dict(saved["state"])
    return net.eval(), saved["vocab"]


def sample(net: WordLSTM, vocab: list[str], n: int, temperature: float, seed: int, grammar=None,
           top_p: float = 0.95, max_chars: int = 500) -> list[str]:
    """`n` posts; one that runs past `max_chars` is stopped a little after it (the caller drops it)."""
    g = torch.Generator().manual_seed(seed)
    posts = []
    with torch.no_grad():
        for _ in range(n):
            x, state, toks = torch.tensor([[0]]), None, []
            while True:
                h, state = net(x, state)
                logp = net.out.log_prob(h[:, -1])[0] / temperature
                logp[1] = -math.inf                              # <unk> is never written
                p, order = torch.softmax(logp, -1).sort(descending=True)
                keep = (p.cumsum(0) - p) < top_p
                p, order = p[keep], order[keep]
                for _ in range(20):
                    k = int(order[torch.multinomial(p, 1, generator=g)].item())
                    if grammar is None or k < 3 or not toks or toks[-1] == LINE:
                        break
                    line = detokenize(toks[-3:] + [vocab[k]]).split("\n")[-1]
                    if not grammar.line_errors(line):
                        break
                if k == 0:
                    break
                toks.append(vocab[k])
                x = torch.tensor([[k]])
                if len(detokenize(toks)) > max_chars + 50:
                    break
            posts.append(detokenize(toks))
    return posts


def grammar_rules():
    import pymorphy3

    from model.grammar import Grammar
    return Grammar(pymorphy3.MorphAnalyzer())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--corpus", type=Path, default=POOL)
    tr.add_argument("--minutes", type=float, default=35.0)
    tr.add_argument("--min-count", type=int, default=3)
    tr.add_argument("--keep", choices=("last", "best"), default="last")
    tr.add_argument("--seed", type=int, default=1)
    sa = sub.add_parser("sample")
    sa.add_argument("--checkpoint", type=Path, required=True)
    sa.add_argument("--n", type=int, default=8)
    sa.add_argument("--temperature", type=float, default=0.7)
    sa.add_argument("--grammar", action="store_true")
    sa.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.command == "train":
        train(args)
    else:
        net, vocab = load(args.checkpoint)
        for post in sample(net, vocab, args.n, args.temperature, args.seed, grammar_rules() if args.grammar else None):
            print(post, "\n")


if __name__ == "__main__":
    main()
