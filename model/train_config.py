"""TrainConfig: torch-rnn's train.lua flags (underscored), its defaults, and a GPU preset."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

from model.errors import ModelError

# Fields that define the model and the optimisation: on --resume they come from the checkpoint.
RUN_FROM_CHECKPOINT = (
    "model_type", "wordvec_size", "rnn_size", "num_layers", "dropout", "batch_size", "seq_length",
    "learning_rate", "lr_schedule", "warmup_frac", "lr_decay_every", "lr_decay_factor", "grad_clip", "seed",
)
LR_SCHEDULES = ("step", "cosine", "hold")
PROGRESS_SCHEDULES = ("cosine", "hold")   # driven by how far through the run (iterations or time budget)
LR_FLOOR = 0.02   # the cosine and hold schedules end at 2% of learning_rate
HOLD_DECAY = 0.25     # "hold" keeps learning_rate for the first 75% of the run, then lowers it linearly


@dataclass
class TrainConfig:
    input_h5: str = "data/train.h5"
    input_json: str = "data/train.json"
    checkpoint_dir: str = "data/checkpoints"
    # model (torch-rnn defaults)
    model_type: str = "lstm"
    wordvec_size: int = 64
    rnn_size: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    # optimisation (torch-rnn defaults: Adam 2e-3, lr x0.5 every 5 epochs, gradients clamped to 5)
    batch_size: int = 50
    seq_length: int = 50
    learning_rate: float = 2e-3
    # "step": x lr_decay_factor every lr_decay_every epochs (torch-rnn). "cosine": from learning_rate
    # down to 2% of it over the run: over max_minutes when a time budget is set (whichever of the
    # budget and max_epochs/max_iterations ends first), else over the iterations. "hold": learning_rate
    # for the first 75% of the run, then linearly down to 2% of it (measured better than cosine for a
    # 10-minute CPU budget: benchmarks/results/quality-cpu.txt)
    lr_schedule: str = "step"
    # warm-up: the rate rises linearly from 0 over this fraction of the run (0: none). A warm start
    # (init_from) re-creates Adam's moments, whose first steps are the largest: a short ramp keeps
    # them from undoing what the checkpoint learned
    warmup_frac: float = 0.0
    lr_decay_every: int = 5
    lr_decay_factor: float = 0.5
    grad_clip: float = 5.0
    max_epochs: int = 50
    max_minutes: float = 0.0        # 0: no time budget
    max_iterations: int = 0         # 0: no limit besides max_epochs
    # bookkeeping
    print_every: int = 1            # loss-history granularity and progress-bar refresh
    checkpoint_every: int = 1000    # validate (and write best/latest) every N iterations
    device: str = "cpu"
    resume: Optional[str] = None
    init_from: Optional[str] = None
    seed: int = 123
    progress: bool = True
    bf16: Optional[bool] = None     # None: where the device runs it natively (CUDA with bf16, AVX512-BF16/AMX CPUs)
    # CPU threads; 0: 1 for tiny models (rnn_size * batch_size <= 2048), else the usable cores shared
    # among the local processes. Never more than that share (model.train.choose_threads)
    num_threads: int = 0
    lexicon_min_count: int = 3      # the checkpoint's lexicon: words seen at least this often in the training text

    @classmethod
    def gpu_preset(cls, **overrides) -> "TrainConfig":
        """The larger model for the GPU box: 3x512 LSTM, embedding 128, dropout 0.2,
        batch 128 x seq 256, bf16 autocast, validation every 500 iterations."""
        base = cls(wordvec_size=128, rnn_size=512, num_layers=3, dropout=0.2, batch_size=128,
                   seq_length=256, device="cuda", bf16=True, checkpoint_every=500, print_every=10)
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def validate(self) -> None:
        def positive_int(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if allow_zero else 1):
                raise ModelError(f"{name}={v!r}: expected a {'non-negative' if allow_zero else 'positive'} integer")

        for n in ("wordvec_size", "rnn_size", "num_layers", "batch_size", "seq_length",
                  "lr_decay_every", "max_epochs", "print_every", "checkpoint_every"):
            positive_int(n)
        positive_int("max_iterations", allow_zero=True)
        positive_int("num_threads", allow_zero=True)
        positive_int("lexicon_min_count")
        for n in ("learning_rate", "grad_clip", "lr_decay_factor"):
            v = getattr(self, n)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ModelError(f"{n}={v!r}: expected a positive number")
        if not isinstance(self.warmup_frac, (int, float)) or not (0 <= self.warmup_frac < 1):
            raise ModelError(f"warmup_frac={self.warmup_frac!r}: expected a number in [0, 1)")
        if not isinstance(self.max_minutes, (int, float)) or not (self.max_minutes >= 0):
            raise ModelError(f"max_minutes={self.max_minutes!r}: expected a number >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"lr_schedule={self.lr_schedule!r}: expected one of {', '.join(LR_SCHEDULES)}")
        if self.resume and self.init_from:
            raise ModelError("resume and init_from are exclusive: resume continues a run, init_from starts a new one")
