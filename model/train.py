"""Training: TBPTT over the torch-rnn .h5, validation every N iterations, best + latest
checkpoints, exact --resume, --init-from with vocabulary growth, time budget, Ctrl-C, DDP.
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from tqdm import tqdm

from model import distributed as D
from model.checkpoint import load_checkpoint, save_checkpoint
from model.words import lexicon_from_ids
from model.splits import SplitBatcher, load_splits
from model.errors import ModelError
from model.lstm import CharRNN, ModelConfig, detach_state, state_from_list, state_to_list
from model.train_config import LR_FLOOR, HOLD_DECAY, PROGRESS_SCHEDULES, RUN_FROM_CHECKPOINT, TrainConfig
from model.vocab import Vocab

__all__ = ["StepInfo", "TrainConfig", "TrainResult", "TrainingInterrupted", "train"]


@dataclass
class TrainResult:
    best_path: Optional[Path]
    latest_path: Optional[Path]
    best_val_loss: float
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


@contextmanager
def _sigint_flag():
    """First Ctrl-C sets a flag (checked between iterations); a second one raises at once."""
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"]:
            raise KeyboardInterrupt
        state["hit"] = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, old)


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
    """CPU threads for this process: ``cfg.num_threads`` when set, else 1 for tiny models (nothing to
    gain from a second thread) and otherwise the usable cores shared out among the local processes;
    never more than that share, so training never oversubscribes the CPU (OpenMP threads crawl when
    another thread holds their core: 14x slower measured, benchmarks/results/train_throughput-cpu.txt)."""
    share = max(1, usable_cores() // max(1, local_world))
    if cfg.num_threads:
        return min(cfg.num_threads, share)
    if cfg.rnn_size * cfg.batch_size <= 2048:
        return 1
    return share


def choose_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast when ``cfg.bf16`` says so, else where the device runs it natively (CUDA with
    bf16, a CPU with AVX512-BF16/AMX): 1.5-2x the steps on such a CPU at an equal loss per step."""
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
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world)) if ctx.device.type == "cpu" else 1
    try:
        torch.set_num_threads(choose_threads(cfg, local_world))
        return _train(cfg, ctx, callback, on_start)
    finally:
        torch.set_num_threads(threads)
        D.cleanup(ctx)


def _train(cfg: TrainConfig, ctx: D.DistContext, callback, on_start=None) -> TrainResult:
    device = ctx.device
    ck = load_checkpoint(cfg.resume) if cfg.resume else None
    if ck is not None:
        if "optimizer_state" not in ck or "train_config" not in ck:
            raise ModelError(f"checkpoint {cfg.resume!r} is not resumable (no optimizer state); "
                             f"use the latest.pt of its run, or init_from to fine-tune")
        old = ck["train_config"]
        cfg = replace(cfg, **{k: old[k] for k in RUN_FROM_CHECKPOINT if k in old})
        # paths left empty continue the checkpoint's run (same corpus, same directory)
        cfg = replace(cfg, **{k: old[k] for k in ("input_h5", "input_json", "checkpoint_dir")
                              if not getattr(cfg, k) and old.get(k)})
    splits, fingerprint = load_splits(cfg.input_h5)
    vocab = Vocab.load_json(cfg.input_json)
    top = max(int(a.max()) if len(a) else -1 for a in splits.values())
    if top >= len(vocab) or min(int(a.min()) if len(a) else 0 for a in splits.values()) < 0:
        raise ModelError(f"input h5 {cfg.input_h5!r} has token ids outside the vocabulary of {cfg.input_json!r}")
    if ck is not None:
        if ck.get("corpus_fingerprint") != fingerprint or list(ck["idx_to_token"]) != vocab.tokens:
            raise ModelError(f"resume: {cfg.input_h5!r} is not the corpus checkpoint {cfg.resume!r} was "
                             f"trained on; use init_from to fine-tune on a new corpus")

    init_ck = load_checkpoint(cfg.init_from) if cfg.init_from else None
    src_mc = (ck or init_ck or {}).get("model_config")
    if src_mc is not None:
        mc = ModelConfig.from_dict({**src_mc, "vocab_size": len(vocab)})
        cfg = replace(cfg, **{k: getattr(mc, k) for k in ("model_type", "wordvec_size", "rnn_size",
                                                         "num_layers", "dropout")})
    else:
        mc = ModelConfig(vocab_size=len(vocab), model_type=cfg.model_type, wordvec_size=cfg.wordvec_size,
                         rnn_size=cfg.rnn_size, num_layers=cfg.num_layers, dropout=cfg.dropout)
    lexicon = lexicon_from_ids(splits, vocab.tokens, cfg.lexicon_min_count)   # known-word decoding's words
    train_b = SplitBatcher(splits["train"], cfg.batch_size, cfg.seq_length, rank=ctx.rank, world=ctx.world)
    val_b = SplitBatcher(splits["val"], cfg.batch_size, cfg.seq_length, shrink=True, name="val")
    del splits

    torch.manual_seed(cfg.seed)
    model = CharRNN(mc)
    new_tokens = _transfer_init(model, init_ck, vocab) if init_ck is not None else 0
    model.to(device)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    nb = train_b.num_batches
    total_its = cfg.max_epochs * nb
    if cfg.max_iterations:
        total_its = min(total_its, cfg.max_iterations)
    it, state = 0, None
    train_hist: list = []
    val_hist: list = []
    best_val, best_it = math.inf, 0
    lr_progress = [0.0]
    torch.manual_seed(cfg.seed + 1000003 * ctx.rank)   # dropout stream, one per rank
    if ck is not None:
        model.load_state_dict(ck["model_state"])
        optim.load_state_dict(ck["optimizer_state"])
        it = int(ck["iteration"])
        train_hist, val_hist = list(ck.get("train_loss_history", [])), list(ck.get("val_loss_history", []))
        best_val = float(ck.get("best_val_loss") or math.inf)
        best_it = int(ck.get("best_iteration", 0))
        ranks = ck.get("rank_states") or []
        if len(ranks) == ctx.world:
            _set_rng_state(ranks[ctx.rank]["rng"], device)
            state = state_from_list(ranks[ctx.rank]["hidden"], mc.model_type, device)
    net = model
    if ctx.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    use_bf16 = choose_bf16(cfg, device)
    precision = "bf16" if use_bf16 else "float32"
    if on_start is not None and ctx.is_main:
        on_start({"device": str(device), "threads": torch.get_num_threads(), "precision": precision,
                  "why": "as asked" if cfg.bf16 is not None else ("supported here" if use_bf16 else "bf16 not native here"),
                  "init_from": cfg.init_from, "new_tokens": new_tokens})

    def amp():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    out_dir = Path(cfg.checkpoint_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"checkpoint_dir {str(out_dir)!r} is a file, expected a directory")
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    best_path, latest_path = out_dir / "best.pt", out_dir / "latest.pt"
    run_meta = {"new_tokens": new_tokens, "init_from": cfg.init_from, "world_size": ctx.world,
                "precision": precision, "threads": torch.get_num_threads()}

    def payload(full: bool, rank_states=None) -> dict:
        p = {
            "model_config": mc.to_dict(), "train_config": cfg.to_dict(), "idx_to_token": vocab.tokens,
            "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "iteration": it, "epoch": it / nb, "best_val_loss": best_val if math.isfinite(best_val) else None,
            "best_iteration": best_it, "train_loss_history": train_hist, "val_loss_history": val_hist,
            "corpus_fingerprint": fingerprint, "created_at": datetime.now(timezone.utc).isoformat(),
            "torch_version": str(torch.__version__), "run": run_meta, "lr_progress": lr_progress[0],
            "lexicon": lexicon,
        }
        if full:
            p["optimizer_state"] = optim.state_dict()
            p["rank_states"] = rank_states or []
        return p

    def save_latest(gather: bool = True) -> Path:
        mine = {"rng": _rng_state(device), "hidden": state_to_list(state)}
        mine["rng"] = {k: v.cpu() for k, v in mine["rng"].items()}
        ranks = D.gather_objects(ctx, mine) if gather else ([mine] if ctx.world == 1 else [])
        if ctx.is_main:
            save_checkpoint(latest_path, payload(True, ranks))
        return latest_path

    last_plot = [0.0]

    def plot(force: bool = False) -> None:
        if ctx.is_main and (force or time.monotonic() - last_plot[0] > 60):
            from model.plot import plot_losses
            plot_losses(out_dir / "loss.png", train_hist, val_hist, f"{mc.model_type} {mc.num_layers}x{mc.rnn_size}")
            last_plot[0] = time.monotonic()

    def checkpoint_now() -> None:
        nonlocal best_val, best_it
        v = _validate(model, val_b, device, amp)
        val_hist.append([it, v])
        if v < best_val:
            best_val, best_it = v, it
            if ctx.is_main:
                save_checkpoint(best_path, payload(False))
        save_latest()
        plot()

    chars_per_it = train_b.chars_per_batch() * ctx.world
    bar = tqdm(total=total_its, initial=it, disable=not (cfg.progress and ctx.is_main), unit="it",
               dynamic_ncols=True, desc="train")
    t0 = time.monotonic()
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else 0.0
    p0 = float(ck.get("lr_progress") or 0.0) if ck is not None else 0.0
    lr_progress[0] = p0

    def progress_now() -> float:
        """How far through the run: by iterations, or by the time budget when that ends it first
        (a resumed run spends its new budget on the rest of the schedule)."""
        p = it / max(1, total_its)
        if budget_s and cfg.lr_schedule in PROGRESS_SCHEDULES:
            p = max(p, D.agree_max(ctx, p0 + (1 - p0) * (time.monotonic() - t0) / budget_s))
        lr_progress[0] = p
        return p

    win_t, win_its, win_loss = time.perf_counter(), 0, 0.0
    cps, stopped, start_it, collective = 0.0, "completed", it, False
    net.train()
    with _sigint_flag() as sig:
        try:
            while it < total_its:
                epoch, b = divmod(it, nb)
                if b == 0:
                    state = None
                progress = progress_now()
                for g in optim.param_groups:
                    g["lr"] = _lr_at(cfg, epoch, progress)
                x, y = train_b.batch(b, device)
                with amp():
                    logits, state = net(x, state)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
                optim.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_value_(model.parameters(), cfg.grad_clip)
                optim.step()
                state = detach_state(state)
                it += 1
                lv = loss.item()
                win_its, win_loss = win_its + 1, win_loss + lv
                if callback is not None:
                    callback(StepInfo(it, lv, model, ctx.rank))
                if it % cfg.print_every == 0 or it == total_its:
                    now = time.perf_counter()
                    cps = chars_per_it * win_its / max(now - win_t, 1e-9)
                    train_hist.append([it, win_loss / win_its])
                    bar.set_postfix_str(
                        f"train {win_loss / win_its * BITS_PER_NAT:.3f} bits/char, val "
                        + (f"{val_hist[-1][1] * BITS_PER_NAT:.3f} bits/char" if val_hist else "-")
                        + f", {cps:,.0f} chars/s", refresh=False)
                    win_t, win_its, win_loss = now, 0, 0.0
                bar.update(1)
                over = bool(cfg.max_minutes) and (time.monotonic() - t0) > cfg.max_minutes * 60
                flag = D.any_flag(ctx, 2 if sig["hit"] else (1 if over else 0))
                if flag == 2:
                    collective = True     # every rank stops here, so the ranks can gather their state
                    raise KeyboardInterrupt
                if it % cfg.checkpoint_every == 0 or it == total_its or flag == 1:
                    checkpoint_now()
                if flag == 1:
                    stopped = "max_minutes"
                    break
        except KeyboardInterrupt:
            bar.close()
            path = save_latest(gather=collective)
            plot(force=True)
            raise TrainingInterrupted(path if ctx.is_main else None, it) from None
    bar.close()
    if stopped == "completed" and cfg.max_iterations and it >= cfg.max_iterations:
        stopped = "max_iterations"
    if it == start_it and ctx.is_main and not latest_path.exists():
        checkpoint_now()   # nothing to do (already past the end): still leave checkpoints
    plot(force=True)
    elapsed = time.monotonic() - t0
    return TrainResult(best_path=best_path if best_path.exists() else None, latest_path=latest_path,
                       best_val_loss=best_val, iterations=it, stopped=stopped, elapsed_s=elapsed,
                       chars_per_s=cps, precision=precision, threads=torch.get_num_threads())
