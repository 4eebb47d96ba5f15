"""`python -m model.run RUN.json`: one training run from a file, without the bot's CLI.

RUN.json holds a TrainConfig (`TrainConfig.to_dict()`, unknown keys refused). The nightly retrain
job (jobs/retrain.py) writes one per run and starts this module as a child process: the run gets
its own CPU threads and memory, and a crash cannot take the service down. `progress` in the file
decides the tqdm bar (the service's runs have it off: no bar in its log).

Prints the start line (device, threads, precision) on stderr and the result (`summary_line`) on
stdout. Exit 0 when training finished, 2 with one line `error: ...` for an input it explains (a
missing file, a bad value), 130 when interrupted (the latest checkpoint stays resumable).

With BUHURT_TRAIN_PARENT=PID in its environment (the retrain job sets it), the run watches that
process: when it is gone (`buhurt retrain` or the service killed, even by SIGKILL), the run stops
as on Ctrl-C (latest.pt written) and exits within seconds, instead of training on, for hours at
night, into a folder nobody scores. A thread polls the parent's pid (os.getppid), so it works
whatever thread started the child and on any POSIX system.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

from model.errors import ModelError
from model.train_config import TrainConfig

PARENT_ENV = "BUHURT_TRAIN_PARENT"   # the pid of the process that started this run and waits for it
PARENT_POLL_SECONDS = 1.0
STOP_GRACE_SECONDS = 60.0            # after asking the run to stop, exit anyway after this long


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def watch_parent(parent: int, poll: float = PARENT_POLL_SECONDS, grace: float = STOP_GRACE_SECONDS) -> threading.Thread:
    """Stop this process when `parent` is no longer its parent (it died: the child was re-parented).
    First as Ctrl-C (the run stops at its next iteration and writes latest.pt), then, should that
    not end it within `grace` seconds, at once."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        print(f"training stopped: the process that started it (pid {parent}) is gone", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(grace)
        os._exit(130)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def read_run(path: str | Path) -> TrainConfig:
    """The TrainConfig of a run file; ModelError (one line naming the file) when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"run file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"run file {str(path)!r} is not a JSON TrainConfig ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ModelError(f"run file {str(path)!r}: expected a JSON object of TrainConfig fields")
    unknown = sorted(set(data) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ModelError(f"run file {str(path)!r}: unknown TrainConfig field {unknown[0]!r}")
    return TrainConfig(**data)


def start_line(info: dict) -> str:
    """What the run uses, decided at its start: device, CPU threads, precision (and a warm start)."""
    import torch

    threads = info["threads"]
    cpu = f", {threads} CPU thread{'s' if threads != 1 else ''}" if info["device"] == "cpu" else ""
    warm = (f"; continuing from {info['init_from']} ({info['new_tokens']} new characters)"
            if info.get("init_from") else "")
    return (f"training on {info['device']}{cpu}, {'bf16 autocast' if info['precision'] == 'bf16' else 'float32'} "
            f"({info['why']}), torch {torch.__version__}{warm}")


def summary_line(result) -> str:
    """A finished run in one line: why it stopped, its speed, the best and latest checkpoints."""
    best = (f"{result.best_path} (validation {result.best_val_loss / math.log(2):.4f} bits/char)"
            if result.best_path else "none")
    return (f"{result.stopped} after {result.iterations} iterations in {result.elapsed_s:.0f} s "
            f"({result.chars_per_s:,.0f} chars/s, {result.precision}, {result.threads} "
            f"thread{'s' if result.threads != 1 else ''}); best: {best}; latest: {result.latest_path}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m model.run RUN.json (a TrainConfig as JSON)", file=sys.stderr)
        return 2
    from model.train import TrainingInterrupted, train

    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit() and (os.getppid() == int(parent) or not _alive(int(parent))):
        watch_parent(int(parent))    # (a live pid that is not our parent: a variable inherited by mistake)
    try:
        result = train(read_run(argv[0]), on_start=lambda info: print(start_line(info), file=sys.stderr, flush=True))
    except ModelError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"interrupted at iteration {exc.iterations}; resumable checkpoint: {exc.latest_path}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:   # before the training loop (loading the data)
        print("interrupted before training began", file=sys.stderr)
        return 130
    print(summary_line(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
