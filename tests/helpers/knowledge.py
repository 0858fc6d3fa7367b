"""A knowledge service of a test's own, without loading the content again.

Tests that publish console edits need a service nobody else uses (the session's one is shared by
every test of the process), and the multi-worker tests need one per simulated worker. Loading the
bundled content costs 0.3-2 s of CPU each time. A ``KnowledgeBase`` is immutable once built and
``KnowledgeService.apply``/``reload`` swap in a new one, so a shallow copy of the session's service
serves the same index and parts from it at its first edit, exactly as a second worker that loaded
the same files would.
"""

from __future__ import annotations

import copy
import threading

from bot.services.knowledge import KnowledgeService


def own_knowledge(shared: KnowledgeService) -> KnowledgeService:
    service = copy.copy(shared)
    service._lock = threading.Lock()  # the copy's edits are serialised on their own
    return service
