"""What subscribers ask for, as use-cases the chat handlers call: a ready draft from the /generate
pool, one screened draft generated now (worker thread; the database is touched only on the calling
thread), meme N shown again (regenerated from its seed, model version and options, screened as
every draft is), and the week's best publications."""
from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import replace
from typing import Any

import sqlite_utils

from corpus.rules import tidy_generated
from corpus.statuses import DraftStatus
from corpus.store import drafts as draft_rows
from corpus.store.clock import ago
from corpus.store.posts import kept_containing
from corpus.store.reactions import top_publications
from jobs.errors import JobError
from jobs.generator import GeneratorHolder
from jobs.model_registry import checkpoint_for_version
from jobs.patience import patiently
from jobs.pool import Measures, new_seeds, screen, screen_edit, store_generated, stored_request
from jobs.service import Service
from model.errors import ModelError

log = logging.getLogger(__name__)

SEEDS_PER_REQUEST = 4  # one batch; the best-scoring text that passes the screen is served
VISIBLE = (DraftStatus.SERVED, DraftStatus.PUBLISHED)  # meme N is shown again only when someone has already seen it
TOP_DAYS, TOP_PLACES = 7, 5


async def take_ready(service: Service) -> dict[str, Any] | None:
    """The oldest ready draft of the /generate pool, served exactly once; None when it is empty.
    While another process holds the database it waits off the event loop (DatabaseBusy when the
    lock outlasts the busy timeout)."""
    return await patiently(draft_rows.take_ready, service.db)


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


async def generate_draft(service: Service, *, start_text: str, purpose: str, ok_status: str) -> dict | None:
    """Generate SEEDS_PER_REQUEST candidates in a worker thread; store them all through the pool's
    screen and ranking (jobs.pool.store_generated) and return the best-scoring one that passed, as
    a draft (`purpose`, `ok_status`); None when none passed. Raises ModelError for input the model
    refuses."""
    options = service.sample_options()
    seeds = new_seeds(SEEDS_PER_REQUEST)
    request = options.request(start_text=start_text)
    version, samples = await asyncio.to_thread(service.holder.generate_samples, seeds, request)
    ids = await patiently(store_generated, service.db, samples, seeds, version=version, request=request,
                          purpose=purpose, ok_status=ok_status, stoplist=service.stoplist,
                          screening=service.plan.screen, keep=1)
    return draft_rows.get_draft(service.db, ids[0]) if ids else None


async def generate_for_subscriber(service: Service, start_text: str = "") -> dict | None:
    """/generate: one draft made now for this subscriber (continuing `start_text` when given),
    served at once; None when every candidate failed the screen."""
    purpose = draft_rows.REQUEST if start_text else draft_rows.SUBSCRIBER
    return await generate_draft(service, start_text=start_text, purpose=purpose, ok_status=DraftStatus.SERVED)


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
    from model.words import russian_dictionary

    morph = russian_dictionary()
    w = word.lower()
    if not morph.word_is_known(w):
        return [word.upper()], word.upper()
    best = morph.parse(w)[0]
    return sorted({word.upper()} | {f.word.upper() for f in best.lexeme}), best.normal_form.upper()


def topic_start(db: sqlite_utils.Database, word: str, rnd: random.Random) -> str:
    """A start text about `word`: the last TOPIC_WORDS words up to a form of it on a line of a
    community's post ("ПОКУПАЕШЬ КОТА"), so the model goes on in the community's words; the word
    in its dictionary form when no post uses it."""
    forms, normal = word_forms(word)
    known = set(forms)
    starts = set()
    for text in kept_containing(db, forms):
        for line in text.split("\n"):
            words = line.split()
            for i, w in enumerate(words):
                if w.strip(".,!?:;«»\"()").upper() in known:
                    starts.add(" ".join(words[max(0, i + 1 - TOPIC_WORDS):i + 1]).rstrip(".,!?:;"))
                    break
    return rnd.choice(sorted(starts)) if starts else normal


def shown_meme(service: Service, meme_id: int) -> dict[str, Any] | None:
    """Meme `meme_id` when it may be shown again (served or published), else None."""
    draft = draft_rows.get_draft(service.db, meme_id)
    return draft if draft is not None and draft["status"] in VISIBLE else None


async def regenerate(db: sqlite_utils.Database, holder: GeneratorHolder, draft: dict) -> tuple[str, bool]:
    """Meme `draft` again from its seed, model version and options: (text, regenerated). Falls
    back to the stored text (regenerated=False) only when that model is gone."""
    try:
        checkpoint = checkpoint_for_version(db, draft["model_version"])
    except JobError:
        return draft["text"], False
    try:
        _, (text,) = await asyncio.to_thread(
            holder.generate, [draft["seed"]], stored_request(draft), version=draft["model_version"],
            checkpoint=checkpoint)
    except (LookupError, ModelError, OSError) as exc:
        log.warning("meme %s: model %s could not be loaded (%s); showing the stored text",
                    draft["id"], draft["model_version"], exc)
        return draft["text"], False
    if text != draft["text"] and text != tidy_generated(draft["text"]):   # drafts stored before tidying
        log.warning("meme %s regenerated differently from the stored text; showing the stored one", draft["id"])
        return draft["text"], True
    return text, True


def screen_shown(service: Service, draft: dict, text: str) -> str | None:
    """Why meme N must not show `text` now (the same screen as every draft: a word stop-listed or
    a post imported since it was made), or None. A moderator's edit is screened as an edit; a
    regenerated draft with the measures stored when it was made."""
    if draft["final_text"]:
        return screen_edit(service.db, text, service.stoplist)
    return screen(service.db, text, service.stoplist, replace(Measures.of_row(draft), shared_chars=None),
                  screening=service.plan.screen)


def top_of_week(service: Service) -> list[dict[str, Any]]:
    """The week's best publications by reactions: one row per draft (its best-scoring publication),
    those without reactions left out, at most TOP_PLACES."""
    best, seen = [], set()
    for row in top_publications(service.db, ago(days=TOP_DAYS), limit=10):
        if row["draft_id"] in seen or not row["score"]:
            continue
        seen.add(row["draft_id"])
        best.append(row)
        if len(best) == TOP_PLACES:
            break
    return best
