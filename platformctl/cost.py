"""What a stack costs to run, per hour and per month, idle and at peak, before it exists.

`estimate(config)` is pure (no AWS calls unless a live PriceBook is passed) so `platformctl plan`
and `preflight` can both print it. Idle means every node group at its minSize, peak every node
group at its maxSize; everything else (control plane, NAT, load balancers) runs all the time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stack_config import StackConfig

from .prices import PRICING_API_REGION, LivePrices, PriceBook, PricesUnavailable, TablePrices, load_table, on_demand_hourly

# Spot capacity for G instances has typically sold at 50-70% below on-demand; 60% is a middle
# assumption. It is printed with every estimate and can be changed with --spot-discount.
DEFAULT_SPOT_DISCOUNT = 0.60

# The stack fronts OpenWebUI (and the Triton OpenAI endpoint) with one load balancer unless the
# caller counts the actual LoadBalancer services/ingresses (plan can, from its manifests).
DEFAULT_LOAD_BALANCERS = 1

NOT_INCLUDED = "data transfer, NAT data processing ($/GB), S3 storage, CloudWatch logs, load balancer LCUs"


@dataclass(frozen=True)
class LineItem:
    name: str
    detail: str
    idle_hourly: float
    peak_hourly: float
    priced: bool = True


@dataclass(frozen=True)
class Estimate:
    region: str
    items: tuple[LineItem, ...]
    price_source: str
    spot_discount: float
    hours_per_month: int
    notes: tuple[str, ...] = field(default=())

    @property
    def idle_hourly(self) -> float:
        return sum(i.idle_hourly for i in self.items)

    @property
    def peak_hourly(self) -> float:
        return sum(i.peak_hourly for i in self.items)

    @property
    def idle_monthly(self) -> float:
        return self.idle_hourly * self.hours_per_month

    @property
    def peak_monthly(self) -> float:
        return self.peak_hourly * self.hours_per_month

    @property
    def complete(self) -> bool:
        return all(i.priced for i in self.items)

    def item(self, name: str) -> LineItem:
        for entry in self.items:
            if entry.name == name:
                return entry
        raise KeyError(name)


@dataclass(frozen=True)
class Database:
    name: str
    instance_class: str
    multi_az: bool
    storage_gib: float  # allocated now
    max_storage_gib: float  # what storage autoscaling may grow it to (= storage_gib without it)
    storage_type: str = "gp3"


@dataclass(frozen=True)
class CacheCluster:
    """An ElastiCache replication group: every node (primary and replicas) bills the same rate."""

    name: str
    node_type: str
    nodes: int
    engine: str = "valkey"


@dataclass(frozen=True)
class PlanFacts:
    """Billable things only the rendered program knows (counted from `plan.json`)."""

    load_balancers: int = 0
    kms_keys: int = 0
    interface_endpoint_zones: int = 0  # sum over interface VPC endpoints of their subnets
    persistent_volume_gib: float = 0  # PVCs and the volume claims of Helm releases
    databases: tuple[Database, ...] = ()
    unsized_claims: tuple[str, ...] = ()  # claims whose size is unknown until deploy
    caches: tuple[CacheCluster, ...] = ()


_SUFFIX_BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
                 "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}


def quantity_gib(quantity: Any) -> float | None:
    """A Kubernetes storage quantity ("50Gi", "1Ti", "500M", bytes as a number) in GiB; None when
    it is not a quantity (e.g. unknown until deploy)."""
    if isinstance(quantity, (int, float)) and not isinstance(quantity, bool):
        return quantity / 2**30
    if not isinstance(quantity, str):
        return None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]i|[kMGTP]?)\s*", quantity)
    if not match:
        return None
    return float(match.group(1)) * _SUFFIX_BYTES[match.group(2)] / 2**30


def _helm_claims(values: Any, path: str = "values") -> list[tuple[str, Any]]:
    """(where, size) of every volume a chart is asked to claim: `volumeClaimTemplate`s
    (kube-prometheus-stack's Prometheus/Alertmanager) and enabled `persistence.size` (Grafana)."""
    found = []
    if isinstance(values, dict):
        template = values.get("volumeClaimTemplate")
        if isinstance(template, dict):
            size = (((template.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            found.append((f"{path}.volumeClaimTemplate", size))
        persistence = values.get("persistence")
        if isinstance(persistence, dict) and persistence.get("enabled") is True and "size" in persistence:
            found.append((f"{path}.persistence", persistence["size"]))
        for key, value in values.items():
            if key not in ("volumeClaimTemplate", "persistence"):
                found += _helm_claims(value, f"{path}.{key}")
    elif isinstance(values, list):
        for index, value in enumerate(values):
            found += _helm_claims(value, f"{path}[{index}]")
    return found


def _has_load_balancer_service(values: Any) -> bool:
    """Helm values that ask a chart for a `type: LoadBalancer` service, at any depth."""
    if isinstance(values, dict):
        if values.get("type") == "LoadBalancer":
            return True
        return any(_has_load_balancer_service(v) for v in values.values())
    if isinstance(values, list):
        return any(_has_load_balancer_service(v) for v in values)
    return False


def _storage_gib(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cache_nodes(inputs: dict) -> int:
    """Nodes of a replication group: numCacheClusters without cluster mode; with it, every shard
    has a primary and its replicas. An unknown count is one node, the least it can have."""
    clusters = _count(inputs.get("numCacheClusters"))
    if clusters is not None:
        return clusters
    shards = _count(inputs.get("numNodeGroups"))
    if shards is not None:
        return shards * (1 + (_count(inputs.get("replicasPerNodeGroup")) or 0))
    return 1


def facts_from_plan(plan_doc: dict) -> PlanFacts:
    load_balancers = kms_keys = endpoint_zones = 0
    volume_gib = 0.0
    databases: list[Database] = []
    caches: list[CacheCluster] = []
    unsized: list[str] = []

    def claim(where: str, size: Any) -> None:
        nonlocal volume_gib
        gib = quantity_gib(size)
        if gib is None:
            unsized.append(where)
        else:
            volume_gib += gib

    for resource in plan_doc.get("resources", []):
        kind, inputs = resource.get("type", ""), resource.get("inputs") or {}
        name = resource.get("name", "?")
        if kind in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
            load_balancers += 1
        elif kind == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
            load_balancers += 1
        elif kind == "kubernetes:networking.k8s.io/v1:Ingress":
            load_balancers += 1
        elif kind == "kubernetes:helm.sh/v3:Release":
            values = inputs.get("values")
            if _has_load_balancer_service(values):
                load_balancers += 1
            for where, size in _helm_claims(values):
                claim(f"{name}: {where}", size)
        elif kind == "kubernetes:core/v1:PersistentVolumeClaim":
            claim(f"PersistentVolumeClaim {name}",
                  (((inputs.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"))
        elif kind == "aws:rds/instance:Instance":
            allocated = _storage_gib(inputs.get("allocatedStorage")) or 0.0
            databases.append(Database(
                name, str(inputs.get("instanceClass")), inputs.get("multiAz") is True, allocated,
                max(allocated, _storage_gib(inputs.get("maxAllocatedStorage")) or 0.0),
                str(inputs.get("storageType") or "gp2"),
            ))
        elif kind == "aws:elasticache/replicationGroup:ReplicationGroup":
            caches.append(CacheCluster(name, str(inputs.get("nodeType")), _cache_nodes(inputs),
                                       str(inputs.get("engine") or "redis").lower()))
        elif kind == "aws:kms/key:Key":
            kms_keys += 1
        elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Interface":
            subnets = inputs.get("subnetIds")
            endpoint_zones += len(subnets) if isinstance(subnets, list) else 1
    return PlanFacts(load_balancers, kms_keys, endpoint_zones, round(volume_gib, 3), tuple(databases), tuple(unsized),
                     tuple(caches))


def _node_price(
    types: Iterable[str], capacity: str, prices: PriceBook, spot_discount: float
) -> tuple[float | None, str, list[str]]:
    """$/hour of one node of a group, the type it was priced at, and the types with no price.

    A group with several types may get any of them, so it is priced at the dearest: the
    estimate is a budget, and a budget should be an upper bound.
    """
    priced = {t: prices.instance_hour(t) for t in types}
    missing = [t for t, p in priced.items() if p is None]
    known = {t: p for t, p in priced.items() if p is not None}
    if not known:
        return None, "", missing
    dearest = max(known, key=lambda t: known[t])
    hourly = known[dearest] * ((1 - spot_discount) if capacity == "SPOT" else 1)
    return hourly, dearest, missing


def _group_item(
    name: str, types: list[str], capacity: str, min_size: int, max_size: int,
    prices: PriceBook, spot_discount: float, notes: list[str],
) -> LineItem:
    hourly, priced_as, missing = _node_price(types, capacity, prices, spot_discount)
    sizes = f"{min_size}-{max_size}" if min_size != max_size else str(min_size)
    capacity_text = f"SPOT at -{spot_discount:.0%}" if capacity == "SPOT" else "on-demand"
    if hourly is None:
        notes.append(f"{name}: no price for {', '.join(missing)}; not in the totals (use --live-prices)")
        return LineItem(name, f"{sizes} x {'/'.join(types)}, {capacity_text}: no price", 0.0, 0.0, priced=False)
    shown = priced_as if len(types) == 1 else f"{priced_as} (dearest of {', '.join(types)})"
    if missing:
        notes.append(f"{name}: no price for {', '.join(missing)}; priced as {priced_as}")
    detail = f"{sizes} x {shown}, {capacity_text}, ${hourly:.4f}/h each"
    return LineItem(name, detail, hourly * min_size, hourly * max_size)


def config_databases(config: StackConfig) -> tuple[Database, ...]:
    """The RDS instances the config asks for (preflight has no plan to count them from): OpenWebUI's
    with postgres persistence, the gateway's in authMode database. Named as in the plan."""
    found = []
    ui = config.openWebUi
    if ui.enabled and ui.persistence.database == "postgres":
        pg = ui.persistence.postgres
        found.append(Database("openwebui-db", pg.instanceClass, pg.multiAz, pg.allocatedStorageGiB, pg.maxAllocatedStorageGiB))
    gateway = config.gateway
    if gateway.enabled and gateway.authMode == "database" and config.tritonDeployments:
        pg = gateway.database
        found.append(Database("inference-gateway-db", pg.instanceClass, pg.multiAz, pg.allocatedStorageGiB,
                              pg.maxAllocatedStorageGiB))
    return tuple(found)


def config_caches(config: StackConfig) -> tuple[CacheCluster, ...]:
    """The ElastiCache groups: OpenWebUI's with more than one replica (components/openwebui.py
    `_redis`; the config model requires postgres for replicas > 1) and the gateway's with
    gateway.redis (components/inference_gateway.py `_redis`). Named as in the plan."""
    caches = []
    ui = config.openWebUi
    if ui.enabled and ui.replicas > 1:
        rc = ui.persistence.redis
        caches.append(CacheCluster("openwebui-redis", rc.nodeType, rc.nodes))
    gateway = config.gateway
    if gateway.enabled and gateway.redis.enabled and config.tritonDeployments:
        caches.append(CacheCluster("inference-gateway-redis", gateway.redis.nodeType, gateway.redis.nodes))
    return tuple(caches)


# Attributes of the plain on-demand node price in the AmazonElastiCache price list (each node
# type also lists a $0 "reserved instance applied" dimension, dropped with the other zero prices).
_CACHE_ENGINES = {"valkey": "Valkey", "redis": "Redis"}


def cache_pricing_filters(region: str, node_type: str, engine: str) -> list[dict[str, str]]:
    fields = {"instanceType": node_type, "regionCode": region, "cacheEngine": _CACHE_ENGINES[engine],
              "productFamily": "Cache Instance"}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def live_cache_node_hour(pricing_client: Any, region: str, node_type: str, engine: str) -> float | None:
    """On-demand $/hour of one ElastiCache node from the Pricing API; None when no product matches."""
    response = pricing_client.get_products(
        ServiceCode="AmazonElastiCache",
        Filters=cache_pricing_filters(region, node_type, engine),
        FormatVersion="aws_v1",
        MaxResults=10,
    )
    return on_demand_hourly(response)


def _cache_node_hour(cache: CacheCluster, prices: PriceBook, notes: list[str]) -> tuple[float | None, str]:
    """$/hour of one node and where the figure comes from: the Pricing API with --live-prices,
    else (or when the API cannot answer) the table, which holds Valkey prices only."""
    table = getattr(prices, "table", None) or load_table()
    try:
        rates = table.region(prices.region).get("elasticacheValkeyNodes", {})
    except PricesUnavailable:
        rates = {}
    table_hour = rates.get(cache.node_type) if cache.engine == "valkey" else None
    source = "table, unchecked"
    if isinstance(prices, LivePrices) and cache.engine in _CACHE_ENGINES:
        from .aws_errors import explain_error  # here, not at the top: the offline plan needs no botocore

        try:
            live = live_cache_node_hour(prices.pricing_client, prices.region, cache.node_type, cache.engine)
        except Exception as exc:  # noqa: BLE001 - every API failure becomes a note, never a traceback
            reason = explain_error(exc, "pricing:GetProducts")
        else:
            if live is not None:
                return live, f"live, Pricing API in {PRICING_API_REGION}"
            reason = f"no on-demand {_CACHE_ENGINES[cache.engine]} product found"
        used = "table price used" if table_hour is not None else "left unpriced"
        notes.append(f"live price of ElastiCache {cache.node_type}: {reason}; {used}")
    return (None if table_hour is None else float(table_hour)), source


def _cache_item(cache: CacheCluster, prices: PriceBook, notes: list[str]) -> LineItem:
    """An ElastiCache group: nodes x node price, the same idle and at peak (it does not scale)."""
    name = f"ElastiCache {cache.name}"
    engine = _CACHE_ENGINES.get(cache.engine, cache.engine)
    layout = "primary" if cache.nodes == 1 else f"primary + {cache.nodes - 1} replica(s)"
    hourly, source = _cache_node_hour(cache, prices, notes)
    if hourly is None:
        notes.append(f"{name}: no price for {engine} {cache.node_type}; not in the totals (use --live-prices)")
        return LineItem(name, f"{cache.nodes} x {engine} {cache.node_type} ({layout}): no price", 0.0, 0.0, priced=False)
    if source == "table, unchecked":
        notes.append(f"{name}: the table's ElastiCache node prices are written from memory and unchecked; "
                     "`platformctl preflight --live-prices` asks the Pricing API")
    detail = f"{cache.nodes} x {engine} {cache.node_type} ({layout}), ${hourly:.4f}/h each ({source})"
    return LineItem(name, detail, cache.nodes * hourly, cache.nodes * hourly)


def _database_item(db: Database, rates: Any, hours_per_month: int, notes: list[str]) -> LineItem:
    """An RDS instance: the instance (twice with a Multi-AZ standby) plus its storage, idle at the
    allocated size and peak at the size storage autoscaling may reach."""
    name = f"Database {db.name}"
    hourly = rates.database_hour(db.instance_class, db.multi_az)
    copies = 2 if db.multi_az else 1
    deployment = "Multi-AZ" if db.multi_az else "Single-AZ"
    sizes = f"{db.storage_gib:g}-{db.max_storage_gib:g}" if db.max_storage_gib != db.storage_gib else f"{db.storage_gib:g}"
    if hourly is None:
        notes.append(f"{name}: no price for {db.instance_class} in the table; not in the totals")
        return LineItem(name, f"RDS PostgreSQL {db.instance_class}, {deployment}: no price", 0.0, 0.0, priced=False)
    storage_hour = copies * rates.rds_gp3_gb_month / hours_per_month
    detail = (f"RDS PostgreSQL {db.instance_class}, {deployment}, ${hourly:.4f}/h; {sizes} GiB {db.storage_type} "
              f"at ${rates.rds_gp3_gb_month}/GB-month{' x 2' if db.multi_az else ''}")
    return LineItem(name, detail, hourly + db.storage_gib * storage_hour, hourly + db.max_storage_gib * storage_hour)


def _control_plane_item(config: StackConfig, rates: Any, extended_support: bool) -> LineItem:
    if extended_support:
        hourly, support = rates.eks_extended_support_hour, "extended support"
    else:
        hourly, support = rates.eks_control_plane_hour, "standard support"
    return LineItem("EKS control plane", f"Kubernetes {config.cluster.kubernetesVersion}, {support}", hourly, hourly)


def _nat_item(config: StackConfig, rates: Any) -> LineItem:
    network = config.network
    if network.existingVpc is not None:
        return LineItem("NAT gateways", "existing VPC: its NAT gateways are billed to that VPC", 0.0, 0.0)
    count = 1 if network.natGateways == "single" else len(network.availabilityZones)
    each = rates.nat_gateway_hour + rates.public_ipv4_hour
    return LineItem(
        "NAT gateways",
        f"{count} x ({network.natGateways}) incl. its public IPv4 address, ${each:.3f}/h each",
        count * each, count * each,
    )


def _node_items(config: StackConfig, prices: PriceBook, spot_discount: float, notes: list[str]) -> list[LineItem]:
    """The system node group, each GPU pool, and the root volumes of all their nodes."""
    system = config.cluster.systemNodeGroup
    items = [_group_item(
        "System nodes", list(system.instanceTypes), system.capacityType,
        system.minSize, system.maxSize, prices, spot_discount, notes,
    )]
    karpenter = config.gpuProvisioner == "karpenter"
    for pool in config.gpuNodeGroups:
        if karpenter:
            # The pool's NodePool: no node while idle; at most maxSize nodes (its nvidia.com/gpu
            # limit), and a SPOT pool may get on-demand nodes (fallback), so its peak is on-demand.
            items.append(_group_item(
                f"GPU NodePool {pool.name}", list(pool.instanceTypes), "ON_DEMAND", 0, pool.maxSize, prices, spot_discount, notes))
            if pool.capacityType == "SPOT":
                notes.append(f"GPU NodePool {pool.name}: spot with on-demand fallback, priced on-demand at peak")
            continue
        items.append(_group_item(
            f"GPU pool {pool.name}", list(pool.instanceTypes), pool.capacityType,
            pool.minSize, pool.maxSize, prices, spot_discount, notes,
        ))
    rates = prices.rates
    gb_hour = rates.gp3_gb_month / prices.hours_per_month
    groups = [(system.diskSizeGiB, system.minSize, system.maxSize)] + [
        (p.diskSizeGiB, p.minSize, p.maxSize) for p in config.gpuNodeGroups
    ]
    idle_gib = sum(disk * low for disk, low, _ in groups)
    peak_gib = sum(disk * high for disk, _, high in groups)
    items.append(LineItem(
        "Volumes",
        f"node root volumes gp3, {idle_gib}-{peak_gib} GiB at ${rates.gp3_gb_month}/GB-month",
        idle_gib * gb_hour, peak_gib * gb_hour,
    ))
    return items


def _persistent_volume_items(plan_facts: PlanFacts | None, prices: PriceBook, notes: list[str]) -> list[LineItem]:
    """Claimed volumes (PVCs and chart volume claims) the plan counted; none without a plan."""
    if plan_facts is None or not (plan_facts.persistent_volume_gib or plan_facts.unsized_claims):
        return []
    rates = prices.rates
    gib = plan_facts.persistent_volume_gib
    pv_hourly = gib * rates.gp3_gb_month / prices.hours_per_month
    if plan_facts.unsized_claims:
        notes.append(f"size unknown until deploy, not in the totals: {', '.join(plan_facts.unsized_claims)}")
    return [LineItem(
        "Persistent volumes",
        f"{gib:g} GiB claimed (PVCs and chart volume claims, one replica each) gp3 at ${rates.gp3_gb_month}/GB-month",
        pv_hourly, pv_hourly,
    )]


def _counted_items(plan_facts: PlanFacts | None, rates: Any, hours_per_month: int) -> list[LineItem]:
    """Load balancers (counted in the plan, else DEFAULT_LOAD_BALANCERS), KMS keys and interface
    endpoints (only a plan counts them)."""
    if plan_facts is None:
        load_balancers, basis = DEFAULT_LOAD_BALANCERS, "assumed"
    else:
        load_balancers, basis = plan_facts.load_balancers, "counted in the plan"
    lb_hourly = load_balancers * rates.load_balancer_hour
    items = [LineItem(
        "Load balancers",
        f"{load_balancers} x ${rates.load_balancer_hour}/h ({basis}; hourly charge only)",
        lb_hourly, lb_hourly,
    )]
    if plan_facts is not None and plan_facts.kms_keys:
        kms_hourly = plan_facts.kms_keys * rates.kms_key_month / hours_per_month
        items.append(LineItem("KMS keys", f"{plan_facts.kms_keys} x ${rates.kms_key_month:.2f}/month (requests extra)",
                              kms_hourly, kms_hourly))
    if plan_facts is not None and plan_facts.interface_endpoint_zones:
        zones = plan_facts.interface_endpoint_zones
        endpoint_hourly = zones * rates.interface_endpoint_hour
        items.append(LineItem("VPC interface endpoints", f"{zones} endpoint-zones x ${rates.interface_endpoint_hour}/h",
                              endpoint_hourly, endpoint_hourly))
    return items


def estimate(
    config: StackConfig,
    prices: PriceBook | None = None,
    spot_discount: float = DEFAULT_SPOT_DISCOUNT,
    extended_support: bool = False,
    plan_facts: PlanFacts | None = None,
) -> Estimate:
    """Line items of the stack's running cost. Raises PricesUnavailable when no price source covers
    the region (the table only covers a few; `--live-prices` covers all).

    Without `plan_facts` (preflight), load balancers are assumed (DEFAULT_LOAD_BALANCERS) and the
    database and ElastiCache group come from the config; with them (plan), they are counted, and
    persistent volumes, KMS keys and interface endpoints are added."""
    if not 0 <= spot_discount < 1:
        raise ValueError(f"spot discount must be in [0, 1), got {spot_discount}")
    prices = prices or TablePrices(config.region)
    rates = prices.rates
    notes: list[str] = []
    items = [_control_plane_item(config, rates, extended_support), _nat_item(config, rates)]
    items += _node_items(config, prices, spot_discount, notes)
    items += _persistent_volume_items(plan_facts, prices, notes)
    for db in plan_facts.databases if plan_facts is not None else config_databases(config):
        items.append(_database_item(db, rates, prices.hours_per_month, notes))
    for cache in plan_facts.caches if plan_facts is not None else config_caches(config):
        items.append(_cache_item(cache, prices, notes))
    items += _counted_items(plan_facts, rates, prices.hours_per_month)
    return Estimate(
        region=config.region,
        items=tuple(items),
        price_source=prices.describe(),
        spot_discount=spot_discount,
        hours_per_month=prices.hours_per_month,
        notes=tuple(notes + prices.notes()),
    )


def _hourly(value: float, priced: bool = True) -> str:
    return f"${value:,.4f}" if priced else "n/a"


def _monthly(value: float, priced: bool = True) -> str:
    return f"${value:,.2f}" if priced else "n/a"


def render(est: Estimate, console: Console, title: str = "Estimated cost") -> None:
    """Print the estimate as a table, with where the prices come from and what is assumed."""
    table = Table(title=f"{title} ({est.region})", title_justify="left", show_lines=False)
    table.add_column("Item")
    table.add_column("Detail", overflow="fold")
    for heading in ("Idle $/h", "Peak $/h", "Idle $/month", "Peak $/month"):
        table.add_column(heading, justify="right")
    for it in est.items:
        table.add_row(
            Text(it.name), Text(it.detail),
            _hourly(it.idle_hourly, it.priced), _hourly(it.peak_hourly, it.priced),
            _monthly(it.idle_hourly * est.hours_per_month, it.priced),
            _monthly(it.peak_hourly * est.hours_per_month, it.priced),
        )
    total = "Total" if est.complete else "Total (partial)"
    table.add_section()
    table.add_row(
        Text(total, style="bold"), "idle: every node group at minSize; peak: at maxSize",
        _hourly(est.idle_hourly), _hourly(est.peak_hourly),
        _monthly(est.idle_monthly), _monthly(est.peak_monthly),
    )
    console.print(table)
    lines = [
        f"Prices: {est.price_source}. Month = {est.hours_per_month} h.",
        f"Spot: SPOT node groups are priced at an assumed {est.spot_discount:.0%} below on-demand "
        "(real spot prices vary by zone and hour; `platformctl preflight --spot-discount` changes it).",
        f"Not included: {NOT_INCLUDED}.",
    ] + [f"Note: {note}" for note in est.notes]
    for line in lines:
        console.print(line, markup=False, highlight=False)


def estimate_or_note(config: StackConfig, console: Console, **kwargs) -> Estimate | None:
    """Print the estimate, or one clear line saying why there is none. For `plan` and `preflight`."""
    try:
        est = estimate(config, **kwargs)
    except PricesUnavailable as exc:
        console.print(f"Cost estimate: not available: {exc}", markup=False)
        return None
    render(est, console)
    return est


# --- `platformctl plan` hook ---------------------------------------------------------------

PLAN_SECTION_TITLE = "Cost estimate"


def plan_section(run: Any, config: StackConfig, plan_doc: dict, console: Console, markdown: bool) -> tuple[str, int]:
    """Print the estimate under the plan, counting load balancers, KMS keys and endpoints from
    the plan. Never fails the plan: a missing price is a note, not an error."""
    recorder = Console(record=True, file=io.StringIO(), width=200, color_system=None, highlight=False)
    targets = [recorder] if markdown else [recorder, console]
    try:
        est = estimate(config, plan_facts=facts_from_plan(plan_doc))
    except PricesUnavailable as exc:
        for target in targets:
            target.print(f"Cost estimate: not available: {exc}", markup=False)
    else:
        for target in targets:
            render(est, target)
    return "```\n" + recorder.export_text().rstrip() + "\n```", 0


