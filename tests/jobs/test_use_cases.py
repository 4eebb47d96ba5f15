"""jobs/'s use-cases without Telegram (the handlers call them): moderators' decisions and edits,
reaction totals pushed by a network, and meme N shown again. Real SQLite, a real tiny model."""
from __future__ import annotations

import asyncio

import pytest

from corpus.stoplist import StopList
from corpus.store import drafts, publications
from corpus.store.reactions import latest_counts
from jobs import decisions, on_request
from jobs.curation import take_ready_for
from jobs.decisions import EditOutcome, Moderator
from jobs.generator import GeneratorHolder
from jobs.moderation import AutoApprove
from jobs.reactions import record_pushed_counts
from jobs.service import Service, ServicePlan

TEXT = "ПРИХОДИШЬ ДОМОЙ\n@\nА ТАМ БАТЯ"
MOD = Moderator(5, "@mod")


@pytest.fixture
def service(db, tiny_checkpoint):
    return Service(db, GeneratorHolder(tiny_checkpoint), plan=ServicePlan(), publishers=[],
                   moderation=AutoApprove(), stoplist=StopList(words=["ГРЕЧКА"]))


def pending_draft(db, message_id: str) -> int:
    draft_id = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=1, max_length=150,
                                status="pending")
    drafts.set_moderation_message(db, draft_id, "-100", message_id)
    return draft_id


def test_a_decision_is_taken_once_from_the_drafts_own_message(service, db):
    one = pending_draft(db, "7")
    assert decisions.draft_shown_in(db, one, -100, 7)["id"] == one
    assert decisions.draft_shown_in(db, one, -100, 8) is None      # a stale or tampered button
    assert decisions.draft_shown_in(db, one + 1, -100, 7) is None
    assert asyncio.run(decisions.decide(db, one, "approve", MOD))
    assert not asyncio.run(decisions.decide(db, one, "reject", Moderator(6, "@late")))   # decided already
    assert drafts.get_draft(db, one)["status"] == "queued"
    assert [(a["action"], a["actor_id"]) for a in drafts.actions_for(db, one)] == [("approve", "5")]
    with pytest.raises(ValueError, match="publish"):
        asyncio.run(decisions.decide(db, pending_draft(db, "9"), "publish", MOD))


def test_an_edit_passes_the_edit_screen_and_a_decided_draft_takes_none(service, db):
    one, other = pending_draft(db, "7"), pending_draft(db, "8")

    def approve_edit(draft_id, text):
        return asyncio.run(decisions.approve_edit(service.drafting, service.plan.moderation, draft_id, text, MOD))

    outcome, reason = approve_edit(one, "ТАМ ГРЕЧКА\n@\nОПЯТЬ")
    assert outcome is EditOutcome.REFUSED and reason.startswith("stop-list")
    assert drafts.get_draft(db, one)["status"] == "pending" and drafts.get_draft(db, one)["final_text"] is None
    assert approve_edit(one, "ТАМ КАША\n@\nОПЯТЬ") == (EditOutcome.DONE, None)
    assert drafts.get_draft(db, one)["status"] == "queued"
    assert drafts.get_draft(db, one)["final_text"] == "ТАМ КАША\n@\nОПЯТЬ"
    assert decisions.draft_for_reply(db, "-100", "8")["id"] == other
    assert asyncio.run(decisions.decide(db, other, "reject", MOD))
    assert approve_edit(other, "ТАМ КАША\n@\nОПЯТЬ") == (EditOutcome.ALREADY_DECIDED, None)


def test_a_queued_draft_one_destination_already_has_keeps_its_text(service, db):
    """Telegram took the draft, VK refused it (retried later): an edit now would send meme #N to VK
    with other words, so it is refused; a queued draft whose only try failed still takes one."""
    def approve_edit(draft_id, text):
        return asyncio.run(decisions.approve_edit(service.drafting, service.plan.moderation, draft_id, text, MOD))

    half = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=1, max_length=150,
                            status="queued")
    sent = publications.begin_publication(db, half, "telegram", "@chan")
    publications.finish_publication(db, sent, "41")
    refused = publications.begin_publication(db, half, "vk", "-1")
    publications.fail_publication(db, refused, "access denied")
    assert approve_edit(half, "ТАМ КАША\n@\nОПЯТЬ") == (EditOutcome.UNDER_WAY, None)
    assert drafts.get_draft(db, half)["final_text"] is None and drafts.get_draft(db, half)["status"] == "queued"

    failed_only = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=2, max_length=150,
                                   status="queued")
    publications.fail_publication(db, publications.begin_publication(db, failed_only, "vk", "-1"), "flood")
    assert approve_edit(failed_only, "ТАМ КАША\n@\nОПЯТЬ") == (EditOutcome.DONE, None)
    assert drafts.get_draft(db, failed_only)["final_text"] == "ТАМ КАША\n@\nОПЯТЬ"


def test_pushed_reaction_totals_find_the_publication_under_any_of_its_names(db):
    draft_id = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=1, max_length=150,
                                status="queued")
    publication = publications.begin_publication(db, draft_id, "telegram", "@chan")
    publications.finish_publication(db, publication, "41")
    assert record_pushed_counts(db, "telegram", ["-1001", "@chan"], 41, {"👍": 2, "🔥": 1}) == \
        ("@chan", {"👍": 2, "🔥": 1})
    # a kind that disappeared is now zero, not its last count
    assert record_pushed_counts(db, "telegram", ["-1001", "@chan"], 41, {"👍": 3})[1] == {"👍": 3, "🔥": 0}
    assert latest_counts(db, publication) == {"👍": 3, "🔥": 0}
    assert record_pushed_counts(db, "telegram", ["-1001", "@chan"], 99, {"👍": 1}) == ("-1001", {"👍": 1})


def test_only_a_meme_someone_has_seen_is_shown_again(db):
    seen = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=1, max_length=150,
                            purpose=drafts.SUBSCRIBER, status="ready")
    assert on_request.shown_meme(db, seen, "7") is None                 # still in the pool
    assert take_ready_for(db, "7")["id"] == seen                         # a subscriber takes it
    assert take_ready_for(db, "8") is None                               # served exactly once
    assert on_request.shown_meme(db, seen, "7")["status"] == "served"
    assert on_request.shown_meme(db, seen, "8")["status"] == "served"   # the pool's: anyone may see it
    assert on_request.shown_meme(db, seen + 1, "7") is None


def test_a_meme_made_for_one_subscriber_s_own_text_is_shown_again_to_them_only(db):
    """/generate ТЕКСТ (or про СЛОВО): the draft is the asker's; /meme N by anyone else finds nothing."""
    from jobs.curation import claim_for

    theirs = drafts.add_draft(db, text=TEXT, model_version="v1", temperature=0.8, seed=1, max_length=150,
                              start_text="ПРИХОДИШЬ ДОМОЙ", purpose=drafts.REQUEST, status="served")
    assert claim_for(db, "vk:7", drafts.get_draft(db, theirs))          # as bot/answers.py records it
    assert on_request.shown_meme(db, theirs, "vk:7")["id"] == theirs
    assert on_request.shown_meme(db, theirs, "7") is None               # a Telegram user with the same number
    assert on_request.shown_meme(db, theirs, "8") is None
