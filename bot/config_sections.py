"""The bot's own tables of config.toml: what no lower layer knows (paths, the corpus export, the
stop-list, tokens and chats, logs, backups, the footer, the bundled model at start-up).

The other tables are the lower layers' dataclasses themselves (bot/config.py `Settings`:
`sample: SampleOptions`, `train: TrainOptions`, ...). Each table has one check, `problems()`
({key: what it must be}); bot/config.py raises the first. The comment on (or above) each field is
its line in docs/config.md (`python -m bot.config_reference` writes it). Defaults are the embedded
default: SQLite under ./data, the bundled sample corpus, no tokens (a local channel)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.secrets import Secret
from corpus.errors import CorpusError
from corpus.export import MAX_GAP_LINES
from corpus.stoplist import StopList
from corpus.vk import ScrapeOptions
from corpus.vk_client import community_key
from jobs.publish import PublishOptions
from jobs.scheduler import clock_time

TELEGRAM_API = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class PathsSettings:
    """[paths]: where the runtime files live (a relative path here, in log.file and backup.folder: under the
    folder buhurt runs in, systemd's WorkingDirectory; a leading `~`: the home folder)."""

    data_dir: str = "data"    # folder of the database, training text, checkpoints, installed models
    database: str = ""        # the SQLite file; "": <data_dir>/buhurt.sqlite3
    # seconds a write waits for another process's lock (a CLI command, a backup) before giving up
    busy_timeout_seconds: float = 10.0

    def problems(self) -> dict[str, str]:
        if not 0 <= self.busy_timeout_seconds <= 3600:
            return {"busy_timeout_seconds": "a number of seconds from 0 to 3600"}
        return {}


@dataclass(frozen=True)
class StartupSettings:
    """[startup]: what a fresh install generates with."""

    # true: the small model shipped with the package until one trained on your corpus wins;
    # false: train the first model on your corpus at start (train.max_minutes, else 10 minutes)
    use_bundled_model: bool = True

    def problems(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class CorpusSettings:
    """[corpus]: the sample corpus at first start, imports, and how the training text is exported
    (which posts it repeats: [popularity])."""

    seed_with_sample: bool = True     # on first start with an empty database, import the bundled sample corpus
    gap_lines: int = 1                # blank lines between posts in the training text (1 to 100)
    shuffle_seed: int = 1234          # seed of the deterministic shuffle of posts in the training text
    max_import_mb: float = 1024.0     # largest file `buhurt corpus import`/`import-telegram` accepts, in MB

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.max_import_mb <= 0:
            problems["max_import_mb"] = "a positive number"
        if not 1 <= self.gap_lines <= MAX_GAP_LINES:
            problems["gap_lines"] = f"an integer from 1 to {MAX_GAP_LINES} (blank lines between posts)"
        return problems


@dataclass(frozen=True)
class FilterSettings:
    """[filter]: the stop-list. A draft matching it never reaches anyone (it is checked again at
    publishing and when /generate, /meme N, /top, /rate or the weekly best-of shows a post, so a word
    added later stops drafts already made and keeps published and corpus posts from being shown
    again); cleaning drops such posts. The text is read as a reader sees it: NFKC, invisible
    characters dropped, and a second reading with Latin look-alike letters as Cyrillic ("хеp" with
    a Latin p is "хер")."""

    words: list[str] = field(default_factory=list)      # whole words, case-insensitive, ё = е
    patterns: list[str] = field(default_factory=list)   # regular expressions on the lowercased text, ё = е in both

    def problems(self) -> dict[str, str]:
        try:
            StopList(self.words, self.patterns)
        except CorpusError as exc:   # "filter.patterns: invalid regular expression '[a-': ..."
            return {"patterns": "valid regular expressions; " + str(exc).partition(": ")[2]}
        return {}


@dataclass(frozen=True)
class PublishSettings:
    """[publish]: what goes under each post."""

    # the footer under each post; {n} is the meme number (readers ask "/meme N"); "": none
    footer: str = PublishOptions.footer

    def problems(self) -> dict[str, str]:
        return PublishOptions(footer=self.footer).problems()


@dataclass(frozen=True)
class TelegramSettings:
    """[telegram]: the bot, its channels, the moderators' chat and the per-user limits."""

    # the token from @BotFather (prefer BUHURT_TELEGRAM_TOKEN); "": no Telegram, a local channel
    # (`buhurt run` refuses to start when channels or moderators_chat are set without one)
    token: Secret = field(default_factory=lambda: Secret(""))
    base_url: str = TELEGRAM_API      # the Bot API endpoint (a local Bot API server's, if you run one)
    channels: list[int | str] = field(default_factory=list)   # "@username" or numeric ids to publish to
    moderators_chat: int | str = 0    # the chat drafts are sent to for approval (e.g. -1001234567890); 0: none
    moderators: list[int] = field(default_factory=list)   # user ids who may decide drafts; []: auto-approve
    cooldown_seconds: float = 10.0    # seconds a subscriber waits between two /generate
    max_concurrent_generations: int = 2   # /generate and /meme N admitted at a time (Telegram and VK)
    start_text_max_chars: int = 200   # longest start text /generate accepts, in characters
    user_burst: int = 5               # commands a subscriber may send in any user_window_seconds
    user_window_seconds: float = 10.0  # the flood limit's window, in seconds
    startup_wait_seconds: float = 300.0   # how long start-up retries an unreachable Bot API; 0: once

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.token and not self.channels:
            problems["channels"] = ("at least one channel (a @username or numeric id) when a token is set"
                                    " (telegram.token, or BUHURT_TELEGRAM_TOKEN in the environment)")
        if (wrong := _channel_problem(self.channels)) is not None:
            problems["channels"] = f'"@username" or numeric ids, each once ({wrong})'
        if self.moderators and not self.moderators_chat:
            problems["moderators_chat"] = "the moderators' chat id when moderators are set"
        elif self.moderators_chat and _channel_problem([self.moderators_chat]) is not None:
            problems["moderators_chat"] = "a numeric chat id (a group's is negative: -1001234567890) or \"@username\""
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

    def without_token(self) -> str | None:
        """One line when Telegram is configured (channels, the moderators' chat) but no token is:
        `buhurt run` cannot reach it, and the local channel would auto-approve and "publish" the
        drafts meant for the channel. None when it is all set, or all left out."""
        if self.token:
            return None
        named = [f"telegram.{key}" for key in ("channels", "moderators_chat") if getattr(self, key)]
        if not named:
            return None
        them = ("are", "them") if len(named) > 1 else ("is", "it")
        return (f"{' and '.join(named)} {them[0]} set but no Telegram token is (BUHURT_TELEGRAM_TOKEN, or"
                f" telegram.token): export it, or leave {them[1]} out to run on the local channel")


def _channel_problem(channels: list[int | str]) -> str | None:
    """The first entry of telegram.channels that is no channel ("", a name without its "@") or
    names one again (usernames ignore case): each entry is a publisher of its own, and Telegram
    refuses the rest only when a post goes out."""
    seen = set()
    for channel in channels:
        text = str(channel)
        if not re.fullmatch(r"@[A-Za-z0-9_]+|-?[0-9]+", text):
            return f"{channel!r} is not one"
        if text.lower() in seen:
            return f"{channel!r} twice"
        seen.add(text.lower())
    return None


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in text)


@dataclass(frozen=True)
class VkSettings(ScrapeOptions):
    """[vk]: how VK is called (corpus/vk.py ScrapeOptions: every request, not only scraping, so
    its keys stay in this table), the communities to read, the wall to publish to, the messages."""

    # a VK token (prefer BUHURT_VK_TOKEN); publishing needs a user token with the "wall" scope
    token: Secret = field(default_factory=lambda: Secret(""))
    groups: list[str] = field(default_factory=list)  # communities to scrape, each once (short names, ids, vk.com links)
    publish_group_id: int = 0         # the community whose wall posts go to; 0: no VK publishing
    messages_group_id: int = 0        # the community whose messages the bot answers; 0: none
    # that community's token, "messages" right (prefer BUHURT_VK_COMMUNITY_TOKEN)
    community_token: Secret = field(default_factory=lambda: Secret(""))
    longpoll_wait_seconds: float = 25.0   # how long one long-poll request waits for a message (1 to 90)

    def problems(self) -> dict[str, str]:
        problems = super().problems()
        seen = set()   # short names ignore case; club123, vk.com/public123 and 123 are one community
        for group in self.groups:   # else the scrape job refused it every time, the service started
            try:
                key = community_key(group).lower()
            except CorpusError:
                problems["groups"] = f"VK community short names, numeric ids or vk.com links ({group!r} is not one)"
                break
            if key in seen:   # scraped twice every run, as telegram.channels twice would publish twice
                problems["groups"] = ("VK community short names, numeric ids or vk.com links, each once"
                                      f" ({group!r} twice)")
                break
            seen.add(key)
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
    """[log]: the log's level and file (tokens are always redacted)."""

    level: str = "INFO"           # DEBUG, INFO, WARNING or ERROR
    file: str = ""                # also log to this file (folder created; not the database or config); "": stderr only
    max_bytes: int = 10_000_000   # rotate the file at this size, in bytes; 0: never (leave it to logrotate)
    backup_count: int = 5         # rotated files kept (file.1 ... file.N), at least 1 while max_bytes rotates

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems["level"] = "one of DEBUG, INFO, WARNING, ERROR"
        if self.max_bytes < 0:
            problems["max_bytes"] = "an integer >= 0 (0: never rotate)"
        if self.backup_count < 0:
            problems["backup_count"] = "an integer >= 0"
        elif self.file and self.max_bytes and not self.backup_count:   # Python's handler never rotates with 0
            problems["backup_count"] = "an integer >= 1 while log.max_bytes rotates the file (max_bytes = 0: never)"
        return problems


@dataclass(frozen=True)
class BackupSettings:
    """[backup]: the nightly copy of the database (and `buhurt backup`'s)."""

    folder: str = ""     # where the copies go; "": <data_dir>/backups
    keep: int = 7        # nightly copies kept (the oldest are deleted)
    at: str = "04:30"    # HH:MM in schedule.timezone; "": no nightly backup

    def problems(self) -> dict[str, str]:
        problems = {}
        if self.keep < 1:
            problems["keep"] = "an integer >= 1"
        if self.at:
            try:
                clock_time(self.at)
            except ValueError:
                problems["at"] = "a time as 'HH:MM' or \"\" (no nightly backup)"
        return problems
