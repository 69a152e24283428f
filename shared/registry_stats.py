"""Figures over the whole registry, for metrics: captures by status, agents online and
offline, messages waiting in the outbox. One aggregate query each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, case, func, select

from shared.arm import PcStatus
from shared.registry_schema import agents, captures, outbox


def captures_by_status(engine: Engine) -> dict[str, int]:
    """Every status, zero where no capture has it (so a dashboard's series never vanish)."""
    with engine.connect() as conn:
        rows = conn.execute(select(captures.c.status, func.count()).group_by(captures.c.status)).all()
    return {status.value: 0 for status in PcStatus} | {row[0]: row[1] for row in rows}


def agents_by_state(engine: Engine, seen_since: datetime) -> dict[str, int]:
    """Agents heard from since `seen_since` are online; the others offline."""
    online = func.sum(case((agents.c.last_seen >= seen_since, 1), else_=0))
    with engine.connect() as conn:
        total, up = conn.execute(select(func.count(), online)).one()
    return {"online": int(up or 0), "offline": int(total - (up or 0))}


def outbox_messages(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
