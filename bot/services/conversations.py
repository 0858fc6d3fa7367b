"""Persisted conversation state: the flow a user is in and what it has collected so far."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ConversationState


@dataclass
class DialogueState:
    """What handlers read and change; saved after every turn in the turn's transaction."""

    flow: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Whether load() found a stored row, so saving is one UPDATE (or INSERT) and not a second
    # SELECT first.
    stored: bool = field(default=False, repr=False, compare=False)
    # What load() found, to skip the write when a turn changed nothing (most questions). None
    # for a state built by hand: saving that always writes, whatever is stored.
    loaded: tuple[str | None, dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    def enter(self, flow: str, **data: Any) -> None:
        self.flow = flow
        self.data = dict(data)

    def clear(self) -> None:
        self.flow = None
        self.data = {}


async def load(session: AsyncSession, identity_id: int) -> DialogueState:
    """Load (and, on PostgreSQL, row-lock) the user's state so concurrent workers serialise
    on one user's turns instead of overwriting each other."""
    stmt = _LOAD_LOCKED if session.get_bind().dialect.name == "postgresql" else _LOAD
    row = (await session.execute(stmt, {"identity_id": identity_id})).one_or_none()
    if row is None:
        return nothing_stored()
    flow, stored = row
    data = dict(stored or {})
    return DialogueState(flow=flow, data=data, stored=True, loaded=(flow, copy.deepcopy(data)))


def nothing_stored() -> DialogueState:
    """What :func:`load` finds for an identity created in the current transaction, without
    asking: no other transaction can see that identity yet, so no state row can exist for it."""
    return DialogueState(loaded=(None, {}))


# Columns, not the ORM object: every turn loads the state, nothing else reads the object (saving
# is a direct statement), and an ORM load cost about twice the columns' (bench/profile_turn.py).
_TABLE = ConversationState.__table__
_LOAD = select(_TABLE.c.flow, _TABLE.c.data).where(_TABLE.c.identity_id == bindparam("identity_id"))
_LOAD_LOCKED = _LOAD.with_for_update()


async def save(session: AsyncSession, identity_id: int, state: DialogueState, now: datetime) -> None:
    """Write the state if it changed since :func:`load`; ``now`` (the turn's clock) stamps it."""
    if state.loaded is not None and (state.flow, state.data) == state.loaded:
        return  # unchanged since load(): no write (an absent row and an empty state mean the same)
    stored = state.stored
    if not stored and state.loaded is None:  # built by hand: whatever is stored is replaced
        stored = (await session.execute(_LOAD, {"identity_id": identity_id})).first() is not None
    data = dict(state.data)
    # Direct statements rather than the ORM's unit of work, which cost several times the
    # statement on every turn that changes the state.
    if not stored:
        await session.execute(_INSERT, {"identity_id": identity_id, "flow": state.flow, "data": data,
                                        "version": 1, "updated_at": now})
        state.stored = True
        return
    await session.execute(_UPDATE, {"key": identity_id, "new_flow": state.flow, "new_data": data, "now": now})


_INSERT = insert(_TABLE)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.identity_id == bindparam("key"))
    .values(flow=bindparam("new_flow"), data=bindparam("new_data"), version=_TABLE.c.version + 1,
            updated_at=bindparam("now"))
)
