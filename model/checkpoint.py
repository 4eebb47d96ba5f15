"""Self-contained checkpoints: weights, vocabulary, model and train config, iteration, loss
history, corpus fingerprint, optimizer and RNG state. Only tensors and plain Python types inside,
so ``torch.load(path, weights_only=True)`` loads them. Written to a temp file and renamed into
place, with a JSON sidecar (same name, ``.json``) carrying everything except tensors.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from model.errors import ModelError, require_file
from model.files import atomic_path

FORMAT = "buhurt-char-rnn"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "model_config", "idx_to_token", "model_state")
TENSOR_KEYS = ("model_state", "optimizer_state", "rng_state", "hidden")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    _check_plain(payload)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    meta = {k: v for k, v in payload.items() if k not in TENSOR_KEYS}
    if isinstance(meta.get("lexicon"), dict):   # the sidecar says how big it is, not every word
        lexicon = meta["lexicon"]
        meta["lexicon"] = {"min_count": lexicon.get("min_count"), "words": len(lexicon.get("words", ()))}
    meta["checkpoint_file"] = path.name
    text = json.dumps(_json_safe(meta), ensure_ascii=False, indent=1)
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def add_lexicon(path: str | Path, lexicon: dict, output: str | Path | None = None) -> Path:
    """Write the checkpoint at `path` again (to `output`, default in place) with `lexicon` inside;
    for checkpoints trained before the lexicon was stored. The file's bytes, so its version, change."""
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


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load and validate a checkpoint (weights_only=True). Raises ModelError on any problem."""
    p = require_file(path, "checkpoint")
    try:
        ck = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ModelError(f"checkpoint {str(p)!r} is corrupt or not a checkpoint: {_load_failure(exc)}") from None
    if not isinstance(ck, dict):
        raise ModelError(f"checkpoint {str(p)!r} is not a buhurt checkpoint (not a dict)")
    for k in REQUIRED_KEYS:
        if k not in ck:
            raise ModelError(f"checkpoint {str(p)!r} is not a buhurt checkpoint: key {k!r} missing")
    if ck["format"] != FORMAT:
        raise ModelError(f"checkpoint {str(p)!r}: format {ck['format']!r}, expected {FORMAT!r}")
    return ck
