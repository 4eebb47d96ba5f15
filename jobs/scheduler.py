"""The one place for job defaults: APScheduler 3 on the service's asyncio event loop."""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

# coalesce: a backlog of missed runs runs once; max_instances=1: a slow job never overlaps itself;
# a generous grace time for a job that is late while the process runs (a busy loop). The jobs live
# in memory, so times missed while the process was DOWN are not APScheduler's: the service keeps
# the time up to which publishing is accounted for and catches up at start (`missed_slot`), the
# nightly backup and the weekly best-of likewise (`missed_run`), and a start inside the night
# window runs a retrain the night has not finished (jobs/service.py).
MISFIRE_GRACE_SECONDS = 6 * 3600
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}

MINUTES_PER_YEAR = 525_600.0


def clock_time(text: str) -> tuple[int, int]:
    """(hour, minute) of a time of day written "HH:MM" (24-hour clock); ValueError when it is not one."""
    hour, _, minute = text.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"not a time as 'HH:MM': {text!r}")
    return int(hour), int(minute)


@dataclass(frozen=True)
class ScheduleOptions:
    """[schedule]: when the service's jobs run, in `timezone`."""

    timezone: str = "UTC"               # IANA time zone of every time below (and backup.at)
    # publish one queued post at each of these times (HH:MM)
    publish_times: list[str] = field(default_factory=lambda: ["09:00", "13:00", "17:00", "21:00"])
    pool_every_minutes: float = 10.0    # how often the draft pools are topped up
    reactions_every_minutes: float = 30.0   # how often reaction counts are polled (VK likes)
    scrape_every_hours: float = 6.0     # how often vk.groups are scraped for new posts
    retrain: bool = True                # retrain every night; a new model is promoted only when it is better
    retrain_at: str = "03:30"           # the night window's start (HH:MM)
    retrain_until: str = "07:30"        # its end: a nightly run trains until then (unless train.max_minutes)
    remind_after_hours: float = 12.0    # remind the moderators when nothing was approved this long and drafts wait
    digest: str = ""   # the weekly best-of post, "DAY HH:MM" (DAY: mon ... sun); "" = none (jobs/curation.py)

    def problems(self) -> dict[str, str]:
        problems = {}
        for key, most in (("pool_every_minutes", MINUTES_PER_YEAR), ("reactions_every_minutes", MINUTES_PER_YEAR),
                          ("scrape_every_hours", MINUTES_PER_YEAR / 60), ("remind_after_hours", MINUTES_PER_YEAR / 60)):
            if not 0 < getattr(self, key) <= most:
                problems[key] = f"a positive number of at most {most:g} (a year)"
        for key, times in (("publish_times", self.publish_times), ("retrain_at", [self.retrain_at]),
                           ("retrain_until", [self.retrain_until])):
            for time in times:
                try:
                    clock_time(time)
                except ValueError:
                    problems[key] = f"times as 'HH:MM' ({time!r} is not one)"
        if "publish_times" not in problems:   # one post per time: a time twice ("9:00", "09:00") is a typo
            clock = [clock_time(t) for t in self.publish_times]
            twice = sorted({f"{h:02d}:{m:02d}" for h, m in clock if clock.count((h, m)) > 1})
            if twice:
                problems["publish_times"] = f"times as 'HH:MM', each once ({', '.join(twice)} twice)"
        if self.digest and weekly_at(self.digest) is None:
            problems["digest"] = "a day and time as 'sun 19:00' (mon ... sun), or \"\" for none"
        if not {"retrain_at", "retrain_until"} & problems.keys() and \
                clock_time(self.retrain_until) == clock_time(self.retrain_at):
            problems["retrain_until"] = f"a time other than retrain_at ({self.retrain_at!r}): the night window is empty"
        try:
            ZoneInfo(self.timezone)
        except Exception:  # noqa: BLE001 - any failure means the name is unusable
            problems["timezone"] = "an IANA time zone name such as 'Europe/Moscow'"
        return problems


@dataclass(frozen=True)
class NightWindow:
    """From `start` to `until` (HH:MM) every day in `timezone`; may cross midnight: the nightly
    retrain's (schedule.retrain_at, schedule.retrain_until)."""

    start: str = "03:30"
    until: str = "07:30"
    timezone: str = "UTC"

    def _at(self, day: dt.date, hhmm: str, tz) -> dt.datetime:
        hour, minute = clock_time(hhmm)
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)

    def length_minutes(self) -> float:
        (h1, m1), (h2, m2) = (clock_time(t) for t in (self.start, self.until))
        return float((h2 * 60 + m2 - h1 * 60 - m1) % (24 * 60) or 24 * 60)

    def around(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime] | None:
        """(its start, its end), in UTC, of the window `now` is inside; None outside every window."""
        tz, utc = ZoneInfo(self.timezone), dt.timezone.utc
        now = (now or dt.datetime.now(utc)).astimezone(utc)
        local_day = now.astimezone(tz).date()
        crosses_midnight = clock_time(self.until) <= clock_time(self.start)
        for day in (local_day - dt.timedelta(days=1), local_day):
            begin = self._at(day, self.start, tz).astimezone(utc)
            end = self._at(day + dt.timedelta(days=1) if crosses_midnight else day, self.until, tz).astimezone(utc)
            if begin <= now < end:
                return begin, end
        return None

    def remaining_minutes(self, now: dt.datetime | None = None) -> float | None:
        """Minutes until the window ends when `now` is inside it, else None. Real minutes: the window
        ends at `until` on the wall clock, so a night the clocks change on is an hour shorter or
        longer (aware datetimes of one zone add and subtract as wall times: everything is in UTC here)."""
        now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
        window = self.around(now)
        return None if window is None else (window[1] - now).total_seconds() / 60

    def __str__(self) -> str:
        return f"{self.start}-{self.until} {self.timezone}"


Job = Callable[[], Awaitable[object]]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WallClockTrigger(CronTrigger):
    """A CronTrigger that runs once at a wall time the clocks pass twice (the night summer time
    ends): at its first, summer-time occurrence, as /queue's plan counts the slots. APScheduler's
    CronTrigger fires at both, so a publishing time in that hour published two posts."""

    def get_next_fire_time(self, previous_fire_time, now):
        when = super().get_next_fire_time(previous_fire_time, now)
        if when is not None and when.fold and when.replace(fold=0).utcoffset() != when.utcoffset():
            when = super().get_next_fire_time(when, when)   # the wall time's second pass: the next one
        return when


def weekly_at(text: str) -> tuple[str, int, int] | None:
    """("sun", 19, 0) of "sun 19:00"; None when it is not a weekday and a time."""
    day, _, time = text.strip().lower().partition(" ")
    try:
        hour, minute = clock_time(time.strip())
    except ValueError:
        return None
    return (day, hour, minute) if day in WEEKDAYS else None


def add_weekly(scheduler: AsyncIOScheduler, job: Job, *, job_id: str, when: str, timezone: str) -> None:
    """Run `job` every week at `when` ("sun 19:00") in `timezone`."""
    parsed = weekly_at(when)
    if parsed is None:
        raise ValueError(f"not a weekly time: {when!r}")
    day, hour, minute = parsed
    scheduler.add_job(job, WallClockTrigger(day_of_week=day, hour=hour, minute=minute, timezone=timezone),
                      id=job_id, name=job_id, replace_existing=True)


def build_scheduler(timezone: str) -> AsyncIOScheduler:
    return AsyncIOScheduler(job_defaults=JOB_DEFAULTS, timezone=timezone)


def daily_at(times: Sequence[str], timezone: str) -> list[CronTrigger]:
    triggers: list[CronTrigger] = []
    for time in times:
        hour, minute = clock_time(time)
        triggers.append(WallClockTrigger(hour=hour, minute=minute, timezone=timezone))
    return triggers


def add_interval(scheduler: AsyncIOScheduler, job: Job, *, job_id: str, minutes: float,
                 run_now: bool = False) -> None:
    kwargs = {"next_run_time": dt.datetime.now(dt.timezone.utc)} if run_now else {}
    scheduler.add_job(job, IntervalTrigger(seconds=minutes * 60), id=job_id, name=job_id,
                      replace_existing=True, **kwargs)


def add_daily(scheduler: AsyncIOScheduler, job: Job, *, job_id: str, times: Sequence[str],
              timezone: str) -> None:
    for index, trigger in enumerate(daily_at(times, timezone)):
        scheduler.add_job(job, trigger, id=f"{job_id}-{index}", name=job_id, replace_existing=True)


def missed_run(trigger: CronTrigger, *, covered_until: dt.datetime, now: dt.datetime,
               grace_seconds: float) -> dt.datetime | None:
    """The latest time of `trigger` after `covered_until` and not after `now`, when it is at most
    `grace_seconds` old; None when there is none."""
    since = max(covered_until, now - dt.timedelta(seconds=grace_seconds))
    latest, when = None, trigger.get_next_fire_time(None, since)
    while when is not None and when <= now:
        if when > covered_until:
            latest = when
        when = trigger.get_next_fire_time(when, when)
    return latest


def missed_slot(times: Sequence[str], timezone: str, *, covered_until: dt.datetime, now: dt.datetime,
                grace_seconds: float = MISFIRE_GRACE_SECONDS) -> dt.datetime | None:
    """The latest of the daily `times` after `covered_until` and not after `now`, when it is at
    most `grace_seconds` old (a bot down for days publishes once at start, not a backlog): the
    latest `missed_run` of their triggers."""
    missed = [when for trigger in daily_at(times, timezone)
              if (when := missed_run(trigger, covered_until=covered_until, now=now, grace_seconds=grace_seconds))]
    return max(missed, default=None)
