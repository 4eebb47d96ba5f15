"""Corpus cleaning rules: pure functions, no I/O. `corpus/cleaning.py` applies them to the database.

One post goes through `normalise` (line breaks, spaces, zero-width characters, the separator variants
`@@@`, `@ `, ` @ ` inside a line -> a line holding exactly `@`), then `strip_noise` (a trailing
link-only signature line, hashtag-only lines), then `exclusion_reason` (the first rule that drops it).
Corpus-wide rules (exact and near duplicates, the bot's own output) live in `corpus/dedupe.py`.

Every rule is switched and tuned by `CleanOptions` (config section [clean], documented in
config.example.toml). Reasons stored in posts.excluded_reason are the names in REASONS.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# The order in which per-post rules are checked; the first that matches is the stored reason.
REASONS = (
    "repost", "ad", "neural", "tagged", "news", "link", "media_only", "empty", "stoplist",
    "too_short", "too_long", "few_separators",
    # corpus-wide, checked after the per-post rules (corpus/dedupe.py):
    "generated", "duplicate", "near_duplicate",
)


@dataclass(frozen=True)
class CleanOptions:
    """Switches and thresholds of every cleaning rule (config section [clean])."""

    enabled: bool = True
    inline_separators: bool = True
    strip_signature: bool = True
    strip_hashtag_lines: bool = True
    drop_reposts: bool = True
    drop_ads: bool = True
    ad_patterns: list[str] = field(default_factory=lambda: [
        r"#реклама", r"\berid\b", r"партн[её]рский (пост|материал)", r"на правах рекламы",
    ])
    drop_news: bool = True
    news_patterns: list[str] = field(default_factory=lambda: [r"^\s*⚡", r"#новост", r"^\s*срочно[:!]"])
    drop_neural: bool = True
    neural_tags: list[str] = field(default_factory=lambda: [
        "#нейробугурт", "#нейробугурты", "#нейросеть", "#нейронка", "#бугуртнейросети", "#neuralbugurt",
        "#neurobugurt", "#ai",
    ])
    drop_tags: list[str] = field(default_factory=lambda: ["#реклама", "#новости", "#опрос", "#конкурс"])
    drop_links: bool = True
    drop_media_only: bool = True
    drop_generated: bool = True
    drop_duplicates: bool = True
    drop_near_duplicates: bool = True
    near_duplicate_threshold: float = 0.8
    min_chars: int = 10
    max_chars: int = 4000
    min_separators: int = 2

    def validate(self) -> dict[str, str]:
        problems = {}
        if not 0 < self.near_duplicate_threshold <= 1:
            problems["near_duplicate_threshold"] = "a number in (0, 1]"
        if self.min_chars < 0:
            problems["min_chars"] = "an integer >= 0"
        if self.max_chars <= self.min_chars:
            problems["max_chars"] = "an integer greater than clean.min_chars"
        if self.min_separators < 0:
            problems["min_separators"] = "an integer >= 0"
        for key in ("ad_patterns", "news_patterns"):
            for pattern in getattr(self, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems[key] = f"valid regular expressions ({pattern!r}: {exc})"
        return problems


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u180e"), None)
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_SEPARATOR_LINE = re.compile(r"^@+$")
_INLINE_SEPARATOR = re.compile(r"(?<=\S) +@+ +(?=\S)")
_URL = re.compile(
    r"(?i)(?:https?://|www\.|(?<![\w@])(?:t\.me|vk\.com|vk\.cc|vk\.ru|youtu\.be|youtube\.com)/|"
    r"(?<![\w@.])[a-z0-9-]+\.(?:ru|com|org|net|io|su|рф|me|ly|gg|tv)(?:/|\b))"
)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]+)\)")
_HIDDEN_LINK = re.compile(r"\[\s*\]\([^)\s]*\)")  # `[\u200c](https://...jpg)`: an invisible media preview
_HASHTAG = re.compile(r"#[\w\d_]+")
_HASHTAG_LINE = re.compile(r"^(?:#[\w\d_@]+[\s,.;]*)+$")


def normalise(text: str, options: CleanOptions = CleanOptions()) -> str:
    """Canonical form: LF line breaks, single spaces, no zero-width characters, no blank lines
    inside the post, and separators as lines holding exactly "@" (never first, last or doubled)."""
    text = _HIDDEN_LINK.sub("", unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH))
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    lines = []
    for raw in text.split("\n"):
        line = _SPACES.sub(" ", raw).strip()
        if options.inline_separators and not _SEPARATOR_LINE.match(line.replace(" ", "")):
            parts = _INLINE_SEPARATOR.split(line)
            if len(parts) > 1:
                for i, part in enumerate(parts):
                    lines += (["@"] if i else []) + [part.strip()]
                continue
        if _SEPARATOR_LINE.match(line.replace(" ", "")):
            line = "@"
        lines.append(line)
    return _tidy(lines)


def _tidy(lines: list[str]) -> str:
    """Drop blank lines, doubled separators and separators at either end."""
    out: list[str] = []
    for line in lines:
        if not line or (line == "@" and (not out or out[-1] == "@")):
            continue
        out.append(line)
    while out and out[-1] == "@":
        out.pop()
    return "\n".join(out)


_GLUED_END = re.compile(r"(?<=[^\s@])@+$")                  # "ТЕКСТ@": the model skipped the line break
_GLUED_START = re.compile(r"^@+(?=[^\sA-Za-z0-9_@])")      # '@"ЦИТАТА', not a mention like @durov


def tidy_generated(text: str) -> str:
    """A generated post in the corpus's canonical form (`normalise`), with a separator the model
    glued to the end of a line ("ТЕКСТ@") or to the start of one ('@"ЦИТАТА') moved onto its own
    line, and no separator left dangling at either end (a post capped at its length limit, or one
    where the model closed with "@" before the gap)."""
    lines: list[str] = []
    for line in normalise(text).split("\n"):
        if line != "@":
            head = _GLUED_START.match(line)
            if head:
                lines.append("@")
                line = line[head.end():].lstrip()
            tail = _GLUED_END.search(line)
            if tail:
                lines += [line[:tail.start()].rstrip(), "@"]
                continue
        lines.append(line)
    return _tidy(lines)


def strip_noise(text: str, options: CleanOptions = CleanOptions()) -> tuple[str, list[str]]:
    """Remove a trailing signature (a last line that is only a link, e.g. a Telegram channel's
    `[БУГУРТ-ТРЕД](https://t.me/...)`) and hashtag-only lines. Returns (text, what was stripped)."""
    lines = text.split("\n") if text else []
    stripped = []
    if options.strip_signature and lines and _is_link_only(lines[-1]):
        lines.pop()
        stripped.append("signature")
    if options.strip_hashtag_lines:
        kept = [line for line in lines if not _HASHTAG_LINE.match(line)]
        if len(kept) != len(lines):
            stripped.append("hashtag_lines")
        lines = kept
    text = _tidy(lines)
    # Markdown links left by the Telegram importer keep only their text when it is not a URL.
    return text, stripped


def _is_link_only(line: str) -> bool:
    rest = _MD_LINK.sub("", line).strip()
    bare = _URL.sub("", rest).strip() if _URL.match(rest) else rest
    return (line != rest or bool(_URL.match(line))) and not bare.strip(" .,-—|")


def has_link(text: str) -> bool:
    return bool(_URL.search(text) or _MD_LINK.search(text))


def hashtags(text: str) -> set[str]:
    return {tag.lower().replace("ё", "е") for tag in _HASHTAG.findall(text)}


def separator_count(text: str) -> int:
    return sum(1 for line in text.split("\n") if line == "@")


def exclusion_reason(
    raw: str, clean: str, post: dict, options: CleanOptions = CleanOptions(), stoplist=None,
) -> str | None:
    """The first per-post rule that drops this post, or None. `raw` is the received text (tags and
    links are looked for there), `clean` the normalised one, `post` the row (flags: is_ad,
    is_repost, has_attachments)."""
    tags = hashtags(raw)
    folded = raw.lower().replace("ё", "е")
    if options.drop_reposts and post.get("is_repost"):
        return "repost"
    if options.drop_ads and (post.get("is_ad") or _search_any(options.ad_patterns, folded)):
        return "ad"
    if options.drop_neural and tags & {_fold(t) for t in options.neural_tags}:
        return "neural"
    if tags & {_fold(t) for t in options.drop_tags}:
        return "tagged"
    if options.drop_news and _search_any(options.news_patterns, folded, multiline=True):
        return "news"
    if options.drop_links and has_link(clean):
        return "link"
    if not clean.replace("@", "").strip():
        return "media_only" if options.drop_media_only and post.get("has_attachments") else "empty"
    if stoplist and stoplist.match(clean):
        return "stoplist"
    if len(clean) < options.min_chars:
        return "too_short"
    if len(clean) > options.max_chars:
        return "too_long"
    if separator_count(clean) < options.min_separators:
        return "few_separators"
    return None


def clean_post(post: dict, options: CleanOptions = CleanOptions(), stoplist=None) -> tuple[str, str | None, list[str]]:
    """(clean text, excluded reason or None, stripped parts) of one post row."""
    raw = post["text"] or ""
    if not options.enabled:
        return normalise(raw, options), None, []
    clean, stripped = strip_noise(normalise(raw, options), options)
    return clean, exclusion_reason(raw, clean, post, options, stoplist), stripped


def fold_key(text: str) -> str:
    """The exact-duplicate key: lowercase, ё = е, letters and digits only, single spaces."""
    folded = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w@]+", " ", folded).split())


def _fold(tag: str) -> str:
    return tag.strip().lower().replace("ё", "е")


def _search_any(patterns: list[str], text: str, multiline: bool = False) -> bool:
    flags = re.IGNORECASE | (re.MULTILINE if multiline else 0)
    return any(re.search(p, text, flags) for p in patterns)
