"""The training run's settings, one frozen dataclass per concern, with the product's defaults:

- `ModelShape`: the network (config [model]).
- `TrainOptions`: the optimisation and the run's limits (config [train], `buhurt train`'s flags).
- `TrainConfig`: both, plus the run's files; what `model.train.train` takes (and `python -m model RUN.json`).
  It is a flat record (`TrainConfig(**asdict(shape), **asdict(options), checkpoint_dir=...)`):
  checkpoints (`train_config`) and run files store it as one flat JSON object.

The defaults are the product's (what the nightly CPU job trains: 2x256, "hold" schedule); torch-rnn's
train.lua defaults are the `torch_rnn_preset` (the parity tests), the GPU box's the `gpu_preset`.
`problems()` is the one validation of each field: {field: what it must be}; the config reader words
it as `table.key must be ...`, `validate()` as `key=value: expected ...`. Why the defaults are what
they are: docs/defaults.md. No torch here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

from model.errors import ModelError

MODEL_TYPES = ("lstm", "gru", "rnn")
LR_SCHEDULES = ("step", "cosine", "hold")
PROGRESS_SCHEDULES = ("cosine", "hold")   # driven by how far through the run (iterations or time budget)
LR_FLOOR = 0.02   # the cosine and hold schedules end at 2% of learning_rate
HOLD_DECAY = 0.25     # "hold" keeps learning_rate for the first 75% of the run, then lowers it linearly
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = {"auto": None, "bf16": True, "float32": False}   # precision -> bf16 autocast (None: where native)


def _one_of(names) -> str:
    *head, last = (repr(name) for name in names)
    return f"{', '.join(head)} or {last}" if head else last


def _is_int(v, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class ModelShape:
    """The network: cell, embedding, layers (config [model])."""

    model_type: str = "lstm"      # the recurrent cell: "lstm", "gru" or "rnn"
    wordvec_size: int = 64        # the character embedding's size
    # hidden units per layer: each night continues the model, so it trains for hours in all (docs/defaults.md)
    rnn_size: int = 256
    num_layers: int = 2           # stacked recurrent layers
    # dropout between the layers and before the head, in [0, 1): the nightly model sees each post
    # dozens of times (docs/defaults.md); a change of dropout alone still continues the active model
    dropout: float = 0.3

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.model_type not in MODEL_TYPES:
            problems["model_type"] = f"one of {_one_of(MODEL_TYPES)}"
        for key in ("wordvec_size", "rnn_size", "num_layers"):
            if not _is_int(getattr(self, key), 1):
                problems[key] = "a positive integer"
        if not (_is_number(self.dropout) and 0 <= self.dropout < 1):
            problems["dropout"] = "a number in [0, 1)"
        return problems

    def architecture(self) -> dict:
        """What decides whether a checkpoint can be continued (warm-started): the shape less dropout,
        which only regularises the training and is the configured one on a warm start."""
        return {k: getattr(self, k) for k in SHAPE_KEYS if k != "dropout"}


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation and the run's limits (config [train]; `buhurt train`'s flags of the same names)."""

    # sequences per batch; the CPU recipe (docs/defaults.md), torch-rnn's 50 is the torch_rnn_preset's
    batch_size: int = 32
    seq_length: int = 64            # characters per sequence (truncated backpropagation's length)
    learning_rate: float = 1.5e-3   # Adam's learning rate (docs/defaults.md)
    # "hold": learning_rate for the first 75% of the run, then linearly down to 2% of it; "cosine":
    # down to 2% smoothly over the run (over max_minutes when set, else the iterations); "step":
    # x lr_decay_factor every lr_decay_every epochs (torch-rnn's). Why "hold": docs/defaults.md
    lr_schedule: str = "hold"
    # the rate rises linearly from 0 over this fraction of a run, in [0, 1) (a nightly warm start
    # ramps over 5% whatever this says: Adam's moments start afresh and its first steps are the largest)
    warmup_frac: float = 0.0
    lr_decay_every: int = 20        # with lr_schedule "step": decay every this many epochs
    lr_decay_factor: float = 0.5    # with lr_schedule "step": the factor of each decay
    grad_clip: float = 5.0          # clamp each gradient element to [-grad_clip, grad_clip]
    # decoupled weight decay (AdamW) on the recurrent and head matrices, not the embedding or the
    # biases; 0: plain Adam (torch-rnn's). Why 0.1: docs/defaults.md
    weight_decay: float = 0.1
    max_epochs: int = 1000          # passes over the text at most; max_minutes usually ends a run first
    # a run's time budget in minutes; 0: none (a nightly run: the night window; the first model and
    # `buhurt retrain` by hand: 10 minutes)
    max_minutes: float = 0.0
    max_iterations: int = 0         # iterations (batches) at most; 0: no limit besides max_epochs
    print_every: int = 1            # loss-history granularity and progress-bar refresh, in iterations
    checkpoint_every: int = 1000    # validate (and write best/latest) every N iterations, and at the end
    seed: int = 123                 # random seed of the weights and the batches
    device: str = "cpu"             # "cpu", "cuda" (or "cuda:N") or "auto" (cuda when torch sees a GPU)
    precision: str = "auto"         # "auto" (bf16 where the device runs it natively), "bf16", "float32"
    # CPU threads; 0: 1 for tiny models (rnn_size * batch_size <= 2048), else the usable cores shared
    # among the local processes (the service's runs leave one core to the bot). Why: docs/defaults.md
    threads: int = 0
    lexicon_min_count: int = 3      # the checkpoint's lexicon: words seen at least this often in the training text

    def problems(self) -> dict[str, str]:
        problems = {}
        for key in ("batch_size", "seq_length", "lr_decay_every", "max_epochs", "print_every", "checkpoint_every",
                    "lexicon_min_count"):
            if not _is_int(getattr(self, key), 1):
                problems[key] = "a positive integer"
        if not _is_int(self.max_iterations, 0):
            problems["max_iterations"] = "an integer >= 0 (0: no limit)"
        if not _is_int(self.threads, 0):
            problems["threads"] = "an integer >= 0 (0: automatic)"
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            problems["seed"] = "an integer"
        for key in ("learning_rate", "grad_clip", "lr_decay_factor"):
            v = getattr(self, key)
            if not (_is_number(v) and v > 0):
                problems[key] = "a positive number"
        if not (_is_number(self.weight_decay) and self.weight_decay >= 0):
            problems["weight_decay"] = "a number >= 0 (0: none)"
        if not (_is_number(self.warmup_frac) and 0 <= self.warmup_frac < 1):
            problems["warmup_frac"] = "a number in [0, 1)"
        if not (_is_number(self.max_minutes) and self.max_minutes >= 0):
            problems["max_minutes"] = "a number >= 0 (0: no time budget)"
        if self.lr_schedule not in LR_SCHEDULES:
            problems["lr_schedule"] = _one_of(LR_SCHEDULES)
        if not isinstance(self.device, str) or not (self.device in DEVICES or self.device.startswith("cuda:")):
            problems["device"] = _one_of(DEVICES)
        if self.precision not in PRECISIONS:
            problems["precision"] = _one_of(PRECISIONS)
        return problems

    @property
    def bf16(self) -> Optional[bool]:
        """bf16 autocast: True/False as `precision` asks, None: where the device runs it natively."""
        return PRECISIONS.get(self.precision)


SHAPE_KEYS = tuple(f.name for f in fields(ModelShape))
# what a run is, besides its shape; on --resume these come from the checkpoint (the rest, limits
# and where it runs, from the command)
OPTIMISATION_KEYS = ("batch_size", "seq_length", "learning_rate", "lr_schedule", "warmup_frac", "lr_decay_every",
                     "lr_decay_factor", "grad_clip", "weight_decay", "seed")
RUN_FROM_CHECKPOINT = SHAPE_KEYS + OPTIMISATION_KEYS


@dataclass(frozen=True)
class TrainConfig(TrainOptions, ModelShape):
    """A training run: the model, the optimisation, and its files."""

    input_h5: str = "data/train.h5"
    input_json: str = "data/train.json"
    checkpoint_dir: str = "data/checkpoints"
    resume: Optional[str] = None
    init_from: Optional[str] = None
    progress: bool = True           # the tqdm bar (off in the service's nightly run)

    @classmethod
    def torch_rnn_preset(cls, **overrides) -> "TrainConfig":
        """jcjohnson/torch-rnn's train.lua defaults: 2x128 LSTM, no dropout, batch 50 x seq 50, Adam 2e-3
        (no weight decay) x0.5 every 5 epochs ("step"), 50 epochs."""
        base = cls(rnn_size=128, dropout=0.0, batch_size=50, seq_length=50, learning_rate=2e-3, weight_decay=0.0,
                   lr_schedule="step", lr_decay_every=5, max_epochs=50)
        return replace(base, **overrides)

    @classmethod
    def gpu_preset(cls, **overrides) -> "TrainConfig":
        """The larger model for the GPU box: 3x512 LSTM, embedding 128, dropout 0.2,
        batch 128 x seq 256, Adam 2e-3 (no weight decay: not measured there), bf16 autocast, validation
        every 500 iterations."""
        base = cls(wordvec_size=128, rnn_size=512, num_layers=3, dropout=0.2, batch_size=128,
                   seq_length=256, learning_rate=2e-3, weight_decay=0.0, device="cuda", precision="bf16",
                   checkpoint_every=500, print_every=10)
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Unknown keys are left out (a checkpoint's older train_config: model.checkpoint.upgrade)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> None:
        for key, expected in {**ModelShape.problems(self), **TrainOptions.problems(self)}.items():
            raise ModelError(f"{key}={getattr(self, key)!r}: expected {expected}")
        if self.resume and self.init_from:
            raise ModelError("resume and init_from are exclusive: resume continues a run, init_from starts a new one")
