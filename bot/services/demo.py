"""Loading the demo resource library (sites, commissioners, institutions, experts) from
``bot/data/demo.yaml``. Idempotent: running it twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Commissioner, Expert, Institution, Site
from intents import yamlfile

DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "demo.yaml"


@dataclass
class DemoReport:
    sites: int = 0
    commissioners: int = 0
    institutions: int = 0
    experts: int = 0


def read_demo(path: Path = DEMO_FILE) -> dict[str, Any]:
    return yamlfile.read(path)


async def load_demo(session: AsyncSession, data: dict[str, Any] | None = None) -> DemoReport:
    data = data if data is not None else read_demo()
    report = DemoReport()
    sites: dict[str, Site] = {s.name: s for s in (await session.execute(select(Site))).scalars()}
    for item in data["sites"]:
        if item["name"] not in sites:
            site = Site(name=item["name"], kind=item["kind"], district=item.get("district"))
            session.add(site)
            sites[site.name] = site
            report.sites += 1
    await session.flush()
    handles = set((await session.execute(select(Commissioner.handle))).scalars())
    for item in data["commissioners"]:
        if item["handle"] in handles:
            continue
        session.add(Commissioner(
            handle=item["handle"], name=item["name"], domains=list(item["domains"]),
            site_id=sites[item["site"]].id, on_duty=item.get("on_duty", True),
            is_supervisor=item.get("supervisor", False), active=True,
        ))
        report.commissioners += 1
    names = set((await session.execute(select(Institution.name))).scalars())
    for item in data["institutions"]:
        if item["name"] in names:
            continue
        session.add(Institution(
            name=item["name"], kind=item["kind"], district=item.get("district"), domains=list(item["domains"]),
            capabilities=list(item.get("capabilities", [])), qualifications=list(item.get("qualifications", [])),
            contact=item.get("contact"), status=item.get("status", "active"),
        ))
        report.institutions += 1
    experts = set((await session.execute(select(Expert.name))).scalars())
    for item in data["experts"]:
        if item["name"] in experts:
            continue
        session.add(Expert(
            name=item["name"], title=item.get("title"), domains=list(item["domains"]),
            capabilities=list(item.get("capabilities", [])), status=item.get("status", "active"),
        ))
        report.experts += 1
    return report
