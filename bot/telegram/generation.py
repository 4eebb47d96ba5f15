"""Generating on request, shared by the handlers: start-text checks, one screened draft generated in
a worker thread (the database is touched only on the event-loop thread), and /meme N regeneration."""
from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import replace

from bot import texts
from corpus.clean import tidy_generated
from corpus.store import drafts as draft_rows
from jobs.errors import JobError
from jobs.model_versions import checkpoint_for_version
from jobs.pool import Measures, new_seeds, screen, screen_edit, store_generated
from model.errors import ModelError
from model.words import decoding_options

log = logging.getLogger(__name__)

SEEDS_PER_REQUEST = 4  # one batch; the first text that passes the screening is served


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


def fit_to_vocab(holder, text: str) -> tuple[str, list[str]]:
    """The text as the model can read it (upper-cased when only that makes it known: the genre is
    written in capitals), and the characters it still does not know."""
    vocab = getattr(holder.current, "vocab", None)
    if vocab is None:
        return text, []
    missing = vocab.missing(text)
    if missing and not vocab.missing(text.upper()):
        return text.upper(), []
    return text, missing


def unknown_chars_reply(missing: list[str]) -> str:
    shown = " ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
    return texts.UNKNOWN_CHARS.format(chars=shown)


async def generate_draft(bot_data: dict, *, start_text: str, purpose: str, ok_status: str) -> dict | None:
    """Generate SEEDS_PER_REQUEST candidates in a worker thread; store them all through the pool's
    screen and ranking (jobs.pool.store_generated) and return the best-scoring one that passed, as
    a draft (`purpose`, `ok_status`); None when none passed. Raises ModelError for input the model
    refuses."""
    db, holder, service = bot_data["db"], bot_data["holder"], bot_data["service"]
    options = service.sample_options()
    seeds = new_seeds(SEEDS_PER_REQUEST)
    version, samples = await asyncio.to_thread(
        holder.generate_samples, seeds, start_text=start_text, **options.as_kwargs())
    ids = store_generated(db, samples, seeds, version=version, options=options, purpose=purpose,
                          ok_status=ok_status, stoplist=service.stoplist, start_text=start_text, keep=1,
                          min_known_words=service.plan.min_known_words)
    return draft_rows.get_draft(db, ids[0]) if ids else None


async def regenerate(bot_data: dict, draft: dict) -> tuple[str, bool]:
    """Meme `draft` again from its seed, model version and options: (text, regenerated). Falls
    back to the stored text (regenerated=False) only when that model is gone."""
    db, holder = bot_data["db"], bot_data["holder"]
    try:
        checkpoint = checkpoint_for_version(db, draft["model_version"])
    except JobError:
        return draft["text"], False
    try:
        _, (text,) = await asyncio.to_thread(
            holder.generate, [draft["seed"]], version=draft["model_version"], checkpoint=checkpoint,
            temperature=draft["temperature"], start_text=draft["start_text"],
            max_length=draft["max_length"], top_k=draft["top_k"], **decoding_options(draft.get("words")))
    except (LookupError, ModelError, OSError) as exc:
        log.warning("meme %s: model %s could not be loaded (%s); showing the stored text",
                    draft["id"], draft["model_version"], exc)
        return draft["text"], False
    if text != draft["text"] and text != tidy_generated(draft["text"]):   # drafts stored before tidying
        log.warning("meme %s regenerated differently from the stored text; showing the stored one", draft["id"])
        return draft["text"], True
    return text, True


def screen_meme(bot_data: dict, draft: dict, text: str) -> str | None:
    """Why /meme N must not show `text` now (the same screen as every draft: a word stop-listed or
    a post imported since it was made), or None. A moderator's edit is screened as an edit; a
    regenerated draft with the measures stored when it was made."""
    db, service = bot_data["db"], bot_data["service"]
    if draft["final_text"]:
        return screen_edit(db, text, service.stoplist)
    return screen(db, text, service.stoplist, replace(Measures.of_row(draft), shared_chars=None),
                  min_known_words=service.plan.min_known_words)
