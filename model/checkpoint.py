"""Self-contained checkpoints: weights, vocabulary, model and train config, iteration, loss
history, corpus fingerprint, optimizer and RNG state. Only tensors and plain Python types inside,
so ``torch.load(path, weights_only=True)`` loads them. Written to a temp file and renamed into
place, with a JSON sidecar (same name, ``.json``) carrying everything except tensors.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import torch

from common.files import atomic_path
from model.errors import (
    ModelError, is_torch_archive, json_object_with, make_folder, require_file, require_replaceable,
)
from model.train_config import PRECISIONS
from model.words import DEFAULT_POST_LINES

FORMAT = "buhurt-char-rnn"
# 2: train_config has precision, threads and weight_decay; lexicon has post_lines. Files of version 1
# are read as version 2 (`upgrade`).
FORMAT_VERSION = 2
REQUIRED_KEYS = ("format", "model_config", "idx_to_token", "model_state")
TENSOR_KEYS = ("model_state", "optimizer_state", "rank_states")   # what the JSON sidecar leaves out
GATES = {"lstm": 4, "gru": 3, "rnn": 1}   # gate blocks in the fused recurrent weights (nn.LSTM, nn.GRU, nn.RNN)
SHAPE_KEYS = ("vocab_size", "wordvec_size", "rnn_size", "num_layers")


def _check_plain(obj, where: str = "checkpoint") -> None:
    if obj is None or type(obj) in (bool, int, float, str) or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (list, tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if type(obj) is dict:
        for k, v in obj.items():
            if type(k) not in (str, int):
                raise TypeError(f"{where}: key {k!r} is not str/int")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(f"{where}: {type(obj).__name__} is not a tensor or a plain type")


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return None
    return obj


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Atomically write ``payload`` (plus format markers) to ``path`` and its JSON sidecar."""
    path = Path(path)
    make_folder(path.parent, "the checkpoint")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    _check_plain(payload)
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except (OSError, RuntimeError) as exc:   # torch.save says a full disk as "[enforce fail at ...]"
        raise ModelError(_write_failure(path, exc)) from None
    meta = {k: v for k, v in payload.items() if k not in TENSOR_KEYS}
    if isinstance(meta.get("lexicon"), dict):   # the sidecar says how big it is, not every word
        lexicon = meta["lexicon"]
        meta["lexicon"] = {"min_count": lexicon.get("min_count"), "word_count": len(lexicon.get("words", ()))}
    meta["checkpoint_file"] = path.name
    text = json.dumps(_json_safe(meta), ensure_ascii=False, indent=1)
    try:
        with atomic_path(sidecar_path(path)) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ModelError(_write_failure(sidecar_path(path), exc)) from None
    return path


def _write_failure(path: Path, exc: Exception) -> str:
    """One line for a checkpoint that could not be written (a full disk, a file size limit): the
    system's reason when it gave one, and the free space there; an earlier file of the name is whole."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:,.0f} MiB free there"
    except OSError:
        free = "free space unknown"
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__} in torch.save"
    return f"cannot write checkpoint {str(path)!r} ({why}; {free}); an earlier file of that name is kept whole"


def add_lexicon(path: str | Path, lexicon: dict, output: str | Path | None = None) -> Path:
    """Write the checkpoint at `path` again (to `output`, default in place) with `lexicon` inside;
    for checkpoints trained before the lexicon was stored. The file's bytes, so its version, change."""
    if output is not None:   # in place replaces a checkpoint; elsewhere only an earlier one and its sidecar
        require_replaceable(output, "output", "a checkpoint", is_torch_archive)
        require_replaceable(sidecar_path(output), "the output's sidecar", "a checkpoint's sidecar",
                            json_object_with("format", "checkpoint_file"))
    ck = load_checkpoint(path)
    ck.pop("format", None)
    ck.pop("format_version", None)
    ck["lexicon"] = lexicon
    return save_checkpoint(output or path, ck)


def _load_failure(exc: Exception) -> str:
    """The part of torch.load's error that names the problem, without its advice to retry with
    weights_only=False (which would run code from the file)."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if found:
        return f"unpickling refused it ({found.group(1).strip()[:160]})"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return first.split(". ")[0][:200]


def _check_archive(p: Path) -> bool:
    """torch.save's zip archive with every member's CRC-32 right: torch.load itself never checks
    them, so a bit flipped on disk or in a copy would load as slightly different weights. False
    when the file is no zip at all (torch's legacy format, or not a checkpoint: torch.load says which)."""
    if not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"checkpoint {str(p)!r} is a damaged zip archive ({exc})") from None
    if damaged is not None:
        raise ModelError(f"checkpoint {str(p)!r} is damaged: its member {damaged!r} fails the zip's CRC check "
                         f"(the file changed after it was written; copy it again)")
    return True


def _expected_shapes(mc: dict) -> dict[str, tuple[int, ...]]:
    """CharRNN's state_dict shapes for model_config `mc` (model/lstm.py), from plain integers."""
    v, d, h, layers = (mc[k] for k in SHAPE_KEYS)
    g = GATES[mc["model_type"]] * h
    shapes = {"embed.weight": (v, d), "head.weight": (v, h), "head.bias": (v,)}
    for n in range(layers):
        shapes.update({f"rnn.weight_ih_l{n}": (g, d if n == 0 else h), f"rnn.weight_hh_l{n}": (g, h),
                       f"rnn.bias_ih_l{n}": (g,), f"rnn.bias_hh_l{n}": (g,)})
    return shapes


def _check_shape(p: Path, ck: dict) -> None:
    """The model_config is one the weights in the file fit, checked on plain numbers before any
    module is built: an absurd shape (10**6 layers, a billion units) is refused, never allocated."""
    where = f"checkpoint {str(p)!r}"
    mc, tokens, state = ck["model_config"], ck["idx_to_token"], ck["model_state"]
    if not isinstance(mc, dict) or not isinstance(state, dict) or not isinstance(tokens, (list, tuple)):
        raise ModelError(f"{where}: model_config, model_state or idx_to_token is not the right kind of value")
    if "\n" not in tokens:
        raise ModelError(f"{where}: its vocabulary (idx_to_token, {len(tokens)} tokens) has no line end \"\\n\", "
                         f"which ends every post: not a model of posts")
    if mc.get("model_type") not in GATES:
        raise ModelError(f"{where}: model_config.model_type={mc.get('model_type')!r}: expected one of "
                         f"{', '.join(map(repr, GATES))}")
    for key in SHAPE_KEYS:
        value = mc.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelError(f"{where}: model_config.{key}={value!r}: expected a positive integer")
    if mc["vocab_size"] != len(tokens):
        raise ModelError(f"{where}: model_config.vocab_size={mc['vocab_size']} but the vocabulary (idx_to_token) "
                         f"has {len(tokens)} tokens")
    layers = sum(1 for k in state if isinstance(k, str) and re.fullmatch(r"rnn\.weight_ih_l\d+", k))
    if mc["num_layers"] != layers:
        raise ModelError(f"{where}: model_config.num_layers={mc['num_layers']} but its weights have {layers} "
                         f"recurrent layers")
    expected = _expected_shapes(mc)
    for key, shape in expected.items():
        tensor = state.get(key)
        if not isinstance(tensor, torch.Tensor):
            raise ModelError(f"{where}: model_state has no tensor {key!r}, which model_config {_shape_text(mc)} needs")
        if tuple(tensor.shape) != shape:
            raise ModelError(f"{where}: model_config {_shape_text(mc)} needs {key} of shape "
                             f"{'x'.join(map(str, shape))}, the file's is {'x'.join(map(str, tensor.shape))}")
    extra = sorted(str(k) for k in set(state) - set(expected))
    if extra:
        raise ModelError(f"{where}: model_state has a tensor {extra[0]!r} that model_config {_shape_text(mc)} "
                         f"has no place for")


def _shape_text(mc: dict) -> str:
    return "(" + ", ".join(f"{k}={mc[k]}" for k in ("model_type", *SHAPE_KEYS)) + ")"


def _check_finite(p: Path, state: dict) -> None:
    """Every weight a finite number: NaN or Inf (what a diverged run leaves) makes every draft garbage."""
    for key, tensor in state.items():
        if tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise ModelError(f"checkpoint {str(p)!r}: its weights hold NaN or Inf ({key}: {bad} of "
                                 f"{tensor.numel()} values), what a diverged training run leaves: not usable")


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load and validate a checkpoint (weights_only=True). Raises ModelError on any problem: not a
    checkpoint, a damaged archive (zip CRC), a model_config its weights do not fit (checked on plain
    numbers, before any tensor is read into memory or any module built), a vocabulary without the
    line end, weights that are NaN or Inf."""
    p = require_file(path, "checkpoint")
    zipped = _check_archive(p)
    try:
        # torch.save's zip format is memory-mapped: the file's tensors are read into memory only once
        # the checks below passed
        ck = torch.load(p, map_location="cpu" if zipped else map_location, weights_only=True, mmap=zipped)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        if p.stat().st_size == 0:
            raise ModelError(f"checkpoint {str(p)!r} is an empty file") from None
        if not zipped:   # a text file, /etc/passwd...: torch's words ("101", "list index out of range") say nothing
            raise ModelError(f"checkpoint {str(p)!r} is not a file that torch.save wrote "
                             f"({type(exc).__name__}: {_load_failure(exc)})") from None
        raise ModelError(f"checkpoint {str(p)!r} is corrupt or not a checkpoint: {_load_failure(exc)}") from None
    if not isinstance(ck, dict):
        raise ModelError(f"checkpoint {str(p)!r} is not a buhurt checkpoint (not a dict)")
    for k in REQUIRED_KEYS:
        if k not in ck:
            raise ModelError(f"checkpoint {str(p)!r} is not a buhurt checkpoint: key {k!r} missing")
    if ck["format"] != FORMAT:
        raise ModelError(f"checkpoint {str(p)!r}: format {ck['format']!r}, expected {FORMAT!r}")
    _check_shape(p, ck)
    _check_finite(p, ck["model_state"])
    return upgrade(_in_memory(ck, map_location) if zipped else ck)


def upgrade(ck: dict) -> dict:
    """A checkpoint of an earlier FORMAT_VERSION (or one missing a later field) as the current
    version reads: every compatibility rule of the format, here and nowhere else.

    - train_config: `bf16` is `precision`, `num_threads` is `threads` (renamed), and a run before
      `weight_decay` was plain Adam (0.0), so it resumes as one;
    - a resumable checkpoint without `lr_progress`, `best_iteration` or loss histories starts them
      at 0 and empty;
    - `lexicon` (known words, and the posts' line counts that set where a post ends): a checkpoint
      without one has an empty lexicon (`buhurt lexicon` adds one), one without `post_lines` ends
      posts as the real channel's do (model.words.DEFAULT_POST_LINES)."""
    tc = ck.get("train_config")
    if isinstance(tc, dict):
        tc = ck["train_config"] = dict(tc)
        if "bf16" in tc:
            bf16 = tc.pop("bf16")
            tc.setdefault("precision", next(k for k, v in PRECISIONS.items() if v == bf16))
        if "num_threads" in tc:
            tc.setdefault("threads", tc.pop("num_threads"))
        tc.setdefault("weight_decay", 0.0)
    if "optimizer_state" in ck:
        for key, empty in (("lr_progress", 0.0), ("best_iteration", 0), ("train_loss_history", []),
                           ("val_loss_history", [])):
            ck.setdefault(key, empty)
    lexicon = ck.get("lexicon")
    lexicon = ck["lexicon"] = dict(lexicon) if isinstance(lexicon, dict) else {"min_count": None, "words": []}
    lexicon.setdefault("post_lines", list(DEFAULT_POST_LINES))
    ck["format_version"] = FORMAT_VERSION
    return ck


def _in_memory(obj, map_location):
    """`obj` with every (memory-mapped) tensor copied into memory, on `map_location`."""
    if isinstance(obj, torch.Tensor):
        return obj.clone() if map_location in (None, "cpu") else obj.to(map_location, copy=True)
    if isinstance(obj, dict):
        return {k: _in_memory(v, map_location) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_in_memory(v, map_location) for v in obj)
    return obj
