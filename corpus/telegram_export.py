"""`buhurt corpus import-telegram PATH`: a channel exported with Telegram Desktop, JSON or HTML.

PATH is `result.json`, one `messages*.html` page, or the export folder (its `result.json` when
present, else every `messages*.html` page in order). Each message becomes a post keyed by
(source 'telegram', channel name, message id), so importing the same export again adds nothing
(counters such as reactions are refreshed). Text links are kept as `[text](url)`, so the cleaning
rules can see links and strip a channel's signature line. Dates are stored as ISO 8601 UTC.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from corpus.errors import CorpusError
from corpus.store.posts import add_posts
from corpus.telegram_html import link_markup, parse_html_page


@dataclass(frozen=True)
class TelegramImport:
    community: str
    messages: int
    added: int
    updated: int
    files: int


def import_telegram_export(db: sqlite_utils.Database, path: str | Path, *, community: str | None = None) -> TelegramImport:
    """Import every message of a Telegram Desktop export at `path` (file or folder)."""
    path = Path(path)
    files = export_files(path)
    posts: list[dict[str, Any]] = []
    name = ""
    for file in files:
        if file.suffix.lower() == ".json":
            name, page = read_json_export(file)
        else:
            name, page = parse_html_page(_read(file), source=str(file))
        posts += page
    name = community or name or (path.name if path.is_dir() else path.parent.name)
    if not posts:
        raise CorpusError(f"{path}: no messages found in the Telegram export")
    for post in posts:
        post["community"] = name
        post["source"] = "telegram"
    added, updated = add_posts(db, posts)
    return TelegramImport(name, len(posts), added, updated, len(files))


def export_files(path: Path) -> list[Path]:
    """The files of an export: result.json, or the HTML pages in page order."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder (expected a Telegram Desktop export)")
    if path.is_file():
        if path.suffix.lower() not in (".json", ".html", ".htm"):
            raise CorpusError(f"{path}: expected result.json or messages*.html from Telegram Desktop")
        return [path]
    if (path / "result.json").is_file():
        return [path / "result.json"]
    pages = sorted(path.glob("messages*.html"), key=_page_number)
    if not pages:
        raise CorpusError(f"{path}: neither result.json nor messages*.html inside (not a Telegram Desktop export)")
    return pages


def _page_number(path: Path) -> int:
    found = re.search(r"(\d+)", path.stem)
    return int(found.group(1)) if found else 1


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None


def read_json_export(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(channel name, posts) of a `result.json`."""
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}: malformed JSON at line {exc.lineno} ({exc.msg})") from None
    if isinstance(data, dict) and "chats" in data and "messages" not in data:
        raise CorpusError(f"{path}: a full-account export; export a single channel (Export chat history)")
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise CorpusError(f"{path}: not a Telegram Desktop chat export (no \"messages\" list)")
    posts = [_json_post(m) for m in data["messages"] if isinstance(m, dict) and m.get("type") == "message"]
    return str(data.get("name") or ""), posts


def _json_post(message: dict[str, Any]) -> dict[str, Any]:
    reactions = {}
    for reaction in message.get("reactions") or []:
        key = reaction.get("emoji") or (
            f"custom:{reaction.get('document_id', '')}" if reaction.get("type") == "custom_emoji"
            else reaction.get("type", "?"))
        reactions[key] = reactions.get(key, 0) + int(reaction.get("count") or 0)
    media = any(message.get(k) for k in ("photo", "file", "media_type", "poll", "location_information",
                                         "contact_information", "sticker_emoji"))
    return {
        "external_id": str(message["id"]),
        "date": _json_date(message),
        "text": render_json_text(message.get("text", "")),
        "reactions": sum(reactions.values()) if reactions else None,
        "reactions_json": json.dumps(reactions, ensure_ascii=False) if reactions else None,
        "views": message.get("views"),
        "is_repost": bool(message.get("forwarded_from")),
        "has_attachments": media,
    }


def render_json_text(text: Any) -> str:
    """The message text with text links as `[text](url)`; other entities as their text."""
    if isinstance(text, str):
        return text
    parts = []
    for part in text or []:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            parts.append(link_markup(part.get("text", ""), part.get("href")) if part.get("type") == "text_link"
                         else str(part.get("text", "")))
    return "".join(parts)


def _json_date(message: dict[str, Any]) -> str | None:
    if message.get("date_unixtime"):
        moment = dt.datetime.fromtimestamp(int(message["date_unixtime"]), dt.timezone.utc)
        return moment.isoformat()
    return message.get("date")  # older exports: local time of the exporting machine, no offset
