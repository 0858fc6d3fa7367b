"""Background work of a running qibot: the periodic service jobs (escalation of unaccepted
cases, rating reminders, closing unrated cases), in ``qibot serve`` or once by ``qibot jobs``;
they need only the delivery-side runtime (no NLU, no knowledge base). Each job is safe to
run in several workers at once: it changes rows under the same conditions it selects them by,
and its notifications carry de-duplication keys."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.delivery import DeliveryRuntime
from bot.services import escalation, ratings, stats
from bot.storage.db import transaction

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


async def run_jobs_forever(runtime: DeliveryRuntime, interval: float = 60.0) -> None:
    while True:
        try:
            await run_jobs_once(runtime)
        except Exception:
            log.exception("periodic jobs failed; retrying next round")
        await asyncio.sleep(interval)
