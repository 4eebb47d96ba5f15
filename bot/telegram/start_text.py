"""A subscriber's start text for `/generate ТЕКСТ`: what is wrong with it, said in one reply."""
from __future__ import annotations

import unicodedata

from bot import texts


def check_start_text(raw: str, limit: int) -> tuple[str, str | None]:
    """(normalised start text, None) or ("", a reply saying what is wrong with it)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return "", texts.START_EMPTY
    if len(text) > limit:
        return "", texts.START_TOO_LONG.format(limit=limit, length=len(text))
    if any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text):
        return "", texts.START_CONTROL
    return text, None


def unknown_chars_reply(missing: list[str]) -> str:
    """The reply naming the characters the model does not know (at most ten of them)."""
    shown = " ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
    return texts.UNKNOWN_CHARS.format(chars=shown)
