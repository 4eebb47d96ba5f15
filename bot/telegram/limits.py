"""What keeps the bot alive under a crowd: a per-user flood gate, per-user cooldowns and a cap on
on-demand generations. One user's flood costs the others nothing: past the gate their commands are
dropped before any handler or reply, and each limit answers with at most one notice per window."""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Hashable


class Limits:
    """Event-loop-only state (no locks needed): cooldowns, generation slots, the refill task."""

    def __init__(self, cooldown_seconds: float, max_generations: int, *, burst: int = 5,
                 window_seconds: float = 10.0, clock=time.monotonic) -> None:
        self.cooldown_seconds = cooldown_seconds
        self.max_generations = max_generations
        self.burst, self.window_seconds = burst, window_seconds
        self.clock = clock
        self.generating = 0
        self.refill_task: asyncio.Task | None = None
        self._last: dict[Hashable, float] = {}
        self._cooldown_noticed: dict[Hashable, float] = {}   # user -> the cooldown start already noticed
        self._recent: dict[Hashable, deque[float]] = {}      # user -> times of their last `burst` commands
        self._flood_noticed: dict[Hashable, float] = {}      # user -> when their flood notice was sent

    def admit(self, user_id: Hashable) -> tuple[bool, bool]:
        """The flood gate for one incoming command: (handle it, send the one "slow down" notice).
        At most `burst` commands in any `window_seconds`; one notice per window for the rest."""
        if self.window_seconds <= 0:
            return True, False
        now = self.clock()
        if len(self._recent) > 10_000:  # forget users who went quiet
            self._recent = {u: q for u, q in self._recent.items() if q and now - q[-1] < self.window_seconds}
            self._flood_noticed = {u: t for u, t in self._flood_noticed.items() if now - t < self.window_seconds}
        recent = self._recent.setdefault(user_id, deque(maxlen=self.burst))
        if len(recent) < self.burst or now - recent[0] >= self.window_seconds:
            recent.append(now)
            return True, False
        if now - self._flood_noticed.get(user_id, -math.inf) < self.window_seconds:
            return False, False
        self._flood_noticed[user_id] = now
        return False, True

    def cooldown_notice(self, user_id: Hashable) -> bool:
        """True for the first cooldown notice of this user's current cooldown, then False."""
        started = self._last.get(user_id)
        if started is None or self._cooldown_noticed.get(user_id) == started:
            return False
        self._cooldown_noticed[user_id] = started
        return True

    def cooldown_left(self, user_id: Hashable) -> int:
        """Whole seconds this user still has to wait; 0 when they may ask now."""
        last = self._last.get(user_id)
        if last is None:
            return 0
        left = self.cooldown_seconds - (self.clock() - last)
        return math.ceil(left) if left > 0 else 0

    def touch(self, user_id: Hashable) -> None:
        now = self.clock()
        if len(self._last) > 10_000:  # forget users whose cooldown ended long ago
            self._last = {u: t for u, t in self._last.items() if now - t < self.cooldown_seconds}
            self._cooldown_noticed = {u: t for u, t in self._cooldown_noticed.items() if u in self._last}
        self._last[user_id] = now

    def try_acquire(self) -> bool:
        """Take a generation slot; False when `max_generations` are already running."""
        if self.generating >= self.max_generations:
            return False
        self.generating += 1
        return True

    def release(self) -> None:
        self.generating = max(0, self.generating - 1)
