"""Alert webhook configuration: function keys, how to find the VM, and rules that map
alerts to capture templates. Read from a YAML or JSON file (PACKETWATCH_ALERT_CONFIG)."""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.alert_payloads import AlertNotice
from shared.arm import MAX_LOOK_BACK_SECONDS, MAX_TIME_LIMIT_SECONDS, UINT32_MAX, PacketCaptureFilter
from shared.config_files import load_model
from shared.errors import InvalidField
from shared.filters import parse_filters
from shared.resource_ids import VirtualMachineId
from shared.storage_layout import relative_capture_path


class ConfigModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class CaptureTemplate(ConfigModel):
    filters: list[PacketCaptureFilter] = Field(default_factory=list)
    time_limit_in_seconds: int = Field(default=600, ge=1, le=MAX_TIME_LIMIT_SECONDS, alias="timeLimitInSeconds")
    total_bytes_per_session: int = Field(default=1073741824, ge=1, le=UINT32_MAX, alias="totalBytesPerSession")
    bytes_to_capture_per_packet: int = Field(default=0, ge=0, le=UINT32_MAX, alias="bytesToCapturePerPacket")
    # Packets from before the alert, from the agent's look-back ring (0: none).
    look_back_seconds: int = Field(default=0, ge=0, le=MAX_LOOK_BACK_SECONDS, alias="lookBackSeconds")
    storage_id: str | None = Field(default=None, alias="storageId")
    file_directory: str | None = Field(default="/var/captures/alerts", alias="fileDirectory")
    name_prefix: str | None = Field(default=None, alias="namePrefix", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")

    @field_validator("filters")
    @classmethod
    def _filters_parse(cls, value: list[PacketCaptureFilter]) -> list[PacketCaptureFilter]:
        parse_filters(value)
        return value

    def check(self, capture_root: str, where: str) -> None:
        if self.file_directory is None and self.storage_id is None:
            raise InvalidField(where, "template", "needs fileDirectory, storageId or both")
        if self.file_directory is not None:
            relative_capture_path(self.file_directory.rstrip("/") + "/x.cap", capture_root, f"{where}.fileDirectory")


class AlertRule(ConfigModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
    alert_rule: str = Field(default="*", alias="alertRule")
    labels: dict[str, str] = Field(default_factory=dict)
    template: CaptureTemplate = Field(default_factory=CaptureTemplate)
    stop_on_resolve: bool = Field(default=False, alias="stopOnResolve")

    def matches(self, notice: AlertNotice) -> bool:
        if not fnmatch.fnmatchcase(notice.rule.lower(), self.alert_rule.lower()):
            return False
        return all(key in notice.labels and fnmatch.fnmatchcase(notice.labels[key], pattern)
                   for key, pattern in self.labels.items())


class AlertConfig(ConfigModel):
    function_keys: list[str] = Field(default_factory=list, alias="functionKeys")
    vm_id_labels: list[str] = Field(default_factory=lambda: ["vm_resource_id", "azure_resource_id", "resource_id"],
                                    alias="vmIdLabels")
    vm_name_labels: list[str] = Field(default_factory=lambda: ["vm", "instance", "host"], alias="vmNameLabels")
    vm_names: dict[str, str] = Field(default_factory=dict, alias="vmNames")
    # When the alert's target is a scale set: the label (or Azure metric dimension) naming
    # one instance (`S_ID` or `ID`) narrows the capture to that instance.
    instance_labels: list[str] = Field(default_factory=lambda: ["VMName", "vmss_instance", "instance_id"],
                                       alias="instanceLabels")
    watcher_resource_group: str = Field(default="NetworkWatcherRG", alias="watcherResourceGroup",
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$")
    watcher_name: str = Field(default="PacketWatch", alias="watcherName",
                              pattern=r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,79}$")
    rules: list[AlertRule] = Field(default_factory=list)
    default_template: CaptureTemplate = Field(default_factory=CaptureTemplate, alias="defaultTemplate")

    @field_validator("vm_names")
    @classmethod
    def _vm_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for name, vm in value.items():
            VirtualMachineId.parse(vm, f"vmNames.{name}")
        return {name.lower(): vm for name, vm in value.items()}

    def check(self, capture_root: str) -> "AlertConfig":
        self.default_template.check(capture_root, "defaultTemplate")
        for index, rule in enumerate(self.rules):
            rule.template.check(capture_root, f"rules[{index}].template")
        return self

    def rule_for(self, notice: AlertNotice) -> AlertRule | None:
        return next((rule for rule in self.rules if rule.matches(notice)), None)


def load_alert_config(path: str | None, capture_root: str, extra_keys: list[str]) -> AlertConfig:
    config = load_model(AlertConfig, path, "PACKETWATCH_ALERT_CONFIG")
    config.function_keys = [key for key in [*config.function_keys, *extra_keys] if key]
    return config.check(capture_root)
