"""Grafana dashboards authored by this project, generated as code, plus the PromQL metric-name check.

`build_dashboards()` returns {file name: dashboard JSON}; the Monitoring component provisions them
as sidecar ConfigMaps. The same JSON is committed under components/dashboards/ for review and
manual import; `python -m components.dashboards` regenerates it and a test keeps it in sync.

Every metric a dashboard or alert rule queries must be in KNOWN_METRICS: a misspelt metric name
is not an error in PromQL, just an empty panel or an alert that can never fire.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from components.gpu_node_group import POOL_LABEL

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

# --- known metric names ------------------------------------------------------------------------

# dcgm-exporter default counters (default-counters.csv) the platform relies on.
DCGM_METRICS = frozenset({
    "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
    "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP",
    "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_DRAM_ACTIVE",
})

# Triton Inference Server metrics (metrics endpoint, port 8002).
TRITON_METRICS = frozenset({
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
    "nv_inference_exec_count", "nv_inference_pending_request_count", "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us", "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us", "nv_inference_compute_output_duration_us",
    "nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes", "nv_gpu_power_usage",
})

# The few non-GPU series the rules and dashboards join against: Prometheus' own `up` and
# kube-state-metrics (shipped by kube-prometheus-stack). Kept short on purpose.
KUBERNETES_METRICS = frozenset({
    "up", "kube_node_spec_taint", "kube_node_labels", "kube_pod_container_status_ready",
    "kube_deployment_status_replicas_available", "kube_deployment_spec_replicas", "kube_deployment_labels",
    "kube_deployment_status_condition",
})

# LiteLLM proxy metrics the gateway's dashboard and alerts query (LiteLLM 1.108.7, the release the
# gateway pins: names in litellm/types/integrations/prometheus.py, types in
# litellm/integrations/prometheus.py). prometheus_client exposes a Counter as <name>_total and a
# Histogram as <name>_bucket/_sum/_count; a Gauge keeps its name.
LITELLM_METRICS = frozenset({
    "litellm_proxy_total_requests_metric_total", "litellm_proxy_failed_requests_metric_total",
    "litellm_input_tokens_metric_total", "litellm_output_tokens_metric_total", "litellm_spend_metric_total",
    "litellm_request_total_latency_metric_bucket",
    # Database mode only: set per virtual key on its requests; the max gauge only for keys with a max_budget.
    "litellm_remaining_api_key_budget_metric", "litellm_api_key_max_budget_metric",
})

KNOWN_METRICS = DCGM_METRICS | TRITON_METRICS | KUBERNETES_METRICS | LITELLM_METRICS

_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "atan2", "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*(?:,\s*[A-Za-z_][A-Za-z0-9_]*\s*)?\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (or a Grafana `label_values(...)` query).

    Removes strings, label matchers, range/subquery brackets, grouping label lists and Grafana
    variables, then keeps identifiers that are not function calls, keywords or numbers.
    """
    match = _LABEL_VALUES.match(expr)
    if match:
        expr = match.group(1)
    text = _VARIABLE.sub(" ", _STRING.sub('""', expr))
    text = _BRACKETS.sub(" ", _BRACES.sub(" ", text))
    text = _GROUPING.sub(" ", text)
    names = set()
    for ident, call in _IDENT.findall(text):
        if call or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - KNOWN_METRICS


# --- building blocks ---------------------------------------------------------------------------

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# kube-state-metrics turns the node label ai-platform/gpu-pool into this metric label.
POOL = "label_" + re.sub(r"[^A-Za-z0-9_]", "_", POOL_LABEL)


def _datasource_variable() -> dict:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {"text": "Prometheus", "value": "prometheus"}, "hide": 0}


def _query_variable(name: str, label: str, query: str, include_all: bool = True) -> dict:
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"var-{name}"}, "definition": query,
        "refresh": 2, "sort": 1, "multi": True, "includeAll": include_all, "allValue": ".*",
        "current": {"text": "All", "value": "$__all"}, "hide": 0,
    }


class _Layout:
    """Places panels left to right on Grafana's 24-column grid and hands out panel ids."""

    def __init__(self):
        self.panels: list[dict] = []
        self.x = self.y = self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "id": len(self.panels) + 1, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
            self.x = self.row_height = 0

    def add(self, panel: dict, width: int, height: int = 8) -> None:
        if self.x + width > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)


def _targets(queries: list[tuple[str, str]], instant: bool = False) -> list[dict]:
    return [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
         "range": not instant, "instant": instant}
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(title: str, queries: list[tuple[str, str]], unit: str, description: str = "",
               min_value: float | None = 0, max_value: float | None = None, stack: bool = False) -> dict:
    defaults: dict = {"unit": unit, "custom": {"fillOpacity": 10, "showPoints": "never",
                                               "stacking": {"mode": "normal" if stack else "none"}}}
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {"type": "timeseries", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets(queries), "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title: str, expr: str, unit: str, description: str = "", thresholds: list[tuple[float, str]] = ()) -> dict:
    steps = [{"color": "green", "value": None}] + [{"color": color, "value": value} for value, color in thresholds]
    return {"type": "stat", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": _targets([(expr, "")], instant=True),
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area"}}


def table(title: str, expr: str, description: str = "") -> dict:
    return {"type": "table", "title": title, "description": description, "datasource": DATASOURCE,
            "targets": [{**_targets([(expr, "")], instant=True)[0], "format": "table"}],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True}}}]}


def dashboard(uid: str, title: str, description: str, tags: list[str], variables: list[dict], layout: _Layout) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": tags,
        "editable": False, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "1m", "timezone": "utc",
        "templating": {"list": variables}, "annotations": {"list": []}, "links": [],
        "panels": layout.panels,
    }


# --- GPU fleet ---------------------------------------------------------------------------------

def _gpu(metric: str, extra: str = "") -> str:
    """A DCGM series filtered by the dashboard's pool/node/GPU variables (pool via kube-state-metrics)."""
    selector = f'node=~"$node", gpu=~"$gpu"{", " + extra if extra else ""}'
    return (f'{metric}{{{selector}}} * on(node) group_left({POOL}) '
            f'kube_node_labels{{{POOL}=~"$pool"}}')


def gpu_fleet() -> dict:
    per_gpu = "{{node}} GPU {{gpu}}"
    layout = _Layout()
    layout.row("Fleet")
    layout.add(stat("GPUs reporting", f"count({_gpu('DCGM_FI_DEV_GPU_UTIL')})", "none",
                    "GPUs whose DCGM exporter is scraped. Fewer than the pools' GPUs means an exporter is missing."), 4, 4)
    layout.add(stat("Average utilisation", f"avg({_gpu('DCGM_FI_DEV_GPU_UTIL')})", "percent", "",
                    [(70, "yellow"), (90, "red")]), 4, 4)
    layout.add(stat("GPUs held by pods", f'count({_gpu("DCGM_FI_DEV_GPU_UTIL", "pod!=" + chr(34) * 2)})', "none",
                    "GPUs that DCGM attributes to a pod."), 4, 4)
    layout.add(stat("Framebuffer used", f"sum({_gpu('DCGM_FI_DEV_FB_USED')}) / "
                                        f"(sum({_gpu('DCGM_FI_DEV_FB_USED')}) + sum({_gpu('DCGM_FI_DEV_FB_FREE')}))",
                    "percentunit", "", [(0.8, "yellow"), (0.95, "red")]), 4, 4)
    layout.add(stat("Power draw", f"sum({_gpu('DCGM_FI_DEV_POWER_USAGE')})", "watt"), 4, 4)
    layout.add(stat("Hottest GPU", f"max({_gpu('DCGM_FI_DEV_GPU_TEMP')})", "celsius", "",
                    [(83, "yellow"), (90, "red")]), 4, 4)

    layout.row("Utilisation")
    layout.add(timeseries("GPU utilisation per GPU", [(_gpu("DCGM_FI_DEV_GPU_UTIL"), per_gpu)], "percent",
                          max_value=100), 12)
    layout.add(timeseries("GPU utilisation per pool", [(f"avg by ({POOL}) ({_gpu('DCGM_FI_DEV_GPU_UTIL')})",
                                                        "{{" + POOL + "}}")], "percent", max_value=100), 12)
    layout.add(timeseries("Tensor core and graphics engine activity",
                          [(_gpu("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"), "tensor " + per_gpu),
                           (_gpu("DCGM_FI_PROF_GR_ENGINE_ACTIVE"), "engine " + per_gpu)], "percentunit",
                          "Profiling counters: a better measure of real work than GPU_UTIL, which only says a kernel ran.",
                          max_value=1), 24)

    layout.row("Memory")
    layout.add(timeseries("Framebuffer used", [(_gpu("DCGM_FI_DEV_FB_USED"), per_gpu)], "decmbytes"), 12)
    layout.add(timeseries("Framebuffer free", [(_gpu("DCGM_FI_DEV_FB_FREE"), per_gpu)], "decmbytes"), 12)

    layout.row("Thermals, power and clocks")
    layout.add(timeseries("GPU temperature", [(_gpu("DCGM_FI_DEV_GPU_TEMP"), per_gpu)], "celsius", min_value=None), 12)
    layout.add(timeseries("Memory temperature", [(_gpu("DCGM_FI_DEV_MEMORY_TEMP"), per_gpu)], "celsius",
                          "Reported by HBM GPUs only (A100/H100); empty for GDDR GPUs such as the L4.", min_value=None), 12)
    layout.add(timeseries("Power draw", [(_gpu("DCGM_FI_DEV_POWER_USAGE"), per_gpu)], "watt"), 8)
    layout.add(timeseries("SM clock", [(f"{_gpu('DCGM_FI_DEV_SM_CLOCK')} * 1000000", per_gpu)], "hertz",
                          "A falling SM clock under load means thermal or power throttling."), 8)
    layout.add(timeseries("Memory clock", [(f"{_gpu('DCGM_FI_DEV_MEM_CLOCK')} * 1000000", per_gpu)], "hertz"), 8)

    layout.row("PCIe and errors")
    layout.add(timeseries("PCIe throughput", [(_gpu("DCGM_FI_PROF_PCIE_TX_BYTES"), "tx " + per_gpu),
                                              (_gpu("DCGM_FI_PROF_PCIE_RX_BYTES"), "rx " + per_gpu)], "Bps",
                          "Host-GPU traffic: model loads and input/output tensors."), 12)
    layout.add(table("GPUs with an Xid error", f"{_gpu('DCGM_FI_DEV_XID_ERRORS')} > 0",
                     "Last Xid reported per GPU (value column); see docs/alerts.md#gpuxiderror."), 12)

    layout.row("Per pod (where DCGM attributes the GPU to a pod)")
    per_pod = "{{namespace}}/{{pod}} ({{node}} GPU {{gpu}})"
    layout.add(timeseries("GPU utilisation per pod", [(_gpu("DCGM_FI_DEV_GPU_UTIL", 'pod!=""'), per_pod)],
                          "percent", max_value=100), 12)
    layout.add(timeseries("Framebuffer used per pod", [(_gpu("DCGM_FI_DEV_FB_USED", 'pod!=""'), per_pod)],
                          "decmbytes"), 12)

    variables = [
        _datasource_variable(),
        _query_variable("pool", "GPU pool", f"label_values(kube_node_labels, {POOL})"),
        _query_variable("node", "Node", "label_values(DCGM_FI_DEV_GPU_UTIL, node)"),
        _query_variable("gpu", "GPU", 'label_values(DCGM_FI_DEV_GPU_UTIL{node=~"$node"}, gpu)'),
    ]
    return dashboard("ai-platform-gpu-fleet", "GPU fleet",
                     "Utilisation, memory, thermals, power, clocks, PCIe and Xid errors of every GPU, per pool, node, GPU and pod (DCGM exporter).",
                     ["ai-platform", "gpu", "dcgm"], variables, layout)


# --- Triton ------------------------------------------------------------------------------------

def _triton(metric: str, per_model: bool = True) -> str:
    # nv_gpu_* series describe a GPU, not a model: they carry no `model` label to filter on.
    selector = 'namespace=~"$namespace", model=~"$model"' if per_model else 'namespace=~"$namespace"'
    return f"{metric}{{{selector}}}"


def _rate(metric: str, by: str = "model, version") -> str:
    return f"sum by ({by}) (rate({_triton(metric)}[$__rate_interval]))"


def _per_request(metric: str) -> str:
    # Cumulative microseconds / completed requests = average time per request in the window.
    return f"{_rate(metric)} / clamp_min({_rate('nv_inference_request_success')}, 1e-9)"


def triton() -> dict:
    per_model = "{{model}} v{{version}}"
    layout = _Layout()
    layout.row("Traffic")
    layout.add(timeseries("Successful requests / s", [(_rate("nv_inference_request_success"), per_model)], "reqps"), 8)
    layout.add(timeseries("Failed requests / s", [(_rate("nv_inference_request_failure", "model, version, reason"),
                                                   per_model + " {{reason}}")], "reqps"), 8)
    layout.add(timeseries("Failure ratio", [(f"{_rate('nv_inference_request_failure')} / "
                                             f"({_rate('nv_inference_request_success')} + {_rate('nv_inference_request_failure')})",
                                             per_model)], "percentunit", max_value=1), 8)
    layout.add(timeseries("Inferences and executions / s", [(_rate("nv_inference_count"), "inferences " + per_model),
                                                           (_rate("nv_inference_exec_count"), "executions " + per_model)],
                          "ops", "Inferences per execution above 1 means dynamic batching is working."), 12)
    layout.add(timeseries("Pending requests", [(f"sum by (model, version) ({_triton('nv_inference_pending_request_count')})",
                                                per_model)], "short"), 12)

    layout.row("Latency (average per request)")
    layout.add(timeseries("Request latency", [(_per_request("nv_inference_request_duration_us"), per_model)], "µs"), 8)
    layout.add(timeseries("Queue time", [(_per_request("nv_inference_queue_duration_us"), per_model)], "µs"), 8)
    layout.add(timeseries("Compute time (infer)", [(_per_request("nv_inference_compute_infer_duration_us"), per_model)], "µs"), 8)
    layout.add(timeseries("Queue time / compute time",
                          [(f"{_rate('nv_inference_queue_duration_us')} / clamp_min({_rate('nv_inference_compute_infer_duration_us')}, 1)",
                            per_model)], "short",
                          "Above 1 requests wait longer than they compute: the autoscaling signal (alert TritonQueueTimeHigh)."), 24)

    layout.row("GPUs seen by Triton")
    per_gpu = "{{pod}} {{gpu_uuid}}"
    layout.add(timeseries("GPU utilisation", [(_triton("nv_gpu_utilization", per_model=False), per_gpu)],
                          "percentunit", max_value=1), 8)
    layout.add(timeseries("GPU memory used", [(_triton("nv_gpu_memory_used_bytes", per_model=False), "used " + per_gpu),
                                              (_triton("nv_gpu_memory_total_bytes", per_model=False), "total " + per_gpu)],
                          "bytes"), 8)
    layout.add(timeseries("GPU power", [(_triton("nv_gpu_power_usage", per_model=False), per_gpu)], "watt"), 8)

    variables = [
        _datasource_variable(),
        _query_variable("namespace", "Namespace", "label_values(nv_inference_request_success, namespace)"),
        _query_variable("model", "Model", 'label_values(nv_inference_request_success{namespace=~"$namespace"}, model)'),
    ]
    return dashboard("ai-platform-triton", "Triton inference",
                     "Request rate, failures, latency (request, queue, compute) per model and version, and the GPUs Triton uses.",
                     ["ai-platform", "triton", "inference"], variables, layout)


def build_dashboards() -> dict[str, dict]:
    """{file name: dashboard} for every dashboard this project provisions."""
    return {"gpu-fleet.json": gpu_fleet(), "triton.json": triton()}


def render(board: dict) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expressions(board: dict) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and variable queries."""
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            found.append(query["query"])
    return found


def main(argv: list[str]) -> int:
    """Write (default) or --check the committed JSON files."""
    check = "--check" in argv
    stale = []
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for name, board in build_dashboards().items():
        path = DASHBOARD_DIR / name
        text = render(board)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards: {', '.join(stale)} (run: python -m components.dashboards)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
