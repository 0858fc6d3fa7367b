"""Consent to the privacy notice: recorded before the bot keeps a person's first personal field.

The notice (``privacy_notice`` in ``handlers/texts.yaml``) says who processes the data, what for,
how long it is kept and how to ask for a copy or deletion. A consent row names the notice
version it was given to, so a changed notice can be asked again by raising ``NOTICE_VERSION``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ChannelIdentity, PrivacyConsent

# Raise when the notice's substance changes (processor, purpose, retention, rights): everyone
# is then shown the new notice before their next personal field.
NOTICE_VERSION = "2026-12"


async def has_consent(session: AsyncSession, identity_id: int) -> bool:
    row = await session.execute(
        select(PrivacyConsent.id).where(
            PrivacyConsent.identity_id == identity_id,
            PrivacyConsent.notice_version == NOTICE_VERSION,
            PrivacyConsent.withdrawn_at.is_(None),
        ).limit(1)
    )
    return row.first() is not None


async def record(
    session: AsyncSession, identity: ChannelIdentity, *, purpose: str, method: str, now: datetime
) -> PrivacyConsent:
    """Record that this person agreed (``method``: provided | agreed) for ``purpose``."""
    consent = PrivacyConsent(
        identity_id=identity.id, enterprise_id=identity.enterprise_id, channel=identity.channel,
        notice_version=NOTICE_VERSION, purpose=purpose, method=method, created_at=now,
    )
    session.add(consent)
    await session.flush()
    return consent
