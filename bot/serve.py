"""`buhurt run`: one service per data folder, on Telegram when a token is configured, else on the
local channel; signals stop it cleanly. Builds its parts with bot.app (the composition root)."""
from __future__ import annotations

import asyncio
import logging
import signal

from bot.answers import ServiceSubscribers, subscriber_limits
from bot.app import SHUTDOWN_GRACE_SECONDS, Services, build_services
from bot.config import Settings
from bot.errors import BotError
from bot.instance import instance_lock

log = logging.getLogger(__name__)


def run_service(settings: Settings, *, once: bool) -> None:
    """`buhurt run`: Telegram when telegram.token is set, else the local channel (refused in one line
    when channels or the moderators' chat are set without a token). One service per
    data folder (bot/instance.py: a second one exits 2 naming the holder's pid).

    SIGTERM/SIGINT: `--once` finishes its cycle, then exits 0 (a second signal interrupts it); the
    long-running local service stops its schedule, lets the running jobs finish (at most
    SHUTDOWN_GRACE_SECONDS) and exits 0."""
    if (missing := settings.telegram.without_token()) is not None:
        raise BotError(missing)
    with instance_lock(settings.data_dir):
        if once:
            _finish_cycle_on_signals()
        if settings.telegram.token:
            from bot.telegram.runner import run_telegram

            run_telegram(settings, once=once)
            return
        log.info("no Telegram token configured: publishing to the local channel (%s)",
                 settings.data_dir / "local_channel.txt")
        services = build_services(settings)
        asyncio.run(_run_local(services, once))


async def _run_local(services: Services, once: bool) -> None:
    service = services.service
    await service.startup()
    if once:
        await service.first_model_trained()   # the cycle's drafts come from it
        result = await service.run_once()
        published = result["published"]
        log.info("cycle done: %d new drafts, published %s", len(result["drafts"]),
                 f"meme #{published['id']}" if published else "nothing (the queue is empty)")
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service.start_schedule()
    messages = _vk_messages(services)
    try:
        await stop.wait()
        log.info("stopping: no new jobs; waiting for the running ones")
    finally:
        if messages is not None:
            await messages.stop(SHUTDOWN_GRACE_SECONDS)
        await service.stop(SHUTDOWN_GRACE_SECONDS)
        await finish_running_tasks(5.0)  # whatever else was started (a refill) gets a moment
        services.db.close()
    log.info("stopped")


def _vk_messages(services: Services):
    """The VK community's messages, answered beside the local channel (vk.messages_group_id), started."""
    settings = services.settings
    if not settings.vk.messages_group_id:
        return None
    from bot.vk.messages import VkMessages

    messages = VkMessages(settings.vk, ServiceSubscribers(settings, services, subscriber_limits(settings)))
    messages.start()
    return messages


async def finish_running_tasks(grace: float) -> None:
    """Wait up to `grace` seconds for the loop's other tasks (jobs in flight), then cancel the rest."""
    pending = asyncio.all_tasks() - {asyncio.current_task()}
    if not pending:
        return
    done, late = await asyncio.wait(pending, timeout=grace)
    for task in late:
        log.warning("still running after %.0f s, cancelled: %s", grace, task.get_name())
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=5)


def _finish_cycle_on_signals() -> None:
    """For `run --once`: the first SIGTERM/SIGINT lets the cycle finish (exit 0); a second interrupts."""
    received: list[int] = []

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)
        log.info("%s received: finishing the current cycle, then exiting (again to interrupt)",
                 signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
