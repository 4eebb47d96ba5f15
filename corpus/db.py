"""Open the project's SQLite database: WAL mode, versioned migrations, clear errors.

Beside the database a marker file (`<database>.initialised`) remembers that this data folder held a
database: a database file that is later missing, zero-length or without tables is then refused in
one line (`emptied_error`) instead of being created afresh (which would bring the sample corpus and
the bundled model back and restart meme numbering)."""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from common.files import SQLITE_SIGNATURE, folder_problem
from corpus.errors import CorpusError
from corpus.migrations import MIGRATIONS
from corpus.store.clock import utcnow


def open_db(path: str | Path, *, migrate: bool = True, busy_timeout: float = 10.0) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the latest schema.

    Each migration runs in its own transaction together with its record, so a failure leaves the
    database at the previous version, never half-migrated. Connections belong to the thread that
    opened them: worker threads call open_db themselves. `busy_timeout`: seconds a write waits
    for another process's lock before "database is locked".
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a SQLite database file")
    check_not_emptied(path)
    check_no_stale_wal(path)
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:   # a file in the way, a folder the bot's user may not create in
            raise CorpusError(f"{path}: cannot create its folder {path.parent} ({folder_problem(path.parent, exc)}):"
                              " check paths.data_dir and paths.database") from None
    try:
        db = sqlite_utils.Database(path)
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        if marker_path(path).exists() and not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            db.close()
            raise emptied_error(path, "holds no tables")
        _check_not_newer(db, path)
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable at checkpoints, no fsync per commit
        if migrate:
            MIGRATIONS.apply(db)
            _write_marker(path)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise locked_error(path, busy_timeout) from None
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc
    return db


def _check_not_newer(db: sqlite_utils.Database, path: Path) -> None:
    """CorpusError, before anything is written, when the database records migrations this code does
    not know: a newer release wrote it (its schema may mean other things), and running on it could
    damage it; the migration table is read only."""
    known = {m.name for m in MIGRATIONS._migrations}
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
    if unknown:
        db.close()
        raise CorpusError(f"{path}: written by a newer version of the bot (schema migration {unknown[0]!r} is"
                          f" unknown to this one, which knows up to {MIGRATIONS._migrations[-1].name!r}): upgrade"
                          " the bot, or restore a backup made by this version (docs/operating.md, Backups)")


def marker_path(path: str | Path) -> Path:
    """The file beside the database that says this data folder held a database."""
    path = Path(path)
    return path.with_name(path.name + ".initialised")


def _write_marker(path: Path) -> None:
    marker = marker_path(path)
    if marker.exists():
        return
    try:
        marker.write_text(f"{utcnow()} {path.name} was created and migrated here; if it goes missing or"
                          " empty, the bot refuses to start afresh (restore a backup)\n", encoding="utf-8")
    except OSError:  # a read-only folder: its database cannot be written either, which says so itself
        pass


def check_not_emptied(path: str | Path) -> None:
    """CorpusError when the marker says a database existed at `path` but the file is now missing
    or zero-length (open_db also refuses one without tables)."""
    path = Path(path)
    if not marker_path(path).exists():
        return
    if not path.exists():
        raise emptied_error(path, "is missing")
    if path.is_file() and path.stat().st_size == 0:
        raise emptied_error(path, "is empty (0 bytes)")


def check_no_stale_wal(path: str | Path) -> None:
    """CorpusError when a non-empty `<database>-wal` lies beside a database file that is not in WAL
    mode: a copy (a backup, written in rollback mode) was put over a database whose WAL a killed
    process left. SQLite would replay that WAL's pages, which belong to the replaced database, into
    the copy and damage it; the files are left as they are."""
    path = Path(path)
    wal = path.with_name(path.name + "-wal")
    try:
        if not wal.is_file() or wal.stat().st_size == 0 or not path.is_file():
            return
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return   # opening the database reports what is wrong with it
    if len(header) == 20 and header.startswith(SQLITE_SIGNATURE) and header[18:20] == b"\x01\x01":
        raise CorpusError(f"{wal}: left beside {path.name}, which is not in WAL mode (a backup copied over a"
                          f" database that was not closed?): SQLite would replay it into the copy; delete"
                          f" {wal.name} and {path.name}-shm (they belong to the replaced database) and start again")


def emptied_error(path: str | Path, what: str) -> CorpusError:
    return CorpusError(f"{path} {what}, but a database existed here ({marker_path(path).name} beside it): not"
                       " starting afresh; restore the newest backup (docs/operating.md, Backups: stop the bot,"
                       " delete the -wal and -shm files beside it, copy a file of backup.folder over"
                       " paths.database), or delete the marker to start empty")


def database_error(path: str | Path, exc: sqlite3.Error, busy_timeout: float | None = None) -> CorpusError:
    """A database error met after the database opened, as one line naming the file and what to do."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if ("locked" in lowered or "busy" in lowered) and busy_timeout is not None:
        return locked_error(path, busy_timeout)
    if "readonly" in lowered or "read-only" in lowered:
        hint = "the file or its folder is read-only: give the bot's user write access to both"
    elif "full" in lowered:
        hint = "the disk is full: free space there (`buhurt doctor` shows how much is free)"
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        hint = ("its pages are damaged: stop the bot and restore the newest backup (docs/operating.md,"
                " Backups)")
    elif "locked" in lowered or "busy" in lowered:
        hint = "another process holds it: stop the other writer (fuser shows it) and try again"
    else:
        hint = "`buhurt doctor` checks it"
    return CorpusError(f"{path}: the database failed: {text} ({hint})")


def is_locked(exc: BaseException) -> bool:
    """An error that means another connection holds the database ("database is locked", busy)."""
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def is_full(exc: BaseException) -> bool:
    """An error that means the disk (or the database's size limit) has no room for the write."""
    return isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc)


def set_busy_timeout(db: sqlite_utils.Database, seconds: float) -> None:
    """How long SQLite itself waits on this connection for another's lock."""
    db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def locked_error(path: str | Path, busy_timeout: float) -> CorpusError:
    return CorpusError(f"{path}: the database is locked by another process (waited {busy_timeout:g} s,"
                       " paths.busy_timeout_seconds); stop the other writer (fuser shows it) and start again")


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """`db.atomic()` for a transaction that reads before it writes, taking the write lock at its
    start (BEGIN IMMEDIATE) and so waiting for another process's lock up to the busy timeout. In a
    deferred transaction (atomic's BEGIN) that has read, SQLite refuses the write lock at once while
    another process writes, without waiting (a reader waiting to write could deadlock). Inside a
    transaction already open: a savepoint, as atomic()."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    try:
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


def check_writable(db: sqlite_utils.Database, path: str | Path, busy_timeout: float) -> None:
    """Take and release the write lock once (at start-up): CorpusError when another process holds
    it longer than the busy timeout, before any work starts half-way."""
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise locked_error(path, busy_timeout) from None
        raise CorpusError(f"{path}: not a usable SQLite database ({exc})") from exc


def database_file(db: sqlite_utils.Database) -> Path:
    """The file behind an open database (its main schema)."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main":
            return Path(row[2])
    raise CorpusError("the database has no main file")


def connect_read_only(path: str | Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection to the database at `path` (SQLite's URI form, the path quoted: a '#',
    '?' or '%' in a folder's name would otherwise end or change the file name SQLite opens)."""
    return sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=timeout)


def quick_check(path: str | Path, *, busy_timeout: float = 10.0) -> str:
    """SQLite's `PRAGMA quick_check` on its own read-only connection (any thread may call it):
    "" when the pages are sound, else the first problem found. A lock held by another process is
    no finding ("" too): readers of a WAL database are not blocked by a writer anyway."""
    try:
        connection = connect_read_only(path, busy_timeout)
        try:
            rows = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
        finally:
            connection.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return ""
        return " ".join(str(exc).split())
    except sqlite3.DatabaseError as exc:
        return " ".join(str(exc).split())
    return "" if rows == ["ok"] else "; ".join(" ".join(str(r).split()) for r in rows)


def schema_version(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations applied to `db`, oldest first."""
    return [m.name for m in MIGRATIONS.applied(db)]
