"""Who may send the control worker what: a capture's reports only its VM's agent, a VM's
heartbeat only that VM's agent, ticks only the control workers themselves. The sender is
the broker user RabbitMQ vouches for (shared/broker_identity.py); anything else is dropped,
counted and logged with the sender it claimed to be and the one it was."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from pydantic import BaseModel

from shared.broker_identity import agent_user, user_of
from shared.errors import InvalidField
from shared.messages import Heartbeat, Tick, task_of
from shared.registry import Registry
from shared.resource_ids import CaptureId, VirtualMachineId

log = logging.getLogger("packetwatch.control")
REFUSED = Counter("packetwatch_control_reports_refused_total", "Messages the control worker dropped because their "
                  "sender (the broker user RabbitMQ vouches for) may not send them, by task and why "
                  "(not_owner, unknown_sender, unknown_capture, unknown_vm)", ["task", "why"])
OWNERS_KEPT = 100_000  # capture runs whose owner is remembered (a run's VM never changes)


class Senders:
    def __init__(self, registry: Registry, broker_url: str) -> None:
        self.registry = registry
        self.own_user = user_of(broker_url)
        self.owners: dict[tuple[str, str], str] = {}  # (capture ID, run ID) -> its agent's broker user

    def ourselves(self, message: Tick, sender: str | None) -> bool:
        return self._allowed(task_of(message).value, sender, self.own_user, "a control worker")

    def vm_agent(self, beat: Heartbeat, sender: str | None) -> bool:
        try:
            owner = agent_user(VirtualMachineId.parse(beat.vm_id))
        except InvalidField:
            return self._refuse(task_of(beat).value, "unknown_vm", sender, f"a heartbeat for {beat.vm_id!r}")
        return self._allowed(task_of(beat).value, sender, owner, f"the agent of {beat.vm_id}")

    def capture_agent(self, report: BaseModel, sender: str | None) -> bool:
        """A report on one capture run (its status, files, statistics or upload)."""
        capture_id, run_id = getattr(report, "capture_id"), getattr(report, "run_id")
        task = task_of(report).value
        owner = self._owner(capture_id, run_id)
        if owner is None:
            return self._refuse(task, "unknown_capture", sender, f"a report on {capture_id} run {run_id}, which "
                                "is not that capture's current run", warn=False)
        return self._allowed(task, sender, owner, f"the agent of {capture_id}")

    def _owner(self, capture_id: str, run_id: str) -> str | None:
        key = (capture_id, run_id)
        if key not in self.owners:
            try:
                record = self.registry.find(CaptureId.parse(capture_id))
            except InvalidField:
                return None
            if record is None or record.run_id != run_id:
                return None
            if len(self.owners) >= OWNERS_KEPT:
                self.owners.clear()
            self.owners[key] = agent_user(VirtualMachineId.parse(record.parameters.target))
        return self.owners[key]

    def _allowed(self, task: str, sender: str | None, owner: str, claimed: str) -> bool:
        if sender == owner:
            return True
        return self._refuse(task, "unknown_sender" if sender is None else "not_owner", sender,
                            f"{claimed} ({owner})")

    @staticmethod
    def _refuse(task: str, why: str, sender: str | None, claimed: str, warn: bool = True) -> bool:
        REFUSED.labels(task, why).inc()
        (log.warning if warn else log.debug)(
            "dropped %s: it claims to come from %s, the broker says it came from %s", task, claimed,
            sender or "nobody (no user_id)", extra={"task": task, "why": why, "sender": sender or ""})
        return False
