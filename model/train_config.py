"""The training run's settings, one frozen dataclass per concern, with the product's defaults:

- `ModelShape`: the network (config [model]).
- `TrainOptions`: the optimisation and the run's limits (config [train], `buhurt train`'s flags).
- `TrainConfig`: both, plus the run's files; what `model.train.train` takes (and `python -m model RUN.json`).

The defaults are the product's (what the nightly CPU job trains: 2x256, "hold" schedule); torch-rnn's
train.lua defaults are the `torch_rnn_preset` (the parity tests), the GPU box's the `gpu_preset`.
`problems()` is the one validation of each field: {field: what it must be}; the config reader words
it as `table.key must be ...`, `validate()` as `key=value: expected ...`. No torch here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

from model.errors import ModelError

# Fields that define the model and the optimisation: on --resume they come from the checkpoint.
RUN_FROM_CHECKPOINT = (
    "model_type", "wordvec_size", "rnn_size", "num_layers", "dropout", "batch_size", "seq_length",
    "learning_rate", "lr_schedule", "warmup_frac", "lr_decay_every", "lr_decay_factor", "grad_clip",
    "weight_decay", "seed",
)
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

    model_type: str = "lstm"      # "lstm", "gru" or "rnn"
    wordvec_size: int = 64
    rnn_size: int = 256   # the nightly CPU job trains for hours in all: 2x256 overtakes 2x128 after 10-15 min
    num_layers: int = 2
    # dropout between the layers and before the head: the nightly job sees each post for dozens of
    # epochs and a 2x256 without it over-fits (train 2.1 against held-out 2.5-2.7 bits/char); 0.3 took
    # the first two nights from +0.4%/-0.3% to -3.1%/-3.8% against the 5-gram (benchmarks/results/nights-cpu.txt)
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

    def shape(self) -> dict:
        """The ModelShape fields alone."""
        return {f.name: getattr(self, f.name) for f in fields(ModelShape)}

    def architecture(self) -> dict:
        """What decides whether a checkpoint can be continued (warm-started): the shape less dropout,
        which only regularises the training and is the configured one on a warm start."""
        return {k: v for k, v in self.shape().items() if k != "dropout"}


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation and the run's limits (config [train]; `buhurt train`'s flags of the same names)."""

    # the CPU recipe measured for a 10-minute budget and the nightly job (benchmarks/results/quality-cpu.txt,
    # nights-cpu.txt); torch-rnn's 50 / 50 / 2e-3 are the torch_rnn_preset's
    batch_size: int = 32
    seq_length: int = 64
    learning_rate: float = 1.5e-3
    # "step": x lr_decay_factor every lr_decay_every epochs (torch-rnn). "cosine": from learning_rate
    # down to 2% of it over the run: over max_minutes when a time budget is set (whichever of the
    # budget and max_epochs/max_iterations ends first), else over the iterations. "hold": learning_rate
    # for the first 75% of the run, then linearly down to 2% of it (measured better than cosine for a
    # 10-minute CPU budget: benchmarks/results/quality-cpu.txt)
    lr_schedule: str = "hold"
    # warm-up: the rate rises linearly from 0 over this fraction of the run (0: none). A warm start
    # (init_from) re-creates Adam's moments, whose first steps are the largest: a short ramp keeps
    # them from undoing what the checkpoint learned
    warmup_frac: float = 0.0
    lr_decay_every: int = 20
    lr_decay_factor: float = 0.5
    grad_clip: float = 5.0
    # decoupled weight decay (AdamW) on the recurrent and head matrices, not the embedding or the
    # biases; 0: plain Adam (torch-rnn's). Beside dropout 0.3, 0.1 took six warm-started 10-minute
    # nights from -4.5% to -5.7% against the 5-gram (benchmarks/results/nights-cpu.txt)
    weight_decay: float = 0.1
    max_epochs: int = 1000
    max_minutes: float = 0.0        # 0: no time budget (the nightly job: the night window)
    max_iterations: int = 0         # 0: no limit besides max_epochs
    print_every: int = 1            # loss-history granularity and progress-bar refresh
    checkpoint_every: int = 1000    # validate (and write best/latest) every N iterations
    seed: int = 123
    device: str = "cpu"             # "cpu", "cuda" (or "cuda:N") or "auto" (cuda when torch sees a GPU)
    precision: str = "auto"         # "auto" (bf16 where the device runs it natively), "bf16", "float32"
    # CPU threads; 0: 1 for tiny models (rnn_size * batch_size <= 2048), else the usable cores shared
    # among the local processes (the nightly job leaves one core to the bot). Never more than that share
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

    @classmethod
    def of(cls, shape: ModelShape, options: TrainOptions, **files) -> "TrainConfig":
        """A run of `shape` and `options` (or of what extends them: the [model] and [train] settings);
        `files` (and any field) on top."""
        values = {f.name: getattr(shape, f.name) for f in fields(ModelShape)}
        values.update({f.name: getattr(options, f.name) for f in fields(TrainOptions)})
        return cls(**{**values, **files})

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
