"""Background work of a running qibot: the periodic service jobs (escalation of unaccepted
cases, rating reminders, closing unrated cases), in ``qibot serve`` and ``qibot worker``, or once
by ``qibot jobs``; they need only the delivery-side runtime (no NLU, no knowledge base).

The looping forms run a round only while they hold the database lease ``jobs``
(:mod:`bot.services.leases`), taken for one interval: with several workers the jobs run once
per interval across the cluster, and when the worker that ran them dies another takes over after
one interval. Each job is also safe to run in several workers at once (it changes rows under the
same conditions it selects them by, and its notifications carry de-duplication keys), which is
why the one-shot ``qibot jobs`` of a cron line needs no lease."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.delivery import DeliveryRuntime
from bot.services import escalation, leases, ratings, stats
from bot.storage.db import transaction
from bot.storage.outage import OUTAGE, is_unavailable

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    escalated: int = 0
    reminded: int = 0
    closed: int = 0
    stamped: int = 0


async def run_jobs_once(runtime: DeliveryRuntime) -> JobReport:
    policy = runtime.policy
    now = runtime.now()
    report = JobReport()
    async with transaction(runtime.sessions) as session:
        report.escalated = await escalation.escalate_unaccepted(session, policy.calendar, policy.escalation_hours, now)
    async with transaction(runtime.sessions) as session:
        report.reminded = await ratings.send_reminders(session, now, policy.rating_reminder_after)
    async with transaction(runtime.sessions) as session:
        report.closed = await ratings.close_unrated(session, now, policy.auto_close_after, policy.retention_years)
    async with transaction(runtime.sessions) as session:
        # The working-calendar deadlines the dashboard's on-time rates compare against.
        report.stamped = await stats.stamp_deadlines(session, policy)
    if report.escalated or report.reminded or report.closed:
        runtime.dispatcher.wakeup.set()
    return report


LEASE = "jobs"


async def run_jobs_if_due(runtime: DeliveryRuntime, holder: str, interval: float) -> JobReport | None:
    """One round if this process takes the lease for the interval; None if another worker ran
    the jobs less than ``interval`` seconds ago (or is running them)."""
    async with transaction(runtime.sessions) as session:
        taken = await leases.acquire(session, LEASE, holder, runtime.now(), timedelta(seconds=interval))
    if not taken:
        return None
    return await run_jobs_once(runtime)


async def run_jobs_forever(runtime: DeliveryRuntime, interval: float = 60.0, holder: str | None = None) -> None:
    """Every ``interval`` seconds, the jobs, in whichever worker takes the lease first. The
    lease is not given back after a round: it expires with the interval, so the round after
    runs once, too."""
    holder = holder or leases.holder_id()
    while True:
        try:
            await run_jobs_if_due(runtime, holder, interval)
        except Exception as exc:
            if is_unavailable(exc):
                OUTAGE.mark_down(exc)  # logged once per outage by whoever sees it first
            else:
                log.exception("periodic jobs failed; retrying next round")
        await asyncio.sleep(interval)
