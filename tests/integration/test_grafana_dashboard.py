"""The Grafana dashboard in infra/ queries only metrics PacketWatch exposes, with labels they
carry: every name and label is checked against the families the API (its registry
collector on a real registry and broker), agents, the control worker and the notifier
declare."""

import json
import re
from pathlib import Path

from kombu import Connection
from prometheus_client.metrics import MetricWrapperBase

import functions.metrics as api_metrics
import workers.agent.metrics
import workers.control.worker
import workers.notify.worker
from shared.broker import CONTROL_QUEUE, durable_queue
from shared.registry import Registry

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "packetwatch-dashboard.json"
METRIC = re.compile(r"\b(packetwatch_[a-z_]+)(\{[^}]*\})?")
LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
MODULES = (api_metrics, workers.agent.metrics, workers.control.worker, workers.notify.worker)
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def exposed(broker_url: str, database_url: str) -> dict[str, set[str]]:
    """Sample name -> its label names, over every metric PacketWatch declares or collects."""
    names: dict[str, set[str]] = {}

    def add(family: str, labels: set[str]) -> None:
        for suffix in ("", "_total", "_count", "_sum", "_bucket", "_info", "_created"):
            names.setdefault(family + suffix, set()).update(labels | ({"le"} if suffix == "_bucket" else set()))

    for module in MODULES:
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                for family in metric.describe():
                    add(family.name, set(metric._labelnames))  # the declared labels, used or not yet
    collector = api_metrics.RegistryCollector(Registry.from_url(database_url), broker_url, 10.0)
    for family in collector.collect():
        add(family.name, {label for sample in family.samples for label in sample.labels})
    return names


def test_every_metric_and_label_the_dashboard_queries_exists(broker_url, database_url):
    with Connection(broker_url) as conn:
        durable_queue(CONTROL_QUEUE)(conn.channel()).declare()  # as the control worker makes it
    names = exposed(broker_url, database_url)
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert {row["title"] for row in dashboard["panels"] if row["type"] == "row"} == {
        "Capture activity", "Alert flow", "Agent fleet", "Upload health"}
    assert len(panels) >= 16
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            used = METRIC.findall(expr)
            assert used, f"{panel['title']}: queries no PacketWatch metric"
            labels_here: set[str] = set()
            for name, selector in used:
                assert name in names, f"{panel['title']}: {name} is not exposed"
                wanted = set(LABEL.findall(selector)) - TARGET_LABELS
                assert wanted <= names[name], f"{panel['title']}: {name} has no label {wanted - names[name]}"
                labels_here |= names[name]
            for grouping in GROUPING.findall(expr):
                wanted = {label.strip() for label in grouping.split(",")} - TARGET_LABELS
                assert wanted <= labels_here, f"{panel['title']}: grouped by {wanted - labels_here}, not a label"
