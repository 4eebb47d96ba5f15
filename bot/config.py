"""The only reader of config.toml: TOML -> `Settings`, one frozen dataclass per table.

A table of a lower layer's concern IS that layer's dataclass (`sample: SampleOptions`, `train:
TrainOptions`, `retrain: NightlyOptions`, ...); the bot's own tables are in bot/config_sections.py.
Every table has one check, `problems()`; `first_problem` raises the first as one line naming the
file, `table.key` and the value, like unknown keys, wrong types and renamed keys (RENAMED).
Tokens may come from BUHURT_TELEGRAM_TOKEN / BUHURT_VK_TOKEN / BUHURT_VK_COMMUNITY_TOKEN and are
wrapped in Secret. docs/config.md lists every key (`python -m bot.config_reference` writes it).
"""
from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config_sections import (
    BackupSettings, CorpusSettings, FilterSettings, LogSettings, PathsSettings, PublishSettings, StartupSettings,
    TelegramSettings, VkSettings,
)
from bot.secrets import REDACTOR, Secret
from common.files import SQLITE_SIGNATURE, starts_with
from corpus.popularity import PopularityWeighting
from corpus.rules import CleanOptions
from jobs.alerts import AlertOptions
from jobs.curation import GenerateOptions
from jobs.moderation import ModerationOptions
from jobs.pool import PoolOptions, ScreenOptions
from jobs.ranker import RankerOptions
from jobs.rating import RateOptions
from jobs.retrain import NightlyOptions
from jobs.scheduler import ScheduleOptions
from model.sample_options import SampleOptions
from model.train_config import ModelShape, TrainOptions

ENV_SECRETS = {("telegram", "token"): "BUHURT_TELEGRAM_TOKEN", ("vk", "token"): "BUHURT_VK_TOKEN",
               ("vk", "community_token"): "BUHURT_VK_COMMUNITY_TOKEN"}


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class Settings:
    paths: PathsSettings = field(default_factory=PathsSettings)
    startup: StartupSettings = field(default_factory=StartupSettings)
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    popularity: PopularityWeighting = field(default_factory=PopularityWeighting)
    clean: CleanOptions = field(default_factory=CleanOptions)
    filter: FilterSettings = field(default_factory=FilterSettings)
    model: ModelShape = field(default_factory=ModelShape)
    train: TrainOptions = field(default_factory=TrainOptions)
    retrain: NightlyOptions = field(default_factory=NightlyOptions)
    # the service samples at the active model's tuned temperature ("auto": `buhurt tune`)
    sample: SampleOptions = field(default_factory=lambda: SampleOptions(temperature="auto"))
    pool: PoolOptions = field(default_factory=PoolOptions)
    screen: ScreenOptions = field(default_factory=ScreenOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    vk: VkSettings = field(default_factory=VkSettings)
    log: LogSettings = field(default_factory=LogSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    moderation: ModerationOptions = field(default_factory=ModerationOptions)
    publish: PublishSettings = field(default_factory=PublishSettings)
    alerts: AlertOptions = field(default_factory=AlertOptions)
    rate: RateOptions = field(default_factory=RateOptions)
    ranker: RankerOptions = field(default_factory=RankerOptions)
    generate: GenerateOptions = field(default_factory=GenerateOptions)
    source: str = "<defaults>"
    # "table.key" secrets of the file that another value in the environment replaced (`overridden_lines`)
    overridden: tuple[str, ...] = ()

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)

    @property
    def database(self) -> Path:
        return Path(self.paths.database) if self.paths.database else self.data_dir / "buhurt.sqlite3"

    @property
    def backup_dir(self) -> Path:
        return Path(self.backup.folder) if self.backup.folder else self.data_dir / "backups"


DEFAULTS = Settings()
# {table: its dataclass}, in the order of Settings' fields
SECTIONS: dict[str, type] = {f.name: type(getattr(DEFAULTS, f.name)) for f in dataclasses.fields(Settings)
                             if f.name not in ("source", "overridden")}
# the keys that name a file or folder: a leading '~' is the home folder (`_expand_home`)
PATH_KEYS = (("paths", "data_dir"), ("paths", "database"), ("log", "file"), ("backup", "folder"))
# keys that moved to another table: {old "table.key": new "table.key"}
RENAMED = {"model.use_bundled": "startup.use_bundled_model", "corpus.popularity_weighting": "popularity.enabled",
           **{f"corpus.popularity_{k}": f"popularity.{k}" for k in ("top_fraction", "copies", "normalise")},
           **{f"train.{f.name}": f"retrain.{f.name}" for f in dataclasses.fields(NightlyOptions)}}


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or only defaults and the environment when None) into Settings."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        raw = _read_toml(Path(path))
    for table, value in raw.items():
        if table not in SECTIONS:
            raise ConfigError(f"{source}: unknown table [{table}] (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {table} must be a table ([{table}]), got {_show(value)}")
    sections, overridden = {}, []
    for table in SECTIONS:
        values = dict(raw.get(table, {}))
        for (t, key), var in ENV_SECRETS.items():
            if t == table and env.get(var):
                if isinstance(values.get(key), str) and values[key].strip() and values[key].strip() != env[var].strip():
                    overridden.append(f"{table}.{key}")
                values[key] = env[var]
        sections[table] = _build_section(source, table, getattr(DEFAULTS, table), values)
    _expand_home(source, sections)
    settings = Settings(**sections, source=source, overridden=tuple(overridden))
    _check_log_file(settings)
    _check_quorum(settings)
    for (table, key) in ENV_SECRETS:
        REDACTOR.add(getattr(getattr(settings, table), key).reveal())
    return settings


def overridden_lines(settings: Settings) -> list[str]:
    """One line per secret of the file that the environment replaced (never either value)."""
    variables = {f"{table}.{key}": var for (table, key), var in ENV_SECRETS.items()}
    return [f"{settings.source}: {key} is not used: {variables[key]} is set in the environment and wins"
            " (remove one of them)" for key in settings.overridden]


def _expand_home(source: str, sections: dict[str, Any]) -> None:
    """A leading '~' in a path key is the home folder, as in a shell: Path("~/buhurt") was a folder
    named '~' in the current one. '~user' of no such user is refused."""
    for table, key in PATH_KEYS:
        value = getattr(sections[table], key)
        if value.startswith("~"):
            home = os.path.expanduser(value)
            if home.startswith("~"):
                raise ConfigError(f"{source}: {table}.{key} must be a path whose '~' is a home folder (no such"
                                  f" user), got {_show(value)}")
            sections[table] = dataclasses.replace(sections[table], **{key: home})


def first_problem(source: str, table: str, section: Any) -> None:
    """Raise the first of `section.problems()` as one line: file, `table.key`, what it must be, the value."""
    for key, expected in section.problems().items():
        raise ConfigError(f"{source}: {table}.{key} must be {expected}, got {_show(getattr(section, key))}")


def _check_quorum(settings: Settings) -> None:
    """[moderation] against telegram.moderators (none: every draft is auto-approved): a quorum larger
    than the moderators, or a fast approver who may not press at all, left every draft pending."""
    moderators, moderation = set(settings.telegram.moderators), settings.moderation
    if not moderators:
        return
    if moderation.votes > len(moderators):
        raise ConfigError(f"{settings.source}: moderation.votes must be at most the number of telegram.moderators"
                          f" ({len(moderators)}): no draft could be decided, got {moderation.votes}")
    for user in moderation.fast_approvers:
        if user not in moderators:
            raise ConfigError(f"{settings.source}: moderation.fast_approvers must be among telegram.moderators"
                              f" ({user} is not one), got {_show(moderation.fast_approvers)}")


def _check_log_file(settings: Settings) -> None:
    """log.file is appended to: never the database (its lines made it "not a database"), its
    companions, another SQLite file (a backup) or the config file itself (which then failed to parse)."""
    if not settings.log.file:
        return
    log_file = Path(settings.log.file)
    database = settings.database.resolve()
    taken = {database: "the database (paths.database)", **{
        database.with_name(database.name + end): f"the database's {end.lstrip('-.')} file"
        for end in ("-wal", "-shm", "-journal", ".initialised")}}
    if settings.source != "<defaults>":
        taken[Path(settings.source).resolve()] = "the config file itself"
    what = taken.get(log_file.resolve())
    if what is None and log_file.is_file() and starts_with(log_file, SQLITE_SIGNATURE):
        what = "a SQLite database"
    if what is not None:
        raise ConfigError(f"{settings.source}: log.file = {settings.log.file!r} is {what}: log lines would be"
                          " appended to it; choose another file")


def _read_toml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a TOML config file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (copy config.example.toml to start)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        return tomllib.loads(data.decode("utf-8-sig"))   # a byte order mark (Windows editors) is no TOML
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def _build_section(source: str, table: str, default: Any, values: dict[str, Any]) -> Any:
    """`default` (Settings()' table) with the file's `values` on top, checked."""
    hints = typing.get_type_hints(type(default))
    known = {f.name for f in dataclasses.fields(default)}
    for key in values:
        if f"{table}.{key}" in RENAMED:
            new = RENAMED[f"{table}.{key}"]
            raise ConfigError(f"{source}: {table}.{key} is now {new} (move it to [{new.partition('.')[0]}])")
        if key not in known:
            raise ConfigError(f"{source}: unknown key {table}.{key} (known: {', '.join(sorted(known))})")
    kwargs = {key: _coerce(source, f"{table}.{key}", hints[key], value) for key, value in values.items()}
    section = dataclasses.replace(default, **kwargs)
    first_problem(source, table, section)
    return section


def _coerce(source: str, where: str, hint: Any, value: Any) -> Any:
    """Check `value` against the annotation `hint`; ints are accepted where floats are expected."""
    def fail(expected: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: {where} must be {expected}, got {_show(value)}")

    if hint is Secret:
        if not isinstance(value, str):   # the value is a token all the same: its type only, never its text
            raise ConfigError(f"{source}: {where} must be a string, got a {_type_name(value)} (value not shown)")
        # a line break or spaces around it (a secrets file with CRLF lines, a quoted `export`) are no part
        # of a token: kept, they made every request an invalid URL or a token the API rejects
        value = value.strip()
        if any(c.isspace() for c in value):
            table, _, key = where.partition(".")
            var = ENV_SECRETS.get((table, key))
            raise ConfigError(f"{source}: {where} (or {var}) holds a space or line break inside (value not shown):"
                              " a token is one word")
        return Secret(value)
    if hint is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        if not math.isfinite(value):
            fail("a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            fail("a string")
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if float in typing.get_args(hint):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                fail("a number or a string")
            return float(value) if isinstance(value, int) else value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            fail("an integer or a string")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            fail("a list")
        return [_coerce(source, f"{where}[{i}]", item, v) for i, v in enumerate(value)]
    raise TypeError(f"unsupported config annotation {hint!r} for {where}")  # a programming error


def _type_name(value: Any) -> str:
    return {list: "list", dict: "table", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
