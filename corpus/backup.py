"""Consistent copies of the live (WAL) database through SQLite's online backup API, written to a
temporary file and renamed into place, so a half-written backup never carries the final name; and
the nightly rotation that keeps the newest `keep` copies."""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

from common.files import SQLITE_SIGNATURE, atomic_path, starts_with
from corpus.db import check_not_emptied, connect_read_only, emptied_error, marker_path
from corpus.errors import CorpusError
from corpus.outputs import remove_leftover_temps

PREFIX, SUFFIX = "buhurt-", ".sqlite3"
# a dated copy's name, nothing else: a copy named by hand (`buhurt backup -o backups/buhurt-before-
# upgrade.sqlite3`) sorted first by name, took a slot for good and, with keep = 1, got every new one deleted
DATED = re.compile(rf"{re.escape(PREFIX)}\d{{8}}-\d{{6}}{re.escape(SUFFIX)}")


def _is_sqlite(path: Path) -> bool:
    return starts_with(path, SQLITE_SIGNATURE)


def backup_database(source: str | Path, output: str | Path, *, busy_timeout: float = 10.0) -> Path:
    """Copy the database at `source` to `output` (atomic: temp file + rename); returns `output`.
    The copy is a snapshot taken while the bot may keep writing; it is checked before the rename.
    Temp files that killed backups left in the folder go first."""
    source, output = Path(source), Path(output)
    check_not_emptied(source)   # an emptied database must never rotate the good copies away
    if not source.is_file():
        raise CorpusError(f"{source}: no database to back up")
    if output.is_dir():
        raise CorpusError(f"{output}: is a directory, expected the backup file's name")
    if output.resolve() == source.resolve():
        raise CorpusError(f"{output}: is the live database itself")
    if output.resolve() in {source.resolve().with_name(source.name + s) for s in ("-wal", "-shm", "-journal")}:
        raise CorpusError(f"{output}: is the live database's {output.name.rpartition('-')[2]} file")
    if output.exists() and not _is_sqlite(output):   # config.toml, a training text...: never overwritten
        raise CorpusError(f"{output}: exists and is not a database (a backup replaces only an earlier backup): "
                          "choose another name")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CorpusError(f"{output.parent}: is a file, not a folder for the backup") from None
    except OSError as exc:
        raise CorpusError(f"{output.parent}: cannot create the backup folder ({exc.strerror})") from None
    remove_leftover_temps([output.parent])   # half-written copies of a backup that was killed
    try:
        with atomic_path(output) as temp:
            _snapshot(source, temp, busy_timeout)
    except sqlite3.Error as exc:
        raise CorpusError(f"{source} -> {output}: backup failed ({exc})") from None
    except OSError as exc:
        raise CorpusError(f"{output}: cannot write the backup ({exc.strerror or exc})") from None
    return output


def _snapshot(source: Path, temp: Path, busy_timeout: float) -> None:
    """A consistent copy of the database at `source` into the new file `temp`, checked."""
    src = connect_read_only(source, busy_timeout)
    try:
        dst = sqlite3.connect(temp)
        try:
            src.backup(dst)  # one step: a consistent snapshot even while others write
            if marker_path(source).exists() and not dst.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise emptied_error(source, "holds no tables")
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if check != "ok":
        raise CorpusError(f"{source}: the copy failed SQLite's quick_check ({check}); nothing written")


def nightly_backup(source: str | Path, folder: str | Path, keep: int, *, busy_timeout: float = 10.0,
                   now: dt.datetime | None = None) -> Path:
    """A dated copy in `folder` (buhurt-YYYYmmdd-HHMMSS.sqlite3); older copies beyond `keep` go, and
    so do the temp files of backups that were killed mid-write."""
    now = now or dt.datetime.now(dt.timezone.utc)
    folder = Path(folder)
    path = backup_database(source, folder / f"{PREFIX}{now:%Y%m%d-%H%M%S}{SUFFIX}", busy_timeout=busy_timeout)
    for old in backups_in(folder)[keep:]:
        if old != path:   # a copy dated later (a clock set back) never costs the one just written
            old.unlink(missing_ok=True)
    return path


def backups_in(folder: str | Path) -> list[Path]:
    """The dated copies in `folder` (nightly and `buhurt backup`'s), newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob(f"{PREFIX}*{SUFFIX}") if DATED.fullmatch(p.name) and p.is_file()),
                  key=lambda p: p.name, reverse=True)
