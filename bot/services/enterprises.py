"""Enterprise profiles: kept once, reused by every later demand (the second demand asks
nothing already known)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ChannelIdentity, Enterprise

PROFILE_FIELDS = ("name", "credit_code", "contact_name", "mobile", "district")
XIAMEN_DISTRICTS = ("思明", "湖里", "集美", "海沧", "同安", "翔安")


@dataclass(frozen=True, slots=True)
class Profile:
    name: str | None
    credit_code: str | None
    credit_code_valid: bool | None
    contact_name: str | None
    mobile: str | None
    district: str | None
    industry: str | None

    def missing(self) -> list[str]:
        return [f for f in PROFILE_FIELDS if not getattr(self, f)]


def profile_of(enterprise: Enterprise | None) -> Profile:
    if enterprise is None:
        return Profile(None, None, None, None, None, None, None)
    return Profile(
        enterprise.name, enterprise.credit_code, enterprise.credit_code_valid, enterprise.contact_name,
        enterprise.mobile, enterprise.district, enterprise.industry,
    )


async def enterprise_for(session: AsyncSession, identity: ChannelIdentity) -> Enterprise:
    """The enterprise behind a chat identity, created (empty) on first need."""
    if identity.enterprise_id is not None:
        enterprise = await session.get(Enterprise, identity.enterprise_id)
        if enterprise is not None:
            return enterprise
    enterprise = Enterprise()
    session.add(enterprise)
    await session.flush()
    identity.enterprise_id = enterprise.id
    return enterprise


async def existing_enterprise(session: AsyncSession, identity: ChannelIdentity) -> Enterprise | None:
    if identity.enterprise_id is None:
        return None
    return await session.get(Enterprise, identity.enterprise_id)


def update_profile(enterprise: Enterprise, values: dict[str, object]) -> None:
    for key, value in values.items():
        if key in PROFILE_FIELDS or key in ("credit_code_valid", "industry"):
            setattr(enterprise, key, value)
