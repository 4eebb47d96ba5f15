"""Telegram's 4,096-character limit on a message (telegram.constants.MessageLimit.MAX_TEXT_LENGTH;
VK's is higher): a text over it is refused whole ("message is too long"), so what the bot composes
around a post (a header, the score and the votes, "Мем #N") is kept, and the post itself is
shortened, with a marker saying how much was left out. Replies on both networks go through it."""
from __future__ import annotations

import re

LIMIT = 4096
MARK = "\n… (ещё {n} симв.)"
_MARKED = re.compile(re.escape(MARK).replace(re.escape("{n}"), "[0-9]+") + r"\s*$")


def shorten(body: str, room: int) -> str:
    """`body` in at most `room` characters: cut, with the marker, when it is longer."""
    if len(body) <= room:
        return body
    keep = max(0, room - len(MARK.format(n=len(body))))
    return body[:keep] + MARK.format(n=len(body) - keep)


def shorten_again(body: str, room: int) -> str:
    """`body` as `shorten` gave it (its marker, if any, at the end) in at most `room` characters:
    cut further when it is longer, the marker counting every character left out."""
    if len(body) <= room:
        return body
    marked = _MARKED.search(body)
    kept = body[:marked.start()] if marked else body
    total = len(body) if marked is None else len(kept) + int(re.sub(r"[^0-9]", "", marked.group()))
    keep = max(0, room - len(MARK.format(n=total)))
    return kept[:keep] + MARK.format(n=total - keep)


def shortened(text: str) -> bool:
    """`text` ends with `shorten`'s marker: a copy of a post the bot showed only in part."""
    return _MARKED.search(text) is not None


def fit(template: str, text: str, limit: int = LIMIT, **fields: object) -> str:
    """`template` (a str.format pattern with a {text} field) filled so that the whole is within
    `limit`: only `text` is shortened."""
    frame = len(template.format(text="", **fields))
    return template.format(text=shorten(text, limit - frame), **fields)


def in_messages(lines: list[str], limit: int = LIMIT) -> list[str]:
    """`lines` joined into as few messages of at most `limit` characters as they fit in, each
    line whole (one longer than a message alone is shortened)."""
    messages: list[str] = []
    for line in lines:
        line = shorten(line, limit)
        if messages and len(messages[-1]) + 1 + len(line) <= limit:
            messages[-1] += "\n" + line
        else:
            messages.append(line)
    return messages
