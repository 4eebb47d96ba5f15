"""`buhurt tune`: choose the sampling temperature from data (jobs/tune.py) and store it with the
model version, where `sample.temperature = "auto"` finds it."""
from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from jobs.generator import GeneratorHolder
from jobs.model_registry import version_row
from jobs.tune import DEFAULT_K, TEMPERATURES, store_tuned, tune

PathArg = click.Path(path_type=Path, dir_okay=False)


def run_tune(app, db, checkpoint: Path, *, k: int, temperatures=None, echo=click.echo, progress: bool = True):
    """Tune `checkpoint` through the product's decoding and screen; store the result when its
    version is registered. A bar on stderr counts the posts made (`progress`). Returns the TuneResult."""
    from bot.app import stoplist

    holder = GeneratorHolder(checkpoint)
    grid = temperatures or TEMPERATURES
    with tqdm(total=k * len(grid), unit="post", desc=f"tune {holder.version}", disable=not progress,
              dynamic_ncols=True) as bar:
        result = tune(db, holder, stoplist(app.settings), options=app.settings.sample, k=k,
                      temperatures=grid, screening=app.settings.screen, progress=bar.update)
    for line in result.lines():
        echo(line)
    if version_row(db, holder.version) is not None:
        store_tuned(db, holder.version, result)
        echo(f"stored with model {holder.version}")
    else:
        echo(f"not stored: model {holder.version} is not installed (buhurt models install {checkpoint})")
    return result


def _temperatures(value: str | None):
    if value is None:
        return None
    try:
        ts = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        ts = ()
    if not ts or any(not t > 0 for t in ts):
        raise click.BadParameter(f"{value!r}: expected numbers > 0 separated by commas", param_hint="--temperatures")
    return ts


@click.command("tune")
@click.option("--checkpoint", type=PathArg, default=None, help="Model to tune (default: the active model).")
@click.option("--posts", "k", type=click.IntRange(min=1), default=DEFAULT_K, show_default=True,
              help="Posts generated per temperature (seeds 1..K).")
@click.option("--temperatures", default=None, help="Comma-separated grid (default 0.5,0.6,...,1.2).")
@click.option("--progress/--no-progress", default=True, help="Show a bar on stderr (posts made of all).")
@click.pass_obj
def tune_cmd(app, checkpoint, k, temperatures, progress) -> None:
    """Pick the temperature maximising (share passing the screen) x (distinct corpus word pairs):
    prints the table and stores the choice with the model version."""
    grid = _temperatures(temperatures)
    db = app.open_db()
    try:
        run_tune(app, db, checkpoint or app.active_checkpoint(), k=k, temperatures=grid, progress=progress)
    finally:
        db.close()


def register(group: click.Group) -> None:
    group.add_command(tune_cmd)
