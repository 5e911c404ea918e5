"""Firing digests on schedule, as jobs of the bot's one APScheduler 3 AsyncIOScheduler
(on the bot's one loop; the bot owns its start and shutdown).

Schedules live in SQLite; the scheduler is rebuilt from them at every start. Each has a
cron trigger in its own time zone, so 09:00 stays 09:00 across DST. At start-up, a digest
missed while the bot was down runs once if it is less than the grace window late. Failed
runs are retried from their recorded retry time. A heartbeat row lets the next start see
how long the bot was away (digests covering that time read Slack history).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from qwqbot.config import Settings
from qwqbot.digest.port import DigestSlack
from qwqbot.digest.runner import DigestRunner, Outcome
from qwqbot.digest.schedule import Schedule, latest_fire, period_ending, period_key, trigger
from qwqbot.store.digests import DigestStore

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30
RETRY_CHECK_SECONDS = 60


def schedule_of(row: dict[str, Any]) -> Schedule:
    return Schedule(kind=row["kind"], hour=row["hour"], minute=row["minute"], tz=row["tz"],
                    day=row["day"])


def title_of(row: dict[str, Any], channel_name: str) -> str:
    return f"{'Daily' if row['kind'] == 'daily' else 'Weekly'} digest of #{channel_name}"


class DigestScheduler:
    def __init__(self, *, settings: Settings, runner: DigestRunner, digests: DigestStore,
                 jobs: AsyncIOScheduler, slack: DigestSlack,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.runner = runner
        self.digests = digests
        self.settings = settings
        self.slack = slack
        self.now = now
        #: the bot's one scheduler; its owner starts and shuts it down
        self.jobs = jobs
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        gap = self.digests.record_downtime(min_gap=3 * HEARTBEAT_SECONDS)
        if gap:
            log.info("the bot was away for %.0f s; digests covering that read Slack history",
                     gap[1] - gap[0])
        self.digests.heartbeat()
        interrupted = self.digests.interrupt_running()
        if interrupted:
            log.warning("%d digest runs were interrupted by the last stop; retrying", interrupted)
        for row in self.digests.schedules():
            self.add(row)
        self.jobs.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_SECONDS,
                          id="heartbeat", replace_existing=True)
        self.jobs.add_job(self.retry_due, "interval", seconds=RETRY_CHECK_SECONDS,
                          id="digest-retries", replace_existing=True)
        await self.catch_up()
        await self.retry_due()

    async def _heartbeat(self) -> None:
        # A coroutine, so APScheduler runs it on the loop that owns the SQLite connection
        # (plain functions go to its thread pool, where the connection may not be used).
        self.digests.heartbeat()

    async def shutdown(self) -> None:
        """Cancel digests being written (their runs are retried at the next start)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- schedules ---------------------------------------------------------------------

    def add(self, row: dict[str, Any]) -> None:
        # misfire_grace_time covers a loop busy at the exact second; coalesce avoids bursts.
        self.jobs.add_job(self.fire, trigger(schedule_of(row)), args=[row["id"]],
                               id=f"digest:{row['id']}", replace_existing=True, coalesce=True,
                               misfire_grace_time=int(self.settings.digest_grace_hours * 3600))

    def remove(self, schedule_ids: list[int]) -> None:
        for schedule_id in schedule_ids:
            job = self.jobs.get_job(f"digest:{schedule_id}")
            if job is not None:
                job.remove()

    def next_run(self, schedule_id: int) -> datetime | None:
        job = self.jobs.get_job(f"digest:{schedule_id}")
        return job.next_run_time if job is not None else None

    # -- firing ------------------------------------------------------------------------

    async def fire(self, schedule_id: int, at: datetime | None = None) -> Outcome | None:
        """Run the digest of the period that ends at the latest scheduled time <= ``at``."""
        row = self.digests.schedule(schedule_id)
        if row is None:
            return None  # removed while the job was queued
        schedule = schedule_of(row)
        fire = latest_fire(schedule, at or self.now())
        start, end = period_ending(schedule, fire)
        # "Since the previous digest": a `digest now` in between already covered part of it.
        previous = self.digests.last_posted_end(row["channel_id"])
        start_ts = max(start.timestamp(), previous or 0.0)
        channel_name = await self.slack.channel_name(row["channel_id"])
        return await self.runner.run(
            channel_id=row["channel_id"], channel_name=channel_name, schedule_id=schedule_id,
            period_key=period_key(schedule_id, fire), start=min(start_ts, end.timestamp()),
            end=end.timestamp(), tz=row["tz"], title=title_of(row, channel_name))

    async def catch_up(self) -> None:
        """Digests whose time passed while the bot was down: each runs once, if not too late."""
        now = self.now()
        grace = timedelta(hours=self.settings.digest_grace_hours)
        for row in self.digests.schedules():
            fire = latest_fire(schedule_of(row), now)
            if now - fire > grace:
                continue
            if self.digests.run_for(row["channel_id"], period_key(row["id"], fire)) is None:
                log.info("digest %d missed at %s; running it now", row["id"], fire.isoformat())
                self.spawn(self.fire(row["id"], at=fire))

    async def retry_due(self) -> None:
        for run in self.digests.failed_runs_due(self.now().timestamp()):
            if run["schedule_id"] is None or self.digests.schedule(run["schedule_id"]) is None:
                continue
            end = datetime.fromtimestamp(run["period_end"], UTC)
            log.info("retrying the digest of %s for the period ending %s", run["channel_id"],
                     end.isoformat())
            self.spawn(self.fire(run["schedule_id"], at=end))
