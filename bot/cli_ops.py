"""Operator commands: `buhurt doctor` (one line per check, exit 1 on any failure) and
`buhurt backup` (a consistent copy of the live database)."""
from __future__ import annotations

from pathlib import Path

import click

from corpus.backup import backup_database, nightly_backup


@click.command("doctor")
@click.option("--quick", is_flag=True,
              help="Only the database and the running service's heartbeat (no network, no torch):"
                   " the Docker HEALTHCHECK.")
@click.pass_context
def doctor_cmd(ctx: click.Context, quick: bool) -> None:
    """Check the token, the bot's rights in each chat, VK, the database, the model, free disk."""
    from bot.doctor import run_checks

    checks = run_checks(ctx.obj.settings, quick=quick)
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    if failed:
        ctx.exit(1)


@click.command("backup")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="The copy to write (default: a dated file in backup.folder, keeping backup.keep copies).")
@click.pass_obj
def backup_cmd(app, output: Path | None) -> None:
    """Write a consistent copy of the database while the bot runs (SQLite's backup API, atomic)."""
    settings = app.settings
    busy = settings.paths.busy_timeout_seconds
    if output is None:
        path = nightly_backup(settings.database, settings.backup_dir, settings.backup.keep, busy_timeout=busy)
    else:
        path = backup_database(settings.database, output, busy_timeout=busy)
    click.echo(f"backed up {settings.database} to {path} ({path.stat().st_size / 2**20:.1f} MiB)")


def register(group: click.Group) -> None:
    group.add_command(doctor_cmd)
    group.add_command(backup_cmd)
