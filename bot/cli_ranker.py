"""`buhurt ranker train|report`: the draft ranker learned from the moderators' decisions (jobs/ranker.py)."""
from __future__ import annotations

import click

from bot.errors import BotError
from jobs.ranker import count_labels, report, stored, train


@click.group("ranker")
def ranker_group() -> None:
    """The draft ranker learned from the moderators' decisions and the reactions."""


@ranker_group.command("train")
@click.pass_obj
def train_cmd(app) -> None:
    """Fit it on every decision now, check it on newer decisions (trained on older ones), store it,
    and print the report; the pool ranks with it only when it beats the hand-set score."""
    db = app.open_db()
    try:
        try:
            fitted = train(db, app.settings.ranker)
        except ValueError as exc:
            raise BotError(f"ranker not trained: {exc}") from None
    finally:
        db.close()
    for line in report(fitted):
        click.echo(line)


@ranker_group.command("report")
@click.pass_obj
def report_cmd(app) -> None:
    """Both AUCs on the newer decisions, whether the pool uses it, and the features' weights."""
    db = app.open_db()
    try:
        fitted, have = stored(db), count_labels(db)
    finally:
        db.close()
    if fitted is None:
        click.echo(f"no ranker yet: {have} decisions so far; the nightly job trains it from"
                   f" ranker.min_labels = {app.settings.ranker.min_labels} (or: buhurt ranker train)")
        return
    for line in report(fitted):
        click.echo(line)
    click.echo(f"decisions now: {have}")


def register(cli: click.Group) -> None:
    cli.add_command(ranker_group)
