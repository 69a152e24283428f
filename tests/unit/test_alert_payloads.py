import pytest

from shared.alert_payloads import AlertSource, parse_alert
from shared.errors import InvalidField
from tests import alert_samples as s

VM = "/subscriptions/sub1/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachines/web01"
WORKSPACE = "/subscriptions/sub1/resourceGroups/RG1/providers/Microsoft.OperationalInsights/workspaces/logs"


@pytest.mark.parametrize("body, source, rule, firing, targets", [
    (s.azure_common(VM), AlertSource.AZURE_COMMON, "HighCpu", True, (VM.lower(),)),
    (s.azure_common(VM, condition="Resolved"), AlertSource.AZURE_COMMON, "HighCpu", False, (VM.lower(),)),
    (s.azure_log_alert(WORKSPACE), AlertSource.AZURE_COMMON, "FailedLogins", True, (WORKSPACE,)),
    (s.azure_activity_log(VM), AlertSource.AZURE_COMMON, "VmDeallocated", True, (VM.lower(),)),
    (s.azure_resource_health(VM), AlertSource.AZURE_COMMON, "VmUnavailable", True, (VM.lower(),)),
    (s.azure_metric_legacy(VM), AlertSource.AZURE_METRIC, "LegacyCpu", True, (VM,)),
    (s.azure_metric_legacy(VM, status="Resolved"), AlertSource.AZURE_METRIC, "LegacyCpu", False, (VM,)),
    (s.azure_classic(VM), AlertSource.AZURE_CLASSIC, "ClassicCpu", True, (VM,)),
    (s.azure_classic(VM, status="Resolved"), AlertSource.AZURE_CLASSIC, "ClassicCpu", False, (VM,)),
    ({"target": VM, "rule": "script"}, AlertSource.GENERIC, "script", True, (VM,)),
    ({"target": VM, "state": "resolved"}, AlertSource.GENERIC, "manual", False, (VM,)),
])
def test_azure_and_plain_payloads_are_recognised_by_their_own_fields(body, source, rule, firing, targets):
    [notice] = parse_alert(body)
    assert (notice.source, notice.rule, notice.firing, notice.resource_ids) == (source, rule, firing, targets)


@pytest.mark.parametrize("body, source, rule, firing", [
    (s.alertmanager({"vm_resource_id": VM}), AlertSource.ALERTMANAGER, "HighPacketLoss", True),
    (s.alertmanager({"vm_resource_id": VM}, status="resolved"), AlertSource.ALERTMANAGER, "HighPacketLoss", False),
    (s.grafana({"vm_resource_id": VM}), AlertSource.GRAFANA, "GrafanaLatency", True),
    (s.grafana({"vm_resource_id": VM}, status="resolved"), AlertSource.GRAFANA, "GrafanaLatency", False),
    (s.grafana_legacy({"vm_resource_id": VM}), AlertSource.GRAFANA, "LegacyLatency", True),
    (s.grafana_legacy({"vm_resource_id": VM}, state="ok"), AlertSource.GRAFANA, "LegacyLatency", False),
])
def test_label_based_payloads_carry_the_labels(body, source, rule, firing):
    [notice] = parse_alert(body)
    assert (notice.source, notice.rule, notice.firing) == (source, rule, firing)
    assert notice.labels["vm_resource_id"] == VM and notice.resource_ids == ()


def test_an_alertmanager_group_gives_one_notice_per_alert():
    notices = parse_alert(s.alertmanager({"instance": "web01:9100"}, count=3))
    assert [n.labels["replica"] for n in notices] == ["0", "1", "2"]


@pytest.mark.parametrize("body, field", [
    ({"schemaId": "azureMonitorCommonAlertSchema", "data": {}}, "data.essentials"),
    ({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
      "monitorCondition": "Fired", "alertTargetIDs": "not-a-list"}}}, "data.essentials.alertTargetIDs"),
    ({"schemaId": "AzureMonitorMetricAlert", "data": {"status": "Activated", "context": {"name": "r"}}},
     "data.context.resourceId"),
    ({"version": "4", "alerts": "nope"}, "alerts"),
    ({"version": "4", "alerts": [{"status": "firing", "labels": {}}]}, "alerts[0].labels.alertname"),
    ({"target": VM, "state": "maybe"}, "state"),
    ({"hello": "world"}, "body"),
    ([1, 2], "body"),
])
def test_payloads_that_cannot_be_understood_name_what_is_wrong(body, field):
    with pytest.raises(InvalidField) as error:
        parse_alert(body)
    assert error.value.field == field
