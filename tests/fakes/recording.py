"""Doubles of what jobs/ sends out, recording instead of sending: a channel (a Publisher that can
refuse a number of sends) and the moderators (a Moderation that keeps notes and reminders)."""
from __future__ import annotations

from jobs.moderation import AutoApprove
from jobs.publish import PublishError


class RecordingChannel:
    """A Publisher that keeps what it was sent; can refuse a number of sends."""

    def __init__(self, network="test", chat_id="chan", refuse=0):
        self.network, self.chat_id, self.refuse, self.sent = network, chat_id, refuse, []

    async def send(self, text):
        if self.refuse:
            self.refuse -= 1
            raise PublishError("Forbidden: bot was kicked from the channel chat")
        self.sent.append(text)
        return str(100 + len(self.sent))


class Moderators(AutoApprove):
    """Moderation that collects notes and reminders instead of sending them."""

    def __init__(self, enabled=False):
        self.enabled, self.notes, self.reminders, self.shown = enabled, [], [], []

    async def submit(self, draft):
        self.shown.append(draft["id"])
        return "-100", str(len(self.shown))

    async def notify(self, text):
        self.notes.append(text)

    async def remind(self, pending):
        self.reminders.append(pending)
