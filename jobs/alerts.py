"""Alerts to the moderators' chat, one line each and once per episode: a publishing slot passed
with nothing approved for a destination, the approved queue filling fewer than `alerts.min_queue`
slots, a nightly retrain that failed or kept the old model, the active model's file gone or not its
version (jobs/service.py) (a destination failing repeatedly is
jobs/publish.py's, where the sends are counted).

"Once per episode": the state table remembers that an alert was given (`alert:<kind>:<subject>`);
it is given again only after the condition cleared (the destination published, the queue filled).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlite_utils

from corpus.store.state import get_state, set_state
from jobs.patience import patiently
from jobs.publish import Notify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertOptions:
    """[alerts]: the fewest publishing slots the approved queue should fill (0: no alert), and the
    failed sends in a row after which a destination is reported (0: never)."""

    min_queue: int = 2      # alert when the approved queue fills fewer publishing slots; 0: never
    failures: int = 3       # alert when a destination's sends failed this many times in a row; 0: never

    def problems(self) -> dict[str, str]:
        problems = {}
        for key in ("min_queue", "failures"):
            if not 0 <= getattr(self, key) <= 1000:
                problems[key] = "an integer from 0 to 1000 (0: no alert)"
        return problems


async def once(db: sqlite_utils.Database, key: str, condition: bool, notify: Notify, text: str) -> bool:
    """Tell the moderators `text` when `condition` holds and was not told since it last cleared.
    True when told now."""
    state_key = f"alert:{key}"
    given = get_state(db, state_key, "") == "1"
    if not condition:
        if given:
            await patiently(set_state, db, state_key, "")   # another process's lock: waited off the loop
        return False
    if given:
        return False
    await patiently(set_state, db, state_key, "1")
    log.warning("alert: %s", text)
    try:
        await notify(text)
    except Exception as exc:  # noqa: BLE001 - an alert that cannot be sent is logged above
        log.warning("could not send the alert (%s)", exc)
    return True
