"""The materials an enterprise sends for its case (补充材料): images and files, kept with their
bytes so staff can look at them in the console.

A material is recorded when the message arrives (:func:`record`, pending) with the channel's
reference to it. A WeChat image is only a ``MediaId`` that WeChat keeps for three days, so the
fetch is an outbox row for the WeChat channel (``material_fetch``): the outbox is the job queue,
so the fetch is retried with backoff, survives restarts and runs on whichever worker delivers
WeChat rows; the notifier downloads the media and calls :func:`store` (or :func:`fail`).

The bytes are kept in the database (every worker serves them, backups hold them), up to
:data:`MAX_BYTES`. Their type is sniffed from the bytes, never taken from the sender: only the
raster image types in :data:`INLINE_TYPES` are ever shown inline; everything else is a download.
No path is ever built from anything a sender chose, so there is nothing to traverse.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from bot.services import outbox
from bot.storage.models import CaseMaterial, ChannelIdentity, ServiceCase

KINDS = frozenset({"image", "file"})
FETCH_KIND = "material_fetch"  # the outbox kind the WeChat notifier downloads
WECHAT_PREFIX = "wechat-media:"
WEBCHAT_PREFIX = "webchat-upload:"  # + the SHA-256 of the bytes: the web chat sends them along
MAX_BYTES = 20 * 1024 * 1024
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"%PDF-", "application/pdf", "pdf"),
    (b"PK\x03\x04", "application/zip", "zip"),
)
EXTENSIONS = {t: e for _, t, e in _MAGIC} | {"image/webp": "webp", "application/octet-stream": "bin"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"\\/:*?<>|;]+")


def sniff(content: bytes) -> str:
    """The type the bytes are (magic numbers), ``application/octet-stream`` when unknown."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    for magic, content_type, _ in _MAGIC:
        if content.startswith(magic):
            return content_type
    return "application/octet-stream"


def safe_filename(name: str | None, fallback: str) -> str:
    """A file name for a download header: the last path segment, no control characters, quotes,
    separators or leading dots, at most 100 characters; ``fallback`` when nothing is left."""
    text = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    text = _UNSAFE_NAME.sub("_", text).strip(" .")
    return text[:100] or fallback


def content_disposition(material: CaseMaterial) -> str:
    """``inline`` for the raster images shown as thumbnails, ``attachment`` for everything else;
    an ASCII name plus the original one in RFC 5987 form."""
    how = "inline" if material.content_type in INLINE_TYPES else "attachment"
    extension = EXTENSIONS.get(material.content_type or "", "bin")
    ascii_name = f"material-{material.id}.{extension}"
    name = safe_filename(material.filename, ascii_name)
    return f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def record(session: AsyncSession, case: ServiceCase, *, kind: str, ref: str, channel: str,
                 now: datetime) -> CaseMaterial | None:
    """Note a material on the case (pending) and, for WeChat media, queue its download. Kinds
    other than images and files (voice, video, location) are not materials."""
    if kind not in KINDS or not ref:
        return None
    material = CaseMaterial(case_id=case.id, kind=kind, channel=channel[:20], ref=ref[:300], status="pending",
                            created_at=now)
    session.add(material)
    await session.flush()
    if ref.startswith(WECHAT_PREFIX):
        await outbox.enqueue(session, channel="wechat", recipient=f"material:{material.id}", kind=FETCH_KIND,
                             payload={"material_id": material.id, "media_id": ref[len(WECHAT_PREFIX):]}, now=now,
                             dedup_key=f"material:{material.id}")
    return material


async def store(session: AsyncSession, material_id: int, content: bytes, *, filename: str | None,
                now: datetime) -> CaseMaterial | None:
    """Keep the bytes of a pending material (None if it is gone); too large is a failure."""
    material = await session.get(CaseMaterial, material_id)
    if material is None:
        return None
    if len(content) > MAX_BYTES:
        return await fail(session, material_id, f"超过 {MAX_BYTES // (1024 * 1024)} MB，未保存", now)
    material.content = content
    material.size = len(content)
    material.sha256 = hashlib.sha256(content).hexdigest()
    material.content_type = sniff(content)
    material.filename = safe_filename(filename, "")[:200] or None
    material.status, material.error, material.stored_at = "stored", None, now
    return material


async def store_upload(session: AsyncSession, *, channel: str, user_id: str, ref: str, content: bytes,
                       filename: str | None, now: datetime) -> int:
    """The bytes of an upload whose message the engine just attached (pending, this ``ref``) to
    an open case of the uploader's enterprise; returns how many materials got them (0: no open
    case, so nothing was attached and the bytes are dropped)."""
    found = (await session.execute(
        select(CaseMaterial.id).join(ServiceCase, ServiceCase.id == CaseMaterial.case_id)
        .join(ChannelIdentity, ChannelIdentity.enterprise_id == ServiceCase.enterprise_id)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == user_id,
               CaseMaterial.ref == ref, CaseMaterial.status == "pending"))).scalars().all()
    for material_id in found:
        await store(session, material_id, content, filename=filename, now=now)
    return len(found)


async def fail(session: AsyncSession, material_id: int, reason: str, now: datetime) -> CaseMaterial | None:
    """The bytes cannot be had (WeChat's three days are over, too large): said on the case page."""
    material = await session.get(CaseMaterial, material_id)
    if material is None:
        return None
    material.status, material.error, material.stored_at = "failed", reason[:500], now
    return material


async def of_case(session: AsyncSession, case_id: int) -> Sequence[CaseMaterial]:
    """The case's materials, oldest first, without their bytes."""
    return (await session.execute(
        select(CaseMaterial).where(CaseMaterial.case_id == case_id).order_by(CaseMaterial.id))).scalars().all()


async def with_content(session: AsyncSession, case_id: int, material_id: int) -> CaseMaterial | None:
    """One stored material of this case, bytes included (None for another case's, or unstored)."""
    return (await session.execute(
        select(CaseMaterial).options(undefer(CaseMaterial.content))
        .where(CaseMaterial.id == material_id, CaseMaterial.case_id == case_id, CaseMaterial.status == "stored")
    )).scalar_one_or_none()
