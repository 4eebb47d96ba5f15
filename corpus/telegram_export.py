"""`buhurt corpus import-telegram PATH`: a channel exported with Telegram Desktop, JSON or HTML.

PATH is `result.json`, one `messages*.html` page, or the export folder (its `result.json` when
present, else every `messages*.html` page in order). Each message becomes a post keyed by
(source 'telegram', channel name, message id): the channel's name from the export is stored as the
post's `origin` whatever `--community` labels it, so importing the same export again, under any
label, adds nothing (counters such as reactions are refreshed; a message edited since takes its new
text and is cleaned again). Another channel imported under a label that holds a channel's posts
meets the same message ids (they start at 1 in every channel): its messages whose id is taken
there by another text are not stored, and counted in `TelegramImport.kept_out` (the CLI says to
import that channel under its own `--community`). Text links are kept as `[text](url)`, so the cleaning
rules can see links and strip a channel's signature line. Dates are stored as ISO 8601 UTC.

Files are read as streams: `result.json` through ijson (the messages one at a time), HTML pages fed
to the parser in chunks; posts go to the database in batches, so memory does not grow with the
export. A chat (a group or a personal chat, not a channel) is refused unless `allow_chat`: the
JSON's "type", or an HTML page whose messages are written by anyone but the page's own name.
Every file is checked first (corpus/inputs.py: a regular file within corpus.max_import_mb).

A hostile `result.json` is bounded while it is read: nesting deeper than MAX_JSON_DEPTH or one
message larger than MAX_MESSAGE_SIZE refuses the file in one line (CorpusError); a message whose
fields have the wrong types (text as a number, a bad date_unixtime, reactions as a string) is
skipped with a WARNING naming its id, and counted in `TelegramImport.skipped`; so is an entry of
"messages" that is no object at all (a number, a string, null).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson
import sqlite_utils

from corpus.db import write_transaction
from corpus.errors import CorpusError
from corpus.store.posts import add_posts
from corpus.inputs import DEFAULT_MAX_MB, check_input, utf8_chunks
from corpus.telegram_html import HtmlPage, link_markup


CHANNEL_TYPES = ("public_channel", "private_channel")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TelegramImport:
    community: str
    messages: int
    added: int
    updated: int
    files: int
    skipped: int = 0           # messages skipped because their fields have the wrong types
    skipped_first: str = ""    # the first one's reason (message id and field)
    edited: int = 0            # messages already stored whose text the export has changed (cleaned again)
    kept_out: int = 0          # messages not stored: the label holds another channel's posts under their ids
    kept_out_by: str = ""      # those channels, for the summary line


def import_telegram_export(db: sqlite_utils.Database, path: str | Path, *, community: str | None = None,
                           allow_chat: bool = False, max_mb: float = DEFAULT_MAX_MB) -> TelegramImport:
    """Import every message of a Telegram Desktop export at `path` (file or folder), in one
    transaction: a page that is refused (cut short, a chat's, unreadable) leaves none of the export's
    pages stored, as its one line says."""
    path = Path(path)
    files = [check_input(f, max_mb, what="Telegram Desktop export file") for f in export_files(path)]
    fallback = path.name if path.is_dir() else path.parent.name
    count = added = updated = edited = 0
    kept_out: list[str] = []
    skipped = Skipped()
    with write_transaction(db):   # the whole export or nothing; it reads before it writes: the lock first
        for file in files:
            name_box: list[str] = []

            def posts(file=file, name_box=name_box):
                stream = (_json_posts(file, allow_chat, skipped) if file.suffix.lower() == ".json"
                          else _html_posts(file, allow_chat))
                for name, post in stream:
                    if not name_box:
                        name_box.append(community or name or fallback)
                    post["community"] = name_box[0]
                    post["origin"] = name or None   # the channel, whatever --community labels it
                    post["source"] = "telegram"
                    yield post

            counted = _Counted(posts())
            stored = add_posts(db, counted)
            count, added, updated, edited = (count + counted.n, added + stored.added, updated + stored.updated,
                                             edited + stored.edited)
            kept_out += stored.kept_out
            name = name_box[0] if name_box else (community or fallback)
    if not count:
        also = f" ({skipped.count} malformed skipped, the first: {skipped.first[0]})" if skipped.count else ""
        raise CorpusError(f"{path}: no messages found in the Telegram export{also}")
    return TelegramImport(name, count, added, updated, len(files), skipped.count,
                          skipped.first[0] if skipped.first else "", edited, len(kept_out),
                          ", ".join(repr(other) for other in sorted(set(kept_out))))


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


MAX_JSON_DEPTH = 32  # Telegram nests result.json about 7 deep (messages, a message, its reactions, ...)
# one message's size: its strings' characters, plus 64 for each object or list and 16 for each other
# value (about what Python holds for them), so that the limit bounds memory; Telegram's own limit for
# a message's text is 4,096 characters
MAX_MESSAGE_SIZE = 1_000_000
SHOWN_SKIPS = 5  # malformed messages named one by one in the log; the rest are counted
_OPEN, _CLOSE = ("start_map", "start_array"), ("end_map", "end_array")


class MalformedMessage(ValueError):
    """A message of `result.json` whose fields have the wrong types: skipped and counted."""


@dataclass
class Skipped:
    """Messages skipped as malformed: how many, and the first SHOWN_SKIPS reasons (each logged)."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, path: Path, reason: str) -> None:
        self.count += 1
        if len(self.first) < SHOWN_SKIPS:
            self.first.append(reason)
            log.warning("%s: %s: skipped", path, reason)


def _json_posts(path: Path, allow_chat: bool, skipped: Skipped | None = None):
    """(channel name, post) of a `result.json`, streamed in one pass over ijson's basic events
    (ijson's prefixed events cost O(depth) each: 100,000 nested arrays took 24 GB). Nothing nests
    deeper than MAX_JSON_DEPTH and only one message, of at most MAX_MESSAGE_SIZE, is held at a
    time, else CorpusError. A message whose fields have the wrong types is skipped, and counted in
    `skipped`."""
    index = 0
    try:
        with path.open("rb") as handle:
            if handle.read(3) != b"\xef\xbb\xbf":   # a UTF-8 BOM (an editor's save) is skipped, as text imports do
                handle.seek(0)
            events = _Events(path, ijson.basic_parse(WholeEscapes(handle), use_float=True))
            head = _json_head(path, events)
            kind = str(head.get("type") or "")
            if kind and kind not in CHANNEL_TYPES and not allow_chat:
                raise _chat_refused(path, kind.replace("_", " "))
            name = str(head.get("name") or "")
            for event, value in events:
                if event == "end_array":  # the end of "messages"
                    break
                index += 1
                message = _json_value(path, events, event, value, index)
                if not isinstance(message, dict):   # not a message at all: malformed, counted
                    if skipped is not None:
                        skipped.add(path, f"message #{index} is {_kind(message)} ({_shown(message)}),"
                                          " expected an object")
                    continue
                if message.get("type") != "message":   # a service message (channel created, ...)
                    continue
                try:
                    post = _json_post(message, index)
                except MalformedMessage as exc:
                    if skipped is not None:
                        skipped.add(path, str(exc))
                    continue
                yield name, post
            for _ in events:  # the rest is read (a syntax error is still one), never kept
                pass
    except ijson.JSONError as exc:
        raise CorpusError(f"{path}: malformed JSON ({_json_error_text(exc)})") from None
    except UnicodeDecodeError:   # raw bytes that are no UTF-8 inside a string (yajl's offset is the string's)
        raise CorpusError(f"{path}: not UTF-8 text (an invalid byte in a string after message #{index})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None


# a JSON \u escape of a UTF-16 surrogate, maybe followed by another: a high one and its low one are an
# emoji (or another character past U+FFFF); one alone is half of one, which no UTF-8 text holds (yajl's
# decoding raised on it, and the whole import failed with "not UTF-8"). Group 1 is the run of
# backslashes before the "u": an odd run ends in the escape's own backslash, an even one is text.
SURROGATE_ESCAPE = re.compile(rb"(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?")
LONGEST_ESCAPE = 12   # a pair's


class WholeEscapes:
    """A binary file whose JSON text is read without escaped halves of emojis (a lone surrogate,
    "\\ud83d" not followed by its low half): Telegram cuts a message's text at UTF-16 offsets, and
    one such half made the whole export unreadable. Streamed: the last bytes of each read, where an
    escape may continue, wait for the next; a read holding no surrogate escape passes unsearched."""

    def __init__(self, raw) -> None:
        self.raw, self.carry = raw, b""

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            data = self.carry + (self.raw.read() if size < 0 else self.raw.read(size))
            if size < 0 or len(data) == len(self.carry):   # the end of the file: everything is decided
                self.carry = b""
                return _without_lone_surrogates(data, len(data))
            cut = _safe_cut(data)
            out = _without_lone_surrogates(data, cut)
            self.carry = data[cut:]
            if out:   # b"" would say the file ended: too little to decide, or only halves dropped
                return out


def _has_surrogate_escape(data: bytes) -> bool:
    return b"\\ud" in data or b"\\uD" in data


def _safe_cut(data: bytes) -> int:
    """Where `data` may be cut: every escape before it is whole and was seen with what follows it,
    and no run of backslashes (whose parity says what is an escape) is split."""
    cut = max(len(data) - LONGEST_ESCAPE, 0)
    while True:
        while cut > 0 and data[cut - 1:cut] == b"\\":
            cut -= 1
        if not _has_surrogate_escape(data):
            return cut
        low = max(cut - LONGEST_ESCAPE, 0)   # an escape across the cut starts after here, or at its run
        while low > 0 and data[low - 1:low] == b"\\":
            low -= 1
        straddling = [m.start() for m in SURROGATE_ESCAPE.finditer(data, low) if m.start() < cut < m.end()]
        if not straddling:
            return cut
        cut = straddling[0]


def _without_lone_surrogates(data: bytes, end: int) -> bytes:
    part = data[:end]
    return SURROGATE_ESCAPE.sub(_whole, part) if _has_surrogate_escape(part) else part


def _whole(m: re.Match) -> bytes:
    run, first, second = m.group(1), m.group(2), m.group(3)
    if len(run) % 2 == 0:   # "\\\\ud83d": text; only a real escape after it may be a half
        return run + b"u" + first
    if second is not None and first[1:2] in b"89abAB":   # a high half and its low half: one character
        return m.group(0)
    return run[:-1]   # a half, or two halves that make nothing together


def _json_error_text(exc: Exception) -> str:
    """ijson's complaint as one printable line: yajl's comes as bytes quoting the file's raw bytes."""
    said = exc.args[0] if exc.args else str(exc)
    if isinstance(said, bytes):
        said = said.decode("utf-8", errors="replace")
    first = next((line.strip() for line in str(said).splitlines() if line.strip()), type(exc).__name__)
    return "".join(ch if ch.isprintable() else "?" for ch in first)[:120]


class _Events:
    """ijson's basic events, counting the nesting depth: CorpusError past MAX_JSON_DEPTH."""

    def __init__(self, path: Path, events) -> None:
        self.path, self.events, self.depth = path, iter(events), 0

    def __iter__(self) -> "_Events":
        return self

    def __next__(self) -> tuple[str, Any]:
        event, value = next(self.events)
        if event in _OPEN:
            self.depth += 1
            if self.depth > MAX_JSON_DEPTH:
                raise CorpusError(f"{self.path}: JSON nested deeper than {MAX_JSON_DEPTH} levels (a Telegram "
                                  "Desktop export nests about 7): not an export, refused")
        elif event in _CLOSE:
            self.depth -= 1
        return event, value


def _json_head(path: Path, events: _Events) -> dict[str, Any]:
    """The export's "name" and "type", read up to the start of its "messages" list."""
    head: dict[str, Any] = {}
    for event, key in events:
        if event != "map_key" or events.depth != 1:
            continue
        event, value = next(events, ("end", None))
        if key in ("name", "type") and event in ("string", "null"):
            head[key] = value
        elif key == "chats" and event == "start_map":
            raise CorpusError(f"{path}: a full-account export; export a single channel (Export chat history)")
        elif key == "messages" and event == "start_array":
            return head
    raise CorpusError(f"{path}: not a Telegram Desktop chat export (no \"messages\" list)")


def _json_value(path: Path, events: _Events, event: str, value: Any, index: int) -> Any:
    """The value that starts with (event, value): message #`index` of the list, built from the
    events, CorpusError when it outgrows MAX_MESSAGE_SIZE."""
    if event not in _OPEN:
        return value
    root: dict | list = {} if event == "start_map" else []
    stack: list[dict | list] = [root]
    keys: list[str] = [""]
    size = 0
    for event, value in events:
        if event == "map_key":
            keys[-1] = value
            size += len(value)
            continue
        if event in _CLOSE:
            stack.pop()
            keys.pop()
            if not stack:
                return root
            continue
        item = ({} if event == "start_map" else []) if event in _OPEN else value
        parent = stack[-1]
        if isinstance(parent, dict):
            parent[keys[-1]] = item
        else:
            parent.append(item)
        if event in _OPEN:
            stack.append(item)
            keys.append("")
        size += len(item) if isinstance(item, str) else (64 if event in _OPEN else 16)
        if size > MAX_MESSAGE_SIZE:
            raise CorpusError(f"{path}: message #{index} is larger than {MAX_MESSAGE_SIZE:,} characters of JSON "
                              "(Telegram's limit for a message's text is 4,096): not an export, refused")
    return root


def _json_post(message: dict[str, Any], index: int) -> dict[str, Any]:
    """A post from a message of `result.json`; MalformedMessage names its id and the wrong field."""
    message_id = message.get("id")
    if isinstance(message_id, bool) or not isinstance(message_id, (int, str)) or not str(message_id).strip():
        raise MalformedMessage(f"message #{index}: its id {_shown(message_id)} is not a message id")
    try:
        media = any(message.get(k) for k in ("photo", "file", "media_type", "poll", "location_information",
                                             "contact_information", "sticker_emoji"))
        reactions = _json_reactions(message.get("reactions"))
        return {
            "external_id": str(message_id),
            "date": _json_date(message),
            "text": render_json_text(message.get("text", "")),
            "reactions": sum(reactions.values()) if reactions else None,
            "reactions_json": json.dumps(reactions, ensure_ascii=False) if reactions else None,
            "views": _count(message.get("views"), "views"),
            "is_repost": bool(message.get("forwarded_from")),
            "has_attachments": media,
        }
    except MalformedMessage as exc:
        raise MalformedMessage(f"message {message_id}: {exc}") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _count(value: Any, field: str) -> int | None:
    """A count of the export (views, a reaction's count): a non-negative integer or null."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedMessage(f"{field} is {_kind(value)} ({_shown(value)}), expected a count")
    return value


def _json_reactions(value: Any) -> dict[str, int]:
    reactions: dict[str, int] = {}
    if value is None:
        return reactions
    if not isinstance(value, list):
        raise MalformedMessage(f"reactions is {_kind(value)} ({_shown(value)}), expected a list")
    for reaction in value:
        if not isinstance(reaction, dict):
            raise MalformedMessage(f"a reaction is {_kind(reaction)} ({_shown(reaction)}), expected an object")
        key = reaction.get("emoji") or (
            f"custom:{reaction.get('document_id', '')}" if reaction.get("type") == "custom_emoji"
            else reaction.get("type", "?"))
        if not isinstance(key, str):
            raise MalformedMessage(f"a reaction's emoji is {_kind(key)} ({_shown(key)}), expected a string")
        reactions[key] = reactions.get(key, 0) + (_count(reaction.get("count"), "a reaction's count") or 0)
    return reactions


def render_json_text(text: Any) -> str:
    """The message text with text links as `[text](url)`; other entities as their text.
    MalformedMessage when it is neither a string nor a list of strings and entities."""
    if isinstance(text, str) or text is None:
        return text or ""
    if not isinstance(text, list):
        raise MalformedMessage(f"text is {_kind(text)} ({_shown(text)}), expected a string or a list")
    parts = []
    for part in text:
        if isinstance(part, dict):
            value, href = part.get("text", ""), part.get("href")
            if not isinstance(value, str) or not isinstance(href, (str, type(None))):
                raise MalformedMessage(f"a text entity is {_shown(part)}, expected its text as a string")
            parts.append(link_markup(value, href) if part.get("type") == "text_link" else value)
        elif isinstance(part, str):
            parts.append(part)
        else:
            raise MalformedMessage(f"a part of the text is {_kind(part)} ({_shown(part)}), expected a string")
    return "".join(parts)


def _json_date(message: dict[str, Any]) -> str | None:
    stamp = message.get("date_unixtime")
    if stamp not in (None, ""):
        try:
            if isinstance(stamp, bool) or not isinstance(stamp, (int, str)):
                raise TypeError
            moment = dt.datetime.fromtimestamp(int(stamp), dt.timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            raise MalformedMessage(f"date_unixtime {_shown(stamp)} is not a Unix time") from None
        return moment.isoformat()
    date = message.get("date")  # older exports: local time of the exporting machine, no offset
    if date is not None and not isinstance(date, str):
        raise MalformedMessage(f"date is {_kind(date)} ({_shown(date)}), expected a string")
    return date
