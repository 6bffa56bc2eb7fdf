"""Dashboards: generated JSON in sync with the code, only real DCGM/Triton/LiteLLM metric names, valid PromQL,
the panels the issue asks for, and provisioning through the Grafana sidecar."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from components import dashboards, monitoring
from tests import harness
from tests.test_alerts import promtool

BOARDS = dashboards.build_dashboards()


def _all_expressions():
    """Every query of the boards components/dashboards.py builds and of the inference gateway's
    "Inference API usage" board (components/inference_gateway.py, LiteLLM's metrics)."""
    from components.inference_gateway import usage_dashboard
    boards = {**BOARDS, "inference-api-usage.json": usage_dashboard()}
    return [(name, expr) for name, board in boards.items() for expr in dashboards.expressions(board)]


# --- metric names ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    ('DCGM_FI_DEV_GPU_UTIL{node=~"$node", gpu="0"}', {"DCGM_FI_DEV_GPU_UTIL"}),
    ("sum by (model, version) (rate(nv_inference_count{model=~\"$model\"}[$__rate_interval]))", {"nv_inference_count"}),
    ("DCGM_FI_DEV_FB_USED * on(node) group_left(label_ai_platform_gpu_pool) kube_node_labels",
     {"DCGM_FI_DEV_FB_USED", "kube_node_labels"}),
    ("clamp_min(rate(nv_inference_queue_duration_us[5m]), 1e-9) > bool 2", {"nv_inference_queue_duration_us"}),
    ('count(up{job="nvidia-dcgm-exporter"} == 1) or vector(0)', {"up"}),
    ('label_values(DCGM_FI_DEV_GPU_UTIL{node=~"$node"}, gpu)', {"DCGM_FI_DEV_GPU_UTIL"}),
    ("label_values(kube_node_labels, label_ai_platform_gpu_pool)", {"kube_node_labels"}),
])
def test_metric_names_are_parsed_out_of_promql(expr, expected):
    assert dashboards.metric_names(expr) == expected


def test_a_misspelt_metric_is_reported():
    assert dashboards.unknown_metrics('avg(DCGM_FI_DEV_GPU_UTILIZATION{node="a"}) / nv_gpu_utilisation') == {
        "DCGM_FI_DEV_GPU_UTILIZATION", "nv_gpu_utilisation"}


@pytest.mark.parametrize(("board", "expr"), _all_expressions())
def test_dashboard_queries_only_use_known_metrics(board, expr):
    used = dashboards.metric_names(expr)
    assert used, f"{board}: no metric in {expr!r}"
    assert used <= dashboards.KNOWN_METRICS, f"{board}: unknown metrics {used - dashboards.KNOWN_METRICS}"


def test_dashboard_promql_parses(tmp_path):
    """Every panel query is valid PromQL (checked by promtool, Grafana variables filled in)."""
    rules = []
    for index, (_, expr) in enumerate(e for e in _all_expressions() if not e[1].startswith("label_values(")):
        concrete = expr.replace("$__rate_interval", "5m")
        concrete = re.sub(r"\$\{?\w+\}?", ".*", concrete)
        rules.append({"record": f"dashboard:query_{index}", "expr": concrete})
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- content -----------------------------------------------------------------------------------------

def _metrics(board: dict) -> set[str]:
    return set().union(*(dashboards.metric_names(e) for e in dashboards.expressions(board)))


def test_gpu_fleet_covers_the_gpu_signals():
    assert {
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_PROF_PCIE_TX_BYTES",
        "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_DEV_XID_ERRORS",
    } <= _metrics(BOARDS["gpu-fleet.json"])


def test_gpu_fleet_breaks_down_by_pool_node_gpu_and_pod():
    board = BOARDS["gpu-fleet.json"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "pool", "node", "gpu"]
    legends = " ".join(t["legendFormat"] for p in board["panels"] for t in p.get("targets", []))
    for label in ("{{node}}", "{{gpu}}", "{{pod}}", "{{" + dashboards.POOL + "}}"):
        assert label in legends
    # The pool filter joins through kube-state-metrics, whose allow-list must export the pool label.
    values = monitoring.stack_values(harness.config_for("dev").gpuStack.monitoring,
                                     harness.config_for("dev").gpuStack.alerting, False, False)
    allow = values["kube-state-metrics"]["metricLabelsAllowlist"]
    assert "nodes=[ai-platform/gpu-pool]" in allow and dashboards.POOL == "label_ai_platform_gpu_pool"


def test_triton_dashboard_covers_traffic_latency_and_gpus():
    board = BOARDS["triton.json"]
    assert {
        "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us", "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
    } <= _metrics(board)
    legends = {t["legendFormat"] for p in board["panels"] for t in p.get("targets", [])}
    assert any("{{model}}" in legend and "{{version}}" in legend for legend in legends)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_fit_the_grid_with_unique_ids(name):
    board = BOARDS[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{name}: panel {panel['title']!r} overlaps another"
                cells.add((x, y))
    assert all(t["datasource"]["uid"] == "${datasource}" for p in board["panels"] for t in p.get("targets", []))


# --- committed JSON ------------------------------------------------------------------------------

def test_committed_json_matches_the_generator():
    for name, board in BOARDS.items():
        path = dashboards.DASHBOARD_DIR / name
        assert path.exists(), f"{path} missing: run python -m components.dashboards"
        assert json.loads(path.read_text()) == board, f"{name} is stale: run python -m components.dashboards"
    assert sorted(p.name for p in dashboards.DASHBOARD_DIR.glob("*.json")) == sorted(BOARDS)


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    shutil.copytree(dashboards.DASHBOARD_DIR, tmp_path / "dashboards")
    monkeypatch.setattr(dashboards, "DASHBOARD_DIR", tmp_path / "dashboards")
    assert dashboards.main(["--check"]) == 0
    stale = tmp_path / "dashboards" / "triton.json"
    stale.write_text(stale.read_text().replace("Triton inference", "Triton"))
    assert dashboards.main(["--check"]) == 1
    assert "triton.json" in capsys.readouterr().err


# --- provisioning ------------------------------------------------------------------------------------

def _release_values(run, name="monitoring-release") -> dict:
    return run.named(name).public_inputs()["values"]


def test_dashboards_are_provisioned_as_configmaps_the_sidecar_picks_up():
    run = harness.plan("dev")
    sidecar = _release_values(run)["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True and sidecar["searchNamespace"] == "ALL"
    configmaps = [r.public_inputs() for r in run.of_type("kubernetes:core/v1:ConfigMap")
                  if r.public_inputs()["metadata"].get("labels", {}).get(sidecar["label"]) == sidecar["labelValue"]]
    provisioned = {name: json.loads(text) for cm in configmaps for name, text in cm["data"].items()}
    # The inference gateway brings its own board (components/inference_gateway.py, LiteLLM's metrics).
    from components.inference_gateway import usage_dashboard
    assert provisioned == {**BOARDS, "inference-api-usage.json": json.loads(json.dumps(usage_dashboard()))}


def test_dcgm_dashboard_12239_is_imported_at_a_pinned_revision():
    grafana = _release_values(harness.plan("dev"))["grafana"]
    [(provider, boards)] = grafana["dashboards"].items()
    [board] = boards.values()
    assert board["gnetId"] == 12239 and isinstance(board["revision"], (int, float)) and board["revision"] >= 1
    providers = grafana["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    assert [p["options"]["path"] for p in providers if p["name"] == provider] == [f"/var/lib/grafana/dashboards/{provider}"]
