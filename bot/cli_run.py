"""`buhurt run`: the long-running service (or one cycle with --once)."""
from __future__ import annotations

import math
from dataclasses import replace

import click

from bot.cli_tune import run_tune
from jobs.retrain import retrain
from jobs.service import ServicePlan


@click.command("run")
@click.option("--once", is_flag=True, help="Run one full cycle (pool, moderation, publish, reactions) and exit.")
@click.pass_obj
def run_cmd(app, once: bool) -> None:
    """Run the bot: keep a pool of drafts and publish on the schedule."""
    from bot.serve import run_service

    run_service(app.settings, once=once)


@click.command("retrain")
@click.option("--from-scratch", is_flag=True, help="Train a new model instead of continuing from the active one.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True, max=7 * 24 * 60), default=None,
              help="Training budget in minutes (default: train.max_minutes, else 10).")
@click.option("--progress/--no-progress", default=True, help="Show the training and tuning progress bars.")
@click.option("--tune/--no-tune", default=True, show_default=True,
              help="Tune the promoted model's temperature (`buhurt tune`), as the service does.")
@click.pass_obj
def retrain_cmd(app, from_scratch: bool, minutes: float | None, progress: bool, tune: bool) -> None:
    """Run the nightly retrain now: export, train (warm start from the active model unless the
    architecture changed or --from-scratch), score both models on the same held-out posts, promote
    or keep; a promoted model is tuned. Prints one line: promoted or kept, with both models'
    bits/char and known-word share (the tuning table goes to stderr)."""
    from bot.app import retrain_plan

    if minutes is not None and not math.isfinite(minutes):   # click's range lets nan through
        raise click.BadParameter(f"{minutes} is not a number of minutes", param_hint="'--minutes'")

    plan = retrain_plan(app.settings, app.default_paths())
    plan = replace(plan, training=replace(plan.training, progress=progress))   # by hand: the bar, unless asked
    db = app.open_db()
    try:
        result = retrain(db, plan, from_scratch=from_scratch, minutes=minutes, manual=True)
        if result.promoted and tune and result.checkpoint is not None:
            run_tune(app, db, result.checkpoint, k=ServicePlan.tune_posts, progress=progress,
                     echo=lambda line: click.echo(line, err=True))
    finally:
        db.close()
    click.echo(result.reason)


def register(group: click.Group) -> None:
    group.add_command(run_cmd)
    group.add_command(retrain_cmd)
