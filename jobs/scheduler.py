"""The one place for job defaults: APScheduler 3 on the service's asyncio event loop."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

# coalesce: a backlog of missed runs runs once; max_instances=1: a slow job never overlaps itself;
# a generous grace time, so a retrain missed during a restart at night still runs.
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600}

Job = Callable[[], Awaitable[object]]


def build_scheduler(timezone: str) -> AsyncIOScheduler:
    return AsyncIOScheduler(job_defaults=JOB_DEFAULTS, timezone=timezone)


def daily_at(times: Sequence[str], timezone: str) -> list[CronTrigger]:
    triggers = []
    for time in times:
        hour, minute = (int(part) for part in time.split(":"))
        triggers.append(CronTrigger(hour=hour, minute=minute, timezone=timezone))
    return triggers


def add_interval(scheduler: AsyncIOScheduler, job: Job, *, job_id: str, minutes: float,
                 run_now: bool = False) -> None:
    import datetime as dt

    kwargs = {"next_run_time": dt.datetime.now(dt.timezone.utc)} if run_now else {}
    scheduler.add_job(job, IntervalTrigger(seconds=minutes * 60), id=job_id, name=job_id,
                      replace_existing=True, **kwargs)


def add_daily(scheduler: AsyncIOScheduler, job: Job, *, job_id: str, times: Sequence[str],
              timezone: str) -> None:
    for index, trigger in enumerate(daily_at(times, timezone)):
        scheduler.add_job(job, trigger, id=f"{job_id}-{index}", name=job_id, replace_existing=True)
