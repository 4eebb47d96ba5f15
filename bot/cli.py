"""The `buhurt` command: a click group; each subcommand parses, calls one library function, prints.

Errors the user can fix (config, corpus, model, database) print one line `error: ...` and exit 2.
Heavy modules (torch, telegram) are imported inside the commands, so `buhurt --help` stays light.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import threading
import traceback
from pathlib import Path

import click

from bot import cli_corpus, cli_model, cli_model_versions, cli_ops, cli_ranker, cli_run, cli_tune
from bot.cli_model import config_defaults
from bot.context import AppContext
from bot.errors import BotError
from bot.secrets import REDACTOR
from corpus.db import database_error
from corpus.errors import CorpusError
from jobs.errors import JobError
from model.errors import ModelError

def _user_errors() -> tuple[type[BaseException], ...]:
    from bot.config import ConfigError

    return (ConfigError, BotError, CorpusError, JobError, ModelError)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              envvar="BUHURT_CONFIG", show_envvar=True,
              help="TOML config file (default: ./config.toml if present, else built-in defaults).")
@click.version_option(package_name="buhurt-bot")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Buhurt bot: learns the buhurt genre from a community's posts and publishes new ones.

    Set BUHURT_DEBUG=1 to see full tracebacks instead of one-line errors."""
    if config_path is None and Path("config.toml").is_file():
        config_path = Path("config.toml")
    ctx.obj = AppContext(config_path=config_path)
    _LAST_APP[:] = [ctx.obj]
    ctx.default_map = ConfigDefaults(ctx.obj)


_LAST_APP: list[AppContext] = []  # the command's context, for main's one line on a database error


class ConfigDefaults(dict):
    """click's default_map: the options' defaults from the config file (bot/cli_model.py
    `config_defaults`), read when a command that has such defaults asks (click asks with .get), so
    other commands and `buhurt --help` read nothing."""

    COMMANDS = ("preprocess", "train", "sample", "lexicon", "eval")

    def __init__(self, app: AppContext) -> None:
        super().__init__()
        self.app = app

    def get(self, command, default=None):
        if command not in self.COMMANDS:
            return default
        if not self:
            self.update(config_defaults(self.app))
        return super().get(command, default)


def _register() -> None:
    for module in (cli_corpus, cli_model, cli_model_versions, cli_ops, cli_run, cli_tune, cli_ranker):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the group, turning known errors into one line and exit code 2.

    Nothing leaves the process unredacted: an unexpected error prints its traceback with every
    known secret (and anything shaped like a token) replaced, and exits 1."""
    errors = _user_errors()
    _redact_uncaught()
    try:
        code = cli.main(args=argv, prog_name="buhurt", standalone_mode=False)
        if isinstance(code, int) and code:  # ctx.exit(N) inside a command returns N here
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except errors as exc:
        if debugging():
            _print_traceback(exc)
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except sqlite3.Error as exc:  # the database failed after it opened: read-only, full, damaged pages
        if debugging():
            _print_traceback(exc)
        click.echo(f"error: {_one_line(_database_error(exc))}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - a bug: its traceback, redacted, and exit 1
        _print_traceback(exc)
        click.echo(f"error: unexpected {type(exc).__name__}: {_one_line(exc)}", err=True)
        sys.exit(1)


def _database_error(exc: sqlite3.Error) -> Exception:
    """sqlite3's error as one line naming the database file (when the settings were read) and the cure."""
    app = _LAST_APP[0] if _LAST_APP else None
    settings = app.__dict__.get("settings") if app is not None else None
    path = settings.database if settings is not None else "the database"
    busy = settings.paths.busy_timeout_seconds if settings is not None else None
    return database_error(path, exc, busy)


def _print_traceback(exc: BaseException) -> None:
    sys.stderr.write(REDACTOR.redact("".join(traceback.format_exception(exc))))


def debugging() -> bool:
    """BUHURT_DEBUG set to anything but "", 0, false, no or off: full tracebacks."""
    return os.environ.get("BUHURT_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def _redact_uncaught() -> None:
    """Uncaught exceptions of the main thread and of worker threads print redacted tracebacks."""
    def hook(exc_type, exc, tb):
        if exc is not None:
            _print_traceback(exc)

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)


def _one_line(exc: BaseException) -> str:
    return REDACTOR.redact(" ".join(str(exc).split()))
