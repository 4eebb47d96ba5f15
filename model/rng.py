"""A counter-based random stream per post: uniform(seed, step) from a splitmix64 hash.

Each post's randomness depends only on its own seed and the step number, never on which other
posts share its batch or on any global RNG, so a post can be regenerated alone from its seed.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STEP = np.uint64(0xD1B54A32D192ED69)
_MASK = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def seed_keys(seeds) -> np.ndarray:
    """Per-post keys (uint64) from arbitrary Python integer seeds."""
    with np.errstate(over="ignore"):
        return _mix(np.array([int(s) & _MASK for s in seeds], dtype=np.uint64) + _GOLDEN)


def uniforms(keys: np.ndarray, step) -> np.ndarray:
    """One float64 in [0, 1) per key for this step (an int, or one step per key)."""
    with np.errstate(over="ignore"):
        if isinstance(step, np.ndarray):
            z = _mix(keys + (step.astype(np.uint64) + np.uint64(1)) * _STEP)
        else:
            z = _mix(keys + np.uint64((step + 1) & _MASK) * _STEP)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
