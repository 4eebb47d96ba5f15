"""The char-RNN: embedding -> fused multi-layer LSTM/GRU/RNN -> linear head. No file I/O here.

The shape's defaults are ModelShape's (model/train_config.py: the product's 2x256; torch-rnn's
2x128 is TrainConfig.torch_rnn_preset()). The recurrent core is PyTorch's fused nn.LSTM / nn.GRU /
nn.RNN (cuDNN on a GPU).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from model.errors import ModelError
from model.train_config import ModelShape

_SHAPE = ModelShape()   # the shape's defaults live once, in model/train_config.py


@dataclass
class ModelConfig:
    """What CharRNN is built from: the vocabulary size and a ModelShape (its defaults and checks)."""

    vocab_size: int
    model_type: str = _SHAPE.model_type
    wordvec_size: int = _SHAPE.wordvec_size
    rnn_size: int = _SHAPE.rnn_size
    num_layers: int = _SHAPE.num_layers
    dropout: float = _SHAPE.dropout

    def __post_init__(self) -> None:
        shape = ModelShape(**{f.name: getattr(self, f.name) for f in fields(ModelShape)})
        problems = shape.problems()
        if not isinstance(self.vocab_size, int) or isinstance(self.vocab_size, bool) or self.vocab_size < 1:
            problems["vocab_size"] = "a positive integer"
        for name, expected in problems.items():
            raise ModelError(f"{name}={getattr(self, name)!r}: expected {expected}")

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
