"""From alert notices to captures: find the VM, pick the template, start at most one
capture per (VM, alert rule), and stop it on resolve when the rule asks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pydantic import ValidationError

from functions.capture_service import ACTIVE, CaptureService
from functions.metrics import ALERTS
from shared.alert_config import AlertConfig, AlertRule, CaptureTemplate
from shared.alert_payloads import AlertNotice
from shared.arm import PacketCaptureMachineScope, PacketCaptureParameters, PacketCaptureStorageLocation, TargetType
from shared.errors import InvalidField
from shared.registry import AlertClaim
from shared.resource_ids import CaptureId, ScaleSetId, VirtualMachineId, parse_target
from shared.watchers import regional_watcher

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


Target = VirtualMachineId | ScaleSetId


def target_parameters(target: Target) -> dict:
    """The capture's target: a VM's ID; a scale set; one instance as its scale set with scope."""
    if isinstance(target, ScaleSetId):
        return {"target": target.arm_id, "target_type": TargetType.AZURE_VMSS}
    if target.scale_set is not None:
        return {"target": target.scale_set_id.arm_id, "target_type": TargetType.AZURE_VMSS,
                "scope": PacketCaptureMachineScope(include=[target.name])}
    return {"target": target.arm_id}


def capture_name(prefix: str, target: Target, at: datetime) -> str:
    """`{rule}-{vm}-{UTC time to the millisecond}`, cut and cleaned to a legal ARM name."""
    def part(text: str) -> str:
        return _NOT_NAME.sub("-", text).strip("-._")[:30] or "alert"

    utc = at.astimezone(timezone.utc)
    label = target.computer_name if isinstance(target, VirtualMachineId) else target.name
    name = f"{part(prefix)}-{part(label)}-{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z"
    return name if name[0].isalnum() else f"a{name}"[:80]


@dataclass
class AlertOutcome:
    started: list[dict] = field(default_factory=list)
    already_running: list[dict] = field(default_factory=list)
    stopped: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def reason(self) -> str:
        if self.started:
            return f"started {len(self.started)} capture(s)"
        if self.already_running:
            return "a capture started by this alert is already running on " + ", ".join(
                entry["target"] for entry in self.already_running)
        if self.stopped:
            return "alert resolved: stopped the capture it had started"
        return "; ".join(entry["reason"] for entry in self.skipped) or "the payload held no alerts"

    def counts(self) -> dict[str, int]:
        """How many of each outcome, as the alert metrics name them."""
        return {"started": len(self.started), "deduplicated": len(self.already_running),
                "stopped": len(self.stopped), "skipped": len(self.skipped)}

    def to_json(self) -> dict:
        return {"reason": self.reason(), "started": self.started, "alreadyRunning": self.already_running,
                "stopped": self.stopped, "skipped": self.skipped}


class AlertService:
    def __init__(self, config: AlertConfig, captures: CaptureService) -> None:
        self.config = config
        self.captures = captures
        self.registry = captures.registry

    def vms(self, notice: AlertNotice, outcome: AlertOutcome) -> list[Target]:
        """The VMs or scale sets an alert is about; a scale set narrowed to one instance when
        a label (or metric dimension) names it."""
        return [self._narrowed(target, notice) for target in self._targets(notice, outcome)]

    def _targets(self, notice: AlertNotice, outcome: AlertOutcome) -> list[Target]:
        found = []
        for resource_id in notice.resource_ids:
            try:
                found.append(parse_target(resource_id, "target"))
            except InvalidField:
                outcome.skipped.append({"alertRule": notice.rule, "target": resource_id,
                                        "reason": f"target {resource_id} is not a virtual machine or scale set"})
        if notice.resource_ids:
            return found
        for label in self.config.vm_id_labels:
            if label in notice.labels:
                try:
                    return [parse_target(notice.labels[label], f"labels.{label}")]
                except InvalidField as exc:
                    outcome.skipped.append({"alertRule": notice.rule, "target": notice.labels[label],
                                            "reason": str(exc)})
                    return []
        for label in self.config.vm_name_labels:
            name = notice.labels.get(label, "")
            host, _, port = name.rpartition(":")
            name = host if port.isdigit() and host else name
            if name.lower() in self.config.vm_names:
                return [parse_target(self.config.vm_names[name.lower()], f"vmNames.{name}")]
        outcome.skipped.append({"alertRule": notice.rule, "reason": (
            f"alert {notice.rule!r} names no VM: no label among {self.config.vm_id_labels} and no "
            f"{self.config.vm_name_labels} label found in the vmNames table")})
        return []

    def _narrowed(self, target: Target, notice: AlertNotice) -> Target:
        if not isinstance(target, ScaleSetId):
            return target
        for label in self.config.instance_labels:
            value = notice.labels.get(label, "")
            instance = value[len(target.name) + 1:] if value.lower().startswith(target.name.lower() + "_") else value
            if instance and instance.isalnum():
                return target.instance(instance)
        return target

    def template(self, notice: AlertNotice, rule: AlertRule | None) -> CaptureTemplate:
        template = rule.template if rule else self.config.default_template
        if notice.capture is None:
            return template
        try:
            merged = CaptureTemplate.model_validate({**template.model_dump(by_alias=True), **notice.capture})
        except ValidationError as exc:
            raise InvalidField.from_validation(exc, "capture") from None
        merged.check(self.captures.capture_root, "capture")
        return merged

    def handle(self, notices: list[AlertNotice]) -> AlertOutcome:
        outcome = AlertOutcome()
        for notice in notices:
            before = outcome.counts()
            try:
                rule = self.config.rule_for(notice)
                template = self.template(notice, rule)
                for vm in self.vms(notice, outcome):
                    if notice.firing:
                        self._fire(notice, rule, template, vm, outcome)
                    else:
                        self._resolve(notice, rule, vm, outcome)
            except InvalidField:
                ALERTS.labels(notice.source.value, "refused").inc()
                raise
            for kind, count in outcome.counts().items():
                if count > before[kind]:
                    ALERTS.labels(notice.source.value, kind).inc(count - before[kind])
        return outcome

    def _resolve(self, notice: AlertNotice, rule: AlertRule | None, vm: Target,
                 outcome: AlertOutcome) -> None:
        held = self.registry.alert_capture_status(vm.key, notice.rule.lower())
        if rule is not None and rule.stop_on_resolve and held is not None and held[1] in ACTIVE:
            self.captures.stop(self.registry.get(held[0]))
            outcome.stopped.append({"id": held[0].arm_id, "target": vm.arm_id, "alertRule": notice.rule})
            return
        outcome.skipped.append({"alertRule": notice.rule, "target": vm.arm_id,
                                "reason": f"alert {notice.rule!r} is resolved: nothing to start"})

    def _fire(self, notice: AlertNotice, rule: AlertRule | None, template: CaptureTemplate,
              vm: Target, outcome: AlertOutcome) -> None:
        claim = AlertClaim(vm.key, notice.rule.lower())
        held = self.registry.alert_capture_status(claim.vm_key, claim.rule_key)
        if held is not None:
            holder, status = held
            if status in ACTIVE:
                self._already_running(holder, notice, vm, outcome)
                return
            self.registry.release_alert_capture(claim.vm_key, claim.rule_key, holder)
        now = datetime.now(timezone.utc)
        name = capture_name(template.name_prefix or notice.rule, vm, now)
        capture = CaptureId(vm.subscription, *self._watcher(vm), name)
        directory = template.file_directory.rstrip("/") if template.file_directory else None
        parameters = PacketCaptureParameters(
            **target_parameters(vm), bytes_to_capture_per_packet=template.bytes_to_capture_per_packet,
            total_bytes_per_session=template.total_bytes_per_session,
            time_limit_in_seconds=template.time_limit_in_seconds, filters=template.filters,
            look_back_seconds=template.look_back_seconds or None,
            storage_location=PacketCaptureStorageLocation(
                storage_id=template.storage_id, file_path=f"{directory}/{name}.cap" if directory else None),
        )
        # The capture, its request and the (VM, rule) claim are recorded in one transaction:
        # whoever finds the claim also finds the capture and its request. The answer does not
        # wait for the broker: the request is published in the background (or by the relay).
        created = self.captures.create(capture, parameters, claim, source="alert", await_confirm=False)
        if created.holder is not None:
            self._already_running(created.holder, notice, vm, outcome)
            return
        outcome.started.append({"id": capture.arm_id, "name": name, "target": vm.arm_id, "alertRule": notice.rule,
                                "rule": rule.name if rule else "default"})

    def _watcher(self, target: Target) -> tuple[str, str]:
        """The target's regional watcher when its agent reports its region, as Azure's alert
        captures go; otherwise the configured one."""
        agent = self.registry.agent(target.key) if isinstance(target, VirtualMachineId) \
            else next(iter(self.registry.scale_set_agents(target)), None)
        if agent is not None and agent.location:
            return regional_watcher(agent.location)
        return self.config.watcher_resource_group, self.config.watcher_name

    def _already_running(self, holder: CaptureId, notice: AlertNotice, vm: Target,
                         outcome: AlertOutcome) -> None:
        """A holder whose request was recorded by a process that died before sending it gets it
        sent now (in the background), as the holder's own alert would have."""
        self.captures.send_unsent(holder, await_confirm=False)
        outcome.already_running.append({"id": holder.arm_id, "target": vm.arm_id, "alertRule": notice.rule})
