"""A fake VK API behind a requests transport adapter: the real vk_api client code runs against it.

Mount it on the session given to vk_api (`fake.session()`); vk_api posts to
https://api.vk.ru/method/<name>, which the adapter answers from memory: groups.getById, wall.get,
execute (it recognises corpus/vk_client.py's script shape `return [API.wall.get({...}), ...];`),
wall.post and wall.getById; for a community's messages, groups.getLongPollServer, the bot long
poll's own endpoint (https://api.vk.ru/longpoll/<group id>, answered when a message comes or after
`wait` seconds, as VK's does) and messages.send (`user_message` injects what a user writes,
`sent` lists the bot's answers). It counts requests, injects errors (top-level or inside execute) and
can change the wall between requests (delete posts, publish new ones), drop the connection,
answer an HTTP error after doing the request (`http_status`), answer something malformed
(`rewrite`, e.g. wall.post done but its post id null), or never answer (`hang_at`): a request
with a timeout then ends in requests' ReadTimeout, one without a timeout raises NoTimeout at
once instead of hanging the test for ever. `timeouts` records the timeout of every request.
VK's length limits hold: wall.post refuses a message over 16,384 characters (error 100),
messages.send one over 4,096 (error 914); `refused` lists (method, error code) of the answers
that were errors. `drop_polls` long-poll requests from now on lose their connection
(`on_drop` runs first: a message written then is kept by VK for the next request with its ts). A wall's
`longpoll_version` before 5.103 sends message_new events in the old shape (the message itself).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

GOOD_TOKEN = "fake-vk-good-token-0000"
WALL_TOKEN = "fake-vk-wall-token-0000"
COMMUNITY_TOKEN = "fake-vk-community-token-0000"   # a community token with the messages right
_CALL = re.compile(r"API\.wall\.get\((\{.*?\})\)")

ERRORS = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    9: "Flood control",
    10: "Internal server error",
    13: "Runtime error occurred during code invocation: response size is too big",
    14: "Captcha needed",
    15: "Access denied: this wall available only for community members",
    27: "Group authorization failed: method is unavailable with group auth.",
    29: "Rate limit reached",
    30: "This profile is private",
    100: "One of the parameters specified was missing or invalid: group_id is undefined",
    901: "Can't send messages for users without permission",
    214: "Access to adding post denied",
    914: "Message is too long",
}
WALL_POST_MAX = 16_384     # characters of a wall post's message
MESSAGE_MAX = 4_096        # characters of a community message


class NoTimeout(AssertionError):
    """A request without a timeout reached a server that never answers: it would hang for ever."""


class VkFault(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(code)
        self.code, self.message = code, message


@dataclass
class FakeWall:
    group_id: int
    screen_name: str
    posts: dict[int, dict] = field(default_factory=dict)   # id -> item
    pinned_id: int | None = None
    is_closed: int = 0            # 1 closed, 2 private: only members read the wall (error 15)
    is_member: bool = False       # the user token's user is a member (groups.getById says so to user tokens)
    wall_error: int | None = None                          # e.g. 15 or 30 on wall.get
    # posts counted in wall.get's count but left out of its items (a page shorter than count in the
    # middle of the wall: VK leaves out posts it does not show, as remembered; the docs were not reachable)
    hidden: set[int] = field(default_factory=set)
    longpoll: bool = True          # the community's Bots Long Poll API is enabled, with message_new
    # the API version set for the long poll in the community's settings: before 5.103 a message_new
    # event's object is the message itself, not {"message": ..., "client_info": ...}
    longpoll_version: str = "5.199"

    def generate(self, n: int, *, start_id: int = 1, deleted_every: int = 17, now: float | None = None,
                 spacing: float = 3600.0) -> None:
        """n posts (ids from start_id, every `deleted_every`-th id deleted), newest `now - spacing`."""
        now = time.time() if now is None else now
        ids = [i for i in range(start_id, start_id + n + n // max(deleted_every - 1, 1) + 2)
               if not deleted_every or i % deleted_every][:n]
        top = ids[-1]
        for i in ids:
            self.posts[i] = make_item(i, now - spacing * (top - i + 1))

    def publish(self, text: str, *, now: float | None = None) -> int:
        post_id = max(self.posts, default=0) + 1
        self.posts[post_id] = make_item(post_id, now or time.time(), text=text)
        return post_id

    def ordered(self) -> list[dict]:
        others = [self.posts[i] for i in sorted(self.posts, reverse=True) if i != self.pinned_id]
        pinned = [dict(self.posts[self.pinned_id], is_pinned=1)] if self.pinned_id in self.posts else []
        return pinned + others


def make_item(post_id: int, date: float, text: str | None = None) -> dict[str, Any]:
    item = {
        "id": post_id, "date": int(date), "from_id": -1, "owner_id": -1, "post_type": "post",
        "text": text if text is not None else
        f"ПОСТ НОМЕР {post_id}\n@\nСТРОКА {post_id * 7 % 1000}\n@\nКОНЕЦ {post_id % 97}",
        "likes": {"count": post_id % 50}, "reposts": {"count": post_id % 5},
        "views": {"count": 1000 + post_id}, "comments": {"count": post_id % 3},
    }
    if post_id % 101 == 0:
        item["marked_as_ads"] = 1
    if post_id % 103 == 0:
        item["copy_history"] = [{"id": 1, "text": "ORIGINAL"}]
    if post_id % 7 == 0:
        item["attachments"] = [{"type": "photo", "photo": {"id": post_id}}]
    return item


class FakeVk:
    def __init__(self, *walls: FakeWall, tokens: tuple[str, ...] = (GOOD_TOKEN, WALL_TOKEN, COMMUNITY_TOKEN)) -> None:
        self.walls = {w.group_id: w for w in walls}
        self.tokens = set(tokens)
        self.requests = 0
        self.methods: Counter = Counter()
        self.errors: dict[int, int] = {}         # request number -> top-level error code
        self.inner_errors: dict[int, tuple[int, int]] = {}  # request number -> (call index, code)
        # an execute whose wall.get calls return more posts than this answers error 13 (its response is
        # too big: VK caps an execute's response size, as remembered)
        self.execute_max_posts: int | None = None
        self.fail_at: int | None = None          # request number answered by a dropped connection
        self.hang_at: set[int] = set()            # request numbers that are never answered
        # request number -> an HTTP status sent instead of the answer (the request was done: a gateway failed)
        self.http_status: dict[int, int] = {}
        # request number -> a function of the normal answer giving the one sent (done, then answered oddly)
        self.rewrite: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self.timeouts: list[Any] = []             # the timeout each request was sent with
        self.before_request: Callable[["FakeVk", int], None] | None = None
        self.events: list[dict] = []              # the bot long poll's updates; ts = index + 1
        self.sent: list[dict] = []                # messages.send's parameters, in order
        self.polls = 0                            # long-poll requests answered
        self.refused: list[tuple[str, int]] = []  # (method, error code) of every error answer
        self.drop_polls = 0                       # long-poll requests to answer by a dropped connection
        self.on_drop: Callable[["FakeVk"], None] | None = None
        self._cond = threading.Condition()

    def user_message(self, from_id: int, text: str, *, group_id: int | None = None, peer_id: int | None = None,
                     payload: str | None = None) -> None:
        """A user writes to the community (peer_id: their own id, or a conversation's 2000000000+n).
        `payload`: a keyboard button's, as a JSON string; the community chat's start button sends its
        label in the user's interface language with the payload '{"command":"start"}' (VK's documented
        behaviour as remembered: the docs were not reachable)."""
        group = group_id if group_id is not None else next(iter(self.walls))
        legacy = _version(self.walls[group].longpoll_version) < (5, 103)
        with self._cond:
            number = len(self.events) + 1
            message = {"id": number, "date": int(time.time()), "from_id": from_id,
                       "peer_id": peer_id if peer_id is not None else from_id, "text": text, "out": 0}
            if payload is not None:
                message["payload"] = payload
            shaped = message if legacy else {"message": message, "client_info": {"keyboard": True}}
            self.events.append({"type": "message_new", "group_id": group, "event_id": f"e{number}", "object": shaped})
            self._cond.notify_all()

    def sent_to(self, peer_id: int) -> list[str]:
        with self._cond:
            return [m["message"] for m in self.sent if int(m["peer_id"]) == peer_id]

    def long_poll(self, group_id: str, params: dict[str, str]) -> dict[str, Any]:
        """The bot long poll: events after `ts`, waiting up to `wait` seconds for one."""
        with self._cond:
            drop, self.drop_polls = self.drop_polls > 0, max(0, self.drop_polls - 1)
        if drop:
            if self.on_drop:
                self.on_drop(self)
            raise requests.ConnectionError("fake VK: long poll connection reset")
        if params.get("key") != f"key-{group_id}":
            return {"failed": 2}
        ts, wait = int(params.get("ts", "0")), float(params.get("wait", "25"))
        deadline = time.monotonic() + wait
        with self._cond:
            while len(self.events) <= ts and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            self.polls += 1
            return {"ts": str(len(self.events)), "updates": list(self.events[ts:])}

    def session(self) -> requests.Session:
        session = requests.sessions.Session()  # the class itself: tests may patch requests.Session
        session.mount("https://api.vk.ru/", _Adapter(self))
        return session

    def find(self, key: str) -> FakeWall | None:
        key = str(key).lstrip("-")
        for wall in self.walls.values():
            if key in (str(wall.group_id), wall.screen_name):
                return wall
        return None

    def handle(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        self.requests += 1
        self.methods[method] += 1
        number = self.requests
        if self.before_request:
            self.before_request(self, number)
        if self.fail_at == number:
            raise requests.ConnectionError("fake VK: connection reset")
        try:
            if params.get("access_token") not in self.tokens:
                raise VkFault(5)
            if number in self.errors:
                raise VkFault(self.errors[number])
            answer = {"response": getattr(self, "m_" + method.replace(".", "_"))(params, number)}
            return self.rewrite[number](answer) if number in self.rewrite else answer
        except VkFault as fault:
            error = {"error_code": fault.code, "error_msg": fault.message or ERRORS.get(fault.code, "error"),
                     "request_params": [{"key": "method", "value": method}]}
            self.refused.append((method, fault.code))
            if fault.code == 14:  # VK's captcha answer: a sid and an image to show a human
                error.update(captcha_sid=f"{number}00", captcha_img=f"https://api.vk.ru/captcha.php?sid={number}00")
            return {"error": error}
        except _Execute as done:
            return done.body

    def m_groups_getById(self, params, number):
        wall = self.find(params.get("group_id", ""))
        if wall is None:
            raise VkFault(100)
        group = {"id": wall.group_id, "name": wall.screen_name.upper(), "screen_name": wall.screen_name,
                 "is_closed": wall.is_closed, "type": "page"}
        if params.get("access_token") in (GOOD_TOKEN, WALL_TOKEN):   # a user's token: about that user
            group.update(is_member=int(wall.is_member), is_admin=0, is_advertiser=0)
            if params.get("access_token") == WALL_TOKEN:   # the wall's administrator (wall.post takes it)
                group.update(is_member=1, is_admin=1, admin_level=3)
        return {"groups": [group], "profiles": []}

    def m_wall_get(self, params, number):
        wall = self.find(params.get("owner_id", ""))
        if wall is None:
            raise VkFault(100)
        if wall.wall_error:
            raise VkFault(wall.wall_error)
        if wall.is_closed and not wall.is_member:
            raise VkFault(15)
        if params.get("access_token") == COMMUNITY_TOKEN:
            raise VkFault(27)
        offset, count = int(params.get("offset", 0)), min(int(params.get("count", 20)), 100)
        ordered = wall.ordered()
        return {"count": len(ordered),
                "items": [dict(i) for i in ordered[offset:offset + count] if i["id"] not in wall.hidden]}

    def m_execute(self, params, number):
        calls = [json.loads(args) for args in _CALL.findall(params.get("code", ""))]
        if not calls or len(calls) > 25:
            raise VkFault(12)
        results, errors = [], []
        for index, args in enumerate(calls):
            inner = self.inner_errors.get(number)
            try:
                if inner and inner[0] == index:
                    raise VkFault(inner[1])
                results.append(self.m_wall_get({k: str(v) for k, v in args.items()}, number))
            except VkFault as fault:
                results.append(False)
                errors.append({"method": "wall.get", "error_code": fault.code,
                               "error_msg": ERRORS.get(fault.code, "error")})
        if self.execute_max_posts is not None \
                and sum(len(r["items"]) for r in results if r) > self.execute_max_posts:
            raise VkFault(13)
        body = {"response": results}
        if errors:
            body["execute_errors"] = errors
        raise _Execute(body)

    def m_wall_post(self, params, number):
        if params.get("access_token") != WALL_TOKEN:
            raise VkFault(214)
        wall = self.find(params.get("owner_id", ""))
        if wall is None:
            raise VkFault(100)
        if len(params.get("message", "")) > WALL_POST_MAX:
            raise VkFault(100, "One of the parameters specified was missing or invalid: message is too long")
        return {"post_id": wall.publish(params.get("message", ""))}

    def m_groups_getLongPollServer(self, params, number):
        wall = self.find(params.get("group_id", ""))
        if wall is None:
            raise VkFault(100)
        if not wall.longpoll:
            raise VkFault(100, "One of the parameters specified was missing or invalid: longpoll for this group"
                               " is not enabled")
        with self._cond:
            ts = len(self.events)
        return {"key": f"key-{wall.group_id}", "server": f"https://api.vk.ru/longpoll/{wall.group_id}", "ts": str(ts)}

    def m_groups_getLongPollSettings(self, params, number):
        wall = self.find(params.get("group_id", ""))
        if wall is None:
            raise VkFault(100)
        return {"is_enabled": wall.longpoll, "api_version": wall.longpoll_version,
                "events": {"message_new": int(wall.longpoll), "wall_post_new": 0}}

    def m_messages_send(self, params, number):
        if params.get("access_token") != COMMUNITY_TOKEN:
            raise VkFault(901)
        if len(params.get("message", "")) > MESSAGE_MAX:
            raise VkFault(914)
        with self._cond:
            self.sent.append(dict(params))
            self._cond.notify_all()
            return len(self.sent)

    def m_wall_getById(self, params, number):
        items = []
        for ref in params.get("posts", "").split(","):
            owner, _, post_id = ref.partition("_")
            wall = self.find(owner)
            if wall and post_id.isdigit() and int(post_id) in wall.posts:
                items.append(dict(wall.posts[int(post_id)]))
        return {"items": items}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


class _Execute(Exception):
    def __init__(self, body: dict) -> None:
        super().__init__("execute")
        self.body = body


class _Adapter(BaseAdapter):
    def __init__(self, fake: FakeVk) -> None:
        super().__init__()
        self.fake = fake

    def send(self, request, **kwargs):
        if "/longpoll/" in request.url:   # the bot long poll's own server (a GET with a query)
            url = urlsplit(request.url)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            return _json_response(request, self.fake.long_poll(url.path.rsplit("/", 1)[1], query))
        method = request.url.split("/method/", 1)[1].split("?", 1)[0]
        timeout = kwargs.get("timeout")
        self.fake.timeouts.append(timeout)
        if self.fake.requests + 1 in self.fake.hang_at:
            self.fake.requests += 1
            self.fake.methods[method] += 1
            if timeout is None or timeout == (None, None):
                raise NoTimeout(f"fake VK: {method} was sent without a timeout and the server never answers")
            raise requests.exceptions.ReadTimeout(f"fake VK: no answer to {method} (read timeout={timeout})")
        body = request.body or ""
        body = body.decode() if isinstance(body, bytes) else body
        params = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        response = _json_response(request, self.fake.handle(method, params))
        if self.fake.requests in self.fake.http_status:
            response.status_code = self.fake.http_status[self.fake.requests]
            response._content = b"<html><body>Bad Gateway</body></html>"
        return response

    def close(self) -> None:
        pass


def _json_response(request, answer: dict) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    body = json.dumps(answer, ensure_ascii=False)
    try:
        response._content = body.encode("utf-8")
    except UnicodeEncodeError:   # a lone surrogate (half an emoji) goes as its \uXXXX escape, as VK's JSON
        response._content = json.dumps(answer).encode("ascii")
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.encoding = "utf-8"
    response.url = request.url
    response.request = request
    return response
