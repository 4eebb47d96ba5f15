"""Corpus cleaning rules: pure functions, no I/O. `corpus/cleaning.py` applies them to the database.

One post goes through `normalise` (line breaks, spaces, zero-width characters, the separator variants
`@@@`, `@ `, ` @ ` inside a line -> a line holding exactly `@`), then `strip_noise` (a last line that
is only a text link, links reduced to their text, the community's learned signatures
(corpus/signatures.py), an editor's note at the end, hashtag-only lines), then `exclusion_reason`
(the first rule that drops it). Corpus-wide rules (exact and near duplicates, the bot's own output)
live in `corpus/dedupe.py`. docs/cleaning.md says how each decision is made.

Every rule is switched and tuned by `CleanOptions` (config section [clean], documented in
docs/config.md). Reasons stored in posts.excluded_reason are the names in REASONS.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from common.text import fold

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

    enabled: bool = True                # false: keep every post with text as normalised text (no rule drops any)
    inline_separators: bool = True      # split one-line posts written "ЛИНИЯ @ ЛИНИЯ" at " @ "
    # remove a last line that is only a link, and the community's learned signatures, at either end
    strip_signature: bool = True
    strip_hashtag_lines: bool = True    # remove lines holding only hashtags (the post is kept)
    drop_reposts: bool = True           # drop reposts (VK copy_history, Telegram forwarded messages)
    drop_ads: bool = True               # drop ads: VK marked_as_ads, or text matching ad_patterns
    # regular expressions marking an ad, searched in the lowercased text
    ad_patterns: list[str] = field(default_factory=lambda: [
        r"#реклама", r"\berid\b", r"партн[её]рский (пост|материал)", r"на правах рекламы",
    ])
    drop_news: bool = True              # drop news posts: text matching news_patterns
    # regular expressions marking news, searched per line ("^": line start) in the lowercased text
    news_patterns: list[str] = field(default_factory=lambda: [r"^\s*⚡", r"#новост", r"^\s*срочно[:!]"])
    drop_neural: bool = True            # drop posts a neural network wrote (neural_tags, generated_patterns)
    # hashtags marking neural-network posts (case-insensitive, ё = е), on a line of their own, at
    # the start of a line or at the end of the post
    neural_tags: list[str] = field(default_factory=lambda: [
        "#нейробугурт", "#нейробугурты", "#нейросеть", "#нейронка", "#бугуртнейросети", "#neuralbugurt",
        "#neurobugurt", "#ai",
    ])
    # drop posts carrying any of these hashtags (always applied; []: none)
    drop_tags: list[str] = field(default_factory=lambda: ["#реклама", "#новости", "#опрос", "#конкурс"])
    # drop posts with a real URL in the body (a text link whose text is a name, mention or emoji keeps its text)
    drop_links: bool = True
    drop_media_only: bool = True        # drop posts whose text is empty once cleaned but that carry an attachment
    drop_generated: bool = True         # drop anything this bot generated (texts and edits), exactly or nearly
    drop_duplicates: bool = True        # drop exact duplicates (ignoring case, ё/е, punctuation, spaces)
    drop_near_duplicates: bool = True   # drop near duplicates: MinHash over character 5-grams, confirmed by Jaccard
    near_duplicate_threshold: float = 0.8   # Jaccard similarity, in (0, 1], from which two posts are near duplicates
    min_chars: int = 10                 # shortest cleaned post kept, in characters
    max_chars: int = 4000               # longest cleaned post kept, in characters
    min_separators: int = 1             # fewest "@" separator lines a post must have
    learn_signatures: bool = True       # learn lines that recur at the start or end of many of a community's posts
    signature_min_posts: int = 5        # a line is a signature when found in at least this many posts ...
    signature_min_share: float = 0.02   # ... and this share (0 to 1) of the community's posts with separators
    # extra signature patterns (regular expressions on the line as compared), stripped at either end
    signatures: list[str] = field(default_factory=list)
    keep_lines: list[str] = field(default_factory=list)   # lines never taken for a signature
    strip_notes: bool = True            # strip an editor's note after the punchline (from a note_patterns line on)
    # regular expressions (lowercased line, ё = е) that start an editor's note
    note_patterns: list[str] = field(default_factory=lambda: [
        r"^[_\-—–=]{2,}$", r"^прим(\.|ечание)?\s*(ред|адм|автора)", r"^(от|слово) (редакци|редактор|админ)",
        r"^p\.\s?s\b", r"^upd\b",
    ])
    # text saying it is machine-generated (regular expressions, lowercased, ё = е): dropped as "neural"
    generated_patterns: list[str] = field(default_factory=lambda: [
        r"(сгенерирова\w*|написа\w*|придума\w*|сочинил\w*|создан\w*)\s+(с помощью\s+|при помощи\s+)?"
        r"(нейросет\w*|нейронк\w*|ии\b|chat\s?gpt|gpt-?\d\w*|искусственн\w* интеллект\w*)",
        r"(нейросеть|нейронка|chat\s?gpt|gpt-?\d\w*|ии)\s+(написал\w*|сгенерировал\w*|придумал\w*|сочинил\w*)",
        r"\b(generated|written) (by|with) (ai|gpt|chatgpt|a neural)",
    ])

    def problems(self) -> dict[str, str]:
        problems = {}
        if not 0 < self.near_duplicate_threshold <= 1:
            problems["near_duplicate_threshold"] = "a number in (0, 1]"
        if self.min_chars < 0:
            problems["min_chars"] = "an integer >= 0"
        if self.max_chars <= self.min_chars:
            problems["max_chars"] = "an integer greater than clean.min_chars"
        if self.min_separators < 0:
            problems["min_separators"] = "an integer >= 0"
        if self.signature_min_posts < 1:
            problems["signature_min_posts"] = "an integer >= 1"
        if not 0 <= self.signature_min_share <= 1:
            problems["signature_min_share"] = "a number in [0, 1]"
        for key in ("ad_patterns", "news_patterns", "signatures", "note_patterns", "generated_patterns"):
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
# A real URL: a scheme, "www.", or a domain followed by a path ("vk.com/club1"). A bare site name
# ("GTA5MODS.COM") is a word of the post, not a link.
_URL = re.compile(
    r"(?i)(?:https?://|www\.|(?<![\w@.])(?:[a-z0-9-]+\.)+(?:ru|com|org|net|io|su|рф|me|ly|gg|tv|cc|ph)/)"
)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]+)\)")
_HIDDEN_LINK = re.compile(r"\[\s*\]\([^)\s]*\)")  # `[\u200c](https://...jpg)`: an invisible media preview
# A link to a file of an HTML export, its path may hold spaces and parentheses: `[🍺](video_files/sticker (2).webm)`
# (rows imported before the importer dropped such links; see telegram_html.export_file_link)
_FILE_LINK = re.compile(r"\[([^\]\n]*)\]\((?![A-Za-z][A-Za-z0-9+.-]*:)[^\s/().#?]+/(?:[^()\n]|\([^()\n]*\))*\)")
_HASHTAG = re.compile(r"#[\w\d_]+")
_LEADING_TAGS = re.compile(r"^(?:#[\w\d_]+[\s,.;]*)+")
_TRAILING_TAGS = re.compile(r"(?:[\s,.;]*#[\w\d_]+)+[\s.!]*$")
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


def resolve_links(text: str) -> str:
    """Markdown links `[text](target)` left by the Telegram importers -> their text: a mention, a
    phone number, an emoji (a sticker link of the HTML export) or a name keeps its text and is no
    longer a link; a link whose text is a URL keeps that URL (and so still counts as a link)."""
    return _MD_LINK.sub(lambda m: m.group(1), _FILE_LINK.sub(lambda m: m.group(1), _HIDDEN_LINK.sub("", text)))


def prepare(raw: str, options: CleanOptions = CleanOptions()) -> tuple[str, list[str]]:
    """`normalise`, then a last line that is only a text link to a web page dropped (a channel's
    link line, e.g. `[БУГУРТ-ТРЕД](https://t.me/...)`), then links reduced to their text. What
    signature learning and the later rules see."""
    return _prepare_normalised(normalise(raw, options), options)


def _prepare_normalised(text: str, options: CleanOptions) -> tuple[str, list[str]]:
    lines = text.split("\n")
    stripped = []
    if options.strip_signature and lines and _is_link_only(lines[-1]):
        lines.pop()
        stripped.append("signature")
    return _tidy([resolve_links(line).strip() for line in lines]), stripped


def strip_noise(text: str, options: CleanOptions = CleanOptions(), signatures=None) -> tuple[str, list[str]]:
    """Remove boilerplate from a normalised post: the last text-link line, the community's learned
    `signatures` (corpus.signatures.Signatures), an editor's note at the end and hashtag-only lines.
    Returns (text, what was stripped)."""
    text, stripped = _prepare_normalised(text, options)
    if options.strip_signature and signatures is not None:
        text, removed = signatures.strip(text)
        if removed:
            stripped.append("learned_signature")
    lines = text.split("\n") if text else []
    if options.strip_notes:
        cut = _note_start(lines, options.note_patterns)
        if cut is not None:
            lines = lines[:cut]
            stripped.append("editor_note")
    if options.strip_hashtag_lines:
        kept = [line for line in lines if not _HASHTAG_LINE.match(line)]
        if len(kept) != len(lines):
            stripped.append("hashtag_lines")
        lines = kept
    return _tidy(lines), stripped


def _note_start(lines: list[str], patterns: list[str]) -> int | None:
    """Index of the line an editor's note starts at: after the punchline, a line matching one of
    `patterns` (a line of underscores, "Прим. ред.", "P.S." ...)."""
    seps = [i for i, line in enumerate(lines) if line == "@"]
    first = seps[-1] + 2 if seps else 1
    for i in range(first, len(lines)):
        folded = fold(lines[i])
        if any(re.search(p, folded) for p in patterns):
            return i
    return None


def _is_link_only(line: str) -> bool:
    """A line that is one text link to a web page, with a name (not a URL, not a @mention) as text."""
    found = _MD_LINK.fullmatch(line.strip())
    if not found:
        return False
    label, target = found.group(1).strip(), found.group(2)
    return bool(label) and target.lower().startswith(("http://", "https://")) \
        and not label.startswith("@") and not _URL.search(label)


def has_link(text: str) -> bool:
    """Whether a real URL is in the text (links already reduced to their text by `resolve_links`)."""
    return bool(_URL.search(resolve_links(text)))


def hashtags(text: str) -> set[str]:
    """The post's tags: hashtags on a line of their own, at the start of a line, or at the end of
    the post. A hashtag quoted inside a sentence ("казалось бы #антибугурт", 'пишут "#нейробугурт"
    ...') is a word of the post, not a tag."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    found: list[str] = []
    for i, line in enumerate(lines):
        if _HASHTAG_LINE.match(line):
            found += _HASHTAG.findall(line)
            continue
        lead = _LEADING_TAGS.match(line)
        if lead:
            found += _HASHTAG.findall(lead.group(0))
        if i == len(lines) - 1:
            trail = _TRAILING_TAGS.search(line)
            if trail:
                found += _HASHTAG.findall(trail.group(0))
    return {fold(tag) for tag in found}


def separator_count(text: str) -> int:
    return sum(1 for line in text.split("\n") if line == "@")


def exclusion_reason(
    raw: str, clean: str, post: dict, options: CleanOptions = CleanOptions(), stoplist=None,
) -> str | None:
    """The first per-post rule that drops this post, or None. `raw` is the received text (tags and
    links are looked for there), `clean` the normalised one, `post` the row (flags: is_ad,
    is_repost, has_attachments)."""
    tags = hashtags(raw)
    folded = fold(raw)
    if options.drop_reposts and post.get("is_repost"):
        return "repost"
    if options.drop_ads and (post.get("is_ad") or _search_any(options.ad_patterns, folded)):
        return "ad"
    if options.drop_neural and (tags & {fold(t.strip()) for t in options.neural_tags}
                                or _search_any(options.generated_patterns, folded)):
        return "neural"
    if tags & {fold(t.strip()) for t in options.drop_tags}:
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


def clean_post(post: dict, options: CleanOptions = CleanOptions(), stoplist=None,
               signatures=None) -> tuple[str, str | None, list[str]]:
    """(clean text, excluded reason or None, stripped parts) of one post row. `signatures`: the
    post's community's learned boilerplate (corpus.signatures.Signatures), or None."""
    raw = post["text"] or ""
    if not options.enabled:   # every post is kept, but one without text (a photo's) is no post of the training text
        text = normalise(raw, options)
        return text, None if text else "empty", []
    clean, stripped = strip_noise(normalise(raw, options), options, signatures)
    return clean, exclusion_reason(resolve_links(raw), clean, post, options, stoplist), stripped


def fold_key(text: str) -> str:
    """The exact-duplicate key: lowercase, ё = е, letters and digits only, single spaces."""
    folded = fold(text)
    return " ".join(re.sub(r"[^\w@]+", " ", folded).split())


def _search_any(patterns: list[str], text: str, multiline: bool = False) -> bool:
    flags = re.IGNORECASE | (re.MULTILINE if multiline else 0)
    return any(re.search(p, text, flags) for p in patterns)
