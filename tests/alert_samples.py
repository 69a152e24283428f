"""Alert payloads shaped as each sender documents them (Azure Monitor's sample payloads,
Alertmanager's webhook_config, Grafana's webhook contact point), for one VM."""

from __future__ import annotations


def azure_common(vm_id: str, rule: str = "HighCpu", condition: str = "Fired", signal: str = "Metric",
                 service: str = "Platform", targets: list[str] | None = None) -> dict:
    sub = vm_id.split("/")[2]
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/{sub}/providers/Microsoft.AlertsManagement/alerts/"
                           "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
                "alertRule": rule,
                "severity": "Sev3",
                "signalType": signal,
                "monitorCondition": condition,
                "monitoringService": service,
                "alertTargetIDs": targets if targets is not None else [vm_id.lower()],
                "configurationItems": [vm_id.split("/")[-1].lower()],
                "originAlertId": "3f2d4487-b0fc-4125-8bd5-7ad17384221e_rg_microsoft.insights_metricAlerts_x",
                "firedDateTime": "2026-11-22T13:58:24.3713213Z",
                "description": "",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {"properties": None, "conditionType": "SingleResourceMultipleMetricCriteria",
                             "condition": {"windowSize": "PT5M", "allOf": [
                                 {"metricName": "Percentage CPU", "metricNamespace": "Microsoft.Compute/virtualMachines",
                                  "operator": "GreaterThan", "threshold": "25", "timeAggregation": "Average",
                                  "dimensions": [], "metricValue": 31.1105}],
                                 "windowStartTime": "2026-11-22T13:40:03.064Z",
                                 "windowEndTime": "2026-11-22T13:45:03.064Z"}},
            "customProperties": None,
        },
    }


def azure_log_alert(workspace_id: str) -> dict:
    body = azure_common(workspace_id, rule="FailedLogins", signal="Log", service="Log Alerts V2",
                        targets=[workspace_id])
    body["data"]["alertContext"] = {"conditionType": "LogQueryCriteria", "condition": {"allOf": [
        {"searchQuery": "SigninLogs | where ResultType != 0", "metricMeasureColumn": None,
         "targetResourceTypes": "['Microsoft.OperationalInsights/workspaces']", "operator": "GreaterThan",
         "threshold": "10", "timeAggregation": "Count", "metricValue": 12}]}}
    return body


def azure_activity_log(vm_id: str) -> dict:
    body = azure_common(vm_id, rule="VmDeallocated", signal="Activity Log",
                        service="Activity Log - Administrative")
    body["data"]["alertContext"] = {"authorization": {"action": "Microsoft.Compute/virtualMachines/deallocate/action",
                                                      "scope": vm_id}, "channels": "Operation",
                                    "status": "Succeeded", "operationName":
                                    "Microsoft.Compute/virtualMachines/deallocate/action"}
    return body


def azure_resource_health(vm_id: str, condition: str = "Fired") -> dict:
    body = azure_common(vm_id, rule="VmUnavailable", condition=condition, signal="Activity Log",
                        service="Resource Health")
    body["data"]["alertContext"] = {"channels": "Admin, Operation", "status": "Active",
                                    "properties": {"title": "Virtual machine unavailable",
                                                   "currentHealthStatus": "Unavailable",
                                                   "previousHealthStatus": "Available", "type": "Downtime",
                                                   "cause": "PlatformInitiated"}}
    return body


def azure_metric_legacy(vm_id: str, status: str = "Activated", rule: str = "LegacyCpu") -> dict:
    parts = vm_id.split("/")
    return {
        "schemaId": "AzureMonitorMetricAlert",
        "data": {
            "version": "2.0",
            "properties": None,
            "status": status,
            "context": {
                "timestamp": "2026-11-22T13:45:03.064Z",
                "id": f"/subscriptions/{parts[2]}/resourceGroups/{parts[4]}/providers/microsoft.insights/"
                      f"metricAlerts/{rule}",
                "name": rule,
                "description": "",
                "conditionType": "SingleResourceMultipleMetricCriteria",
                "severity": "3",
                "condition": {"windowSize": "PT5M", "allOf": [{"metricName": "Percentage CPU",
                                                               "operator": "GreaterThan", "threshold": "25",
                                                               "timeAggregation": "Average", "metricValue": 31.1}]},
                "subscriptionId": parts[2],
                "resourceGroupName": parts[4],
                "resourceName": parts[-1],
                "resourceType": "Microsoft.Compute/virtualMachines",
                "resourceId": vm_id,
                "portalLink": "https://portal.azure.com/#resource" + vm_id,
            },
        },
    }


def azure_classic(vm_id: str, status: str = "Activated", rule: str = "ClassicCpu") -> dict:
    parts = vm_id.split("/")
    return {
        "status": status,
        "context": {
            "timestamp": "2026-11-22T13:45:03.064Z",
            "id": f"/subscriptions/{parts[2]}/resourceGroups/{parts[4]}/providers/microsoft.insights/alertrules/{rule}",
            "name": rule,
            "description": "cpu above 25",
            "conditionType": "Metric",
            "condition": {"metricName": "Percentage CPU", "metricUnit": "Percent", "metricValue": "31.1",
                          "threshold": "25", "windowSize": "5", "timeAggregation": "Average", "operator": "GreaterThan"},
            "subscriptionId": parts[2],
            "resourceGroupName": parts[4],
            "resourceName": parts[-1],
            "resourceType": "microsoft.compute/virtualmachines",
            "resourceId": vm_id,
            "resourceRegion": "westeurope",
            "portalLink": "https://portal.azure.com/#resource" + vm_id,
        },
        "properties": {},
    }


def alertmanager(labels: dict[str, str], status: str = "firing", alertname: str = "HighPacketLoss",
                 count: int = 1) -> dict:
    alerts = [{
        "status": status,
        "labels": {"alertname": alertname, **labels, "replica": str(index)},
        "annotations": {"summary": "packet loss above 2%"},
        "startsAt": "2026-11-22T13:40:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-22T13:50:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=loss",
        "fingerprint": f"c6f5c8f1d6b0a0{index:02d}",
    } for index in range(count)]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "packetwatch",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def grafana(labels: dict[str, str], status: str = "firing", alertname: str = "GrafanaLatency") -> dict:
    return {
        "receiver": "packetwatch",
        "status": status,
        "orgId": 1,
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "grafana_folder": "network", **labels},
            "annotations": {},
            "startsAt": "2026-11-22T13:40:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana:3000/alerting/grafana/abc/view",
            "fingerprint": "57c6d9296de2ad39",
            "silenceURL": "http://grafana:3000/alerting/silence/new",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 22, "C": 1},
            "valueString": "[ var='B' labels={} value=22 ]",
        }],
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname},
        "commonAnnotations": {},
        "externalURL": "http://grafana:3000/",
        "version": "1",
        "groupKey": "{}:{alertname=\"GrafanaLatency\"}",
        "truncatedAlerts": 0,
        "title": f"[{status.upper()}:1] {alertname}",
        "state": "alerting" if status == "firing" else "ok",
        "message": "latency high",
    }


def grafana_legacy(tags: dict[str, str], state: str = "alerting") -> dict:
    return {
        "dashboardId": 1, "evalMatches": [{"value": 100, "metric": "High value", "tags": tags}],
        "imageUrl": "", "message": "latency high", "orgId": 1, "panelId": 2, "ruleId": 1,
        "ruleName": "LegacyLatency", "ruleUrl": "http://grafana:3000/d/abc", "state": state, "tags": {},
        "title": "[Alerting] LegacyLatency",
    }
