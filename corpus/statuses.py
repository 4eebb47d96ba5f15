"""A draft's status (drafts.status): the draft state machine of corpus/store/drafts.py, as one value.

The members are the strings stored in the database, so a member equals its column value.
"""
from __future__ import annotations

from enum import StrEnum


class DraftStatus(StrEnum):
    GENERATED = "generated"          # just made, not yet screened (jobs/pool.py)
    REJECTED_AUTO = "rejected_auto"  # screened out, outranked, or skipped by every destination
    PENDING = "pending"              # waiting for the moderators
    REJECTED = "rejected"            # a moderator said no
    QUEUED = "queued"                # approved: waiting for its publishing slot
    PUBLISHED = "published"          # every destination has it
    READY = "ready"                  # a subscriber's (or rater's) draft waiting to be served
    SERVED = "served"                # given to a subscriber
