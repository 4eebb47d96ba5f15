"""`buhurt corpus import-telegram PATH`: a channel exported with Telegram Desktop, JSON or HTML.

PATH is `result.json`, one `messages*.html` page, or the export folder (its `result.json` when
present, else every `messages*.html` page in order). Each message becomes a post keyed by
(source 'telegram', channel name, message id), so importing the same export again adds nothing
(counters such as reactions are refreshed). Text links are kept as `[text](url)`, so the cleaning
rules can see links and strip a channel's signature line. Dates are stored as ISO 8601 UTC.

Files are read as streams: `result.json` through ijson (the messages one at a time), HTML pages fed
to the parser in chunks; posts go to the database in batches, so memory does not grow with the
export. A chat (a group or a personal chat, not a channel) is refused unless `allow_chat`: the
JSON's "type", or an HTML page whose messages are written by anyone but the page's own name.
Every file is checked first (corpus/inputs.py: a regular file within corpus.max_import_mb).
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
from corpus.inputs import DEFAULT_MAX_MB, check_input, utf8_chunks
from corpus.telegram_html import HtmlPage, link_markup


CHANNEL_TYPES = ("public_channel", "private_channel")


@dataclass(frozen=True)
class TelegramImport:
    community: str
    messages: int
    added: int
    updated: int
    files: int


def import_telegram_export(db: sqlite_utils.Database, path: str | Path, *, community: str | None = None,
                           allow_chat: bool = False, max_mb: float = DEFAULT_MAX_MB) -> TelegramImport:
    """Import every message of a Telegram Desktop export at `path` (file or folder)."""
    path = Path(path)
    files = [check_input(f, max_mb, what="Telegram Desktop export file") for f in export_files(path)]
    fallback = path.name if path.is_dir() else path.parent.name
    count = added = updated = 0
    for file in files:
        name_box: list[str] = []

        def posts(file=file, name_box=name_box):
            stream = _json_posts(file, allow_chat) if file.suffix.lower() == ".json" else _html_posts(file, allow_chat)
            for name, post in stream:
                if not name_box:
                    name_box.append(community or name or fallback)
                post["community"] = name_box[0]
                post["source"] = "telegram"
                yield post

        counted = _Counted(posts())
        a, u = add_posts(db, counted)
        count, added, updated = count + counted.n, added + a, updated + u
        name = name_box[0] if name_box else (community or fallback)
    if not count:
        raise CorpusError(f"{path}: no messages found in the Telegram export")
    return TelegramImport(name, count, added, updated, len(files))


class _Counted:
    def __init__(self, items):
        self.items, self.n = items, 0

    def __iter__(self):
        for item in self.items:
            self.n += 1
            yield item


def export_files(path: Path) -> list[Path]:
    """The files of an export: result.json, or the HTML pages in page order."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder (expected a Telegram Desktop export)")
    if not path.is_dir():
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


def _chat_refused(path: Path, kind: str) -> CorpusError:
    return CorpusError(f"{path}: a {kind} export, not a channel: its messages are members' chat, not a "
                       "community's posts; import it anyway with --allow-chat")


def _html_posts(path: Path, allow_chat: bool):
    """(channel name, post) of one HTML page, streamed."""
    page = HtmlPage(str(path))
    checked = False
    for chunk in utf8_chunks(path):
        for post in page.feed(chunk):
            if not checked:
                _check_html_chat(path, page, allow_chat)
                checked = True
            yield page.channel, post
    for post in page.close():
        yield page.channel, post
    _check_html_chat(path, page, allow_chat)


def _check_html_chat(path: Path, page: HtmlPage, allow_chat: bool) -> None:
    if allow_chat:
        return
    others = page.authors - {page.channel}
    if others:
        raise _chat_refused(path, "chat (messages written by " + ", ".join(sorted(others)[:3]) + ")")


def read_json_export(path: Path, allow_chat: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """(channel name, posts) of a `result.json` (small files; the importer streams)."""
    name, posts = "", []
    for channel, post in _json_posts(path, allow_chat):
        name = channel
        posts.append(post)
    return name, posts


def _json_posts(path: Path, allow_chat: bool):
    """(channel name, post) of a `result.json`, streamed with ijson."""
    import ijson

    head: dict[str, Any] = {}
    try:
        with path.open("rb") as handle:
            for prefix, event, value in ijson.parse(handle):
                if prefix in ("name", "type") and event in ("string", "null"):
                    head[prefix] = value
                elif prefix == "chats" and event == "start_map":
                    raise CorpusError(f"{path}: a full-account export; export a single channel (Export chat history)")
                elif prefix == "messages" and event == "start_array":
                    head["messages"] = True
                    break
                elif prefix == "" and event == "end_map":
                    break
        if not head.get("messages"):
            raise CorpusError(f"{path}: not a Telegram Desktop chat export (no \"messages\" list)")
        kind = str(head.get("type") or "")
        if kind and kind not in CHANNEL_TYPES and not allow_chat:
            raise _chat_refused(path, kind.replace("_", " "))
        name = str(head.get("name") or "")
        with path.open("rb") as handle:
            for message in ijson.items(handle, "messages.item", use_float=True):
                if isinstance(message, dict) and message.get("type") == "message":
                    yield name, _json_post(message)
    except ijson.JSONError as exc:
        raise CorpusError(f"{path}: malformed JSON ({str(exc).splitlines()[0][:120]})") from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None



def _json_post(message: dict[str, Any]) -> dict[str, Any]:
    reactions: dict[str, int] = {}
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
