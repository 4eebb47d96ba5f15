"""Secrets (bot tokens): never shown by repr/str, and scrubbed from every log line."""
from __future__ import annotations

import logging
import re
from logging.handlers import RotatingFileHandler
from pathlib import Path

from common.files import folder_problem


class Secret:
    """A token. `str()`/`repr()` show '***'; `.reveal()` gives the value to the one client that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class RedactingFilter(logging.Filter):
    """Replaces every registered secret (and anything shaped like a bot token) in a log record.
    Case-blind: the Bot API client lowercases some error descriptions it passes on."""

    TOKEN_SHAPE = re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}|vk1\.a\.[A-Za-z0-9_-]{20,}", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, re.Pattern[str]] = {}

    def add(self, value: str) -> None:
        if value and len(value) >= 4:
            self._secrets.setdefault(value, re.compile(re.escape(value), re.IGNORECASE))

    def redact(self, text: str) -> str:
        for pattern in self._secrets.values():
            text = pattern.sub("***", text)
        return self.TOKEN_SHAPE.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


REDACTOR = RedactingFilter()


class OneLine(logging.Filter):
    """A library's error line logged with a traceback that says no more than the line: the line alone,
    redacted, its white space collapsed and at most LIMIT characters. python-telegram-bot logs an answer
    that is not JSON (a web page where telegram.base_url points, a proxy's error page) whole, with the
    JSON parser's traceback, before the error that the caller turns into one line."""

    LIMIT = 400

    def filter(self, record: logging.LogRecord) -> bool:
        line = " ".join(REDACTOR.redact(record.getMessage()).split())   # redacted before it is cut
        record.msg, record.args = line if len(line) <= self.LIMIT else line[:self.LIMIT] + "…", None
        record.exc_info, record.exc_text = None, None
        return True


ONE_LINE = OneLine()


class LogFileError(ValueError):
    """log.file cannot be opened; the message is one line naming the key and the path."""


def setup_logging(level: str = "INFO", file: str = "", *, max_bytes: int = 0, backup_count: int = 0) -> None:
    """Root logging to stderr (and a file if set, rotated at `max_bytes` keeping `backup_count`
    old files; its folder is created), every handler behind the redacting filter."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file:
        handlers.append(_file_handler(file, max_bytes, backup_count))
    for handler in handlers:
        handler.addFilter(REDACTOR)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    logging.captureWarnings(True)  # warnings go through the redacting handlers too
    # httpx logs every request URL at INFO; the Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # urllib3 (requests, so vk_api) logs every request's path and query at DEBUG: the VK bot long
    # poll's `key`, which reads the community's incoming messages, is in its query
    logging.getLogger("urllib3").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("telegram.request.BaseRequest").addFilter(ONE_LINE)   # "Can not load invalid JSON data"
    # pymorphy3 says at INFO where its dictionary lies, in the middle of `buhurt sample`'s posts
    logging.getLogger("pymorphy3").setLevel(logging.WARNING)


def _file_handler(file: str, max_bytes: int, backup_count: int) -> logging.Handler:
    path = Path(file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
    except OSError as exc:
        why = folder_problem(path.parent, exc) if not path.parent.is_dir() else exc.strerror or exc
        raise LogFileError(f"log.file = {file!r} cannot be opened for writing ({why})") from None
