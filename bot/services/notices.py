"""One-time notifications (一次性告知) per service domain: what to prepare, typical time, fees.
Data in ``bot/data/service_types.yaml``, reviewed like code."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

SERVICE_TYPES_FILE = Path(__file__).resolve().parent.parent / "data" / "service_types.yaml"


@cache
def service_types() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(SERVICE_TYPES_FILE.read_text(encoding="utf-8"))


def notice_for(domain: str) -> dict[str, Any]:
    """The notice of a domain: keys name, materials (list), typical_time, fees."""
    return service_types()[domain]
