"""Monitoring alerts, recognised by their own fields, turned into AlertNotice values.

Understood: Azure Monitor common alert schema (metric, log, activity log, resource health),
the older non-common metric alert, the classic webhook, Prometheus Alertmanager (webhook
version 4), Grafana alerting (unified, and the legacy webhook) and a plain JSON trigger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.errors import InvalidField


class AlertSource(str, Enum):
    AZURE_COMMON = "azureMonitorCommonAlertSchema"
    AZURE_METRIC = "AzureMonitorMetricAlert"
    AZURE_CLASSIC = "azureClassicWebhook"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC = "generic"


@dataclass(frozen=True)
class AlertNotice:
    """One alert about one or more resources, whatever sent it."""

    source: AlertSource
    rule: str
    firing: bool
    resource_ids: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    capture: dict[str, Any] | None = None


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidField(where, type(value).__name__, "must be a JSON object")
    return value


def _text(value: Any, where: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value:
        raise InvalidField(where, value, "must be a non-empty string")
    return value


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    return {str(k): str(v) for k, v in _object(value, where).items() if isinstance(v, (str, int, float))}


def _dimensions(body: dict) -> dict[str, str]:
    """A metric alert's dimensions (e.g. VMName of a scale set instance), as labels."""
    context = body["data"].get("alertContext")
    condition = context.get("condition") if isinstance(context, dict) else None
    criteria = condition.get("allOf") if isinstance(condition, dict) else None
    found: dict[str, str] = {}
    for criterion in criteria if isinstance(criteria, list) else []:
        dimensions = criterion.get("dimensions") if isinstance(criterion, dict) else None
        for dimension in dimensions if isinstance(dimensions, list) else []:
            if isinstance(dimension, dict) and isinstance(dimension.get("name"), str) \
                    and isinstance(dimension.get("value"), str):
                found.setdefault(dimension["name"], dimension["value"])
    return found


def _azure_common(body: dict) -> list[AlertNotice]:
    essentials = _object(_object(body.get("data"), "data").get("essentials"), "data.essentials")
    condition = _text(essentials.get("monitorCondition"), "data.essentials.monitorCondition")
    targets = essentials.get("alertTargetIDs")
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InvalidField("data.essentials.alertTargetIDs", targets, "must be a list of resource IDs")
    labels = {"signalType": str(essentials.get("signalType", "")),
              "monitoringService": str(essentials.get("monitoringService", "")),
              "severity": str(essentials.get("severity", ""))}
    labels.update({name: value for name, value in _dimensions(body).items() if name not in labels})
    return [AlertNotice(AlertSource.AZURE_COMMON, _text(essentials.get("alertRule"), "data.essentials.alertRule"),
                        condition.lower() == "fired", tuple(targets), labels)]


def _azure_metric(body: dict) -> list[AlertNotice]:
    data = _object(body.get("data"), "data")
    context = _object(data.get("context"), "data.context")
    status = _text(data.get("status"), "data.status")
    return [AlertNotice(AlertSource.AZURE_METRIC, _text(context.get("name"), "data.context.name"),
                        status.lower() == "activated", (_text(context.get("resourceId"), "data.context.resourceId"),))]


def _azure_classic(body: dict) -> list[AlertNotice]:
    context = _object(body.get("context"), "context")
    status = _text(body.get("status"), "status")
    return [AlertNotice(AlertSource.AZURE_CLASSIC, _text(context.get("name"), "context.name"),
                        status.lower() == "activated", (_text(context.get("resourceId"), "context.resourceId"),))]


def _grouped(body: dict, source: AlertSource) -> list[AlertNotice]:
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidField("alerts", alerts, "must be a list")
    common = _labels(body.get("commonLabels"), "commonLabels")
    notices = []
    for index, alert in enumerate(alerts):
        alert = _object(alert, f"alerts[{index}]")
        labels = {**common, **_labels(alert.get("labels"), f"alerts[{index}].labels")}
        status = _text(alert.get("status"), f"alerts[{index}].status", default=str(body.get("status", "")))
        rule = labels.get("alertname") or labels.get("__alert_rule_title__") or body.get("title")
        notices.append(AlertNotice(source, _text(rule, f"alerts[{index}].labels.alertname"),
                                   status.lower() == "firing", (), labels))
    return notices


def _grafana_legacy(body: dict) -> list[AlertNotice]:
    labels = _labels(body.get("tags"), "tags")
    for index, match in enumerate(body.get("evalMatches") or []):
        if isinstance(match, dict):
            labels = {**_labels(match.get("tags"), f"evalMatches[{index}].tags"), **labels}
    state = _text(body.get("state"), "state")
    return [AlertNotice(AlertSource.GRAFANA, _text(body.get("ruleName"), "ruleName"), state.lower() == "alerting",
                        (), labels)]


def _generic(body: dict) -> list[AlertNotice]:
    target = _text(body.get("target"), "target")
    state = _text(body.get("state"), "state", default="firing")
    if state.lower() not in ("firing", "resolved"):
        raise InvalidField("state", state, "must be 'firing' or 'resolved'")
    capture = body.get("capture")
    if capture is not None:
        _object(capture, "capture")
    return [AlertNotice(AlertSource.GENERIC, _text(body.get("rule"), "rule", default="manual"),
                        state.lower() == "firing", (target,), _labels(body.get("labels"), "labels"), capture)]


def parse_alert(body: Any) -> list[AlertNotice]:
    """Recognise the payload by its own fields; InvalidField when it is none of them."""
    body = _object(body, "body")
    schema = body.get("schemaId")
    if schema == AlertSource.AZURE_COMMON.value:
        return _azure_common(body)
    if schema == AlertSource.AZURE_METRIC.value:
        return _azure_metric(body)
    if "alerts" in body and ("orgId" in body or str(body.get("version")) == "1"):
        return _grouped(body, AlertSource.GRAFANA)
    if "alerts" in body and str(body.get("version")) == "4":
        return _grouped(body, AlertSource.ALERTMANAGER)
    if "ruleName" in body and "state" in body:
        return _grafana_legacy(body)
    if "context" in body and "status" in body:
        return _azure_classic(body)
    if "target" in body:
        return _generic(body)
    raise InvalidField("body", sorted(body)[:10], "is not an alert PacketWatch knows: expected an Azure Monitor "
                       "(common schema, metric or classic), Alertmanager v4, Grafana or plain trigger payload")
