"""`buhurt preprocess|train|sample|eval`: torch-rnn's flag names (with dashes) over model/.

torch and the model modules (all but the torch-free train_config) are imported inside the commands,
so `buhurt --help` stays light.
Paths left out default to the data directory's (`ctx.obj.default_paths()`); `sample` and `eval`
without --checkpoint use the model the service would use (`ctx.obj.active_checkpoint()`), and
--checkpoint also takes the names best, latest and active (`resolve_checkpoint`).
Every figure printed carries its unit; losses are in bits per character.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from model.train_config import LR_SCHEDULES

PathArg = click.Path(path_type=Path)
CHECKPOINT_NAMES = ("best", "latest", "active")
CHECKPOINT_HELP = ("A checkpoint file, or best / latest (the newest best.pt / latest.pt under <data_dir>/checkpoints, "
                   "a run by hand or a nightly run folder) or active (the service's model; the default).")


def resolve_checkpoint(app, value: Path | None) -> Path:
    """--checkpoint: a path, or one of CHECKPOINT_NAMES (a file literally named so: write ./best)."""
    if value is None or str(value) == "active":
        return app.active_checkpoint()
    if str(value) in ("best", "latest"):
        from model.errors import ModelError

        root = app.default_paths().checkpoint_dir
        found = [p for p in [root / f"{value}.pt", *root.glob(f"run-*/{value}.pt")] if p.is_file()]
        if not found:
            raise ModelError(f"--checkpoint {value}: no {value}.pt under {root} yet (train one with "
                             f"`buhurt train` or `buhurt retrain`)")
        return max(found, key=lambda p: p.stat().st_mtime)
    return value


@click.command("preprocess")
@click.option("--input-txt", type=PathArg, default=None, help="UTF-8 training text (default: <data_dir>/train/corpus.txt).")
@click.option("--output-h5", type=PathArg, default=None, help="HDF5 to write: datasets train/val/test.")
@click.option("--output-json", type=PathArg, default=None, help="Vocabulary JSON to write (idx_to_token, token_to_idx).")
@click.option("--val-frac", type=float, default=None, help="Fraction for validation (default: train.val_frac, 0.1).")
@click.option("--test-frac", type=float, default=None, help="Fraction for test (default: train.test_frac, 0.1).")
@click.pass_obj
def preprocess_cmd(app, input_txt, output_h5, output_json, val_frac, test_frac) -> None:
    """Text -> .h5 + .json in torch-rnn's layout (1-based ids, uint8 up to 255 tokens else uint32)."""
    from model.preprocess import preprocess

    if None in (input_txt, output_h5, output_json):
        paths = app.default_paths()
        input_txt, output_h5 = input_txt or paths.train_txt, output_h5 or paths.train_h5
        output_json = output_json or paths.train_json
    if val_frac is None or test_frac is None:
        t = app.settings.train
        val_frac = t.val_frac if val_frac is None else val_frac
        test_frac = t.test_frac if test_frac is None else test_frac
    s = preprocess(input_txt, output_h5, output_json, val_frac=val_frac, test_frac=test_frac)
    click.echo(f"{s['output_h5']}: {s['total_chars']} characters, {s['vocab_size']} tokens ({s['dtype']}), "
               f"train {s['train']} / val {s['val']} / test {s['test']}; vocabulary {s['output_json']}")


def _device(name: str | None) -> str | None:
    from model.distributed import device_name

    return device_name(name)


TRAIN_FLAGS = [  # (flag, type, help)
    ("--model-type", click.Choice(["lstm", "gru", "rnn"]), "Recurrent cell (default lstm)."),
    ("--wordvec-size", int, "Embedding size (default 64)."),
    ("--rnn-size", int, "Hidden units per layer (default 128)."),
    ("--num-layers", int, "Recurrent layers (default 2)."),
    ("--dropout", float, "Dropout between layers (default 0)."),
    ("--batch-size", int, "Sequences per batch (default 50)."),
    ("--seq-length", int, "Time steps per batch, truncated BPTT (default 50)."),
    ("--learning-rate", float, "Adam learning rate (default 2e-3)."),
    ("--lr-schedule", click.Choice(list(LR_SCHEDULES)), "step: x --lr-decay-factor every --lr-decay-every epochs "
     "(torch-rnn, the default); cosine: down to 2% of the rate over the run (over --max-minutes when set); "
     "hold: the rate for 75% of the run, then linearly down to 2% of it."),
    ("--warmup-frac", float, "Raise the rate linearly from 0 over this fraction of the run (default 0; "
     "the nightly warm start uses 0.05)."),
    ("--lr-decay-every", int, "Multiply the learning rate by --lr-decay-factor every N epochs (default 5)."),
    ("--lr-decay-factor", float, "Learning-rate decay factor (default 0.5)."),
    ("--grad-clip", float, "Clamp each gradient element to [-X, X] (default 5)."),
    ("--max-epochs", int, "Epochs to train (default 50)."),
    ("--max-minutes", float, "Stop cleanly after this many minutes, keeping the best checkpoint (0: none)."),
    ("--max-iterations", int, "Stop after this many iterations (0: none)."),
    ("--print-every", int, "Loss-history and progress-bar granularity in iterations (default 1)."),
    ("--checkpoint-every", int, "Validate and write best/latest every N iterations (default 1000)."),
    ("--seed", int, "Random seed (default 123)."),
    ("--num-threads", int, "CPU threads (default 0: one for tiny models, else the usable cores; never more "
     "than the usable cores)."),
]


def _train_options(f):
    for flag, typ, help_ in reversed(TRAIN_FLAGS):
        f = click.option(flag, type=typ, default=None, help=help_)(f)
    return f


@click.command("train")
@click.option("--input-h5", type=PathArg, default=None, help="Preprocessed data (default: <data_dir>/train/corpus.h5).")
@click.option("--input-json", type=PathArg, default=None, help="Vocabulary JSON (default: <data_dir>/train/corpus.json).")
@click.option("--checkpoint-dir", type=PathArg, default=None,
              help="Where best.pt, latest.pt (+ .json) and loss.png go (default: <data_dir>/checkpoints).")
@_train_options
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default=None, help="Training device (default cpu).")
@click.option("--precision", type=click.Choice(["auto", "bf16", "float32"]), default=None,
              help="auto (default): bf16 autocast where the device runs it natively (CUDA with bf16, a CPU "
                   "with AVX512-BF16 or AMX), else float32.")
@click.option("--bf16/--no-bf16", default=None, help="The same as --precision bf16 / float32.")
@click.option("--preset", type=click.Choice(["default", "gpu"]), default="default",
              help="gpu: 3x512 LSTM, embedding 128, dropout 0.2, batch 128 x 256, cuda, bf16.")
@click.option("--resume", type=PathArg, default=None, help="Continue a run exactly from its latest.pt.")
@click.option("--init-from", type=PathArg, default=None, help="Fine-tune from a checkpoint (its vocabulary may grow).")
@click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
@click.pass_obj
def train_cmd(app, input_h5, input_json, checkpoint_dir, device, precision, bf16, preset, resume, init_from,
              progress, **flags) -> None:
    """Train the char-RNN (works under `torchrun --nproc_per_node=N` for DDP)."""
    import math

    from model.train import TrainConfig, TrainingInterrupted, train

    given = {("threads" if k == "num_threads" else k): v for k, v in flags.items() if v is not None}
    if device is not None:
        given["device"] = _device(device)
    if precision is not None:
        given["precision"] = precision
    if bf16 is not None:
        given["precision"] = "bf16" if bf16 else "float32"
    given.update(resume=str(resume) if resume else None, init_from=str(init_from) if init_from else None,
                 progress=progress)
    if resume and (input_h5 is None or input_json is None or checkpoint_dir is None):
        defaults = {"input_h5": "", "input_json": "", "checkpoint_dir": ""}   # the checkpoint's own
    elif input_h5 is None or input_json is None or checkpoint_dir is None:
        p = app.default_paths()
        defaults = {"input_h5": p.train_h5, "input_json": p.train_json, "checkpoint_dir": p.checkpoint_dir}
    else:
        defaults = {}
    for key, val in (("input_h5", input_h5), ("input_json", input_json), ("checkpoint_dir", checkpoint_dir)):
        given[key] = str(val if val is not None else defaults[key])
    cfg = TrainConfig.gpu_preset(**given) if preset == "gpu" else TrainConfig(**given)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    try:
        result = train(cfg, on_start=lambda info: click.echo(_start_line(info), err=True))
    except TrainingInterrupted as exc:
        if exc.latest_path is not None:
            click.echo(f"interrupted at iteration {exc.iterations}; resumable checkpoint: {exc.latest_path} "
                       f"(continue with: buhurt train --resume {exc.latest_path})", err=True)
        sys.exit(130)
    if not main_rank:
        return
    best = (f"{result.best_path} (validation {result.best_val_loss / math.log(2):.4f} bits/char)"
            if result.best_path else "none")
    click.echo(f"{result.stopped} after {result.iterations} iterations in {result.elapsed_s:.0f} s "
               f"({result.chars_per_s:,.0f} chars/s, {result.precision}, {result.threads} "
               f"thread{'s' if result.threads != 1 else ''}); "
               f"best: {best}; latest: {result.latest_path}")


def _start_line(info: dict) -> str:
    """What the run uses, decided at its start: device, CPU threads, precision (and a warm start)."""
    import torch

    threads = info["threads"]
    cpu = f", {threads} CPU thread{'s' if threads != 1 else ''}" if info["device"] == "cpu" else ""
    warm = (f"; continuing from {info['init_from']} ({info['new_tokens']} new characters)"
            if info.get("init_from") else "")
    return (f"training on {info['device']}{cpu}, {'bf16 autocast' if info['precision'] == 'bf16' else 'float32'} "
            f"({info['why']}), torch {torch.__version__}{warm}")


@click.command("sample")
@click.option("--checkpoint", type=PathArg, default=None, help=CHECKPOINT_HELP)
@click.option("--num", type=int, default=1, show_default=True, help="Posts to generate (one batch).")
@click.option("--length", type=int, default=None, help="Maximum characters per post (default: sample.max_length, 500).")
@click.option("--start-text", default="", help="Text every post starts with.")
@click.option("--temperature", type=float, default=None, help="Softmax temperature > 0 (default: sample.temperature; \"auto\": the model's tuned one).")
@click.option("--top-k", type=int, default=None, help="Sample among the K likeliest characters (0: all).")
@click.option("--sample", "sample_flag", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0: always take the likeliest character (argmax).")
@click.option("--seed", type=int, default=None, help="Seed of the first post; post i uses seed+i (default: random, printed).")
@click.option("--raw", is_flag=True, help="torch-rnn's unconstrained sampling (default: sample.words, "
              "known-word decoding: an unknown word is taken back and sampled again).")
@click.option("--dictionary", type=click.Choice(["ru", "none"]), default=None,
              help="Known words besides the checkpoint's lexicon (default: sample.dictionary).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.pass_obj
def sample_cmd(app, checkpoint, num, length, start_text, temperature, top_k, sample_flag, seed, raw, dictionary,
               device) -> None:
    """Generate posts; prints them separated by a blank line."""
    from model.errors import ModelError
    from model.sample import Generator

    if num <= 0:
        raise ModelError(f"--num={num}: expected a positive integer")
    s = app.settings.sample
    length = s.max_length if length is None else length
    temperature = s.temperature if temperature is None else temperature
    top_k = s.top_k if top_k is None else top_k
    words = "any" if raw else s.words
    dictionary = s.dictionary if dictionary is None else dictionary
    random_seed = seed is None
    if random_seed:
        seed = int.from_bytes(os.urandom(4), "little")
    gen = Generator.load(resolve_checkpoint(app, checkpoint), device=_device(device))
    if temperature == "auto":   # the model's tuned temperature (buhurt tune), else 0.8
        from jobs.tune import FALLBACK_TEMPERATURE, tuned_temperature

        db = app.open_db()
        try:
            temperature = tuned_temperature(db, gen.version) or FALLBACK_TEMPERATURE
        finally:
            db.close()
    posts = gen.generate(seeds=[seed + i for i in range(num)], temperature=temperature, start_text=start_text,
                         max_length=length, top_k=top_k, argmax=sample_flag == 0, words=words,
                         dictionary=dictionary)
    if random_seed:  # printed only once it worked, so an error stays the only line
        click.echo(f"seed: {seed}", err=True)
    click.echo("\n\n".join(posts))


@click.command("lexicon")
@click.option("--checkpoint", type=PathArg, required=True, help="Checkpoint to give a lexicon (rewritten in place).")
@click.option("--text", type=PathArg, default=None,
              help="The training text it was trained on (default: <data_dir>/train/corpus.txt).")
@click.option("--min-count", type=click.IntRange(min=1), default=3, show_default=True,
              help="A word is known when seen at least this many times in the text.")
@click.option("--output", type=PathArg, default=None, help="Write to this file instead of in place.")
@click.pass_obj
def lexicon_cmd(app, checkpoint, text, min_count, output) -> None:
    """Store the known-word lexicon in a checkpoint trained before checkpoints carried one
    (known-word decoding; the file's bytes, so its model version, change)."""
    from model.checkpoint import add_lexicon
    from model.errors import require_file
    from model.files import utf8_chunks
    from model.words import build_lexicon

    path = require_file(text or app.default_paths().train_txt, "training text")
    content = "".join(utf8_chunks(path, "training text"))
    lexicon = build_lexicon(content, min_count)
    written = add_lexicon(checkpoint, lexicon, output)
    click.echo(f"{written}: lexicon of {len(lexicon['words'])} words seen >= {min_count} times in {path}")


@click.command("eval")
@click.option("--checkpoint", type=PathArg, default=None, help=CHECKPOINT_HELP)
@click.option("--text", type=PathArg, default=None, help="UTF-8 text file (default: <data_dir>/train/corpus.txt).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.pass_obj
def eval_cmd(app, checkpoint, text, device) -> None:
    """Print the model's loss on a text file in bits per character (and nats)."""
    from model.evaluate import evaluate_text

    path = resolve_checkpoint(app, checkpoint)
    r = evaluate_text(path, text or app.default_paths().train_txt, device=_device(device))
    extra = f", {r['skipped']} characters outside the vocabulary skipped" if r["skipped"] else ""
    click.echo(f"{r['bits_per_char']:.4f} bits/char ({r['nats_per_char']:.4f} nats/char) over "
               f"{r['chars']} characters of {r['text']}; checkpoint {path}{extra}")


def register(group: click.Group) -> None:
    for cmd in (preprocess_cmd, train_cmd, sample_cmd, lexicon_cmd, eval_cmd):
        group.add_command(cmd)
