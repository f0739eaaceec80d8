"""The Grafana dashboard in deploy/ queries only metrics that /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from medserver_site import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy/grafana/medserver-dashboard.json"
GPU_METRICS = {  # exposed only where NVML sees a GPU
    "medserver_gpu_memory_used_bytes",
    "medserver_gpu_memory_total_bytes",
    "medserver_gpu_utilization_ratio",
}


def test_every_metric_the_dashboard_queries_is_exposed(engine):
    dashboard = json.loads(DASHBOARD.read_text())
    series = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:medserver|process)_[a-z_]+)", target["expr"])
    }
    queried = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in series}
    # Families are listed even before their first sample (a histogram with no answer yet).
    exposed = {family.name for family in metrics.REGISTRY.collect()}
    assert queried - exposed <= GPU_METRICS, queried - exposed - GPU_METRICS
    assert len(dashboard["panels"]) >= 10
