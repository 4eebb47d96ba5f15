"""`buhurt corpus ...`: import, export (and the scraper and Telegram importer of corpus/)."""
from __future__ import annotations

from pathlib import Path

import click


@click.group("corpus")
def corpus_group() -> None:
    """Build the corpus the model learns from."""


@corpus_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--community", default=None, help="Label stored with the posts (default: the file name).")
@click.pass_obj
def import_cmd(app, file: Path, community: str | None) -> None:
    """Import a UTF-8 text file of posts separated by blank lines."""
    from corpus.importer import import_text_file

    db = app.open_db()
    added, present = import_text_file(db, file, community=community)
    click.echo(f"{file}: {added} posts added, {present} already present")


@corpus_group.command("export")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Training text to write (default: <data_dir>/train/corpus.txt).")
@click.option("--gap-lines", type=click.IntRange(min=1), default=None,
              help="Blank lines between posts (default: corpus.gap_lines).")
@click.option("--seed", type=int, default=None, help="Shuffle seed (default: corpus.shuffle_seed).")
@click.pass_obj
def export_cmd(app, output: Path | None, gap_lines: int | None, seed: int | None) -> None:
    """Write the training text: posts in a seeded shuffle, separated by a blank-line gap."""
    from corpus.export import export_training_text

    settings = app.settings
    output = output or app.default_paths().train_txt
    result = export_training_text(
        app.open_db(), output,
        gap_lines=gap_lines if gap_lines is not None else settings.corpus.gap_lines,
        seed=seed if seed is not None else settings.corpus.shuffle_seed,
    )
    click.echo(f"{result.path}: {result.posts} posts, {result.chars} characters "
               f"(manifest {result.manifest_path.name}, fingerprint {result.fingerprint})")


def register(group: click.Group) -> None:
    group.add_command(corpus_group)
