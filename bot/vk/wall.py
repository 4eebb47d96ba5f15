"""Publish drafts to a VK community wall (`wall.post`) and poll their likes (`wall.getById`).

`vk_wall_publishing(settings.vk)` gives the composition root a `Publisher` (jobs/publish.py) and a
`ReactionSource` (jobs/reactions.py) sharing one vk_api client. vk_api is synchronous: `send` runs
it in a thread. `wall.post` needs a user token with the "wall" scope of an editor of the community.

At-most-once: an answer with an API error means nothing was published -> PublishError (retried
later), except VK's own failures (error 1, unknown; 10, internal server error), which say nothing of
the post: PublishInDoubt. A dropped connection, a read timeout (vk.timeout_seconds: every request has one) or an HTTP
error is PublishInDoubt: the post may have gone out, so the publication becomes `unknown`
(never re-sent), see docs/architecture.md. So is an answer without a usable post id
(`{"response": {"post_id": null}}`): VK took the request, and no id means no record to trust.
A connect timeout is definite: nothing was sent.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import requests
import vk_api
from vk_api.exceptions import ApiError, ApiHttpError, Captcha

from bot import texts
from bot.errors import BotError
from bot.secrets import REDACTOR
from corpus.vk_client import DEFAULT_TIMEOUT, with_timeout
from jobs.publish import PublishError, PublishInDoubt

log = logging.getLogger(__name__)
GET_BY_ID_LIMIT = 100
SERVER_ERRORS = frozenset({1, 10})   # "Unknown error occurred", "Internal server error": no answer on the post
POST_LIMIT = 16_384   # characters of a wall post's message (sample.max_length's most: model/sample_options.py)


def vk_client(vk_settings: Any, session: requests.Session | None, *, token: Any = None,
            missing: str = "vk.publish_group_id is set but there is no VK token (vk.token or BUHURT_VK_TOKEN)",
            ) -> vk_api.VkApi:
    """A vk_api client with vk.token (or `token`), every request with a timeout; BotError `missing`
    without a token."""
    secret = vk_settings.token if token is None else token
    token = secret.reveal() if hasattr(secret, "reveal") else str(secret or "")
    if not token:
        raise BotError(missing)
    # every request with a timeout: a wall.post that never answers becomes `unknown`, never a hang
    seconds = getattr(vk_settings, "timeout_seconds", DEFAULT_TIMEOUT)
    session = with_timeout(session or requests.Session(), seconds)
    api = vk_api.VkApi(token=token, api_version=vk_settings.api_version, session=session)
    api.RPS_DELAY = 1.0 / vk_settings.requests_per_second
    api.error_handlers.pop(6, None)  # vk_api would retry error 6 forever; a refusal is reported instead
    return api


class VkWallPublisher:
    """jobs.publish.Publisher for one community wall."""

    network = "vk"
    max_text = POST_LIMIT   # a footer that would pass it is left out (jobs/publish.py): VK refuses the post

    def __init__(self, api: vk_api.VkApi, group_id: int) -> None:
        self.api, self.group_id = api, abs(int(group_id))
        self.chat_id = str(-self.group_id)

    async def send(self, text: str) -> str:
        return await asyncio.to_thread(self.post, text)

    def post(self, text: str) -> str:
        try:
            answer = self.api.method("wall.post", {"owner_id": -self.group_id, "from_group": 1, "message": text})
        except ApiError as exc:
            said = REDACTOR.redact(str(exc.error.get("error_msg", "")))
            if exc.code in SERVER_ERRORS:   # VK failed after taking the request: the post may be out
                raise PublishInDoubt(f"VK failed on wall.post (error {exc.code}: {said}):"
                                     " the post may be out",
                                     texts.WALL_FAILED.format(code=exc.code, said=said)) from None
            raise PublishError(f"VK refused wall.post (error {exc.code}: {said})",
                               texts.WALL_REFUSED.format(code=exc.code, said=said)) from None
        except ApiHttpError as exc:   # VK's gateway failed (502, 504): the request may have been done
            raise PublishInDoubt(f"VK answered HTTP {exc.response.status_code} to wall.post:"
                                 " the post may be out",
                                 texts.WALL_HTTP.format(status=exc.response.status_code)) from None
        except Captcha:  # an answer, so nothing was published: a refusal, retried later
            raise PublishError("VK refused wall.post with a captcha (error 14): the token looks automated"
                               " to VK; it is retried at the next publishing time", texts.WALL_CAPTCHA) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise PublishError(f"VK API unreachable ({type(exc).__name__})", texts.WALL_UNREACHABLE) from None
        except requests.exceptions.RequestException as exc:  # a read timeout, a dropped connection: maybe out
            raise PublishInDoubt(f"VK did not answer wall.post ({type(exc).__name__})", texts.WALL_NO_ANSWER) from exc
        return _post_id(answer)


def _post_id(answer: object) -> str:
    """wall.post's post id: a positive integer, else PublishInDoubt (the post may be out)."""
    post_id = answer.get("post_id") if isinstance(answer, dict) else None
    if isinstance(post_id, str) and post_id.isascii() and post_id.isdigit():
        post_id = int(post_id)
    if isinstance(post_id, bool) or not isinstance(post_id, int) or post_id <= 0:
        shown = REDACTOR.redact(repr(answer))
        raise PublishInDoubt(f"VK answered wall.post without a post id ({shown[:200]}): the post may be out",
                             texts.WALL_NO_POST_ID)
    return str(post_id)


class VkWallLikes:
    """jobs.reactions.ReactionSource: likes, reposts and views of our wall posts."""

    network = "vk"

    def __init__(self, api: vk_api.VkApi, group_id: int) -> None:
        self.api, self.group_id = api, abs(int(group_id))
        self.chat_id = str(-self.group_id)   # the wall's publications, as VkWallPublisher records them

    def fetch(self, message_ids: list[str]) -> dict[str, dict[str, int]]:
        """The counts of each chunk VK answered: a failed chunk is a log line (its posts wait for the
        next run), every chunk failing is the first one's exception."""
        counts: dict[str, dict[str, int]] = {}
        ids = [str(m) for m in message_ids]
        failed: list[Exception] = []
        starts = range(0, len(ids), GET_BY_ID_LIMIT)
        for start in starts:
            chunk = ids[start:start + GET_BY_ID_LIMIT]
            try:
                answer = self.api.method("wall.getById", {"posts": ",".join(f"-{self.group_id}_{m}" for m in chunk)})
            except Exception as exc:  # noqa: BLE001 - the other chunks' counts are kept
                failed.append(exc)
                log.warning("VK likes: wall.getById of %d of %d posts failed (%s); they wait for the next run",
                            len(chunk), len(ids), said(exc))
                continue
            items = answer.get("items", []) if isinstance(answer, dict) else answer
            for item in items or []:
                counts[str(item["id"])] = {   # a kind VK leaves out (views, on some posts) is not a zero
                    kind: int((item.get(key) or {}).get("count", 0))
                    for kind, key in (("like", "likes"), ("repost", "reposts"), ("view", "views")) if key in item
                }
        if failed and len(failed) == len(starts):   # no chunk answered: the run failed
            raise failed[0]
        return counts


def said(exc: Exception) -> str:
    """An error in one line without secrets: VK's own message, else the exception's type."""
    if isinstance(exc, ApiError):
        return REDACTOR.redact(f"error {exc.code}: {exc.error.get('error_msg', '')}")
    return type(exc).__name__


@dataclass(frozen=True)
class VkWall:
    publisher: VkWallPublisher
    likes: VkWallLikes


def vk_wall_publishing(vk_settings: Any, *, session: requests.Session | None = None) -> VkWall:
    """The publisher and the likes source of the wall of vk.publish_group_id."""
    if not vk_settings.publish_group_id:
        raise BotError("vk.publish_group_id is 0: no VK wall to publish to")
    api = vk_client(vk_settings, session)
    group_id = abs(int(vk_settings.publish_group_id))
    return VkWall(VkWallPublisher(api, group_id), VkWallLikes(api, group_id))
