"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests and the latency benchmark.

The real python-telegram-bot client talks HTTP to it (telegram.base_url = `server.base_url`). It
queues updates a test injects, long-polls getUpdates with offsets, keeps the messages the bot sent
(so edits and callback queries refer to real ones), takes photo uploads (sendPhoto, multipart),
records every call, and answers errors on demand (429 with retry_after, 403, 400 with migrate_to_chat_id, 500).
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl

from tests.helpers import PATIENCE

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "Бугурт", "username": "buhurt_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
JSON_PARAMS = ("reply_markup", "allowed_updates", "reply_parameters", "link_preview_options",
               "entities", "commands", "scope")
MAX_TEXT = 4096


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float


DROPPED = 0  # the status recorded for a call whose connection was closed without an answer


@dataclass
class Failure:
    method: str
    status: int
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    times: int = 1
    chat_id: str | None = None


class FakeBotApi:
    """Start with `start()` (or as a context manager); `base_url` goes into telegram.base_url."""

    def __init__(self, token: str = "123456:TEST-token-for-the-fake-server-0000000") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict] = {}
        self.chats: dict[int, dict] = {}
        self.members: dict[tuple[int, int], dict] = {}  # (chat id, user id) -> ChatMember; default below
        self.photos: list[tuple[int, bytes]] = []        # (chat id, the uploaded image) of each sendPhoto
        self._usernames: dict[str, int] = {}
        self._updates: list[dict] = []
        self._sent_updates: list[dict] = []   # every update pushed, for edit_text
        self._pushed_at: dict[int, float] = {}
        self.delivered_at: dict[int, float] = {}
        self._failures: list[Failure] = []
        self._holds: dict[tuple[str, str], threading.Event] = {}
        self._next_update = itertools.count(1)
        self._next_message: dict[int, itertools.count] = {}
        self._next_channel = itertools.count(1)
        self._cond = threading.Condition()
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None

    # ---- life cycle -------------------------------------------------------------------------
    def start(self) -> "FakeBotApi":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for event in self._holds.values():
                event.set()
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeBotApi":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    # ---- chats and injected updates -------------------------------------------------------------
    def add_chat(self, chat_id: int, chat_type: str, *, title: str | None = None, username: str | None = None) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if title:
            chat["title"] = title
        if username:
            chat["username"] = username
            self._usernames[username.lower()] = chat_id
        self.chats[chat_id] = chat
        return chat

    def chat(self, chat_id: int | str) -> dict:
        text = str(chat_id)
        if text.startswith("@"):
            known = self._usernames.get(text[1:].lower())
            if known is None:
                known = -1001000000000 - next(self._next_channel)
                self.add_chat(known, "channel", title=text[1:], username=text[1:])
            return self.chats[known]
        number = int(text)
        if number not in self.chats:
            kind = "private" if number > 0 else ("supergroup" if text.startswith("-100") else "group")
            self.add_chat(number, kind, title=None if number > 0 else f"chat {number}")
        return self.chats[number]

    def set_member(self, chat_id: int | str, user_id: int, status: str, **rights: Any) -> None:
        """getChatMember's answer for `user_id` in `chat_id` ("administrator", "member", "left", ...).
        By default the bot is an administrator that may post, and anyone else a member."""
        with self._cond:
            self.members[(self.chat(chat_id)["id"], user_id)] = _member(user_id, status, **rights)

    @staticmethod
    def user(user_id: int, name: str = "Вася") -> dict:
        return {"id": user_id, "is_bot": False, "first_name": name, "username": f"user{user_id}"}

    def push(self, **update: Any) -> int:
        with self._cond:
            update_id = next(self._next_update)
            self._updates.append({"update_id": update_id, **update})
            self._sent_updates.append(self._updates[-1])
            self._pushed_at[update_id] = time.perf_counter()
            self._cond.notify_all()
        return update_id

    def send_text(self, text: str, *, user_id: int, chat_id: int | None = None,
                  reply_to: dict | None = None, name: str = "Вася") -> int:
        """A user's message (a command when it starts with '/'); private chat unless chat_id."""
        chat = self.chat(chat_id if chat_id is not None else user_id)
        with self._cond:
            message_id = self._new_message_id(chat["id"])
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat,
                                   "from": self.user(user_id, name), "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self.push(message=message)

    def edit_text(self, update_id: int, text: str) -> int:
        """The user edits the message that update `update_id` carried (send_text's): an
        edited_message update with the new text, delivered only to a bot that asked for edits
        (allowed_updates), as Telegram does."""
        with self._cond:
            original = next(u["message"] for u in self._sent_updates if u["update_id"] == update_id)
        edited = {**original, "text": text, "edit_date": int(time.time())}
        if text.startswith("/"):
            edited["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        else:
            edited.pop("entities", None)
        return self.push(edited_message=edited)

    def press(self, data: str, *, user_id: int, message: dict, name: str = "Модератор") -> int:
        """A callback query: `user_id` pressed a button with `data` under the bot's `message`."""
        query = {"id": f"cq{time.monotonic_ns()}", "from": self.user(user_id, name),
                 "chat_instance": "42", "data": data, "message": message}
        return self.push(callback_query=query)

    def reaction_count(self, chat_id: int | str, message_id: int, counts: dict[str, int]) -> int:
        reactions = []
        for kind, total in counts.items():
            if kind == "paid":
                rtype: dict[str, Any] = {"type": "paid"}
            elif kind.startswith("custom:"):
                rtype = {"type": "custom_emoji", "custom_emoji_id": kind.split(":", 1)[1]}
            else:
                rtype = {"type": "emoji", "emoji": kind}
            reactions.append({"type": rtype, "total_count": total})
        return self.push(message_reaction_count={"chat": self.chat(chat_id), "message_id": message_id,
                                                 "date": int(time.time()), "reactions": reactions})

    def pushed_at(self, update_id: int) -> float:
        return self._pushed_at[update_id]

    def pending_updates(self) -> int:
        with self._cond:
            return len(self._updates)

    # ---- failures on demand -----------------------------------------------------------------------
    def fail(self, method: str, status: int, *, description: str | None = None, retry_after: int | None = None,
             migrate_to: int | None = None, times: int = 1, chat_id: int | str | None = None) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) answer `status`."""
        parameters: dict[str, Any] = {}
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        if migrate_to is not None:
            parameters["migrate_to_chat_id"] = migrate_to
        default = {429: f"Too Many Requests: retry after {retry_after}", 403: "Forbidden: bot is not a member",
                   401: "Unauthorized",
                   400: "Bad Request: chat not found", 500: "Internal Server Error"}.get(status, "error")
        with self._cond:
            self._failures.append(Failure(method, status, description or default, parameters, times,
                                          None if chat_id is None else str(chat_id)))

    def drop(self, method: str, *, times: int = 1, chat_id: int | str | None = None) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) get no answer at all: the
        server closes the connection after reading the request (recorded with status DROPPED)."""
        with self._cond:
            self._failures.append(Failure(method, DROPPED, "connection dropped", {}, times,
                                          None if chat_id is None else str(chat_id)))

    def recover(self, method: str) -> None:
        """Forget the failures still pending for `method`: it answers normally again."""
        with self._cond:
            self._failures = [f for f in self._failures if f.method != method]

    def hold(self, method: str, chat_id: int | str) -> threading.Event:
        """Do `method` to `chat_id` (the post exists) but answer only when the event is set: the
        window in which a client can die between sending and recording."""
        event = threading.Event()
        with self._cond:
            self._holds[(method, str(chat_id))] = event
        return event

    # ---- what the bot did ------------------------------------------------------------------------
    def calls_of(self, method: str, *, ok_only: bool = True) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    def sent(self, chat_id: int | str | None = None) -> list[dict]:
        """Params of successful sendMessage calls (to `chat_id` if given)."""
        return [c.params for c in self.calls_of("sendMessage")
                if chat_id is None or str(c.params.get("chat_id")) == str(chat_id)]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = PATIENCE) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    methods = [c.method for c in self.calls[-15:]]
                    raise AssertionError(f"timed out waiting; last calls: {methods}")
                self._cond.wait(min(left, 0.05))

    def wait_sent(self, chat_id: int | str, count: int = 1, timeout: float = PATIENCE) -> list[dict]:
        return self.wait_for(lambda: (s := self.sent(chat_id)) and len(s) >= count and s, timeout)

    def message(self, chat_id: int | str, message_id: int) -> dict:
        return self.messages[(self.chat(chat_id)["id"], int(message_id))]

    def wait_drained(self, timeout: float = 10.0) -> None:
        """Every injected update was fetched by the bot (and confirmed by a later offset)."""
        self.wait_for(lambda: not self._updates, timeout)

    # ---- the Bot API methods -----------------------------------------------------------------------
    def _new_message_id(self, chat_id: int) -> int:
        return next(self._next_message.setdefault(chat_id, itertools.count(1)))

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        with self._cond:
            failure = self._take_failure(method, params)
            if failure is not None:
                status, body = failure
            else:
                status, body = self._answer(method, params)
            self.calls.append(Call(method, params, status, time.perf_counter()))
            self._cond.notify_all()
        if method == "getUpdates" and status == 200 and not body["result"]:
            body = self._long_poll(params)
        held = self._holds.get((method, str(params.get("chat_id"))))
        if held is not None:
            held.wait(30)
        return status, body

    def _take_failure(self, method: str, params: dict) -> tuple[int, dict] | None:
        for failure in self._failures:
            if failure.method == method and (failure.chat_id is None or failure.chat_id == str(params.get("chat_id"))):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                body = {"ok": False, "error_code": failure.status, "description": failure.description}
                if failure.parameters:
                    body["parameters"] = failure.parameters
                return failure.status, body
        return None

    def _long_poll(self, params: dict) -> dict:
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 5.0)
        with self._cond:
            while not self._stopping:
                result = self._updates_from(params)
                if result or time.monotonic() >= deadline:
                    return {"ok": True, "result": result}
                self._cond.wait(min(deadline - time.monotonic(), 0.5))
        return {"ok": True, "result": []}

    def _updates_from(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        wanted = params.get("allowed_updates")
        if wanted:   # Telegram never delivers the kinds a bot did not ask for
            self._updates = [u for u in self._updates if set(u) - {"update_id"} <= set(wanted)]
        limit = int(params.get("limit") or 100)
        now = time.perf_counter()
        for update in self._updates[:limit]:
            self.delivered_at.setdefault(update["update_id"], now)
        return self._updates[:limit]

    def _answer(self, method: str, p: dict) -> tuple[int, dict]:
        def ok(result: Any) -> tuple[int, dict]:
            return 200, {"ok": True, "result": result}

        def bad(description: str, status: int = 400) -> tuple[int, dict]:
            return status, {"ok": False, "error_code": status, "description": description}

        if method in ("getMe",):
            return ok(BOT_USER)
        if method in ("deleteWebhook", "setMyCommands", "answerCallbackQuery", "close", "logOut"):
            return ok(True)
        if method == "getUpdates":
            return ok(self._updates_from(p))
        if method == "getChat":  # a ChatFullInfo: the chat plus the fields PTB requires
            gifts = {key: False for key in ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                                          "gifts_from_channels")}
            return ok({**self.chat(p["chat_id"]), "accent_color_id": 0, "max_reaction_count": 11,
                       "accepted_gift_types": gifts})
        if method == "getChatMember":
            chat_id, user_id = self.chat(p["chat_id"])["id"], int(p["user_id"])
            default = _member(user_id, "administrator") if user_id == BOT_USER["id"] else _member(user_id, "member")
            return ok(self.members.get((chat_id, user_id), default))
        if method == "sendMessage":
            text = p.get("text", "")
            if not text.strip():
                return bad("Bad Request: message text is empty")
            if len(text) > MAX_TEXT:
                return bad("Bad Request: message is too long")
            chat = self.chat(p["chat_id"])
            message = {"message_id": self._new_message_id(chat["id"]), "date": int(time.time()),
                       "chat": chat, "text": text}
            if chat["type"] != "channel":
                message["from"] = BOT_USER
            if p.get("reply_markup"):
                message["reply_markup"] = p["reply_markup"]
            self.messages[(chat["id"], message["message_id"])] = message
            return ok(message)
        if method == "sendPhoto":
            photo = p.get("photo")
            if not isinstance(photo, bytes) or not photo.startswith(b"\x89PNG"):
                return bad("Bad Request: wrong type of the web page content")   # what Telegram says to a non-image
            chat = self.chat(p["chat_id"])
            message = {"message_id": self._new_message_id(chat["id"]), "date": int(time.time()), "chat": chat,
                       "photo": [{"file_id": f"photo{len(self.photos)}", "file_unique_id": f"u{len(self.photos)}",
                                  "width": 1, "height": 1, "file_size": len(photo)}]}
            if chat["type"] != "channel":
                message["from"] = BOT_USER
            if p.get("caption"):
                message["caption"] = p["caption"]
            self.photos.append((chat["id"], photo))
            self.messages[(chat["id"], message["message_id"])] = message
            return ok(message)
        if method in ("editMessageText", "editMessageReplyMarkup"):
            key = (self.chat(p["chat_id"])["id"], int(p["message_id"]))
            message = self.messages.get(key)
            if message is None:
                return bad("Bad Request: message to edit not found")
            new = dict(message)
            if method == "editMessageText":
                if len(p.get("text", "")) > MAX_TEXT:
                    return bad("Bad Request: message is too long")
                new["text"] = p["text"]
            new.pop("reply_markup", None)
            if p.get("reply_markup") and p["reply_markup"].get("inline_keyboard"):
                new["reply_markup"] = p["reply_markup"]
            if new == message:
                return bad("Bad Request: message is not modified")
            self.messages[key] = new
            return ok(new)
        return bad("Not Found: method not found", 404)


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body as {name: text, or bytes for a file part}."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        params[str(name)] = payload if part.get_filename() else payload.decode("utf-8")
    return params


def _member(user_id: int, status: str, **rights: Any) -> dict:
    user = BOT_USER if user_id == BOT_USER["id"] else FakeBotApi.user(user_id)
    member: dict[str, Any] = {"user": user, "status": status}
    if status == "administrator":
        member.update({key: False for key in (
            "can_be_edited", "is_anonymous", "can_restrict_members", "can_promote_members", "can_change_info",
            "can_post_stories", "can_edit_stories", "can_delete_stories", "can_manage_video_chats")})
        member.update(can_manage_chat=True, can_delete_messages=True, can_invite_users=True,
                      can_post_messages=True, can_edit_messages=True)
    member.update(rights)
    return member


def _handler_for(api: FakeBotApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type") or ""
            raw = "" if "multipart/form-data" in content_type else body.decode("utf-8")
            prefix = f"/bot{api.token}/"
            if not self.path.startswith(prefix):
                with api._cond:  # a wrong token: recorded (without it) like any other call
                    api.calls.append(Call(self.path.rsplit("/", 1)[-1], {}, 401, time.perf_counter()))
                    api._cond.notify_all()
                self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                return
            if "multipart/form-data" in content_type:   # an upload (sendPhoto): files arrive as bytes
                params = _multipart(content_type, body)
                for key in JSON_PARAMS:
                    if isinstance(params.get(key), str):
                        params[key] = json.loads(params[key])
            elif "json" in content_type:
                params = json.loads(raw or "{}")
            else:
                params = dict(parse_qsl(raw, keep_blank_values=True))
                for key in JSON_PARAMS:
                    if isinstance(params.get(key), str):
                        params[key] = json.loads(params[key])
            status, body = api.handle(self.path[len(prefix):], params)
            if status == DROPPED:  # no answer: the client sees the connection closed
                self.close_connection = True
                return
            self._reply(status, body)

        do_GET = do_POST  # noqa: N815

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    return Handler
