"""`buhurt run`: the long-running service (or one cycle with --once)."""
from __future__ import annotations

import click


@click.command("run")
@click.option("--once", is_flag=True, help="Run one full cycle (pool, moderation, publish, reactions) and exit.")
@click.pass_obj
def run_cmd(app, once: bool) -> None:
    """Run the bot: keep a pool of drafts and publish on the schedule."""
    from bot.app import run_service

    run_service(app.settings, once=once)


def register(group: click.Group) -> None:
    group.add_command(run_cmd)
