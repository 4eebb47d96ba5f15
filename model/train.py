"""Training: TBPTT over the torch-rnn .h5, validation every N iterations, best + latest
checkpoints, exact --resume, --init-from with vocabulary growth, time budget, Ctrl-C or SIGTERM, DDP.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from model import distributed as D
from model.checkpoint import load_checkpoint, save_checkpoint
from model.words import lexicon_from_ids
from model.splits import SplitBatcher, load_corpus
from model.errors import ModelError, make_folder
from model.lstm import CharRNN, ModelConfig, detach_state, state_from_list, state_to_list
from model.train_config import (
    LR_FLOOR, HOLD_DECAY, PROGRESS_SCHEDULES, RUN_FROM_CHECKPOINT, SHAPE_KEYS, TrainConfig,
)
from model.vocab import Vocab
from model.plot import plot_losses

__all__ = ["StepInfo", "TrainConfig", "TrainResult", "TrainingInterrupted", "train"]


@dataclass
class TrainResult:
    best_path: Optional[Path]
    latest_path: Optional[Path]
    best_val_loss: float         # nats per character, as the checkpoint stores it (bits: divide by ln 2)
    iterations: int
    stopped: str = "completed"   # completed | max_iterations | max_minutes | interrupted
    elapsed_s: float = 0.0
    chars_per_s: float = 0.0
    precision: str = "float32"   # float32 | bf16 (autocast)
    threads: int = 0             # CPU threads the run used


BITS_PER_NAT = 1 / math.log(2)


@dataclass
class StepInfo:
    """What ``train(cfg, callback)`` passes to the callback after every iteration."""
    iteration: int
    loss: float
    model: torch.nn.Module
    rank: int = 0


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``latest_path`` is the resumable checkpoint that was written."""

    def __init__(self, latest_path: Optional[Path], iterations: int) -> None:
        super().__init__(f"training interrupted at iteration {iterations}; resume with --resume {latest_path}")
        self.latest_path = latest_path
        self.iterations = iterations


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)   # Ctrl-C; docker stop, systemctl stop (the whole unit), timeout


@contextmanager
def _sigint_flag():
    """The first Ctrl-C or SIGTERM sets a flag (checked between iterations); a second one raises at
    once, unless the resumable checkpoint is being written (``state["saving"]``: it would be lost)."""
    state = {"hit": False, "saving": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"] and not state["saving"]:
            raise KeyboardInterrupt
        state["hit"] = True

    old = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield state
    finally:
        for signum, previous in old.items():
            signal.signal(signum, previous)


def _transfer_init(model: CharRNN, ck: dict, vocab: Vocab) -> int:
    """Copy a checkpoint's weights into ``model``; rows of tokens both vocabularies share are kept,
    new tokens keep their fresh initialisation. Returns the number of new tokens."""
    old_tokens = list(ck["idx_to_token"])
    src = ck["model_state"]
    dst = model.state_dict()
    pairs = [(vocab.index[t], i) for i, t in enumerate(old_tokens) if t in vocab.index]
    new_idx = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    old_idx = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    with torch.no_grad():
        for k, v in dst.items():
            if k not in src:
                raise ModelError(f"init_from checkpoint lacks weight {k!r}")
            if k in ("embed.weight", "head.weight", "head.bias"):
                v[new_idx] = src[k][old_idx].to(v.dtype)
            elif src[k].shape != v.shape:
                raise ModelError(f"init_from checkpoint weight {k!r} has shape {tuple(src[k].shape)}")
            else:
                v.copy_(src[k])
    model.load_state_dict(dst)
    return len(vocab) - len(pairs)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(cfg: TrainConfig, local_world: int = 1) -> int:
    """CPU threads for this process: ``cfg.threads`` when set, else 1 for tiny models (nothing to
    gain from a second thread) and otherwise the usable cores shared out among the local processes;
    never more than that share, so training never oversubscribes the CPU (OpenMP threads crawl when
    another thread holds their core: docs/defaults.md, train.threads)."""
    share = max(1, usable_cores() // max(1, local_world))
    if cfg.threads:
        return min(cfg.threads, share)
    if cfg.rnn_size * cfg.batch_size <= 2048:
        return 1
    return share


def choose_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast when ``cfg.bf16`` says so, else where the device runs it natively (CUDA with
    bf16, a CPU with AVX512-BF16/AMX): 1.5-2x the steps on such a CPU at an equal loss per step."""
    if cfg.bf16 and cfg.model_type == "lstm" and device.type == "cpu" and not D.bf16_supported(device):
        # the LSTM's oneDNN kernel has no bf16 path on such a CPU: training would end in a RuntimeError
        # (GRU and plain RNN cells run it emulated, slowly)
        raise ModelError("train.precision = bf16: this CPU has no native bf16 (AVX512-BF16 or AMX) for an LSTM; "
                         "use precision auto or float32")
    if cfg.bf16 is not None:
        return bool(cfg.bf16)
    return D.bf16_supported(device)


def _lr_at(cfg: TrainConfig, epoch: int, progress: float) -> float:
    """The learning rate in `epoch`, `progress` (0..1) through the run (times the warm-up ramp)."""
    p = min(1.0, max(0.0, progress))
    ramp = min(1.0, p / cfg.warmup_frac) if cfg.warmup_frac > 0 else 1.0
    return ramp * _lr_base(cfg, epoch, p)


def _lr_base(cfg: TrainConfig, epoch: int, p: float) -> float:
    if cfg.lr_schedule == "cosine":
        return cfg.learning_rate * (LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * p)))
    if cfg.lr_schedule == "hold":
        tail = max(0.0, p - (1 - HOLD_DECAY)) / HOLD_DECAY
        return cfg.learning_rate * (1 - (1 - LR_FLOOR) * tail)
    return cfg.learning_rate * cfg.lr_decay_factor ** (epoch // cfg.lr_decay_every)


def _rng_state(device: torch.device) -> dict:
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def _set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"], device)


@torch.no_grad()
def _validate(model: CharRNN, val: SplitBatcher, device, amp) -> float:
    was = model.training
    model.eval()
    total, state = 0.0, None
    for i in range(val.num_batches):
        x, y = val.batch(i, device)
        with amp():
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)).item()
    model.train(was)
    return total / max(1, val.num_batches)


def train(cfg: TrainConfig, callback: Optional[Callable[[StepInfo], None]] = None,
          on_start: Optional[Callable[[dict], None]] = None) -> TrainResult:
    """Train as ``cfg`` says. ``callback(StepInfo)`` runs after every iteration (tests use it to look
    at the weights or to raise KeyboardInterrupt); ``on_start(info)`` once the data and the model are
    ready, with what the run uses (device, threads, precision, why). Raises TrainingInterrupted after
    Ctrl-C, ModelError on bad input."""
    cfg.validate()
    ctx = D.setup(cfg.device)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, ctx, callback, on_start)
    finally:
        torch.set_num_threads(threads)
        D.cleanup(ctx)


@dataclass
class _Data:
    """The corpus a run trains on: batches of both splits, vocabulary, fingerprint, lexicon."""
    train: SplitBatcher
    val: SplitBatcher
    vocab: Vocab
    fingerprint: str
    lexicon: dict


@dataclass
class _Run:
    """One run's model, optimizer, counters and outputs; the loop in ``_train`` drives it."""
    cfg: TrainConfig
    ctx: D.DistContext
    data: _Data
    mc: ModelConfig
    model: CharRNN
    net: torch.nn.Module            # the model, or its DDP wrapper
    optim: torch.optim.Optimizer
    use_bf16: bool
    run_meta: dict
    it: int = 0
    state: object = None            # the recurrent state carried from batch to batch (TBPTT)
    train_hist: list = field(default_factory=list)
    val_hist: list = field(default_factory=list)
    best_val: float = math.inf
    best_it: int = 0
    lr_progress: float = 0.0
    last_plot: float = 0.0

    @property
    def out_dir(self) -> Path:
        return Path(self.cfg.checkpoint_dir)

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def latest_path(self) -> Path:
        return self.out_dir / "latest.pt"

    @property
    def precision(self) -> str:
        return "bf16" if self.use_bf16 else "float32"

    def amp(self):
        dev = self.ctx.device
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16) if self.use_bf16 else nullcontext()

    def payload(self, full: bool, rank_states=None) -> dict:
        """The checkpoint's contents; ``full`` adds what resuming needs (optimizer, RNG, hidden state)."""
        d = self.data
        p = {
            "model_config": self.mc.to_dict(), "train_config": self.cfg.to_dict(), "idx_to_token": d.vocab.tokens,
            "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "iteration": self.it, "epoch": self.it / d.train.num_batches,
            "best_val_loss": self.best_val if math.isfinite(self.best_val) else None,
            "best_iteration": self.best_it, "train_loss_history": self.train_hist,
            "val_loss_history": self.val_hist, "corpus_fingerprint": d.fingerprint,
            "created_at": datetime.now(timezone.utc).isoformat(), "torch_version": str(torch.__version__),
            "run": self.run_meta, "lr_progress": self.lr_progress, "lexicon": d.lexicon,
        }
        if full:
            p["optimizer_state"] = self.optim.state_dict()
            p["rank_states"] = rank_states or []
        return p


def _continued_run(cfg: TrainConfig) -> tuple[TrainConfig, Optional[dict]]:
    """With ``cfg.resume``: the checkpoint, and the config its run continues with (the run's own
    settings; paths left empty continue the checkpoint's run: same corpus, same directory)."""
    if not cfg.resume:
        return cfg, None
    ck = load_checkpoint(cfg.resume)
    if "optimizer_state" not in ck or "train_config" not in ck:
        raise ModelError(f"checkpoint {cfg.resume!r} is not resumable (no optimizer state); "
                         f"use the latest.pt of its run, or init_from to fine-tune")
    old = ck["train_config"]   # as model.checkpoint.upgrade reads an older one
    cfg = replace(cfg, **{k: old[k] for k in RUN_FROM_CHECKPOINT if k in old})
    cfg = replace(cfg, **{k: old[k] for k in ("input_h5", "input_json", "checkpoint_dir")
                          if not getattr(cfg, k) and old.get(k)})
    return cfg, ck


def _load_data(cfg: TrainConfig, ctx: D.DistContext, ck: Optional[dict]) -> _Data:
    """The preprocessed corpus, checked against its vocabulary (and the resumed run's corpus)."""
    splits, fingerprint, vocab = load_corpus(cfg.input_h5, cfg.input_json)
    if ck is not None:
        if ck.get("corpus_fingerprint") != fingerprint or list(ck["idx_to_token"]) != vocab.tokens:
            raise ModelError(f"resume: {cfg.input_h5!r} is not the corpus checkpoint {cfg.resume!r} was "
                             f"trained on; use init_from to fine-tune on a new corpus")
    lexicon = lexicon_from_ids(splits, vocab.tokens, cfg.lexicon_min_count)   # known-word decoding's words
    return _Data(train=SplitBatcher(splits["train"], cfg.batch_size, cfg.seq_length, rank=ctx.rank, world=ctx.world),
                 val=SplitBatcher(splits["val"], cfg.batch_size, cfg.seq_length, shrink=True, name="val"),
                 vocab=vocab, fingerprint=fingerprint, lexicon=lexicon)


def _model_config(cfg: TrainConfig, vocab: Vocab, source: Optional[dict],
                  resumed: bool) -> tuple[TrainConfig, ModelConfig]:
    """The model's shape: the resumed or init_from checkpoint's (the config then says so too), else cfg's.
    A warm start (init_from) keeps the configured dropout: it regularises the run, the weights don't
    depend on it."""
    src_mc = (source or {}).get("model_config")
    if src_mc is None:
        return cfg, ModelConfig(vocab_size=len(vocab), **{k: getattr(cfg, k) for k in SHAPE_KEYS})
    mc = ModelConfig.from_dict({**src_mc, "vocab_size": len(vocab), **({} if resumed else {"dropout": cfg.dropout})})
    return replace(cfg, **{k: getattr(mc, k) for k in SHAPE_KEYS}), mc


def _new_run(cfg: TrainConfig, ctx: D.DistContext, ck: Optional[dict], data: _Data) -> tuple[_Run, int]:
    """The model (fresh, from init_from, or resumed with its optimizer, RNG and hidden state) and the
    run around it. Returns the run and the number of tokens new to an init_from checkpoint."""
    init_ck = load_checkpoint(cfg.init_from) if cfg.init_from else None
    cfg, mc = _model_config(cfg, data.vocab, ck or init_ck, resumed=ck is not None)
    # threads for the model that trains (a resumed or init_from run's shape is its checkpoint's)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world)) if ctx.device.type == "cpu" else 1
    torch.set_num_threads(choose_threads(cfg, local_world))
    device = ctx.device
    torch.manual_seed(cfg.seed)
    model = CharRNN(mc)
    new_tokens = _transfer_init(model, init_ck, data.vocab) if init_ck is not None else 0
    model.to(device)
    optim = _optimizer(model, cfg)
    torch.manual_seed(cfg.seed + 1000003 * ctx.rank)   # dropout stream, one per rank
    net: torch.nn.Module = model
    use_bf16 = choose_bf16(cfg, device)
    run = _Run(cfg, ctx, data, mc, model, net, optim, use_bf16, run_meta={})
    if ck is not None:
        _restore(run, ck)
    if ctx.enabled:
        run.net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    run.run_meta = {"new_tokens": new_tokens, "init_from": cfg.init_from, "world_size": ctx.world,
                    "precision": run.precision, "threads": torch.get_num_threads()}
    return run, new_tokens


def _optimizer(model: CharRNN, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (torch-rnn's); with weight_decay, AdamW decaying the recurrent and head matrices only: the
    embedding's rows of rare characters and the biases are left alone."""
    if cfg.weight_decay <= 0:
        return torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    decayed = [p for name, p in model.named_parameters() if p.dim() >= 2 and not name.startswith("embed.")]
    kept = [p for name, p in model.named_parameters() if p.dim() < 2 or name.startswith("embed.")]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": cfg.weight_decay},
                              {"params": kept, "weight_decay": 0.0}], lr=cfg.learning_rate)


def _restore(run: _Run, ck: dict) -> None:
    """Continue a run from its latest checkpoint: weights, optimizer, counters, histories, and this
    rank's RNG and hidden state when the checkpoint has one per rank of this world."""
    run.model.load_state_dict(ck["model_state"])
    run.optim.load_state_dict(ck["optimizer_state"])
    run.it = int(ck["iteration"])
    run.train_hist, run.val_hist = list(ck["train_loss_history"]), list(ck["val_loss_history"])
    run.best_val = float(ck.get("best_val_loss") or math.inf)   # None: no finite validation loss yet
    run.best_it = int(ck["best_iteration"])
    run.lr_progress = float(ck["lr_progress"])
    ranks = ck.get("rank_states") or []
    if len(ranks) == run.ctx.world:
        _set_rng_state(ranks[run.ctx.rank]["rng"], run.ctx.device)
        run.state = state_from_list(ranks[run.ctx.rank]["hidden"], run.mc.model_type, run.ctx.device)


def _start_info(run: _Run, new_tokens: int) -> dict:
    """What ``on_start`` is told: device, threads, precision and why, init_from, new tokens."""
    cfg = run.cfg
    why = "as asked" if cfg.bf16 is not None else ("supported here" if run.use_bf16 else "bf16 not native here")
    return {"device": str(run.ctx.device), "threads": torch.get_num_threads(), "precision": run.precision,
            "why": why, "init_from": cfg.init_from, "new_tokens": new_tokens}


def _make_out_dir(run: _Run) -> None:
    out_dir = run.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"checkpoint_dir {str(out_dir)!r} is a file, expected a directory")
    if run.ctx.is_main:
        make_folder(out_dir, "the checkpoints (checkpoint_dir)")


def _train_step(run: _Run, b: int) -> float:
    """One TBPTT step on batch ``b``: forward, backward, clipped gradients, an optimizer step."""
    x, y = run.data.train.batch(b, run.ctx.device)
    with run.amp():
        logits, state = run.net(x, run.state)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
    run.optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_value_(run.model.parameters(), run.cfg.grad_clip)
    run.optim.step()
    run.state = detach_state(state)
    return loss.item()


def _set_lr(optim: torch.optim.Optimizer, lr: float) -> None:
    for g in optim.param_groups:
        g["lr"] = lr


def _save_latest(run: _Run, gather: bool = True) -> Path:
    """latest.pt, resumable: with every rank's RNG and hidden state (``gather``: a collective call)."""
    mine = {"rng": {k: v.cpu() for k, v in _rng_state(run.ctx.device).items()}, "hidden": state_to_list(run.state)}
    ranks = D.gather_objects(run.ctx, mine) if gather else ([mine] if run.ctx.world == 1 else [])
    if run.ctx.is_main:
        save_checkpoint(run.latest_path, run.payload(True, ranks))
    return run.latest_path


def _plot(run: _Run, force: bool = False) -> None:
    """loss.png, at most once a minute unless ``force``."""
    if run.ctx.is_main and (force or time.monotonic() - run.last_plot > 60):
        mc = run.mc
        plot_losses(run.out_dir / "loss.png", run.train_hist, run.val_hist,
                    f"{mc.model_type} {mc.num_layers}x{mc.rnn_size}")
        run.last_plot = time.monotonic()


def _checkpoint(run: _Run) -> None:
    """Validate; best.pt when the validation loss improved; latest.pt; the loss plot."""
    v = _validate(run.model, run.data.val, run.ctx.device, run.amp)
    run.val_hist.append([run.it, v])
    if v < run.best_val:
        run.best_val, run.best_it = v, run.it
        if run.ctx.is_main:
            save_checkpoint(run.best_path, run.payload(False))
    _save_latest(run)
    _plot(run)


class _Clock:
    """The run's time: its budget (max_minutes), the learning-rate progress it drives, chars/s."""

    def __init__(self, run: _Run, total_its: int) -> None:
        self.run, self.total_its = run, total_its
        self.budget_s = run.cfg.max_minutes * 60 if run.cfg.max_minutes else 0.0
        self.p0 = run.lr_progress          # a resumed run spends its new budget on the rest of the schedule
        self.t0 = time.monotonic()
        self.win_t, self.win_its, self.win_loss, self.chars_per_s = time.perf_counter(), 0, 0.0, 0.0

    def progress(self) -> float:
        """How far through the run: by iterations, or by the time budget when that ends it first."""
        run = self.run
        p = run.it / max(1, self.total_its)
        if self.budget_s and run.cfg.lr_schedule in PROGRESS_SCHEDULES:
            p = max(p, D.agree_max(run.ctx, self.p0 + (1 - self.p0) * (time.monotonic() - self.t0) / self.budget_s))
        run.lr_progress = p
        return p

    def over_budget(self) -> bool:
        return bool(self.run.cfg.max_minutes) and (time.monotonic() - self.t0) > self.run.cfg.max_minutes * 60

    def add(self, loss: float) -> None:
        self.win_its, self.win_loss = self.win_its + 1, self.win_loss + loss

    def run_rate(self, start_it: int) -> float:
        """Characters trained per second over the whole run, its evaluations and checkpoints
        included (the last window alone could be one iteration and a checkpoint: a tenth of it)."""
        chars_per_it = self.run.data.train.chars_per_batch() * self.run.ctx.world
        return chars_per_it * (self.run.it - start_it) / max(time.monotonic() - self.t0, 1e-9)

    def report(self) -> str:
        """Close the window of iterations since the last report: train loss history, chars/s, the bar's text."""
        run, now = self.run, time.perf_counter()
        chars_per_it = run.data.train.chars_per_batch() * run.ctx.world
        self.chars_per_s = chars_per_it * self.win_its / max(now - self.win_t, 1e-9)
        train_loss = self.win_loss / self.win_its
        run.train_hist.append([run.it, train_loss])
        val = f"{run.val_hist[-1][1] * BITS_PER_NAT:.3f} bits/char" if run.val_hist else "-"
        self.win_t, self.win_its, self.win_loss = now, 0, 0.0
        return f"train {train_loss * BITS_PER_NAT:.3f} bits/char, val {val}, {self.chars_per_s:,.0f} chars/s"


def _progress_bar(clock: _Clock, *, enabled: bool) -> tqdm:
    """The run's bar on stderr: with a time budget (max_minutes) it measures time, so its ETA is
    what is left of the budget (an iteration bar's ETA would be the epochs', hours for a night that
    stops at its budget); without one, iterations."""
    if clock.budget_s:
        return tqdm(total=clock.budget_s, disable=not enabled, dynamic_ncols=True, desc="train",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} (time budget"
                               f" {clock.budget_s / 60:g} min){{postfix}}")
    return tqdm(total=clock.total_its, initial=clock.run.it, disable=not enabled, unit="it", dynamic_ncols=True,
                desc="train")


STOP_NONE, STOP_TIME, STOP_INTERRUPT = 0, 1, 2    # agreed between ranks: the largest wins


def _train(cfg: TrainConfig, ctx: D.DistContext, callback, on_start=None) -> TrainResult:
    cfg, ck = _continued_run(cfg)
    data = _load_data(cfg, ctx, ck)
    run, new_tokens = _new_run(cfg, ctx, ck, data)
    cfg = run.cfg
    if on_start is not None and ctx.is_main:
        on_start(_start_info(run, new_tokens))
    _make_out_dir(run)
    nb = data.train.num_batches
    total_its = cfg.max_epochs * nb
    if cfg.max_iterations:
        total_its = min(total_its, cfg.max_iterations)
    clock = _Clock(run, total_its)
    bar = _progress_bar(clock, enabled=cfg.progress and ctx.is_main)
    stopped, start_it, collective = "completed", run.it, False
    run.net.train()
    with _sigint_flag() as sig:
        try:
            while run.it < total_its:
                epoch, b = divmod(run.it, nb)
                if b == 0:
                    run.state = None                  # a new epoch starts from a zero state
                _set_lr(run.optim, _lr_at(cfg, epoch, clock.progress()))
                loss = _train_step(run, b)
                run.it += 1
                clock.add(loss)
                if callback is not None:
                    callback(StepInfo(run.it, loss, run.model, ctx.rank))
                if run.it % cfg.print_every == 0 or run.it == total_its:
                    bar.set_postfix_str(f"it {run.it}, {clock.report()}" if clock.budget_s else clock.report(),
                                        refresh=False)
                bar.update(min(time.monotonic() - clock.t0, clock.budget_s) - bar.n if clock.budget_s else 1)
                here = STOP_INTERRUPT if sig["hit"] else (STOP_TIME if clock.over_budget() else STOP_NONE)
                stop = D.any_flag(ctx, here)
                if stop == STOP_INTERRUPT:
                    collective = True                 # every rank stops here, so the ranks can gather their state
                    raise KeyboardInterrupt
                if run.it % cfg.checkpoint_every == 0 or run.it == total_its or stop == STOP_TIME:
                    _checkpoint(run)
                if stop == STOP_TIME:
                    stopped = "max_minutes"
                    break
        except KeyboardInterrupt:
            sig["saving"] = True
            bar.close()
            path = _save_latest(run, gather=collective)
            _plot(run, force=True)
            raise TrainingInterrupted(path if ctx.is_main else None, run.it) from None
    bar.close()
    if stopped == "completed" and cfg.max_iterations and run.it >= cfg.max_iterations:
        stopped = "max_iterations"
    if run.it == start_it and ctx.is_main and not run.latest_path.exists():
        _checkpoint(run)   # nothing to do (already past the end): still leave checkpoints
    _plot(run, force=True)
    return TrainResult(best_path=run.best_path if run.best_path.exists() else None, latest_path=run.latest_path,
                       best_val_loss=run.best_val, iterations=run.it, stopped=stopped,
                       elapsed_s=time.monotonic() - clock.t0, chars_per_s=clock.run_rate(start_it),
                       precision=run.precision, threads=torch.get_num_threads())
