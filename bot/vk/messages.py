"""The VK community's messages: /generate, /meme N and /top answered there as in Telegram (the
answers are bot/answers.py's: the same per-user limits, screen and draft rows).

A community token with the "messages" right (vk.community_token or BUHURT_VK_COMMUNITY_TOKEN) and
the community's Bots Long Poll API enabled with the "incoming message" event (`buhurt doctor`
checks it). vk_api's VkBotLongPoll runs in a daemon thread (a long poll is blocking and ends only
after up to vk.longpoll_wait_seconds); each new message from a user (not a conversation) is handled
on the event loop and answered with messages.send in a worker thread. A failing long poll (VK
unreachable, the long poll switched off, a rejected token) is a warning and a retry with back-off
(VK's refusal, such as a revoked token, is also told to the moderators once until the long poll
works again); it never stops the bot's other work, and the new long poll goes on from the last
event read, so a message written meanwhile is still answered."""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from typing import Any

import requests
from vk_api.bot_longpoll import VkBotEventType, VkBotLongPoll
from vk_api.exceptions import ApiError

from bot import answers, texts
from bot.secrets import REDACTOR
from bot.vk.wall import said, vk_client
from common.text import whole_characters
from jobs.alerts import once
from corpus.vk_client import with_timeout

log = logging.getLogger(__name__)

COMMANDS = ("/start", "/help", "/generate", "/meme", "/top")
GREETINGS = ("начать", "start")      # VK's "Start" button sends its label (in the user's language)
START_PAYLOAD = {"command": "start"}   # ... and this payload, whatever the language
BACKOFF_MAX_SECONDS = 60.0
PASSING = frozenset({1, 6, 9, 10, 29})   # VK's own failures and rate limits: no moderator is told


class VkMessages:
    """Listens to the community's messages (`start`) until `stop`."""

    def __init__(self, vk_settings: Any, subs: answers.Subscribers, *, session: requests.Session | None = None) -> None:
        self.group_id = abs(int(vk_settings.messages_group_id))
        self.wait = vk_settings.longpoll_wait_seconds
        session = with_timeout(session or requests.Session(), vk_settings.timeout_seconds)
        self.session = session
        self.api = vk_client(vk_settings, session, token=vk_settings.community_token,
                             missing="vk.messages_group_id is set but there is no community token"
                                     " (vk.community_token or BUHURT_VK_COMMUNITY_TOKEN)")
        self.subs = subs
        self.tasks: set[asyncio.Task] = set()
        self._stop = threading.Event()
        self.listening = threading.Event()   # a long poll is set up: messages written from now on are read
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the long poll's thread; messages are handled on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._listen, name="buhurt:vk-messages", daemon=True)
        self._thread.start()

    async def stop(self, grace: float) -> None:
        """No new messages; the answers being made finish (at most `grace` seconds). The thread ends
        after its long poll answers (a daemon: it never holds the process)."""
        self._stop.set()
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=grace)
            for task in late:
                task.cancel()

    def _listen(self) -> None:
        longpoll: VkBotLongPoll | None = None
        ts = None      # the last event read: after a failure the new long poll goes on from there
        failures = 0
        while not self._stop.is_set():
            try:
                if longpoll is None:
                    longpoll = VkBotLongPoll(self.api, self.group_id, wait=self.wait)
                    longpoll.session = self.session
                    if ts is not None:   # VK keeps the events after it (an outdated ts: `failed: 1`, a new one)
                        longpoll.ts = ts
                    else:                # the first: a failure before any event read goes on from here too
                        ts = longpoll.ts
                    self.listening.set()
                    log.info("VK messages: listening to community %s (bot long poll)", self.group_id)
                    self._on_loop(self._alert, False, "")
                events = longpoll.check()
                ts = longpoll.ts
            except Exception as exc:  # noqa: BLE001 - retried with back-off; the bot goes on
                failures += 1
                pause = min(2.0 ** (failures - 1), BACKOFF_MAX_SECONDS)
                log.warning("VK messages: the long poll of community %s failed (%s); retrying in %.0f s",
                            self.group_id, said(exc), pause)
                longpoll = None
                self.listening.clear()
                if isinstance(exc, ApiError) and exc.code not in PASSING:   # a revoked token, the long poll off
                    self._on_loop(self._alert, True, texts.VK_MESSAGES_REFUSED.format(group=self.group_id,
                                                                                      said=_said_ru(exc)))
                self._stop.wait(pause)
                continue
            failures = 0
            for event in events:
                if event.type == VkBotEventType.MESSAGE_NEW and getattr(event, "from_user", False) \
                        and not self._stop.is_set():
                    try:
                        self._on_loop(self.handle, _message_of(event))
                    except Exception:  # noqa: BLE001 - one event's failure must not end the listening
                        log.exception("VK messages: an incoming message could not be read")

    def _on_loop(self, coroutine_function: Any, *args: Any) -> None:
        """Run `coroutine_function(*args)` as a task of the event loop (from the long poll's thread)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._dispatch, coroutine_function, args)
        except RuntimeError:   # the loop closed: the bot is stopping
            log.debug("VK messages: the event loop is closed")

    def _dispatch(self, coroutine_function: Any, args: tuple) -> None:
        task = asyncio.get_running_loop().create_task(coroutine_function(*args), name="buhurt:vk-message")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _alert(self, refused: bool, text: str) -> None:
        """VK refuses the long poll: tell the moderators once, until it works again (jobs.alerts.once)."""
        try:
            service = self.subs.service
            await once(service.db, f"vk_messages:{self.group_id}", refused, service.moderation.notify, text)
        except Exception as exc:  # noqa: BLE001 - the next failure or start tries again
            log.warning("VK messages: could not record the long poll's alert (%s)", type(exc).__name__)

    async def handle(self, message: dict) -> None:
        """Answer one user's message: the flood gate first (as in Telegram), then the command."""
        peer: int | None = None
        try:
            user, peer = ("vk", int(message["from_id"])), int(message["peer_id"])
            # half an emoji (a lone surrogate) would make the answer that quotes it unsendable
            reply = await self.answer(user, whole_characters(message.get("text") or "").strip(),
                                      start_button=_payload(message) == START_PAYLOAD)
            if reply:
                await asyncio.to_thread(self.send, peer, reply)
        except Exception:  # noqa: BLE001 - one message's failure is a log line, and a polite answer
            log.exception("VK messages: answering a message failed")
            if peer is not None:
                await asyncio.to_thread(self.send, peer, texts.HANDLER_FAILED)

    async def answer(self, user: tuple[str, int], text: str, *, start_button: bool = False) -> str | None:
        subs = self.subs
        # the command ends at any white space, as in Telegram: "/generate" then a start text on the next lines
        command, argument = (text.split(maxsplit=1) + ["", ""])[:2]
        command = command.lower().split("@")[0]
        greeting = command in ("/start", "/help") or text.lower() in GREETINGS or start_button
        if command not in COMMANDS and not greeting:
            return None   # not a command: as in a Telegram private chat, no answer, and not counted
        admitted, notice = answers.flood_notice(subs.limits, user)   # commands count, as in Telegram
        if not admitted:
            return notice
        if greeting:
            return answers.with_training_note(texts.VK_START, subs.service)
        if command == "/generate":
            reply, refill = await answers.generate_answer(subs, user, argument.strip())
            if refill:
                answers.start_refill(subs)
            return reply
        if command == "/meme":
            return await answers.meme_answer(subs, user, argument.split())
        return answers.top_answer(subs.service)   # /top

    def send(self, peer_id: int, text: str) -> None:
        """messages.send (blocking); a refusal is a log line."""
        try:
            self.api.method("messages.send", {"peer_id": peer_id, "message": text, "dont_parse_links": 1,
                                              "random_id": secrets.randbelow(2**31 - 1) + 1})
        except Exception as exc:  # noqa: BLE001
            log.warning("VK messages: could not answer %s (%s)", peer_id, said(exc))


def _said_ru(exc: ApiError) -> str:
    """VK's refusal for the moderators: its code and its own words ("ошибка 5: ..."), no secret."""
    return REDACTOR.redact(f"ошибка {exc.code}: {exc.error.get('error_msg', '')}")


def _payload(message: dict) -> Any:
    """A keyboard button's payload (a JSON string in the message), None without one or unreadable."""
    try:
        return json.loads(message.get("payload") or "null")
    except (TypeError, ValueError):
        return None


def _message_of(event: Any) -> dict:
    """A message_new event's message: {"message": ..., "client_info": ...} from API 5.103 on, the
    message itself before (the long poll's version is the community's setting)."""
    return dict(event.message if event.message is not None else event.object)
