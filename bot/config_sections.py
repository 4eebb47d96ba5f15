"""The typed, frozen sections of config.toml (bot/config.py reads the file into them). A section
of a lower layer's concern embeds that layer's dataclass (model/train_config.py, model/sample_options.py,
corpus/rules.py, corpus/vk.py, jobs/retrain.py,
jobs/pool.py, jobs/scheduler.py) instead of restating its fields, defaults and checks.
Every key here is documented in config.example.toml (a test checks both ways). Defaults are the
embedded default: SQLite under ./data, the bundled sample corpus, no tokens (a local channel)."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.secrets import Secret
from corpus.rules import CleanOptions
from corpus.vk import ScrapeOptions
from jobs.alerts import AlertOptions
from jobs.curation import GenerateOptions
from jobs.moderation import ModerationOptions
from jobs.pool import PoolOptions, ScreenOptions
from jobs.publish import PublishOptions
from jobs.ranker import RankerOptions
from jobs.rating import RateOptions
from jobs.retrain import NightlyOptions
from jobs.scheduler import ScheduleOptions, clock_time
from model.sample_options import SampleOptions
from model.train_config import ModelShape, TrainOptions

TELEGRAM_API = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class PathsSettings:
    data_dir: str = "data"
    database: str = ""  # default: <data_dir>/buhurt.sqlite3
    busy_timeout_seconds: float = 10.0

    def validate(self) -> dict[str, str]:
        if not 0 <= self.busy_timeout_seconds <= 3600:
            return {"busy_timeout_seconds": "a number of seconds from 0 to 3600"}
        return {}


@dataclass(frozen=True)
class CorpusSettings:
    seed_with_sample: bool = True
    gap_lines: int = 1
    shuffle_seed: int = 1234
    popularity_weighting: bool = False
    popularity_top_fraction: float = 0.1
    popularity_copies: int = 2
    popularity_normalise: str = "views"
    max_import_mb: float = 1024.0

    def validate(self) -> dict[str, str]:
        problems = {}
        if self.max_import_mb <= 0:
            problems["max_import_mb"] = "a positive number"
        if not 0 < self.popularity_top_fraction <= 1:
            problems["popularity_top_fraction"] = "a number in (0, 1]"
        if self.popularity_copies < 1:
            problems["popularity_copies"] = "an integer >= 1"
        if self.popularity_normalise not in ("views", "median"):
            problems["popularity_normalise"] = "'views' or 'median'"
        return problems

    def weighting(self):
        """The export's popularity weighting (corpus.popularity.PopularityWeighting)."""
        from corpus.popularity import PopularityWeighting

        return PopularityWeighting(self.popularity_weighting, self.popularity_top_fraction,
                                   self.popularity_copies, self.popularity_normalise)


@dataclass(frozen=True)
class CleanSettings(CleanOptions):
    """[clean]: the corpus cleaning rules; the fields and their meaning live in corpus/rules.py."""


@dataclass(frozen=True)
class FilterSettings:
    words: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelSettings(ModelShape):
    """[model]: the network's shape (model/train_config.py ModelShape), and whether a fresh install
    starts from the bundled model."""

    use_bundled: bool = True

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class TrainSettings(NightlyOptions, TrainOptions):
    """[train]: the training run (model/train_config.py TrainOptions, `buhurt train`'s defaults) and
    what the nightly retrain job adds (jobs/retrain.py NightlyOptions: the split, the warm start's
    rate, the promotion rule, the run folders kept)."""

    def validate(self) -> dict[str, str]:
        return {**TrainOptions.problems(self), **NightlyOptions.problems(self)}


@dataclass(frozen=True)
class SampleSettings(SampleOptions):
    """[sample]: model/sample_options.py SampleOptions; the service's temperature is "auto" (the
    active model's tuned one, `buhurt tune`; else SampleOptions' default)."""

    temperature: float | str = "auto"

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class PoolSettings(PoolOptions):
    """[pool]: jobs/pool.py PoolOptions."""

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class ScreenSettings(ScreenOptions):
    """[screen]: jobs/pool.py ScreenOptions."""

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class RateSettings(RateOptions):
    """[rate]: jobs/rating.py RateOptions (the blind rating flow, /rate)."""


@dataclass(frozen=True)
class RankerSettings(RankerOptions):
    """[ranker]: jobs/ranker.py RankerOptions (the ranker learned from the moderators' decisions)."""


@dataclass(frozen=True)
class GenerateSettings(GenerateOptions):
    """[generate]: jobs/curation.py GenerateOptions (what /generate serves)."""


@dataclass(frozen=True)
class ScheduleSettings(ScheduleOptions):
    """[schedule]: jobs/scheduler.py ScheduleOptions."""

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class ModerationSettings(ModerationOptions):
    """[moderation]: jobs/moderation.py ModerationOptions (votes, fast approvers, canned reasons)."""

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class PublishSettings:
    """[publish]: the footer under each post; `{n}` is the meme number ("" for none)."""

    footer: str = PublishOptions.footer

    def validate(self) -> dict[str, str]:
        return PublishOptions(footer=self.footer).problems()


@dataclass(frozen=True)
class AlertSettings(AlertOptions):
    """[alerts]: jobs/alerts.py AlertOptions."""

    def validate(self) -> dict[str, str]:
        return self.problems()


@dataclass(frozen=True)
class TelegramSettings:
    token: Secret = field(default_factory=lambda: Secret(""))
    base_url: str = TELEGRAM_API
    channels: list[int | str] = field(default_factory=list)
    moderators_chat: int | str = 0
    moderators: list[int] = field(default_factory=list)
    cooldown_seconds: float = 10.0
    max_concurrent_generations: int = 2
    start_text_max_chars: int = 200
    user_burst: int = 5
    user_window_seconds: float = 10.0
    startup_wait_seconds: float = 300.0

    def validate(self) -> dict[str, str]:
        problems = {}
        if self.token and not self.channels:
            problems["channels"] = "at least one channel (a @username or numeric id) when a token is set"
        if self.moderators and not self.moderators_chat:
            problems["moderators_chat"] = "the moderators' chat id when moderators are set"
        if self.max_concurrent_generations <= 0:
            problems["max_concurrent_generations"] = "a positive integer"
        if not _is_http_url(self.base_url):
            problems["base_url"] = f"an http(s) URL such as {TELEGRAM_API!r}"
        for key in ("cooldown_seconds", "user_window_seconds", "startup_wait_seconds"):
            if getattr(self, key) < 0:
                problems[key] = "a number >= 0"
        if self.user_burst <= 0:
            problems["user_burst"] = "a positive integer"
        return problems


def _is_http_url(text: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in text)


@dataclass(frozen=True)
class VkSettings(ScrapeOptions):
    """[vk]: how walls are read (corpus/vk.py ScrapeOptions), the communities, the wall to publish to."""

    token: Secret = field(default_factory=lambda: Secret(""))
    groups: list[str] = field(default_factory=list)
    publish_group_id: int = 0
    messages_group_id: int = 0          # the community whose messages the bot answers (0: none)
    community_token: Secret = field(default_factory=lambda: Secret(""))   # its token, "messages" right
    longpoll_wait_seconds: float = 25.0

    def validate(self) -> dict[str, str]:
        problems = self.problems()
        if self.publish_group_id and not self.token:
            problems["token"] = "a VK user token (or BUHURT_VK_TOKEN) when publish_group_id is set"
        if self.messages_group_id and not self.community_token:
            problems["community_token"] = ("a community token with the messages right (or BUHURT_VK_COMMUNITY_TOKEN)"
                                           " when messages_group_id is set")
        if not 1 <= self.longpoll_wait_seconds <= 90:
            problems["longpoll_wait_seconds"] = "a number of seconds from 1 to 90"
        return problems


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    file: str = ""
    max_bytes: int = 10_000_000
    backup_count: int = 5

    def validate(self) -> dict[str, str]:
        problems = {}
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems["level"] = "one of DEBUG, INFO, WARNING, ERROR"
        if self.max_bytes < 0:
            problems["max_bytes"] = "an integer >= 0 (0: never rotate)"
        if self.backup_count < 0:
            problems["backup_count"] = "an integer >= 0"
        return problems


@dataclass(frozen=True)
class BackupSettings:
    folder: str = ""     # default: <data_dir>/backups
    keep: int = 7
    at: str = "04:30"    # HH:MM in schedule.timezone; "" = no nightly backup

    def validate(self) -> dict[str, str]:
        problems = {}
        if self.keep < 1:
            problems["keep"] = "an integer >= 1"
        if self.at:
            try:
                clock_time(self.at)
            except ValueError:
                problems["at"] = "a time as 'HH:MM' or \"\" (no nightly backup)"
        return problems


SECTIONS: dict[str, type] = {
    "paths": PathsSettings, "corpus": CorpusSettings, "clean": CleanSettings, "filter": FilterSettings,
    "model": ModelSettings, "train": TrainSettings, "sample": SampleSettings, "pool": PoolSettings,
    "screen": ScreenSettings, "schedule": ScheduleSettings, "telegram": TelegramSettings, "vk": VkSettings,
    "log": LogSettings,
    "backup": BackupSettings,
    "moderation": ModerationSettings, "publish": PublishSettings, "alerts": AlertSettings,
    "rate": RateSettings, "ranker": RankerSettings, "generate": GenerateSettings,
}
