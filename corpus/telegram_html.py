"""One page of a Telegram Desktop HTML export (`messages*.html`) -> posts, with the stdlib parser.

The page layout: `div.message.default#messageN` holds `div.date.details[title="DD.MM.YYYY HH:MM:SS
UTC+03:00"]`, an optional `div.media_wrap` (attachments), an optional `div.forwarded.body` (a
repost, with the original text inside) and `div.text` (`<br>` for line breaks, `<a href>` links).
Newer exports add `span.reaction` elements holding `.emoji` and `.count`. Service messages
(`div.message.service`, negative ids) are skipped. A channel's page shows only the channel's own
name as a message's author (`div.from_name`, "<name> via @bot" for a post made through an inline
bot); a chat's shows its members: `authors` tells them apart.
Pages are fed to the parser in chunks and finished messages are taken as they close
(`iter_html_page`), so a page is never held whole. Each tag costs the same whatever its depth (the
header and forwarded parts are tracked by the depth they opened at), and a page nesting more than
MAX_DEPTH elements is refused in one line (CorpusError): 40,000 nested divs took 221 s before.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from typing import Any

from corpus.errors import CorpusError

_VOID = {"br", "img", "meta", "link", "input", "hr", "source", "wbr"}
MAX_DEPTH = 256  # elements open at once; Telegram Desktop's pages nest about a dozen
_VIA_BOT = re.compile(r" via @[A-Za-z0-9_]+$")
_DATE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})(?: UTC([+-]\d{2}):?(\d{2}))?")


def parse_html_page(html: str, *, source: str = "<html>") -> tuple[str, list[dict[str, Any]]]:
    """(channel name from the page header, posts) of one export page."""
    page = HtmlPage(source)
    posts = list(page.feed(html)) + list(page.close())
    return page.channel, posts


class HtmlPage:
    """One export page parsed incrementally: `feed(chunk)` yields the posts finished so far."""

    def __init__(self, source: str = "<html>") -> None:
        self.source = source
        self.parser = _ExportParser(source)

    @property
    def channel(self) -> str:
        return self.parser.channel.strip()

    @property
    def authors(self) -> set[str]:
        """Authors shown on the page's own (not forwarded) messages."""
        return {a for a in self.parser.authors if a}

    def feed(self, chunk: str):
        try:
            self.parser.feed(chunk)
        except AssertionError as exc:  # html.parser's way of reporting hopeless markup
            raise CorpusError(f"{self.source}: unreadable HTML ({exc})") from None
        yield from self._drain(final=False)

    def close(self):
        try:
            self.parser.close()
        except AssertionError as exc:
            raise CorpusError(f"{self.source}: unreadable HTML ({exc})") from None
        if not self.parser.seen_history:
            raise CorpusError(f"{self.source}: not a Telegram Desktop export page (no message history)")
        if self.parser.stack:   # Telegram Desktop closes every element: a page that ends inside one was cut short
            inside = f" inside message {self.parser.current.id}" if self.parser.current is not None else ""
            raise CorpusError(f"{self.source}: the page ends{inside} with <{self.parser.stack[-1][0]}> still open "
                              "(the export was cut short): nothing imported; export it again")
        yield from self._drain(final=True)

    def _drain(self, final: bool):
        messages = self.parser.messages
        done = len(messages) if final or self.parser.current is None else len(messages) - 1
        for message in messages[:done]:
            yield message.post()
        del messages[:done]


def parse_date(title: str) -> str | None:
    """'05.09.2020 17:41:55 UTC+03:00' -> '2020-09-05T14:41:55+00:00'."""
    found = _DATE.search(title or "")
    if not found:
        return None
    day, month, year, hour, minute, second, tz_h, tz_m = found.groups()
    offset = dt.timedelta(0)
    if tz_h:
        sign = -1 if tz_h.startswith("-") else 1
        offset = sign * dt.timedelta(hours=abs(int(tz_h)), minutes=int(tz_m))
    moment = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         tzinfo=dt.timezone(offset))
    return moment.astimezone(dt.timezone.utc).isoformat()


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def export_file_link(href: str) -> bool:
    """Whether `href` points at a file inside the export folder: a custom emoji's sticker
    ("stickers/AnimatedSticker.tgs", "video_files/sticker (2).webm"), a photo, a video. Such a path
    is relative and its first folder has no dot; a web link written without a scheme starts with
    its domain ("vk.com/club1")."""
    href = href.strip()
    if not href or _SCHEME.match(href) or href.startswith(("/", "#", "?")):
        return False
    folder, slash, _ = href.partition("/")
    return bool(slash and folder) and "." not in folder and not folder.isspace()


def link_markup(text: str, href: str | None) -> str:
    """A text link as `[text](url)`; a bare link (text == url), a mailto or a link to a file of the
    export (a sticker behind an emoji: the emoji stays) as its text. A link whose text spans lines
    becomes one link per line, the line breaks where they were."""
    if not href or href.strip() == text.strip() or href.startswith("mailto:") or export_file_link(href):
        return text
    if "\n" in text:
        return "\n".join(link_markup(part, href) if part.strip() else part for part in text.split("\n"))
    return f"[{text}]({href})"


class _Message:
    def __init__(self, message_id: str) -> None:
        self.id = message_id
        self.date: str | None = None
        self.text: list[str] = []
        self.forwarded_text: list[str] = []
        self.forwarded = False
        self.media = False
        self.reactions: dict[str, int] = {}

    def post(self) -> dict[str, Any]:
        text = "".join(self.text)
        if not text.strip():
            text = "".join(self.forwarded_text)
        total = sum(self.reactions.values())
        return {
            "external_id": self.id, "date": self.date, "text": text.strip("\n "),
            "reactions": total if self.reactions else None,
            "reactions_json": json.dumps(self.reactions, ensure_ascii=False) if self.reactions else None,
            "is_repost": self.forwarded, "has_attachments": self.media,
        }


class _ExportParser(HTMLParser):
    def __init__(self, source: str = "<html>") -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, set[str]]] = []
        self.source = source
        self.header_depth = -1     # stack depth of the open div.page_header
        self.forwarded_depth = -1  # stack depth of the outermost open .forwarded part
        self.messages: list[_Message] = []
        self.current: _Message | None = None
        self.message_depth = -1
        self.channel = ""
        self.seen_history = False
        self.text_depth = -1      # stack depth of the open div.text (own or forwarded)
        self.text_forwarded = False
        self.link: tuple[str, list[str]] | None = None
        self.reaction: dict[str, Any] | None = None
        self.reaction_depth = -1
        self.capture: str | None = None  # 'channel', 'emoji', 'count', 'author'
        self.authors: set[str] = set()
        self.author = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        classes = set((attr.get("class") or "").split())
        if tag == "br":
            self._text("\n", raw=True)
        if tag in _VOID:
            return
        self.stack.append((tag, classes))
        depth = len(self.stack)
        if depth > MAX_DEPTH:
            raise CorpusError(f"{self.source}: HTML nested deeper than {MAX_DEPTH} elements (a Telegram Desktop "
                              "page nests about a dozen): not an export page, refused")
        if "page_header" in classes and self.header_depth < 0:
            self.header_depth = depth
        if "forwarded" in classes and self.forwarded_depth < 0:
            self.forwarded_depth = depth
        self._open_page_part(classes)
        if self._open_message(attr, classes) or self.current is None:
            return
        self._open_message_part(tag, attr, classes)
        self._open_reaction_part(classes)

    def _open_page_part(self, classes: set[str]) -> None:
        """The page's own marks: its message history, the channel name in its header."""
        if "history" in classes:
            self.seen_history = True
        if self.header_depth >= 0 and {"text", "bold"} <= classes:
            self.capture = "channel"

    def _open_message(self, attr: dict[str, str | None], classes: set[str]) -> bool:
        """A `div.message.default#messageN` starts a message."""
        msg_id = attr.get("id") or ""
        if not ("message" in classes and "default" in classes and re.fullmatch(r"message\d+", msg_id)):
            return False
        self.current = _Message(msg_id[len("message"):])
        self.messages.append(self.current)
        self.message_depth = len(self.stack)
        return True

    def _open_message_part(self, tag: str, attr: dict[str, str | None], classes: set[str]) -> None:
        """Inside a message: the repost mark, the author, attachments, the date, the text and its links."""
        assert self.current is not None
        depth = len(self.stack)
        inside_forwarded = self.forwarded_depth >= 0
        if "forwarded" in classes:
            self.current.forwarded = True
        if "from_name" in classes and not inside_forwarded and "forwarded" not in classes:
            self.capture, self.author = "author", ""
        if "media_wrap" in classes or "media_poll" in classes:
            self.current.media = True
        title = attr.get("title")
        if "date" in classes and "details" in classes and title and not inside_forwarded \
                and self.current.date is None:
            self.current.date = parse_date(title)
        if "text" in classes and tag == "div" and self.text_depth < 0:
            self.text_depth, self.text_forwarded = depth, inside_forwarded
        if tag == "a" and self.text_depth >= 0:
            self.link = (attr.get("href") or "", [])

    def _open_reaction_part(self, classes: set[str]) -> None:
        """A `span.reaction` and, inside it, its emoji, its count or one userpic per reacting user."""
        if "reaction" in classes:
            self.reaction, self.reaction_depth = {"emoji": "", "count": "", "pics": 0}, len(self.stack)
        elif self.reaction is not None:
            if "emoji" in classes:
                self.capture = "emoji"
            elif "count" in classes:
                self.capture = "count"
            elif "userpic" in classes:
                self.reaction["pics"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack:
            depth = len(self.stack)
            open_tag, _ = self.stack.pop()
            self._close(depth, open_tag)
            if open_tag == tag:
                break

    def _close(self, depth: int, tag: str) -> None:
        if self.capture == "author":   # "<name> via @bot": a post made through an inline bot is still <name>'s
            self.authors.add(_VIA_BOT.sub("", " ".join(self.author.split())))
        self.capture = None
        if tag == "a" and self.link is not None:
            href, parts = self.link
            self.link = None
            self._text(link_markup("".join(parts), href), raw=True)
        if depth == self.text_depth:
            self.text_depth = -1
        if depth == self.header_depth:
            self.header_depth = -1
        if depth == self.forwarded_depth:
            self.forwarded_depth = -1
        if depth == self.reaction_depth and self.reaction is not None and self.current is not None:
            count = self.reaction["count"].strip()
            value = int(count) if count.isdigit() else max(1, self.reaction["pics"])
            key = self.reaction["emoji"].strip() or "?"
            self.current.reactions[key] = self.current.reactions.get(key, 0) + value
            self.reaction, self.reaction_depth = None, -1
        if depth == self.message_depth:
            self.current, self.message_depth = None, -1

    def handle_data(self, data: str) -> None:
        if self.capture == "channel":
            self.channel += data
        elif self.capture == "author":
            self.author += data
        elif self.capture in ("emoji", "count") and self.reaction is not None:
            self.reaction[self.capture] += data
        else:
            self._text(data)

    def _text(self, data: str, raw: bool = False) -> None:
        if self.current is None or self.text_depth < 0:
            return
        if self.link is not None and (not raw or data == "\n"):
            self.link[1].append(data if raw else data.replace("\n", ""))  # a <br> inside a link stays inside
            return
        if not raw:
            data = data.replace("\n", "")  # the export's own newlines are layout; <br> is a line break
        (self.current.forwarded_text if self.text_forwarded else self.current.text).append(data)
