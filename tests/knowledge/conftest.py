"""Knowledge-base test fixtures: the shipped KB loaded once per session, and fixture paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.retriever import KnowledgeBase

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The real content: loading it takes about a second, so every test shares one."""
    return KnowledgeBase.load()


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES
