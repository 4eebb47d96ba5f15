"""`buhurt models`: the model versions the service knows, installing a checkpoint trained elsewhere
(the GPU box), and switching the active model (a rollback is activating a retired version).

A running `buhurt run` follows the database: at its next pool run it loads the newly active model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from bot.cli_tune import run_tune
from bot.cli_model import left_out
from jobs.model_registry import (
    activate_version, all_versions, checkpoint_for_version, install_checkpoint, installed_row, relocate_moved,
    version_matching,
)
from jobs.model_registry import activate as activate_installed
from jobs.rating import shares_by_version
from jobs.tune import DEFAULT_K
from model.errors import ModelError

PathArg = click.Path(path_type=Path, dir_okay=False)


@click.group("models")
def models_group() -> None:
    """Model versions: list, install a checkpoint, activate one."""


@models_group.command("list")
@click.pass_obj
def list_cmd(app) -> None:
    """Every known version, newest first: status, held-out bits/char, the share of its drafts passing the
    screen when it was compared (a retrain, a first model), the blind ratings of its drafts (readable,
    would publish: share [95% interval] (ratings)), when, where; then the real posts' ratings, the
    calibration."""
    db = app.open_db()
    try:
        rows = all_versions(db)
        shares = shares_by_version(db)
    finally:
        db.close()
    if not rows:
        click.echo("no model versions yet: `buhurt run` installs the bundled model or trains one")
        return
    click.echo(f"{'version':<12}  {'status':<9}  {'val bits/char':>13}  {'drafts pass':>11}  {'readable':>18}  "
               f"{'would publish':>18}  {'created (UTC)':<19}  origin / path")
    for r in rows:
        metrics = json.loads(r["metrics_json"] or "{}")
        bpc = f"{r['val_bpc']:.4f}" if r["val_bpc"] is not None else "-"
        share = metrics.get("draft_pass_share")
        known = f"{share:.0%}" if isinstance(share, (int, float)) else "-"
        origin = metrics.get("origin", "")
        if r["status"] == "candidate" and metrics.get("awaiting_ratings"):
            origin = f"waits for {metrics['awaiting_ratings']} ratings" + (f", {origin}" if origin else "")
        where = f"{origin}: {r['path']}" if origin else r["path"]
        mark = " *" if r["status"] == "active" else ""
        rated = shares.get(r["version"])
        readable, publish = (str(rated.readable), str(rated.would_publish)) if rated else ("- (0)", "- (0)")
        click.echo(f"{r['version']:<12}  {r['status']:<9}  {bpc:>13}  {known:>11}  {readable:>18}  {publish:>18}  "
                   f"{r['created_at'][:19]:<19}  {where}{mark}")
    real = shares.get(None)
    if real is None:   # nobody has rated a real post yet
        return
    readable, publish = str(real.readable), str(real.would_publish)
    click.echo(f"{'real posts':<12}  {'':<9}  {'':>13}  {'':>11}  {readable:>18}  {publish:>18}  "
               "held-out corpus posts rated blind beside the drafts (/rate)")


@models_group.command("install")
@click.argument("checkpoint", type=PathArg)
@click.option("--activate", is_flag=True, help="Make it the active model at once.")
@click.option("--text", type=PathArg, default=None,
              help="Record its bits/char on this text (default: the validation text is not scored).")
@click.option("--tune/--no-tune", default=True, show_default=True,
              help="Run `buhurt tune` on it (the temperature sample.temperature = \"auto\" uses).")
@click.option("--tune-posts", type=click.IntRange(min=1), default=DEFAULT_K, show_default=True,
              help="Posts per temperature for the tune.")
@click.pass_obj
def install_cmd(app, checkpoint: Path, activate: bool, text: Path | None, tune: bool, tune_posts: int) -> None:
    """Copy a checkpoint (e.g. trained on the GPU box) into <data_dir>/models and register it."""
    from model.sample import Generator

    # a checkpoint that cannot generate (damaged, an absurd shape, NaN or Inf weights) is refused
    # before anything is written
    Generator.load(checkpoint)
    val, scored = None, {}
    if text is not None:
        from model.evaluate import evaluate_text

        scored = evaluate_text(checkpoint, text)
        val = scored["bits_per_char"]
        if not math.isfinite(val):
            raise ModelError(f"checkpoint {str(checkpoint)!r} scores {val} bits/char on {text}, not a finite "
                             f"number: not installed")
    db = app.open_db()
    try:
        version = install_checkpoint(db, checkpoint, app.default_paths().models_dir, val_bpc=val,
                                     metrics={"origin": "installed", "source": str(checkpoint)})
        if activate:
            activate_installed(db, version)
        row = installed_row(db, version)
        status = row["status"]
        if tune:
            run_tune(app, db, Path(row["path"]), k=tune_posts)
    finally:
        db.close()
    click.echo(f"installed model {version} ({status})" + (f", {val:.4f} bits/char on {text}" if text else "")
               + left_out(scored))


@models_group.command("activate")
@click.argument("version")
@click.pass_obj
def activate_cmd(app, version: str) -> None:
    """Make VERSION (or a unique prefix of it) the active model; the previous one is retired."""
    from model.sample import Generator

    db = app.open_db()
    try:
        relocate_moved(db, app.default_paths().models_dir)
        full = version_matching(db, version)
        Generator.load(checkpoint_for_version(db, full))   # never activate a file the service cannot load
        path = activate_version(db, full, app.default_paths().models_dir)
    finally:
        db.close()
    click.echo(f"active model: {full} ({path}); a running `buhurt run` switches at its next pool run")


def register(group: click.Group) -> None:
    group.add_command(models_group)
