"""Timestamps as stored in the database: ISO 8601, UTC, second precision."""
from __future__ import annotations

import datetime as dt


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def ago(**delta) -> str:
    """The timestamp `delta` (timedelta keywords) before now, for `WHERE at >= ?` queries."""
    moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(**delta)
    return moment.replace(microsecond=0).isoformat()
