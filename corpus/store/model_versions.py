"""Queries on `model_versions`: which checkpoint the service uses, and its history.

Statuses: 'candidate' (installed, not in use), 'active' (the one the service uses), 'retired' (was
active; kept for /meme N), 'rejected' (a retrain's candidate that did not beat the active model;
its checkpoint stays in its run folder), 'pruned' (rejected, and its run folder was deleted).
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from corpus.store.clock import utcnow


def register_model(db: sqlite_utils.Database, version: str, path: str, *, val_bpc: float | None,
                   metrics: dict | None = None, status: str = "candidate") -> None:
    """Record a new version. A version already known keeps its row (status included): the same
    bytes registered again, e.g. a candidate identical to the active model, never demote it."""
    db.table("model_versions").insert({
        "version": version, "path": path, "status": status, "val_bpc": val_bpc,
        "metrics_json": json.dumps(metrics or {}, ensure_ascii=False), "created_at": utcnow(),
    }, pk="version", ignore=True)


def set_val_bpc(db: sqlite_utils.Database, version: str, val_bpc: float) -> None:
    """Record a new held-out bits/char of a known version (`buhurt models install --text` again)."""
    db.execute("UPDATE model_versions SET val_bpc = ? WHERE version = ?", [val_bpc, version])


def all_models(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every version, newest first."""
    return list(db.query("SELECT * FROM model_versions ORDER BY created_at DESC, version"))


def versions_starting_with(db: sqlite_utils.Database, prefix: str) -> list[str]:
    return [r["version"] for r in db.query(
        "SELECT version FROM model_versions WHERE substr(version, 1, ?) = ? ORDER BY version", [len(prefix), prefix])]


def active_model(db: sqlite_utils.Database) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM model_versions WHERE status = 'active' LIMIT 1"))
    return rows[0] if rows else None


def previously_active(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The versions that were active once and are not now, the most recently promoted first."""
    return list(db.query("SELECT * FROM model_versions WHERE status = 'retired' AND promoted_at IS NOT NULL "
                         "ORDER BY promoted_at DESC, version"))


def get_model(db: sqlite_utils.Database, version: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM model_versions WHERE version = ?", [version]))
    return rows[0] if rows else None


def promote(db: sqlite_utils.Database, version: str) -> None:
    """Make `version` the active model; the previous one is retired (kept for /meme N)."""
    with db.atomic():
        db.execute("UPDATE model_versions SET status = 'retired' WHERE status = 'active'")
        db.execute("UPDATE model_versions SET status = 'active', promoted_at = ? WHERE version = ?",
                   [utcnow(), version])


def set_path(db: sqlite_utils.Database, version: str, path: str) -> None:
    db.execute("UPDATE model_versions SET path = ? WHERE version = ?", [path, version])


def mark_pruned(db: sqlite_utils.Database, folder: str) -> None:
    """Rejected candidates whose checkpoint lived in `folder` (now deleted) become 'pruned'."""
    prefix = folder.rstrip("/\\") + "/"
    db.execute("UPDATE model_versions SET status = 'pruned' WHERE status = 'rejected' AND substr(path, 1, ?) = ?",
               [len(prefix), prefix])


def metrics_json(db: sqlite_utils.Database, version: str) -> str | None:
    """The version's metrics as stored (JSON text, "{}" when empty); None when it is not registered."""
    row = db.execute("SELECT metrics_json FROM model_versions WHERE version = ?", [version]).fetchone()
    return None if row is None else (row[0] or "{}")


def set_metrics_json(db: sqlite_utils.Database, version: str, text: str) -> None:
    """Replace the version's metrics (JSON text)."""
    with db.atomic():
        db.execute("UPDATE model_versions SET metrics_json = ? WHERE version = ?", [text, version])


def awaiting_ratings(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Candidates a retrain left waiting for ratings (retrain.promote_min_ratings), oldest first."""
    return list(db.query(
        "SELECT * FROM model_versions WHERE status = 'candidate'"
        " AND json_extract(metrics_json, '$.awaiting_ratings') IS NOT NULL ORDER BY created_at, version"))


def set_status(db: sqlite_utils.Database, version: str, status: str) -> None:
    db.execute("UPDATE model_versions SET status = ? WHERE version = ?", [status, version])
