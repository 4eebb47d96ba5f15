"""The only reader of config.toml: TOML -> typed, frozen sections (bot/config_sections.py).

Errors are one line naming the file and `table.key`: unknown keys, wrong types, missing values.
Tokens may come from BUHURT_TELEGRAM_TOKEN / BUHURT_VK_TOKEN / BUHURT_VK_COMMUNITY_TOKEN and are
wrapped in Secret.
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

from bot.secrets import REDACTOR, Secret
from bot.config_sections import (
    SECTIONS, AlertSettings, ModerationSettings, PublishSettings,
    BackupSettings, CleanSettings, CorpusSettings, FilterSettings, LogSettings, ModelSettings, PathsSettings,
    PoolSettings, SampleSettings, ScheduleSettings, ScreenSettings, TelegramSettings, TrainSettings, VkSettings,
    GenerateSettings, RankerSettings, RateSettings,
)

ENV_SECRETS = {("telegram", "token"): "BUHURT_TELEGRAM_TOKEN", ("vk", "token"): "BUHURT_VK_TOKEN",
               ("vk", "community_token"): "BUHURT_VK_COMMUNITY_TOKEN"}


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True)
class Settings:
    paths: PathsSettings = field(default_factory=PathsSettings)
    corpus: CorpusSettings = field(default_factory=CorpusSettings)
    clean: CleanSettings = field(default_factory=CleanSettings)
    filter: FilterSettings = field(default_factory=FilterSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    sample: SampleSettings = field(default_factory=SampleSettings)
    pool: PoolSettings = field(default_factory=PoolSettings)
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    vk: VkSettings = field(default_factory=VkSettings)
    log: LogSettings = field(default_factory=LogSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    rate: RateSettings = field(default_factory=RateSettings)
    ranker: RankerSettings = field(default_factory=RankerSettings)
    generate: GenerateSettings = field(default_factory=GenerateSettings)
    source: str = "<defaults>"

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)

    @property
    def database(self) -> Path:
        return Path(self.paths.database) if self.paths.database else self.data_dir / "buhurt.sqlite3"

    @property
    def backup_dir(self) -> Path:
        return Path(self.backup.folder) if self.backup.folder else self.data_dir / "backups"


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or only defaults and the environment when None) into Settings."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        raw = _read_toml(Path(path))
    sections = {}
    for table, value in raw.items():
        if table not in SECTIONS:
            raise ConfigError(f"{source}: unknown table [{table}] (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {table} must be a table ([{table}]), got {_show(value)}")
    for table, cls in SECTIONS.items():
        values = dict(raw.get(table, {}))
        for (t, key), var in ENV_SECRETS.items():
            if t == table and env.get(var):
                values[key] = env[var]
        sections[table] = _build_section(source, table, cls, values)
    settings = Settings(**sections, source=source)
    for table in SECTIONS:
        for (t, key) in ENV_SECRETS:
            if t == table:
                REDACTOR.add(getattr(getattr(settings, table), key).reveal())
    return settings


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
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def _build_section(source: str, table: str, cls: type, values: dict[str, Any]):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {table}.{key} (known: {', '.join(sorted(known))})")
    kwargs = {key: _coerce(source, f"{table}.{key}", hints[key], value) for key, value in values.items()}
    section = cls(**kwargs)
    validate = getattr(section, "validate", None) or getattr(section, "problems", None)   # an options dataclass's
    for key, expected in (validate() if validate else {}).items():
        got = getattr(section, key)
        raise ConfigError(f"{source}: {table}.{key} must be {expected}, got {_show(got)}")
    return section


def _coerce(source: str, where: str, hint: Any, value: Any) -> Any:
    """Check `value` against the annotation `hint`; ints are accepted where floats are expected."""
    def fail(expected: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: {where} must be {expected}, got {_show(value)}")

    if hint is Secret:
        if not isinstance(value, str):
            fail("a string")
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


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
