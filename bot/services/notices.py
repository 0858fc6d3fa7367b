"""One-time notifications (一次性告知): what to prepare, typical time and fees, fitted to the demand.

Data in ``bot/data/service_types.yaml``, reviewed like code. Each domain lists its lines of
materials and fees. A line is either general (a plain string: always told) or conditional: it
names the demand's sub-types it belongs to (``subtypes``, declared once per domain with their
keywords) and/or its own ``keywords``, and is told only when the demand text matches. A fuel
dispenser's verification thus gets the mandatory-verification lines and not the pre-packaged
goods line. When a demand matches no conditional line at all ("我要办理计量服务"), every line
is told: the enterprise still gets the complete list, once.

Matching runs on the normalised text (``intents.normalize``: Simplified, NFKC, case-folded), so
Traditional, full-width and upper-case demands match the same keywords. An ASCII keyword only
matches as a whole token (``CE`` is not found in "certificate", ``9001`` is found in "ISO9001").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from intents import yamlfile
from intents.labels import DOMAINS
from intents.normalize import normalize

SERVICE_TYPES_FILE = Path(__file__).resolve().parent.parent / "data" / "service_types.yaml"


def _canonical(text: str) -> str:
    return normalize(text).text


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A keyword as a pattern; its ASCII edges must not run on into more ASCII of the same kind."""
    left = right = ""
    if keyword[:1].isascii() and keyword[:1].isalpha():
        left = r"(?<![a-z])"
    elif keyword[:1].isdigit():
        left = r"(?<![0-9])"
    if keyword[-1:].isascii() and keyword[-1:].isalpha():
        right = r"(?![a-z])"
    elif keyword[-1:].isdigit():
        right = r"(?![0-9])"
    return re.compile(left + re.escape(keyword) + right)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a notice: general when it names neither sub-types nor keywords."""

    text: str
    subtypes: tuple[str, ...] = ()
    keywords: tuple[re.Pattern[str], ...] = ()

    @property
    def general(self) -> bool:
        return not self.subtypes and not self.keywords

    def applies(self, demand: str, matched: frozenset[str]) -> bool:
        return any(s in matched for s in self.subtypes) or any(k.search(demand) for k in self.keywords)


@dataclass(frozen=True, slots=True)
class ServiceType:
    domain: str
    name: str
    materials: tuple[Line, ...]
    typical_time: str
    fees: tuple[Line, ...]
    subtypes: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    def matched_subtypes(self, demand: str) -> frozenset[str]:
        return frozenset(name for name, keys in self.subtypes.items() if any(k.search(demand) for k in keys))


def _keywords(raw: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(k, str | int) and str(k).strip() for k in raw):
        raise ValueError(f"{where}: keywords must be a list of non-empty strings")
    return tuple(_keyword_pattern(_canonical(str(k)).strip()) for k in raw)


def _lines(raw: Any, subtypes: dict[str, Any], where: str) -> tuple[Line, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: must be a non-empty list of lines")
    lines = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, str) and item.strip():
            lines.append(Line(item.strip()))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ValueError(f"{at}: a line is a string or a mapping with a non-empty 'text'")
        unknown = set(item) - {"text", "subtypes", "keywords"}
        if unknown:
            raise ValueError(f"{at}: unknown field(s) {sorted(unknown)}")
        names = item.get("subtypes") or []
        if not isinstance(names, list) or any(n not in subtypes for n in names):
            raise ValueError(f"{at}: subtypes {names!r} must name sub-types declared for the domain")
        keywords = _keywords(item.get("keywords"), at)
        if not names and not keywords:
            raise ValueError(f"{at}: a mapping line needs subtypes or keywords (write a general line as a string)")
        lines.append(Line(item["text"].strip(), tuple(names), keywords))
    if not any(line.general for line in lines):
        raise ValueError(f"{where}: needs at least one general line, so every demand gets a notice")
    return tuple(lines)


def parse_service_types(data: Any) -> dict[str, ServiceType]:
    """Validate the YAML mapping; raise ``ValueError`` naming the first problem."""
    if not isinstance(data, dict):
        raise ValueError("service types: expected a mapping of domain -> service type")
    missing = [d for d in DOMAINS if d not in data]
    if missing:
        raise ValueError(f"service types: no notice for domain(s) {missing}")
    result: dict[str, ServiceType] = {}
    for domain, raw in data.items():
        if domain not in DOMAINS:
            raise ValueError(f"service types: unknown domain {domain!r}")
        if not isinstance(raw, dict):
            raise ValueError(f"{domain}: expected a mapping")
        for key in ("name", "typical_time"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ValueError(f"{domain}.{key}: a non-empty string is required")
        declared = raw.get("subtypes") or {}
        if not isinstance(declared, dict):
            raise ValueError(f"{domain}.subtypes: expected a mapping of name -> keywords")
        subtypes = {name: _keywords(keys, f"{domain}.subtypes.{name}") for name, keys in declared.items()}
        if any(not keys for keys in subtypes.values()):
            raise ValueError(f"{domain}.subtypes: every sub-type needs keywords")
        result[domain] = ServiceType(
            domain=domain,
            name=raw["name"].strip(),
            materials=_lines(raw.get("materials"), subtypes, f"{domain}.materials"),
            typical_time=raw["typical_time"].strip(),
            fees=_lines(raw.get("fees"), subtypes, f"{domain}.fees"),
            subtypes=subtypes,
        )
    return result


@cache
def service_types() -> dict[str, ServiceType]:
    return parse_service_types(yamlfile.read(SERVICE_TYPES_FILE))


def _select(lines: tuple[Line, ...], demand: str, matched: frozenset[str]) -> list[str]:
    return [line.text for line in lines if line.general or line.applies(demand, matched)]


def notice_for(domain: str, demand_text: str = "") -> dict[str, Any]:
    """The notice for a demand: keys name, materials (list), typical_time, fees (one string) and
    subtypes (the sub-types the demand matched, for the record).

    General lines always; conditional lines when the demand matches them; every line when the
    demand matches no conditional line of the domain (a vague demand gets the complete list)."""
    service = service_types()[domain]
    demand = _canonical(demand_text or "")
    matched = service.matched_subtypes(demand)
    conditional = [line for line in (*service.materials, *service.fees) if not line.general]
    specific = any(line.applies(demand, matched) for line in conditional)
    if specific:
        materials = _select(service.materials, demand, matched)
        fees = _select(service.fees, demand, matched)
    else:
        materials = [line.text for line in service.materials]
        fees = [line.text for line in service.fees]
    return {
        "name": service.name,
        "materials": materials,
        "typical_time": service.typical_time,
        "fees": "；".join(fees),
        "subtypes": sorted(matched),
    }
