"""What keeps the bot alive under a crowd: per-user cooldowns and a cap on on-demand generations."""
from __future__ import annotations

import asyncio
import math
import time


class Limits:
    """Event-loop-only state (no locks needed): cooldowns, generation slots, the refill task."""

    def __init__(self, cooldown_seconds: float, max_generations: int) -> None:
        self.cooldown_seconds = cooldown_seconds
        self.max_generations = max_generations
        self.generating = 0
        self.refill_task: asyncio.Task | None = None
        self._last: dict[int, float] = {}

    def cooldown_left(self, user_id: int) -> int:
        """Whole seconds this user still has to wait; 0 when they may ask now."""
        last = self._last.get(user_id)
        if last is None:
            return 0
        left = self.cooldown_seconds - (time.monotonic() - last)
        return math.ceil(left) if left > 0 else 0

    def touch(self, user_id: int) -> None:
        now = time.monotonic()
        if len(self._last) > 10_000:  # forget users whose cooldown ended long ago
            self._last = {u: t for u, t in self._last.items() if now - t < self.cooldown_seconds}
        self._last[user_id] = now

    def try_acquire(self) -> bool:
        """Take a generation slot; False when `max_generations` are already running."""
        if self.generating >= self.max_generations:
            return False
        self.generating += 1
        return True

    def release(self) -> None:
        self.generating = max(0, self.generating - 1)
