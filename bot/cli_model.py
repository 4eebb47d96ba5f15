"""`buhurt preprocess|train|sample|eval`: torch-rnn's flag names (with dashes) over model/.

torch and the model modules (all but the torch-free train_config) are imported inside the commands,
so `buhurt --help` stays light.
The options' defaults are the config file's (click's default_map, `config_defaults`): `buhurt train`
with no flags trains what [model] and [train] say, `sample` samples as [sample] says, and the paths
are the data directory's (`ctx.obj.default_paths()`). The option of each setting has its name
(`--rnn-size` is model.rnn_size) and --help shows the value in use (click's show_default).
`sample` and `eval` without --checkpoint use the model the service would use
(`ctx.obj.active_checkpoint()`), and --checkpoint also takes the names best, latest and active
(`resolve_checkpoint`).
Every figure printed carries its unit; losses are in bits per character.
"""
from __future__ import annotations

import os
import sys
import typing
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import click
from tqdm import tqdm

from corpus.rules import tidy_generated
from jobs.model_registry import version_installed_at
from jobs.tune import tuned_temperature
from model.errors import ModelError, require_file
from model.files import utf8_chunks
from model.preprocess import preprocess
from model.run import start_line, summary_line
from model.sample_options import Decoding, SampleRequest, TORCH_RNN, resolved_temperature
from model.train_config import (
    DEVICES, LR_SCHEDULES, MODEL_TYPES, OPTIMISATION_KEYS, PRECISIONS, RUN_FROM_CHECKPOINT, SHAPE_KEYS, ModelShape,
    TrainOptions,
)
from model.vocab import format_chars
from model.words import build_lexicon

PathArg = click.Path(path_type=Path)
CHECKPOINT_NAMES = ("best", "latest", "active")
SAMPLE_BATCH = 16   # `buhurt sample`: posts generated per batch (each batch printed as it is made)
CHECKPOINT_HELP = ("A checkpoint file, or best / latest (the newest best.pt / latest.pt under <data_dir>/checkpoints, "
                   "a run by hand or a nightly run folder) or active (the service's model; the default).")


def resolve_checkpoint(app, value: Path | None) -> Path:
    """--checkpoint: a path, or one of CHECKPOINT_NAMES (a file literally named so: write ./best)."""
    if value is None or str(value) == "active":
        return app.active_checkpoint()
    if str(value) in ("best", "latest"):
        root = app.default_paths().checkpoint_dir
        found = [p for p in [root / f"{value}.pt", *root.glob(f"run-*/{value}.pt")] if p.is_file()]
        if not found:
            raise ModelError(f"--checkpoint {value}: no {value}.pt under {root} yet (train one with "
                             f"`buhurt train` or `buhurt retrain`)")
        return max(found, key=lambda p: p.stat().st_mtime)
    return value


def config_defaults(app) -> dict[str, dict]:
    """click's default_map for these commands: the config file's [model], [train], [sample] and the
    data directory's paths (the dataclasses' defaults where the file says nothing)."""
    settings, paths = app.settings, app.default_paths()
    model, train, sample = settings.model, settings.train, settings.sample
    run = {f.name: getattr(model, f.name) for f in fields(ModelShape)}
    run.update({f.name: getattr(train, f.name) for f in fields(TrainOptions)})
    return {
        "preprocess": {"input_txt": paths.train_txt, "output_h5": paths.train_h5, "output_json": paths.train_json,
                       "val_frac": settings.retrain.val_frac, "test_frac": settings.retrain.test_frac},
        "train": {**run, "input_h5": paths.train_h5, "input_json": paths.train_json,
                  "checkpoint_dir": paths.checkpoint_dir},
        "sample": {"length": sample.max_length, "temperature": sample.temperature, "top_k": sample.top_k,
                   "words": sample.words, "dictionary": sample.dictionary, "quotes": sample.quotes,
                   "grammar": sample.grammar, "ending": sample.ending},
        "lexicon": {"min_count": train.lexicon_min_count, "text": paths.train_txt},
        "eval": {"text": paths.train_txt},
    }


def given(ctx: click.Context, name: str) -> bool:
    """Whether option `name` was given on the command line (or its environment variable), not defaulted."""
    return ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE,
                                              click.core.ParameterSource.ENVIRONMENT)


@click.command("preprocess")
@click.option("--input-txt", type=PathArg, show_default=True,
              help="UTF-8 training text (`buhurt corpus export` writes it).")
@click.option("--output-h5", type=PathArg, show_default=True, help="HDF5 to write: datasets train/val/test.")
@click.option("--output-json", type=PathArg, show_default=True,
              help="Vocabulary JSON to write (idx_to_token, token_to_idx).")
@click.option("--val-frac", type=float, show_default=True,
              help="Fraction of the posts for validation (retrain.val_frac).")
@click.option("--test-frac", type=float, show_default=True, help="Fraction of the posts for test (retrain.test_frac).")
@click.pass_obj
def preprocess_cmd(app, input_txt, output_h5, output_json, val_frac, test_frac) -> None:
    """Text -> .h5 + .json in torch-rnn's layout (1-based ids, uint8 up to 255 tokens else uint32)."""
    _written_by("buhurt corpus export writes it", ("input text", input_txt))
    app.refuse_while_training(output_h5, output_json)   # never under a retrain that trains from them
    s = preprocess(input_txt, output_h5, output_json, val_frac=val_frac, test_frac=test_frac)
    click.echo(f"{s['output_h5']}: {s['total_chars']} characters, {s['vocab_size']} tokens ({s['dtype']}), "
               f"train {s['train']} / val {s['val']} / test {s['test']}; vocabulary {s['output_json']}")


def _written_by(writer: str, *inputs: tuple[str, Path]) -> None:
    """A missing input names the command that writes it (`writer`): a fresh data folder holds
    neither the training text nor its .h5 / .json."""
    for what, path in inputs:
        if not path.exists():
            raise ModelError(f"{what} {str(path)!r} does not exist ({writer})")


def _device(name: str) -> str:
    from model.distributed import device_name

    return device_name(name)


# the help of each [model]/[train] option (its default is shown by click: the config file's value)
TRAIN_HELP = {
    "model_type": "Recurrent cell.",
    "wordvec_size": "Character embedding size.",
    "rnn_size": "Hidden units per layer.",
    "num_layers": "Recurrent layers.",
    "dropout": "Dropout between layers, in [0, 1).",
    "batch_size": "Sequences per batch.",
    "seq_length": "Time steps per batch (truncated backpropagation length).",
    "learning_rate": "Adam learning rate.",
    "lr_schedule": "step: x --lr-decay-factor every --lr-decay-every epochs (torch-rnn's); cosine: down to 2% "
                   "of the rate over the run (over --max-minutes when set); hold: the rate for 75% of the run, "
                   "then linearly down to 2% of it.",
    "warmup_frac": "Raise the rate linearly from 0 over this fraction of the run (the nightly warm start uses 0.05).",
    "lr_decay_every": "With --lr-schedule step: multiply the rate by --lr-decay-factor every N epochs.",
    "lr_decay_factor": "Learning-rate decay factor of the step schedule.",
    "grad_clip": "Clamp each gradient element to [-X, X].",
    "weight_decay": "Decoupled weight decay (AdamW) on the recurrent and head matrices (0: plain Adam).",
    "max_epochs": "Epochs to train at most.",
    "max_minutes": "Stop cleanly after this many minutes, keeping the best checkpoint (0: no time budget).",
    "max_iterations": "Stop after this many iterations (0: no limit).",
    "print_every": "Loss-history and progress-bar granularity in iterations.",
    "checkpoint_every": "Validate and write best/latest every N iterations.",
    "seed": "Random seed.",
    "device": "Training device (auto: cuda when torch sees a GPU).",
    "precision": "auto: bf16 autocast where the device runs it natively (CUDA with bf16, a CPU with "
                 "AVX512-BF16 or AMX), else float32.",
    "threads": "CPU threads (0: one for tiny models, else the usable cores; never more than the usable cores).",
    "lexicon_min_count": "The checkpoint's lexicon (known-word decoding): words seen at least this often.",
}
TRAIN_CHOICES = {"model_type": MODEL_TYPES, "lr_schedule": LR_SCHEDULES, "device": DEVICES,
                 "precision": tuple(PRECISIONS)}
TRAIN_ALIASES = {"threads": ("--num-threads",)}   # the flag's earlier name
RUN_FIELDS = tuple(f.name for f in (*fields(ModelShape), *fields(TrainOptions)))


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _train_options(f):
    """One option per ModelShape and TrainOptions field, named and typed as the field."""
    hints = {**typing.get_type_hints(ModelShape), **typing.get_type_hints(TrainOptions)}
    for name in reversed(RUN_FIELDS):
        kind = click.Choice(TRAIN_CHOICES[name]) if name in TRAIN_CHOICES else hints[name]
        f = click.option(flag(name), *TRAIN_ALIASES.get(name, ()), name, type=kind, show_default=True,
                         help=TRAIN_HELP[name])(f)
    return f


PRESETS = ("config", "gpu", "torch-rnn")


@click.command("train")
@click.option("--input-h5", type=PathArg, show_default=True, help="Preprocessed data (`buhurt preprocess`).")
@click.option("--input-json", type=PathArg, show_default=True, help="Its vocabulary JSON.")
@click.option("--checkpoint-dir", type=PathArg, show_default=True,
              help="Where best.pt, latest.pt (+ .json) and loss.png go.")
@_train_options
@click.option("--bf16/--no-bf16", default=None, help="The same as --precision bf16 / float32.")
@click.option("--preset", type=click.Choice(PRESETS), default="config", show_default=True,
              help="config: [model] and [train] (the defaults shown); gpu: 3x512 LSTM, embedding 128, dropout "
                   "0.2, batch 128 x 256, cuda, bf16; torch-rnn: train.lua's defaults (2x128, the rate halved "
                   "every 5 epochs, 50 epochs). Options given on the command line apply on top of a preset.")
@click.option("--resume", type=PathArg, default=None,
              help="Continue a run exactly from its latest.pt, with its settings (a flag saying otherwise is refused).")
@click.option("--init-from", type=PathArg, default=None,
              help="Fine-tune from a checkpoint: its shape, its vocabulary may grow.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show the progress bar.")
@click.pass_context
def train_cmd(ctx: click.Context, input_h5, input_json, checkpoint_dir, bf16, preset, resume, init_from, progress,
              **run) -> None:
    """Train the char-RNN (works under `torchrun --nproc_per_node=N` for DDP)."""
    from model.train import TrainConfig, TrainingInterrupted, train

    chosen = run if preset == "config" else {k: v for k, v in run.items() if given(ctx, k)}
    if bf16 is not None:
        chosen["precision"] = "bf16" if bf16 else "float32"
    if "device" in chosen:
        chosen["device"] = _device(chosen["device"])
    files: dict[str, str | bool | None] = {}
    for key, value in (("input_h5", input_h5), ("input_json", input_json), ("checkpoint_dir", checkpoint_dir)):
        files[key] = "" if resume and not given(ctx, key) else str(value)   # "": the checkpoint's own
    files.update(resume=str(resume) if resume else None, init_from=str(init_from) if init_from else None,
                 progress=progress)
    _refuse_overridden(ctx, chosen, resume, init_from)
    if not resume:
        _written_by("buhurt corpus export, then buhurt preprocess, write them",
                    ("input h5", input_h5), ("input json", input_json))
    presets: dict[str, Callable[..., TrainConfig]] = {"config": TrainConfig, "gpu": TrainConfig.gpu_preset,
                                                     "torch-rnn": TrainConfig.torch_rnn_preset}
    make = presets[preset]
    cfg = make(**chosen, **files)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    try:
        result = train(cfg, on_start=lambda info: click.echo(start_line(info), err=True))
    except TrainingInterrupted as exc:
        if exc.latest_path is not None:
            click.echo(f"interrupted at iteration {exc.iterations}; resumable checkpoint: {exc.latest_path} "
                       f"(continue with: buhurt train --resume {exc.latest_path})", err=True)
        sys.exit(130)
    if main_rank:
        click.echo(summary_line(result))


def _refuse_overridden(ctx: click.Context, chosen: dict, resume: Path | None, init_from: Path | None) -> None:
    """A setting given on the command line that the checkpoint would override is refused, not
    ignored: --resume continues its run as it was (RUN_FROM_CHECKPOINT), --init-from keeps its shape."""
    from model.checkpoint import load_checkpoint

    source = resume or init_from
    if source is None:
        return
    ck = load_checkpoint(source)
    kept = (ck.get("train_config") or {}) if resume else ck["model_config"]
    keys = RUN_FROM_CHECKPOINT if resume else [k for k in SHAPE_KEYS if k != "dropout"]
    for key in keys:
        if given(ctx, key) and key in kept and chosen.get(key) != kept[key]:
            how = ("start a new run from it with --init-from" if key in OPTIMISATION_KEYS or key == "dropout"
                   else "train a new model from scratch")
            raise ModelError(f"{flag(key)} {chosen[key]}: {'--resume' if resume else '--init-from'} {source} "
                             f"{'continues its run with' if resume else 'keeps its shape,'} {key} = {kept[key]}; "
                             f"for another, {how}")


class Temperature(click.ParamType):
    """A number, or "auto" (the model's tuned temperature); the range is the Generator's to check."""

    name = "number|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool) or value == "auto":
            return value
        try:
            return float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number or \"auto\"", param, ctx)


@click.command("sample")
@click.option("--checkpoint", type=PathArg, default=None, help=CHECKPOINT_HELP)
@click.option("--num", type=int, default=1, show_default=True,
              help=f"Posts to generate (in batches of {SAMPLE_BATCH}, printed as they are made).")
@click.option("--length", type=int, show_default=True, help="Maximum characters per post (sample.max_length).")
@click.option("--start-text", default="", help="Text every post starts with.")
@click.option("--temperature", type=Temperature(), show_default=True,
              help="Softmax temperature > 0, or \"auto\": the model's tuned one (`buhurt tune`), else 0.8.")
@click.option("--top-k", type=int, show_default=True, help="Sample among the K likeliest characters (0: all).")
@click.option("--sample", "sample_flag", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0: always take the likeliest character (argmax).")
@click.option("--seed", type=int, default=None,
              help="Seed of the first post; post i uses seed+i (default: random, printed).")
@click.option("--words", type=click.Choice(["known", "any"]), show_default=True,
              help="known: known-word decoding (an unknown word is taken back and sampled again); any: "
                   "torch-rnn's unconstrained sampling.")
@click.option("--raw", is_flag=True,
              help="torch-rnn's unconstrained sampling: the same as --words any --quotes any --grammar any.")
@click.option("--dictionary", type=click.Choice(["ru", "none"]), show_default=True,
              help="Known words besides the checkpoint's lexicon.")
@click.option("--quotes", type=click.Choice(["balanced", "any"]), show_default=True,
              help="balanced: a quote (« or \") opened on a line closes on that line; any: no such rule.")
@click.option("--grammar", type=click.Choice(["agree", "any"]), show_default=True,
              help="agree: a word that cannot agree with the word before it is taken back, short words are"
                   " the dictionary's standalone ones, and posts end where the community's end (needs --words"
                   " known --dictionary ru); any: no such rule.")
@click.option("--ending", type=click.Choice(["community", "floor"]), show_default=True,
              help="With --grammar agree, where posts end: community: after each line at the community's odds"
                   " of a post ending there; floor: at least those odds, more where the model wants.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--progress/--no-progress", default=True,
              help="With --num over 1, a bar on stderr counts the posts made (printed as they come).")
@click.option("--exact", is_flag=True,
              help="Print the model's text as it came out. Without it, posts are tidied as drafts are: no"
                   " \"@\" left dangling at either end (a post cut at --length) or glued to a line.")
@click.pass_obj
def sample_cmd(app, checkpoint, num, length, start_text, temperature, top_k, sample_flag, seed, words, raw,
               dictionary, quotes, grammar, ending, device, progress, exact) -> None:
    """Generate posts; prints them separated by a blank line."""
    from model.sample import Generator

    if num <= 0:
        raise ModelError(f"--num={num}: expected a positive integer")
    random_seed = seed is None
    if random_seed:
        seed = int.from_bytes(os.urandom(4), "little")
    gen = Generator.load(resolve_checkpoint(app, checkpoint), device=_device(device))
    if temperature == "auto":   # the model's tuned temperature (buhurt tune), else 0.8
        db = app.open_db()
        try:
            temperature = resolved_temperature(temperature, tuned_temperature(db, gen.version))
        finally:
            db.close()
    decoding = TORCH_RNN if raw else Decoding(words, dictionary, quotes, grammar, ending)
    request = SampleRequest(temperature, length, top_k, decoding, start_text, argmax=sample_flag == 0)
    # in batches of SAMPLE_BATCH, each printed as it is made (a post depends only on its seed, not on
    # its batch: the output is the same as one batch's); a bar on stderr counts the posts
    with tqdm(total=num, unit="post", desc="sample", disable=not progress or num <= 1, dynamic_ncols=True) as bar:
        for first in range(0, num, SAMPLE_BATCH):
            posts = gen.generate([seed + i for i in range(first, min(num, first + SAMPLE_BATCH))], request)
            if random_seed and not first:  # printed only once it worked, so an error stays the only line
                bar.write(f"seed: {seed}", file=sys.stderr)
            text = "\n\n".join(posts if exact else [tidy_generated(p) for p in posts])
            bar.write(text if not first else "\n" + text, file=sys.stdout)
            bar.update(len(posts))


@click.command("lexicon")
@click.option("--checkpoint", type=PathArg, required=True, help="Checkpoint to give a lexicon (rewritten in place).")
@click.option("--text", type=PathArg, show_default=True, help="The training text it was trained on.")
@click.option("--min-count", type=click.IntRange(min=1), show_default=True,
              help="A word is known when seen at least this many times in the text (train.lexicon_min_count).")
@click.option("--output", type=PathArg, default=None, help="Write to this file instead of in place.")
@click.pass_obj
def lexicon_cmd(app, checkpoint, text, min_count, output) -> None:
    """Store the known-word lexicon in a checkpoint trained before checkpoints carried one
    (known-word decoding; the file's bytes, so its model version, change)."""
    from model.checkpoint import add_lexicon

    target = output or checkpoint
    db = app.open_db()
    try:
        installed = version_installed_at(db, target)
    finally:
        db.close()
    if installed is not None:   # its bytes are its version: /meme N regenerates that version's drafts with them
        raise ModelError(f"{target} is the checkpoint of installed model version {installed}, which is never "
                         f"rewritten: write the new one elsewhere (--output FILE), then `buhurt models install FILE`")
    path = require_file(text, "training text")
    content = "".join(utf8_chunks(path, "training text"))
    lexicon = build_lexicon(content, min_count)
    written = add_lexicon(checkpoint, lexicon, output)
    click.echo(f"{written}: lexicon of {len(lexicon['words'])} words seen >= {min_count} times in {path}")


@click.command("eval")
@click.option("--checkpoint", type=PathArg, default=None, help=CHECKPOINT_HELP)
@click.option("--text", type=PathArg, show_default=True, help="UTF-8 text file.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.pass_obj
def eval_cmd(app, checkpoint, text, device) -> None:
    """Print the model's loss on a text file in bits per character (and nats)."""
    from model.evaluate import evaluate_text

    path = resolve_checkpoint(app, checkpoint)
    r = evaluate_text(path, text, device=_device(device))
    click.echo(f"{r['bits_per_char']:.4f} bits/char ({r['nats_per_char']:.4f} nats/char) over "
               f"{r['chars']} characters of {r['text']}; checkpoint {path}{left_out(r)}")


SHOWN_CHARS = 10   # of the characters a bits/char left out, those named


def left_out(scored: dict) -> str:
    """What a bits/char (model.evaluate.evaluate_text) left out: the text's characters the model
    lacks (a lower figure, not comparable with a model that knows them), or ""."""
    if not scored.get("skipped"):
        return ""
    chars = list(scored["unknown_chars"])
    more = f" and {len(chars) - SHOWN_CHARS} more" if len(chars) > SHOWN_CHARS else ""
    return (f" ({scored['skipped']} characters outside its vocabulary left out: "
            f"{format_chars(chars[:SHOWN_CHARS])}{more})")


def register(group: click.Group) -> None:
    for cmd in (preprocess_cmd, train_cmd, sample_cmd, lexicon_cmd, eval_cmd):
        group.add_command(cmd)
