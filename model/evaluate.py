"""The model's loss on any text file, in bits and nats per character.

The text is read as one stream (the model's state carries through it), primed with a post gap
(a blank line) so the first character is predicted as the start of a post. Characters missing
from the checkpoint's vocabulary cannot be scored: they are dropped and counted (``skipped``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from model.checkpoint import load_checkpoint
from model.distributed import resolve_device
from model.errors import ModelError
from model.files import read_text_file
from model.lstm import model_from_checkpoint
from model.vocab import Vocab

CHUNK = 4096


@torch.inference_mode()
def evaluate_ids(model, ids: torch.Tensor, prime: list[int], device) -> tuple[float, int]:
    """Sum of nats over ``ids`` (1-D int64) predicted one stream, and the count."""
    seq = torch.cat([torch.tensor(prime, dtype=torch.long), ids]) if prime else ids
    start = len(prime) if prime else 1        # without priming the first char is not predicted
    total, count, state = 0.0, 0, None
    for a in range(0, len(seq) - 1, CHUNK):
        x = seq[a:a + CHUNK].unsqueeze(0).to(device)
        y = seq[a + 1:a + CHUNK + 1].to(device)
        logits, state = model(x[:, :len(y)], state)
        nll = F.cross_entropy(logits[0].float(), y, reduction="none")
        lo = max(0, start - 1 - a)            # skip positions that predict the priming text
        total += nll[lo:].double().sum().item()
        count += len(y) - lo
    return total, count


def evaluate_text(checkpoint_path, text_path, device: str = "cpu") -> dict:
    dev = resolve_device(device)
    ck = load_checkpoint(checkpoint_path)
    text = read_text_file(text_path, "text file")
    vocab = Vocab(ck["idx_to_token"])
    missing = set(vocab.missing(text))
    kept = "".join(c for c in text if c not in missing) if missing else text
    if len(kept) < 2:
        raise ModelError(f"text file {str(text_path)!r} has no characters the model knows")
    model = model_from_checkpoint(ck, dev)
    nl = vocab.index.get("\n")
    prime = [nl, nl] if nl is not None else []
    ids = torch.from_numpy(vocab.encode(kept))
    nats, count = evaluate_ids(model, ids, prime, dev)
    npc = nats / count
    return {
        "bits_per_char": npc / math.log(2),
        "nats_per_char": npc,
        "chars": count,
        "skipped": len(text) - len(kept),
        "unknown_chars": sorted(missing),
        "checkpoint": str(checkpoint_path),
        "text": str(text_path),
    }
