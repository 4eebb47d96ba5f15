"""What subscribers ask for, as use-cases the chat handlers call: one screened draft generated now
(jobs.drafting.Drafting.make_one), a topic's start text, which memes may be shown again and to whom
(meme N is regenerated and screened by Drafting.regenerate and Drafting.screen_shown), and the
week's best publications."""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import sqlite_utils

from corpus.statuses import DraftStatus
from corpus.stoplist import StopList
from corpus.store import drafts as draft_rows
from corpus.store.clock import ago
from corpus.store.publications import sent_anywhere
from corpus.store.posts import kept_containing
from corpus.store.reactions import top_publications
from jobs.curation import was_served
from jobs.drafting import Drafting
from jobs.generator import GeneratorHolder
from model.words import russian_dictionary

VISIBLE = (DraftStatus.SERVED, DraftStatus.PUBLISHED)  # meme N is shown again only when someone has already seen it
TOP_DAYS, TOP_PLACES = 7, 5


def fit_to_vocab(holder: GeneratorHolder, text: str) -> tuple[str, list[str]]:
    """The text as the model can read it (upper-cased when only that makes it known: the genre is
    written in capitals), and the characters it still does not know."""
    vocab = getattr(holder.current, "vocab", None)
    if vocab is None:
        return text, []
    missing = vocab.missing(text)
    if missing and not vocab.missing(text.upper()):
        return text.upper(), []
    return text, missing


async def generate_for_subscriber(drafting: Drafting, start_text: str = "") -> dict | None:
    """/generate: one draft made now for this subscriber (continuing `start_text` when given),
    served at once; None when every candidate failed the screen."""
    purpose = draft_rows.REQUEST if start_text else draft_rows.SUBSCRIBER
    return await drafting.make_one(purpose=purpose, ok_status=DraftStatus.SERVED, start_text=start_text)


TOPIC = re.compile(r"(?:про|о|об|обо)\s+([^\W\d_]+)", re.IGNORECASE)   # /generate про кота
TOPIC_WORDS = 3   # a topic's start: the corpus line's words up to and including the topic word, at most this many


def topic_of(argument: str) -> str | None:
    """The topic word of `/generate про кота` (None: the argument is a start text)."""
    m = TOPIC.fullmatch(argument.strip())
    return m.group(1) if m else None


def word_forms(word: str) -> tuple[list[str], str]:
    """The word's forms as the genre writes them (capitals), and its dictionary form: every form of
    its likeliest dictionary reading ("кота" -> КОТ, КОТА, КОТУ, ...; КОТ), or the word itself when
    the dictionary does not know it."""
    morph = russian_dictionary()
    w = word.lower()
    if not morph.word_is_known(w):
        return [word.upper()], word.upper()
    best = morph.parse(w)[0]
    return sorted({word.upper()} | {f.word.upper() for f in best.lexeme}), best.normal_form.upper()


def topic_start(db: sqlite_utils.Database, word: str, rnd: random.Random,
                writable: Callable[[str], bool] = lambda start: True) -> str:
    """A start text about `word`: the last TOPIC_WORDS words up to a form of it on a line of a
    community's post ("ПОКУПАЕШЬ КОТА"), so the model goes on in the community's words; the word
    in its dictionary form when no post uses it. Only starts `writable` says the model can read
    (its vocabulary may lack a letter another word of the line has)."""
    forms, normal = word_forms(word)
    known = set(forms)
    starts = set()
    for text in kept_containing(db, forms):
        for line in text.split("\n"):
            words = line.split()
            for i, w in enumerate(words):
                if w.strip(".,!?:;«»\"()").upper() in known:
                    start = " ".join(words[max(0, i + 1 - TOPIC_WORDS):i + 1]).rstrip(".,!?:;")
                    if writable(start):
                        starts.add(start)
                    break
    return rnd.choice(sorted(starts)) if starts else normal


def shown_meme(db: sqlite_utils.Database, meme_id: int, user_id: Any) -> dict[str, Any] | None:
    """Meme `meme_id` when it may be shown again to subscriber `user_id` (served or published, or
    queued while some destination already has it: a channel posted it, another is paused or
    failing), else None. A draft made for a subscriber's own start text or topic (purpose
    'request', never published) is theirs: shown again only to a subscriber it was served to."""
    draft = draft_rows.get_draft(db, meme_id)
    if draft is None or (draft["status"] not in VISIBLE
                         and not (draft["status"] == DraftStatus.QUEUED and sent_anywhere(db, meme_id))):
        return None
    if draft["purpose"] == draft_rows.REQUEST and not was_served(db, user_id, draft):
        return None
    return draft


def top_of_week(db: sqlite_utils.Database, stoplist: StopList) -> list[dict[str, Any]]:
    """The week's best publications by reactions: one row per draft (its best-scoring publication),
    those without reactions or matching `stoplist` as it is now left out, at most TOP_PLACES. Every
    publication of the week is read: a draft has one per destination, and those of a few liked
    drafts (or of stop-listed ones) would fill any fixed number of rows."""
    best, seen = [], set()
    for row in top_publications(db, ago(days=TOP_DAYS), limit=None):
        if row["draft_id"] in seen or not row["score"] or stoplist.match(row["text"]):
            continue
        seen.add(row["draft_id"])
        best.append(row)
        if len(best) == TOP_PLACES:
            break
    return best
