"""`buhurt corpus ...`: import, import-telegram, scrape, clean, export, stats.

Each command parses, calls the library (corpus/), prints. Importing commands then clean the posts
they added with the [clean] and [filter] settings (corpus/cleaning.py: signatures are learned from
the whole community, duplicates checked against the kept corpus); `corpus clean` re-cleans all."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from corpus.cleaning import clean_corpus, clean_if_needed
from corpus.errors import CorpusError
from corpus.export import MAX_GAP_LINES, export_training_text
from corpus.importer import check_label, drop_sample_after_import, import_text_file, sample_removed_line
from corpus.stats import corpus_stats, write_histogram
from corpus.stoplist import StopList
from corpus.telegram_export import import_telegram_export


@click.group("corpus")
def corpus_group() -> None:
    """Build the corpus the model learns from."""


def _cleaning(app):
    """(CleanOptions, StopList) from the settings."""
    settings = app.settings
    return settings.clean, StopList(settings.filter.words, settings.filter.patterns)


def _clean_after_import(app, db) -> None:
    options, stoplist = _cleaning(app)
    report = clean_corpus(db, options, stoplist, only_new=True)
    click.echo(f"cleaned: {report.kept} of {report.total} posts kept for training "
               "(buhurt corpus clean --report for the rules)")


@contextlib.contextmanager
def _replacing_the_sample(db) -> Iterator[None]:
    """Around an import of the operator's own posts: the bundled sample's posts are removed
    afterwards, in one line, once the corpus holds others (corpus/importer.py)."""
    try:
        yield
    finally:   # also after a scrape stopped part-way: what it stored is the operator's
        removed = drop_sample_after_import(db)
        if removed:
            click.echo(sample_removed_line(removed))


@corpus_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--community", default=None, help="Label stored with the posts (default: the file name).")
@click.pass_obj
def import_cmd(app, file: Path, community: str | None) -> None:
    """Import a UTF-8 text file of posts separated by blank lines."""
    check_label(file, community)
    db = app.open_db()
    with _replacing_the_sample(db):
        added, present = import_text_file(db, file, community=community,
                                          max_mb=app.settings.corpus.max_import_mb)
        click.echo(f"{file}: {added} posts added, {present} already present")
    _clean_after_import(app, db)


@corpus_group.command("import-telegram")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--community", default=None, help="Label stored with the posts (default: the channel name).")
@click.option("--allow-chat", is_flag=True,
              help="Import a group or personal chat's export too (by default only channels are imported).")
@click.pass_obj
def import_telegram_cmd(app, path: Path, community: str | None, allow_chat: bool) -> None:
    """Import a channel exported by Telegram Desktop: result.json, messages*.html, or the export folder."""
    db = app.open_db()
    with _replacing_the_sample(db):
        result = import_telegram_export(db, path, community=community, allow_chat=allow_chat,
                                        max_mb=app.settings.corpus.max_import_mb)
        click.echo(f"{path}: {result.messages} messages of {result.community!r} in {result.files} file(s): "
                   f"{result.added} posts added, {result.messages - result.added - result.kept_out} already present"
                   + (f" ({result.edited} edited upstream: their new text is cleaned again)" if result.edited else ""))
        if result.skipped:
            click.echo(f"{path}: {result.skipped} malformed message(s) skipped, the first: {result.skipped_first}")
        if result.kept_out:
            click.echo(f"{path}: {result.kept_out} message(s) not stored: {result.community!r} holds posts of the"
                       f" channel {result.kept_out_by} with the same message ids (they start at 1 in every"
                       " channel); import this channel under its own --community")
    _clean_after_import(app, db)


@corpus_group.command("scrape")
@click.option("--group", "groups", multiple=True,
              help="Community short name or numeric id (repeatable; default: vk.groups).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def scrape_cmd(app, groups: tuple[str, ...], no_progress: bool) -> None:
    """Pull the wall posts of VK communities (incremental; resumes where an interrupted run stopped)."""
    from corpus.vk import scrape

    vk = app.settings.vk
    db = app.open_db()
    with _replacing_the_sample(db):
        report = scrape(
            db, list(groups) or list(vk.groups), token=vk.token.reveal(), options=vk.options(),
            progress=not no_progress,
        )
        for line in report.lines():
            click.echo(line)
    _clean_after_import(app, db)
    if report.failed:   # the others were scraped and cleaned; the exit status says not every one was
        raise CorpusError(f"{len(report.failed)} of {len(report.failed) + len(report.groups)} VK communities"
                          f" not scraped: {'; '.join(report.failed)}")


@corpus_group.command("clean")
@click.option("--report", "show_report", is_flag=True, help="Print how many posts each rule excluded.")
@click.pass_obj
def clean_cmd(app, show_report: bool) -> None:
    """Re-clean every post with the [clean] and [filter] rules."""
    options, stoplist = _cleaning(app)
    report = clean_corpus(app.open_db(), options, stoplist)
    if show_report:
        for line in report.lines():
            click.echo(line)
    else:
        click.echo(f"{report.kept} of {report.total} posts kept for training")


@corpus_group.command("export")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Training text to write (default: <data_dir>/train/corpus.txt).")
@click.option("--gap-lines", type=click.IntRange(min=1, max=MAX_GAP_LINES), default=None,
              help="Blank lines between posts (default: corpus.gap_lines).")
@click.option("--seed", type=int, default=None, help="Shuffle seed (default: corpus.shuffle_seed).")
@click.pass_obj
def export_cmd(app, output: Path | None, gap_lines: int | None, seed: int | None) -> None:
    """Write the training text: posts in a seeded shuffle, separated by a blank-line gap."""
    settings = app.settings
    options, stoplist = _cleaning(app)
    if output is not None and output.is_file() and not output.with_name(output.name + ".manifest.json").exists():
        # config.toml, the database, someone's notes: only an earlier export (its manifest beside it) is replaced
        raise CorpusError(f"{output}: exists and is not a training text this command wrote (no "
                          f"{output.name}.manifest.json beside it): choose another path")
    output = output or app.default_paths().train_txt
    app.refuse_while_training(output)   # never under a retrain that trains from it
    result = export_training_text(
        app.open_db(), output,
        gap_lines=gap_lines if gap_lines is not None else settings.corpus.gap_lines,
        seed=seed if seed is not None else settings.corpus.shuffle_seed,
        weighting=settings.popularity, clean=options, stoplist=stoplist,
    )
    click.echo(f"{result.path}: {result.posts} posts, {result.chars} characters "
               f"(manifest {result.manifest_path.name}, fingerprint {result.fingerprint})")


@corpus_group.command("stats")
@click.option("--png", type=click.Path(path_type=Path), default=None,
              help="Histogram image to write (default: <data_dir>/stats/corpus.png).")
@click.pass_obj
def stats_cmd(app, png: Path | None) -> None:
    """Print posts, characters, vocabulary, length and line-count distributions; write a histogram."""
    db = app.open_db()
    clean_if_needed(db, *_cleaning(app))
    stats = corpus_stats(db)
    for line in stats.lines():
        click.echo(line)
    path = write_histogram(stats, png or app.settings.data_dir / "stats" / "corpus.png")
    click.echo(f"histogram: {path}")


def register(group: click.Group) -> None:
    group.add_command(corpus_group)
