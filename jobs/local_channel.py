"""The tokenless "local channel": each post is printed (and appended to a file) instead of sent."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from corpus.store.state import get_state, set_state


class LocalChannel:
    """A Publisher for the embedded default. Message ids count up and survive restarts."""

    network = "local"
    chat_id = "local"

    def __init__(self, db, log_file: Path | None = None, out: TextIO | None = None) -> None:
        self.db, self.log_file, self.out = db, log_file, out or sys.stdout

    async def send(self, text: str) -> str:
        message_id = int(get_state(self.db, "local_message_id") or "0") + 1
        block = f"===== local channel, post {message_id} =====\n{text}\n"
        self.out.write(block + "\n")
        self.out.flush()
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a", encoding="utf-8") as handle:
                handle.write(block + "\n")
        set_state(self.db, "local_message_id", str(message_id))
        return str(message_id)
