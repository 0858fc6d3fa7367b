"""The service rules a deployment configures (timeouts, retention) plus the working calendar,
bundled for handlers and background jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.config import Settings
from bot.services.calendar import WorkingCalendar


@dataclass(frozen=True)
class ServicePolicy:
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.load)
    escalation_hours: float = 4
    live_idle: timedelta = timedelta(minutes=30)
    rating_reminder_after: timedelta = timedelta(hours=24)
    auto_close_after: timedelta = timedelta(days=7)
    retention_years: int = 3
    completion_working_days: int = 10  # 按时办结: a case is due this many working days after opening
    followup_working_days: int = 5  # 好差评: a bad rating is followed up (replied to) within these
    public_url: str = ""
    # After a commissioner writes to an enterprise about an open case, the enterprise's messages
    # that are not clearly a new request go to that commissioner for this long.
    case_conversation: timedelta = timedelta(hours=72)
    # The privacy notice shown before the first personal field (handlers/consent.py): who
    # processes the data, and how to ask for a copy or for deletion.
    operator_name: str = "厦门市质量基础设施“一站式”协同服务平台"
    operator_contact: str = ""
    privacy_link: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ServicePolicy:
        return cls(
            calendar=WorkingCalendar.for_settings(settings),
            escalation_hours=settings.escalation_hours,
            live_idle=timedelta(minutes=settings.live_idle_minutes),
            rating_reminder_after=timedelta(hours=settings.rating_reminder_hours),
            auto_close_after=timedelta(days=settings.auto_close_days),
            retention_years=settings.archive_retention_years,
            completion_working_days=settings.completion_working_days,
            followup_working_days=settings.followup_working_days,
            public_url=settings.public_url,
            operator_name=settings.operator_name,
            operator_contact=settings.operator_contact,
            privacy_link=_absolute(settings.privacy_url, settings.public_url),
        )


def _absolute(url: str, public_url: str) -> str:
    """A link a chat message can carry: a path on this site needs the public URL in front."""
    if url.startswith(("http://", "https://")):
        return url
    return f"{public_url.rstrip('/')}/{url.lstrip('/')}" if url and public_url else ""
