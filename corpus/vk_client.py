"""The VK API seam of the corpus (the only vk_api client for data): pacing, back-off, clear errors,
and the VKScript that batches up to 25 `wall.get` calls into one `execute` request.

vk_api 11.x posts to https://api.vk.ru/method/ through the requests.Session it is given (tests
mount a fake transport on it). Its own handler for error 6 retries forever every 0.5 s; it is
removed here so that every rate-limit error (6 too many requests per second, 9 flood control,
29 rate limit reached) goes through one back-off with a cap on the total time waited.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import vk_api
from vk_api.exceptions import ApiError, ApiHttpError, Captcha

from corpus.errors import CorpusError

log = logging.getLogger(__name__)

RATE_LIMIT_CODES = {6: 1.0, 9: 5.0, 29: 30.0}  # error code -> first wait in seconds (doubles each retry)
MAX_SINGLE_WAIT = 120.0
DEFAULT_TIMEOUT = 30.0  # seconds: vk_api passes no timeout, so requests would wait for ever


def with_timeout(session: requests.Session, seconds: float) -> requests.Session:
    """Give every request of `session` a (connect, read) timeout unless the caller set one: vk_api
    calls `session.post(url, values)` without any, and a VK call that never answers would hang
    `corpus scrape` and `run --once` for ever. Returns the same session."""
    plain = session.request

    def request(method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = seconds
        return plain(method, url, **kwargs)

    session.request = request  # type: ignore[method-assign, assignment]  # this one session's method
    return session
PAGE = 100  # wall.get's largest count
CAPTCHA = "VK asks for a captcha (error 14) on {method}: it suspects automated use of the token"
CAPTCHA_ADVICE = "what was fetched is saved, run again later (or lower vk.requests_per_second)"


class CommunityFailed(CorpusError):
    """VK failed one community's scrape (an error code of its own, an answer too big even at one page,
    a wall that changes faster than it is read): a scrape goes on with the other communities
    (corpus.vk.scrape). Failures of the token or the connection are other CorpusErrors: they stop it."""


class CommunityUnreadable(CommunityFailed):
    """One community's wall cannot be read (unknown, deleted, closed, private); the token and VK itself are fine."""


class VkUnavailable(CorpusError):
    """VK could not be asked (unreachable, an HTTP error, a captcha, rate limits past the wait):
    `problem` says what, without the advice of the run that met it (a scrape's "run again to
    continue"), which str() adds; `buhurt doctor` words its own line from `problem`."""

    def __init__(self, problem: str, advice: str) -> None:
        super().__init__(f"{problem}; {advice}")
        self.problem = problem


@dataclass(frozen=True)
class Community:
    group_id: int
    name: str           # screen_name, stored as posts.community
    title: str
    # the token's user in it: 0 none, 1 moderator, 2 editor, 3 administrator; None: not a user's token
    admin_level: int | None = None


class VkClient:
    """vk_api behind pacing (requests_per_second) and a capped back-off on errors 6, 9, 29."""

    def __init__(self, token: str, *, api_version: str = "5.199", requests_per_second: float = 3.0,
                 max_wait_seconds: float = 300.0, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, timeout_seconds: float = DEFAULT_TIMEOUT) -> None:
        if not token:
            raise CorpusError("no VK token: set vk.token in the config or the BUHURT_VK_TOKEN environment"
                              " variable (a service token of a VK app is enough for scraping)")
        if requests_per_second <= 0:
            raise CorpusError(f"vk.requests_per_second must be positive, got {requests_per_second}")
        if not timeout_seconds > 0:
            raise CorpusError(f"vk.timeout_seconds must be positive, got {timeout_seconds}")
        session = with_timeout(session or requests.Session(), timeout_seconds)
        self.api = vk_api.VkApi(token=token, api_version=api_version, session=session)
        self.api.RPS_DELAY = 1.0 / requests_per_second  # vk_api paces every call under its lock
        self.api.error_handlers.pop(6, None)
        self.max_wait = max_wait_seconds
        self.sleep = sleep
        self.requests = 0
        self.waited = 0.0

    def call(self, method: str, values: dict[str, Any], *, raw: bool = False) -> Any:
        """One API request; rate-limit errors are waited out (within the cap), others raised."""
        attempt = 0
        while True:
            self.requests += 1
            try:
                return self.api.method(method, values, raw=raw)
            except ApiError as exc:
                if exc.code not in RATE_LIMIT_CODES:
                    raise
                attempt += 1
                self.back_off(exc.code, exc.error.get("error_msg", ""), attempt)
            except Captcha:
                raise VkUnavailable(CAPTCHA.format(method=method), CAPTCHA_ADVICE) from None
            except ApiHttpError as exc:
                raise VkUnavailable(f"VK API answered HTTP {exc.response.status_code} to {method}",
                                    "run again later") from None
            except requests.RequestException as exc:
                raise VkUnavailable(f"cannot reach the VK API ({type(exc).__name__})",
                                    "what was fetched is saved, run again to continue") from None

    def back_off(self, code: int, message: str, attempt: int) -> None:
        wait = min(RATE_LIMIT_CODES[code] * 2 ** (attempt - 1), MAX_SINGLE_WAIT)
        if self.waited + wait > self.max_wait:
            raise VkUnavailable(
                f"VK keeps refusing with error {code} ({message or 'rate limit'})",
                f"gave up after waiting {self.waited:.0f} s in total (vk.max_wait_seconds = {self.max_wait:g});"
                " the posts fetched so far are saved, run again later to continue")
        log.warning("VK error %s (%s): waiting %.1f s", code, message, wait)
        self.waited += wait
        self.sleep(wait)

    def community(self, name_or_id: str) -> Community:
        """Resolve a short name, numeric id, `club123`, `-123` or vk.com URL; clear errors."""
        key = community_key(name_or_id)
        try:
            answer = self.call("groups.getById", {"group_id": key})
        except ApiError as exc:
            if exc.code in (100, 113, 15):
                raise CommunityUnreadable(f"unknown VK community {name_or_id!r} (VK error {exc.code}: "
                                  f"{exc.error.get('error_msg', '')})") from None
            raise api_error(exc, name_or_id) from None
        groups = answer.get("groups", []) if isinstance(answer, dict) else answer
        if not groups:
            raise CommunityUnreadable(f"unknown VK community {name_or_id!r}")
        group = groups[0]
        if group.get("deactivated"):
            raise CommunityUnreadable(f"VK community {name_or_id!r} is {group['deactivated']} (deactivated):"
                                      " no wall to read")
        if group.get("is_closed") and not group.get("is_member"):   # members read it (a user token's user)
            kind = "private" if group["is_closed"] == 2 else "closed"
            raise CommunityUnreadable(f"VK community {name_or_id!r} is {kind}: its wall cannot be read without"
                              " membership (VK errors 15/30)")
        admin_level = None if "is_admin" not in group else int(group.get("admin_level", 3)) if group["is_admin"] else 0
        return Community(int(group["id"]), group.get("screen_name") or f"club{group['id']}", group.get("name", ""),
                         admin_level)

    def check_wall(self, community: Community) -> None:
        """Read one post of the community's wall (what a scrape does first): CorpusError when VK refuses."""
        try:
            self.call("wall.get", {"owner_id": -community.group_id, "count": 1, "filter": "owner"})
        except ApiError as exc:
            raise api_error(exc, community.name) from None

    def wall_pages(self, group_id: int, offsets: list[int]) -> tuple[list[Any], list[dict]]:
        """wall.get (count 100) at each offset, in one execute request: (pages, execute_errors).
        A page is {"count", "items"} or False when that call failed (see execute_errors)."""
        answer = self.call("execute", {"code": wall_script(group_id, offsets)}, raw=True)
        pages = answer.get("response")
        if not isinstance(pages, list):
            pages = [False] * len(offsets)
        return pages, list(answer.get("execute_errors") or [])


def wall_script(group_id: int, offsets: list[int]) -> str:
    """The VKScript of one batch: `return [API.wall.get({...}), ...];` (at most 25 calls)."""
    if not 1 <= len(offsets) <= 25:
        raise ValueError("execute takes 1 to 25 API calls")
    calls = ",".join(
        "API.wall.get(" + json.dumps({"owner_id": -group_id, "offset": o, "count": PAGE, "filter": "owner"},
                                     separators=(",", ":")) + ")"
        for o in offsets
    )
    return f"return [{calls}];"


def community_key(name_or_id: str) -> str:
    key = str(name_or_id).strip().rstrip("/")
    key = re.sub(r"^(?:https?://)?(?:m\.)?vk\.(?:com|ru)/", "", key)
    found = re.fullmatch(r"(?:club|public|event)?-?(\d+)", key)
    if found:
        return found.group(1)
    if not re.fullmatch(r"[A-Za-z0-9_.]+", key):
        raise CommunityUnreadable(f"{name_or_id!r} is not a VK community short name or id")
    return key


def api_error(exc: ApiError, community: str) -> CorpusError:
    """A one-line CorpusError for a VK error that ends the scrape of `community`."""
    code, message = exc.code, exc.error.get("error_msg", "")
    if code == 5:
        return CorpusError(f"VK rejected the token (error 5: {message}): set a valid vk.token or BUHURT_VK_TOKEN")
    if code == 27:
        return CorpusError("VK refuses wall.get with a community token (error 27): scraping needs a service"
                           " token of a VK app or a user token in vk.token or BUHURT_VK_TOKEN")
    if code in (15, 30):
        return CommunityUnreadable(f"the wall of VK community {community!r} is closed or private"
                                   f" (VK error {code}: {message})")
    if code == 14:
        return VkUnavailable(CAPTCHA.format(method=f"wall.get of {community!r}"), CAPTCHA_ADVICE)
    if code in (18, 100, 113):
        return CommunityUnreadable(f"unknown VK community {community!r} (VK error {code}: {message})")
    return CommunityFailed(f"VK error {code} for community {community!r}: {message}")
