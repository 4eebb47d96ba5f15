"""`buhurt doctor`: one line per check of what the running bot depends on; any failure -> exit 1.

Full: the Bot API token (getMe), the bot's rights in each channel and in the moderators' chat
(getChat + getChatMember), the VK token and communities, the database's integrity, the active
model loading, free disk, and whether the moderators paused publishing. `--quick` (the Docker
HEALTHCHECK): the database answers and the running service's heartbeat file is fresh, with no
network and no torch."""
from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from bot.config import Settings
from bot.context import TrainPaths
from bot.errors import BotError
from bot.secrets import REDACTOR
from common.files import write_problem
from corpus.db import check_not_emptied, connect_read_only, emptied_error, marker_path, open_db
from corpus.errors import CorpusError
from jobs.desk import paused
from jobs.first_run import training_posts
from jobs.health import UNHEALTHY
from jobs.model_registry import active_checkpoint_path, active_version_row, starting_checkpoint
from jobs.service import moderation_problem

if TYPE_CHECKING:   # corpus.vk_client imports vk_api: only where VK is checked
    from corpus.vk_client import Community

MIN_FREE_BYTES = 500 * 1024 * 1024   # a nightly retrain writes checkpoints and a training text
HEARTBEAT_EVERY_SECONDS = 60.0
HEARTBEAT_STALE_SECONDS = 5 * HEARTBEAT_EVERY_SECONDS
PUBLISHING_WALL = "vk wall (publishing)"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {REDACTOR.redact(' '.join(self.detail.split()))}"


def heartbeat_path(settings: Settings) -> Path:
    return settings.data_dir / "heartbeat"


def run_checks(settings: Settings, *, quick: bool = False) -> list[Check]:
    database = check_database(settings, quick=quick)
    checks = [database]
    if quick:
        checks.append(check_heartbeat(settings))
        return checks
    checks.append(check_disk(settings))
    checks.append(check_model(settings))
    if (missing := settings.telegram.without_token()) is not None:
        checks.append(Check("telegram token", False, missing))
    elif settings.telegram.token:
        checks += asyncio.run(check_telegram(settings))
        if database.ok:
            checks.append(check_moderation(settings))
    if database.ok:
        checks.append(check_publishing(settings))
    if settings.vk.token or settings.vk.groups or settings.vk.publish_group_id:
        checks += check_vk(settings)
    if settings.vk.messages_group_id:
        checks.append(check_vk_messages(settings))
    return checks


def check_database(settings: Settings, *, quick: bool) -> Check:
    path = settings.database
    try:
        check_not_emptied(path)
    except CorpusError as exc:
        return Check("database", False, str(exc))
    if path.is_dir():
        return Check("database", False, f"{path} is a directory, not the database file (paths.database)")
    if not path.is_file():
        return Check("database", False, f"{path} does not exist (`buhurt run` creates it)")
    try:
        connection = connect_read_only(path, settings.paths.busy_timeout_seconds)
        try:
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if not tables and marker_path(path).exists():
                return Check("database", False, str(emptied_error(path, "holds no tables")))
            if quick:
                return Check("database", True, f"{path} answers")
            result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return Check("database", False, f"{path}: {exc}")
    if result != ["ok"]:
        return Check("database", False, f"{path}: integrity_check found {len(result)} problems: {result[0]}")
    return Check("database", True, f"{path}: integrity_check ok")


def check_heartbeat(settings: Settings) -> Check:
    path = heartbeat_path(settings)
    try:
        age = time.time() - path.stat().st_mtime
        said = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return Check("heartbeat", False, f"{path} missing: is `buhurt run` running?")
    except OSError as exc:   # paths.data_dir is a file, the heartbeat a folder, ...
        return Check("heartbeat", False, f"{path}: cannot read it ({exc.strerror or exc})")
    if age < -HEARTBEAT_STALE_SECONDS:   # written "in the future": no proof the service is alive now
        return Check("heartbeat", False, f"{path} is dated {-age:.0f} s in the future: the clock changed, or "
                                         "something else touched it; it proves nothing until the service rewrites it")
    if age > HEARTBEAT_STALE_SECONDS:
        if unwritable := write_problem(path.parent):   # a full disk: the service is likely alive
            return Check("heartbeat", False, f"{path} is {age:.0f} s old: it cannot be written in {path.parent} "
                                             f"({unwritable}); free space there, then it is written within a minute")
        return Check("heartbeat", False, f"{path} is {age:.0f} s old (the service writes it every "
                                         f"{HEARTBEAT_EVERY_SECONDS:.0f} s): the event loop is stuck or stopped")
    for line in said[1:]:
        if line.startswith(UNHEALTHY):
            return Check("heartbeat", False, f"the service reports {line[len(UNHEALTHY):].strip()}")
    return Check("heartbeat", True, f"{age:.0f} s old")


def check_disk(settings: Settings) -> Check:
    """The free space where the service writes: the data folder, the database's folder and
    backup.folder (either may be on another disk); the folder with the least is named."""
    folders = []
    for folder in (settings.data_dir, settings.database.parent, settings.backup_dir):
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder not in folders:
            folders.append(folder)
    free, folder = min(((shutil.disk_usage(f).free, f) for f in folders), key=lambda found: found[0])
    detail = f"{free / 2**30:.1f} GiB free under {folder}"
    if free < MIN_FREE_BYTES:
        return Check("disk", False, detail + f" (under {MIN_FREE_BYTES // 2**20} MiB)")
    return Check("disk", True, detail)


def check_model(settings: Settings) -> Check:
    try:
        allow_bundled = settings.startup.use_bundled_model
        if not allow_bundled:   # no model active yet: the first start trains one
            first = first_model(settings)
            if first is not None:
                return first
        if settings.database.is_file():
            models = TrainPaths.under(settings.data_dir).models_dir   # the copy there when the folder moved
            path = _read(settings, lambda db: active_checkpoint_path(db, allow_bundled=allow_bundled,
                                                                     models_dir=models))
        else:   # before the first start nothing is active, and a check creates no database
            path = starting_checkpoint(allow_bundled=allow_bundled)
        from model.sample import Generator

        Generator.load(path)
    except Exception as exc:  # noqa: BLE001 - whatever stops it loading is the finding
        return Check("model", False, f"{type(exc).__name__}: {exc}")
    return Check("model", True, f"{path.name} loads")


def first_model(settings: Settings) -> Check | None:
    """With startup.use_bundled_model = false and no model active yet, what `buhurt run` does: it
    trains the first one on the corpus (the bundled model drafts meanwhile), which needs posts;
    None when a model is active."""
    active, posts = None, 0
    if settings.database.is_file():
        active, posts = _read(settings, lambda db: (active_version_row(db), training_posts(db)))
    if active is not None:
        return None
    if posts:
        return Check("model", True, f"no model yet: `buhurt run` trains the first one on the corpus's {posts} posts")
    if settings.corpus.seed_with_sample:
        return Check("model", True, "no model yet: `buhurt run` imports the sample corpus (corpus.seed_with_sample) "
                                    "and trains the first one on it")
    return Check("model", False, "no model yet and no posts to train one on: import your posts (buhurt corpus "
                                 "scrape, import-telegram or import), or set startup.use_bundled_model = true")


def _read(settings: Settings, read):
    """`read(db)` on a connection of its own (the running service writes the same database)."""
    db = open_db(settings.database, busy_timeout=settings.paths.busy_timeout_seconds)
    try:
        return read(db)
    finally:
        db.close()


def check_moderation(settings: Settings) -> Check:
    """What the running service last found when it showed drafts to the moderators' chat."""
    problem = _read(settings, moderation_problem)
    if problem:
        return Check("drafts to the moderators", False, f"the service could not show drafts there, since {problem}"
                                                        " (retried at every pool run)")
    return Check("drafts to the moderators", True, "no error recorded")


def check_publishing(settings: Settings) -> Check:
    """Whether the moderators paused publishing (`/pause`): a pause is a choice, not a failure."""
    stopped = _read(settings, paused)
    if not stopped:
        return Check("publishing", True, "not paused")
    where = "; ".join(f"{name} since {info.get('at', '?')} by {info.get('by', '?')}" for name, info in stopped.items())
    return Check("publishing", True, f"PAUSED (/resume in the moderators' chat): {where}")


async def check_telegram(settings: Settings) -> list[Check]:
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    from bot.telegram.requests import telegram_request

    tg = settings.telegram
    request = telegram_request(connection_pool_size=1)
    bot = Bot(tg.token.reveal(), base_url=tg.base_url, request=request, get_updates_request=request)
    try:
        await bot.initialize()
    except InvalidToken:
        return [Check("telegram token", False, f"the Bot API at {tg.base_url} rejected it (getMe: 401/404)")]
    except TelegramError as exc:
        return [Check("telegram token", False, f"getMe at {tg.base_url} failed: {type(exc).__name__}: {exc}")]
    except (KeyError, TypeError, ValueError) as exc:   # JSON without a getMe result: a finding, not a crash
        said = REDACTOR.redact(str(exc))[:200]
        return [Check("telegram token", False, f"getMe at {tg.base_url}: JSON that is not a Bot API answer"
                                               f" ({type(exc).__name__}: {said}); check telegram.base_url")]
    checks = [Check("telegram token", True, f"@{bot.username} (id {bot.id})")]
    try:
        for chat in tg.channels:
            checks.append(await _chat_rights(bot, f"channel {chat}", chat, post=True))
        if tg.moderators_chat:
            checks.append(await _chat_rights(bot, "moderators' chat", tg.moderators_chat, post=False))
    finally:
        await bot.shutdown()
    return checks


async def _chat_rights(bot, name: str, chat: int | str, *, post: bool) -> Check:
    from telegram.error import TelegramError

    try:
        info = await bot.get_chat(chat)
        member = await bot.get_chat_member(info.id, bot.id)
    except TelegramError as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - an answer PTB cannot parse is a finding, not a crash
        return Check(name, False, f"unexpected answer: {type(exc).__name__}: {exc}")
    status = member.status
    if post and info.type == "channel":
        if status == "creator" or (status == "administrator" and getattr(member, "can_post_messages", False)):
            return Check(name, True, f"{info.title or chat}: the bot is an administrator that may post")
        return Check(name, False, f"{info.title or chat}: the bot is {status}; make it an administrator with"
                                  " 'Post messages' (reaction counts need an administrator too)")
    may_post = status == "restricted" and getattr(member, "can_send_messages", False)
    if status in ("creator", "administrator", "member") or may_post:
        return Check(name, True, f"{info.title or chat}: the bot is {status}")
    return Check(name, False, f"{info.title or chat}: the bot is {status}; add it to the chat")


def check_vk(settings: Settings) -> list[Check]:
    from corpus.vk_client import VkClient, VkUnavailable

    vk = settings.vk
    try:
        client = VkClient(vk.token.reveal(), api_version=vk.api_version, requests_per_second=vk.requests_per_second,
                          max_wait_seconds=0, timeout_seconds=vk.timeout_seconds)
    except CorpusError as exc:
        return [Check("vk token", False, str(exc))]
    checks = []
    groups = [str(vk.publish_group_id)] if vk.publish_group_id else []
    for name in groups + [g for g in vk.groups if g not in groups]:
        role = PUBLISHING_WALL if groups and name == groups[0] else f"vk community {name}"
        try:
            community = client.community(name)
            if role != PUBLISHING_WALL:
                client.check_wall(community)
        except VkUnavailable as exc:   # the doctor's words: a check fetches nothing and continues nothing
            checks.append(Check(role, False, f"not checked: {exc.problem}"))
            continue
        except CorpusError as exc:
            checks.append(Check(role, False, str(exc)))
            continue
        if role == PUBLISHING_WALL:
            checks.append(_may_publish(community))
            continue
        checks.append(Check(role, True, f"{community.name} (id {community.group_id}) readable with the token"))
    return checks or [Check("vk token", True, "set (no community configured)")]


def _may_publish(community: Community) -> Check:
    """wall.post from the community needs a user token of its editor or administrator."""
    named = f"{community.name} (id {community.group_id})"
    if community.admin_level is None:
        return Check(PUBLISHING_WALL, False, f"{named}: vk.token is not a user's token (a service or community"
                                             " token): VK refuses wall.post; publishing needs a user token with"
                                             " the wall scope")
    if community.admin_level < 2:
        return Check(PUBLISHING_WALL, False, f"{named}: the token's user is not an editor or administrator of the"
                                             " community: VK refuses wall.post")
    role = "an administrator" if community.admin_level >= 3 else "an editor"
    return Check(PUBLISHING_WALL, True, f"{named}: the token's user is {role}, may publish")


def check_vk_messages(settings: Settings, session=None) -> Check:
    """The community of vk.messages_group_id: its token answers and its Bots Long Poll API is
    enabled with the "incoming message" event (groups.getLongPollSettings)."""
    from vk_api.exceptions import ApiError

    from bot.vk.wall import vk_client
    from corpus.vk_client import with_timeout

    vk, name = settings.vk, "vk messages (long poll)"
    group_id = abs(vk.messages_group_id)
    try:
        api = vk_client(vk, with_timeout(session or requests.Session(), vk.timeout_seconds), token=vk.community_token,
                        missing="no community token (vk.community_token or BUHURT_VK_COMMUNITY_TOKEN)")
        answer = api.method("groups.getLongPollSettings", {"group_id": group_id})
    except BotError as exc:
        return Check(name, False, str(exc))
    except ApiError as exc:
        return Check(name, False, f"community {group_id}: VK error {exc.code}: {exc.error.get('error_msg', '')}")
    except requests.RequestException as exc:
        return Check(name, False, f"VK API unreachable ({type(exc).__name__})")
    if not answer.get("is_enabled"):
        return Check(name, False, f"community {group_id}: the Bots Long Poll API is off; enable it in the"
                                  " community's settings (API usage -> Long Poll API)")
    if not (answer.get("events") or {}).get("message_new"):
        return Check(name, False, f"community {group_id}: the long poll does not send the \"incoming message\""
                                  " event (message_new); tick it in the Long Poll API's event types")
    return Check(name, True, f"community {group_id}: Bots Long Poll API on (API {answer.get('api_version', '?')}),"
                             " incoming messages sent")
