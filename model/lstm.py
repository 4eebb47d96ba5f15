"""The char-RNN: embedding -> fused multi-layer LSTM/GRU/RNN -> linear head. No file I/O here.

Defaults equal jcjohnson/torch-rnn's train.lua flags (wordvec_size 64, rnn_size 128, 2 layers,
dropout 0). The recurrent core is PyTorch's fused nn.LSTM / nn.GRU / nn.RNN (cuDNN on a GPU).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from model.errors import ModelError

MODEL_TYPES = ("lstm", "gru", "rnn")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    model_type: str = "lstm"
    wordvec_size: int = 64
    rnn_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ModelError(f"model_type={self.model_type!r}: expected one of {', '.join(MODEL_TYPES)}")
        for name in ("vocab_size", "wordvec_size", "rnn_size", "num_layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ModelError(f"{name}={v!r}: expected a positive integer")
        if not (0.0 <= float(self.dropout) < 1.0):
            raise ModelError(f"dropout={self.dropout!r}: expected a number in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class CharRNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.wordvec_size)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cfg.model_type]
        self.rnn = rnn_cls(
            cfg.wordvec_size, cfg.rnn_size, num_layers=cfg.num_layers, batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.rnn_size, cfg.vocab_size)

    def forward(self, x: torch.Tensor, state=None):
        # x: (B, T) int64 -> logits (B, T, V); state: (h, c) each (L, B, H) for lstm, h for gru/rnn
        e = self.embed(x)                      # (B, T, D)
        out, state = self.rnn(e, state)        # (B, T, H)
        return self.head(self.drop(out)), state


def detach_state(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def state_to_list(state) -> list:
    """Hidden state as a list of tensors (for checkpoints)."""
    if state is None:
        return []
    return [s.detach().cpu() for s in (state if isinstance(state, tuple) else (state,))]


def state_from_list(items: list, model_type: str, device):
    if not items:
        return None
    ts = [t.to(device) for t in items]
    return tuple(ts) if model_type == "lstm" else ts[0]


def model_from_checkpoint(ck: dict, device="cpu") -> CharRNN:
    """Rebuild the module from a loaded checkpoint dict (see model.checkpoint.load_checkpoint)."""
    mc = ModelConfig.from_dict(ck["model_config"])
    if mc.vocab_size != len(ck["idx_to_token"]):
        raise ModelError(f"checkpoint: model_config.vocab_size={mc.vocab_size} but the vocabulary has "
                         f"{len(ck['idx_to_token'])} tokens")
    model = CharRNN(mc)
    try:
        model.load_state_dict(ck["model_state"])
    except RuntimeError as exc:
        raise ModelError(f"checkpoint: weights do not match model_config: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval()
