"""The stack cost estimate: line items from the dated price table (or the Pricing API, stubbed),
idle = every node group at minSize, peak = at maxSize."""

from __future__ import annotations

import io
import json
import re

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

import stack_config
from platformctl import cost
from platformctl.prices import LivePrices, PricesUnavailable, TablePrices, load_table, pricing_filters
from stack_config.gpu_instances import GPU_INSTANCE_TYPES
from stack_config.model import ExistingVpcConfig

HOURS = 730
# us-west-2 / us-east-1 rates of the table, spelled out so a changed table or formula shows here.
EKS, NAT, IPV4, GP3, LB = 0.10, 0.045, 0.005, 0.08, 0.0225
M6I_LARGE, M6I_XLARGE, G5_XLARGE, G6E_XLARGE, G6E_12XLARGE = 0.096, 0.192, 1.006, 1.861, 10.49264
M7I_LARGE = 0.1008  # the dearest of dev's SPOT system types (m6i/m6a/m5/m7i.large)


@pytest.fixture
def dev():
    return stack_config.load_from_files("dev")


@pytest.fixture
def prod():
    return stack_config.load_from_files("prod")


def with_pool(config, index=0, **changes):
    pools = list(config.gpuNodeGroups)
    pools[index] = pools[index].model_copy(update=changes)
    return config.model_copy(update={"gpuNodeGroups": pools})


def on_demand_system(config, instance_type="m6i.large"):
    """The config with a one-type on-demand system pool (the price-source tests ask for one type)."""
    system = config.cluster.systemNodeGroup.model_copy(update={"instanceTypes": [instance_type], "capacityType": "ON_DEMAND"})
    return config.model_copy(update={"cluster": config.cluster.model_copy(update={"systemNodeGroup": system})})


def rendered(est) -> str:
    out = io.StringIO()
    cost.render(est, Console(file=out, width=240, color_system=None))
    return out.getvalue()


def test_dev_idle_cost_is_the_sum_of_its_line_items(dev):
    est = cost.estimate(dev)

    # dev: EKS + 1 NAT (with its IPv4) + 2 SPOT system nodes priced as the dearest type (m7i.large)
    # at -60% + 2 x 50 GiB gp3 + 1 load balancer; GPU pool at 0
    expected = EKS + (NAT + IPV4) + 2 * M7I_LARGE * 0.4 + 2 * 50 * GP3 / HOURS + LB
    assert est.idle_hourly == pytest.approx(expected)
    assert est.idle_hourly == pytest.approx(sum(item.idle_hourly for item in est.items))
    assert est.idle_monthly == pytest.approx(expected * HOURS)
    assert [i.name for i in est.items] == [
        "EKS control plane", "NAT gateways", "System nodes", "GPU pool inference", "Volumes", "Load balancers",
    ]


def test_gpu_pool_at_min_zero_adds_nothing_to_idle_cost(dev):
    base = cost.estimate(dev)
    bigger = cost.estimate(with_pool(dev, maxSize=10))
    warm = cost.estimate(with_pool(dev, minSize=1, desiredSize=1))

    assert base.item("GPU pool inference").idle_hourly == 0
    assert bigger.idle_hourly == pytest.approx(base.idle_hourly)  # max size only moves the peak
    assert bigger.peak_hourly > base.peak_hourly
    # one warm SPOT node: the dearest type (g5.xlarge) at -60%, plus its 100 GiB root volume
    assert warm.idle_hourly - base.idle_hourly == pytest.approx(G5_XLARGE * 0.4 + 100 * GP3 / HOURS)


def test_spot_pools_are_priced_at_the_stated_discount(dev):
    default = cost.estimate(dev)
    half = cost.estimate(dev, spot_discount=0.5)

    # dev's pool: maxSize 3 (Triton's two GPUs and a TensorRT build's)
    assert default.item("GPU pool inference").peak_hourly == pytest.approx(3 * G5_XLARGE * 0.4)
    assert half.item("GPU pool inference").peak_hourly == pytest.approx(3 * G5_XLARGE * 0.5)
    assert half.item("System nodes").peak_hourly == pytest.approx(3 * M7I_LARGE * 0.5)  # dev's system pool is SPOT too
    prod = stack_config.load_from_files("prod")
    assert cost.estimate(prod, spot_discount=0.5).item("System nodes").peak_hourly == cost.estimate(prod).item("System nodes").peak_hourly  # on-demand
    text = rendered(default)
    assert "SPOT at -60%" in text
    assert "SPOT node groups are priced at an assumed 60% below on-demand" in text
    with pytest.raises(ValueError, match=r"spot discount must be in \[0, 1\)"):
        cost.estimate(dev, spot_discount=1.0)


def _plan_estimate(stack, **kwargs):
    """The estimate `platformctl plan` prints: config plus what the plan counts."""
    from tests.harness import plan

    return cost.estimate(stack_config.load_from_files(stack), plan_facts=cost.facts_from_plan(plan(stack).to_json()), **kwargs)


def test_dev_idles_at_most_30_cents_an_hour_and_its_system_pool_still_fits():
    """Issue 12 finding 17: dev idled at $0.358/h (2 x m6i.large on-demand = $0.192/h of it). Its
    system pool is now SPOT over four 2 vCPU / 8 GiB types: under $0.30/h at the table's 60% spot
    discount and still at a pessimistic 40%. Same size for every type because the autoscaler builds
    one node template per group (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md,
    "Using Mixed Instances Policies and Spot Instances": same RAM and CPU cores); 29 pods per node for
    each (awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt), two nodes as before."""
    assert _plan_estimate("dev").idle_hourly <= 0.30
    assert _plan_estimate("dev", spot_discount=0.4).idle_hourly <= 0.30
    system = stack_config.load_from_files("dev").cluster.systemNodeGroup
    assert system.capacityType == "SPOT" and system.minSize == system.desiredSize == 2
    table = load_table().region("us-west-2")["instances"]
    assert {t: table[t] for t in system.instanceTypes} == {"m6i.large": 0.096, "m6a.large": 0.0864, "m5.large": 0.096, "m7i.large": 0.1008}


def test_prod_capacity_and_its_cost_lines_are_unchanged(prod):
    """Cheaper dev must not weaken prod: on-demand system nodes (3-6 x m6i.xlarge), one NAT per zone."""
    system = prod.cluster.systemNodeGroup
    assert (system.capacityType, system.instanceTypes, system.minSize, system.maxSize) == ("ON_DEMAND", ["m6i.xlarge"], 3, 6)
    est = _plan_estimate("prod")
    assert est.item("System nodes").idle_hourly == pytest.approx(3 * M6I_XLARGE)
    assert est.item("NAT gateways").idle_hourly == pytest.approx(3 * (NAT + IPV4))
    assert est.item("EKS control plane").idle_hourly == pytest.approx(EKS)


def test_prod_peak_prices_every_group_at_max_and_one_nat_per_zone(prod):
    est = cost.estimate(prod)

    assert est.item("NAT gateways").idle_hourly == pytest.approx(3 * (NAT + IPV4))
    assert est.item("GPU pool inference").peak_hourly == pytest.approx(6 * G6E_XLARGE)
    assert est.item("GPU pool llm").idle_hourly == pytest.approx(1 * G6E_12XLARGE)
    assert est.item("System nodes").peak_hourly == pytest.approx(6 * M6I_XLARGE)
    volumes_peak_gib = 6 * 50 + 6 * 200 + 2 * 500
    assert est.item("Volumes").peak_hourly == pytest.approx(volumes_peak_gib * GP3 / HOURS)
    assert est.peak_monthly == pytest.approx(sum(i.peak_hourly for i in est.items) * HOURS)


def test_existing_vpc_has_no_nat_cost_here(dev):
    existing = ExistingVpcConfig(vpcId="vpc-0abc", privateSubnetIds=["subnet-01", "subnet-02"])
    network = dev.network.model_copy(update={"existingVpc": existing})
    est = cost.estimate(dev.model_copy(update={"network": network}))
    assert est.item("NAT gateways").idle_hourly == 0
    assert "existing VPC" in est.item("NAT gateways").detail


def test_render_states_the_table_date_and_what_is_left_out(dev):
    text = rendered(cost.estimate(dev))
    assert f"price table dated {load_table().as_of}" in text
    assert "Month = 730 h" in text
    assert "Not included: data transfer" in text
    assert "Total " in text and "Total (partial)" not in text


def test_unpriced_type_is_named_and_the_total_marked_partial(prod):
    est = cost.estimate(with_pool(prod, 1, instanceTypes=["p5.48xlarge"]))

    llm = est.item("GPU pool llm")
    assert not llm.priced and llm.idle_hourly == 0
    assert not est.complete
    assert "GPU pool llm: no price for p5.48xlarge; not in the totals (use --live-prices)" in est.notes
    assert "Total (partial)" in rendered(est)


def test_region_outside_the_table_says_to_use_live_prices(dev):
    elsewhere = dev.model_copy(update={"region": "eu-west-1"})
    with pytest.raises(PricesUnavailable, match=r"no prices for eu-west-1 \(it covers us-east-1, us-east-2, us-west-2\); run with --live-prices"):
        cost.estimate(elsewhere)
    out = io.StringIO()
    assert cost.estimate_or_note(elsewhere, Console(file=out, width=240)) is None
    assert out.getvalue().startswith("Cost estimate: not available:")


def test_price_table_types_are_real_gpu_types_or_plain_instances():
    # a typo in prices.json ("g6e.12xlage") would silently leave a pool unpriced
    for region in load_table().region_names():
        prices = TablePrices(region)
        for name in prices._instances:
            family = name.split(".")[0]
            if family[0] in "gp":
                assert name in GPU_INSTANCE_TYPES, f"{region}: {name} is not a known GPU type"


def _product(usd: str) -> str:
    return json.dumps({
        "product": {"attributes": {"instanceType": "g6.xlarge", "regionCode": "eu-west-1"}},
        "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {
            "SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}},
    })


def _pricing_stub():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_live_prices_come_from_the_pricing_api(dev):
    client, stub = _pricing_stub()
    for instance_type, usd in (("m6i.large", "0.1070000000"), ("g6.xlarge", "0.9000000000"), ("g5.xlarge", "1.1230000000")):
        stub.add_response(
            "get_products", {"FormatVersion": "aws_v1", "PriceList": [_product(usd)]},
            {"ServiceCode": "AmazonEC2", "Filters": pricing_filters("eu-west-1", instance_type),
             "FormatVersion": "aws_v1", "MaxResults": 10},
        )
    stub.activate()
    config = on_demand_system(dev).model_copy(update={"region": "eu-west-1"})

    est = cost.estimate(config, prices=LivePrices("eu-west-1", client))

    stub.assert_no_pending_responses()
    assert est.item("System nodes").idle_hourly == pytest.approx(2 * 0.107)
    assert est.item("GPU pool inference").peak_hourly == pytest.approx(3 * 1.123 * 0.4)
    assert est.price_source.startswith("AWS Pricing API (live)")
    assert "fixed rates (EKS, NAT, EBS, load balancer) are us-east-1's: the table has no eu-west-1" in est.notes


def test_live_price_failure_falls_back_to_the_table_and_says_so(dev):
    client, stub = _pricing_stub()
    stub.add_client_error("get_products", service_error_code="AccessDeniedException")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [_product("0.9")]})
    stub.activate()

    est = cost.estimate(on_demand_system(dev), prices=LivePrices("us-west-2", client))

    assert est.item("System nodes").idle_hourly == pytest.approx(2 * M6I_LARGE)  # table price
    assert any("live price of m6i.large: permission denied (AccessDeniedException): needs pricing:GetProducts; "
               "table price (2025-06-01) used" == n for n in est.notes)
    assert any(n.startswith("live price of g6.xlarge: no on-demand Linux product found") for n in est.notes)
    # asked in order m6i.large, g6.xlarge (table 0.8048), g5.xlarge (live 0.9, now the dearest)
    assert est.item("GPU pool inference").peak_hourly == pytest.approx(3 * 0.9 * 0.4)


def test_plan_facts_count_load_balancers_keys_and_endpoints(dev):
    plan_doc = {"resources": [
        {"type": "kubernetes:core/v1:Service", "inputs": {"spec": {"type": "LoadBalancer"}}},
        {"type": "kubernetes:core/v1:Service", "inputs": {"spec": {"type": "ClusterIP"}}},
        {"type": "kubernetes:networking.k8s.io/v1:Ingress", "inputs": {}},
        {"type": "kubernetes:helm.sh/v3:Release", "inputs": {"values": {"service": {"type": "LoadBalancer"}}}},
        {"type": "kubernetes:helm.sh/v3:Release", "inputs": {"values": {"service": {"type": "ClusterIP"}}}},
        {"type": "aws:kms/key:Key", "inputs": {}},
        {"type": "aws:ec2/vpcEndpoint:VpcEndpoint", "inputs": {"vpcEndpointType": "Gateway"}},
        {"type": "aws:ec2/vpcEndpoint:VpcEndpoint", "inputs": {"vpcEndpointType": "Interface", "subnetIds": ["a", "b"]}},
    ]}

    facts = cost.facts_from_plan(plan_doc)
    est = cost.estimate(dev, plan_facts=facts)

    assert facts == cost.PlanFacts(load_balancers=3, kms_keys=1, interface_endpoint_zones=2)
    assert est.item("Load balancers").idle_hourly == pytest.approx(3 * LB)
    assert "counted in the plan" in est.item("Load balancers").detail
    assert est.item("KMS keys").idle_hourly == pytest.approx(1.0 / HOURS)
    assert est.item("VPC interface endpoints").idle_hourly == pytest.approx(2 * 0.01)


def test_plan_prints_the_estimate_as_a_section(dev):
    from platformctl import plan as plan_command

    assert cost.PLAN_SECTION_TITLE in [title for title, _ in plan_command.sections()]
    out = io.StringIO()
    text, code = cost.plan_section(None, dev, {"resources": []}, Console(file=out, width=240), False)

    assert code == 0
    assert "Estimated cost (us-west-2)" in text and "Estimated cost (us-west-2)" in out.getvalue()
    assert "0 x $0.0225/h (counted in the plan" in text


def test_plan_facts_count_persistent_volumes_and_databases():
    plan_doc = {"resources": [
        {"type": "kubernetes:core/v1:PersistentVolumeClaim", "name": "data",
         "inputs": {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}},
        {"type": "kubernetes:core/v1:PersistentVolumeClaim", "name": "later",
         "inputs": {"spec": {"resources": {"requests": {"storage": "<computed>"}}}}},
        {"type": "kubernetes:helm.sh/v3:Release", "name": "monitoring", "inputs": {"values": {
            "prometheus": {"prometheusSpec": {"storageSpec": {"volumeClaimTemplate": {
                "spec": {"resources": {"requests": {"storage": "1Ti"}}}}}}},
            "grafana": {"persistence": {"enabled": True, "size": "512Mi"}},
            "loki": {"persistence": {"enabled": False, "size": "100Gi"}},
        }}},
        {"type": "aws:rds/instance:Instance", "name": "db", "inputs": {
            "instanceClass": "db.t4g.large", "multiAz": True, "allocatedStorage": 50.0,
            "maxAllocatedStorage": 200.0, "storageType": "gp3"}},
    ]}

    facts = cost.facts_from_plan(plan_doc)

    assert facts.persistent_volume_gib == pytest.approx(10 + 1024 + 0.5)
    assert facts.unsized_claims == ("PersistentVolumeClaim later",)
    assert facts.databases == (cost.Database("db", "db.t4g.large", True, 50.0, 200.0, "gp3"),)
    assert cost.quantity_gib("20G") == pytest.approx(20e9 / 2**30) and cost.quantity_gib("lots") is None


def test_prod_plan_prices_its_claimed_volumes_and_its_multi_az_database(prod):
    from tests.harness import plan

    est = cost.estimate(prod, plan_facts=cost.facts_from_plan(plan("prod").to_json()))

    # Prometheus 200Gi + Alertmanager 5Gi (chart claim templates) + the OpenWebUI data PVC 50Gi
    assert est.item("Persistent volumes").idle_hourly == pytest.approx(255 * GP3 / HOURS)
    # db.t4g.large Multi-AZ: instance and storage billed twice; storage may autoscale 50 -> 200 GiB
    db = est.item("Database openwebui-db")
    assert db.idle_hourly == pytest.approx(2 * 0.129 + 2 * 50 * 0.115 / HOURS)
    assert db.peak_hourly == pytest.approx(2 * 0.129 + 2 * 200 * 0.115 / HOURS)
    # preflight has no plan: the same database comes from the config
    assert cost.estimate(prod).item("Database openwebui-db") == db
    assert est.idle_hourly == pytest.approx(sum(i.idle_hourly for i in est.items))


def test_database_class_outside_the_table_is_named_and_left_out(prod):
    facts = cost.PlanFacts(databases=(cost.Database("db", "db.x2iedn.32xlarge", False, 20, 20),))
    est = cost.estimate(prod, plan_facts=facts)

    assert not est.item("Database db").priced and not est.complete
    assert "Database db: no price for db.x2iedn.32xlarge in the table; not in the totals" in est.notes


# --- ElastiCache (OpenWebUI with more than one replica) -------------------------------------------

VALKEY_T4G_MICRO = 0.0128  # table, us-east-1 (prod's region)


def _prod_values_with_replicas(replicas: int, redis: dict | None = None) -> dict:
    from tests.harness import stack_values

    ui = stack_values("prod")["openWebUi"]
    ui["replicas"] = replicas
    if redis is not None:
        ui["persistence"] = {**ui["persistence"], "redis": redis}
    return ui


def _config_with(prod, ui_values: dict):
    return prod.model_copy(update={"openWebUi": type(prod.openWebUi).model_validate(ui_values)})


def test_prod_plan_with_two_replicas_prices_each_elasticache_node(prod):
    from tests.harness import plan_with

    ui = _prod_values_with_replicas(2, {"nodeType": "cache.t4g.micro", "nodes": 2})
    est = cost.estimate(prod, plan_facts=cost.facts_from_plan(plan_with("prod", openWebUi=ui).to_json()))

    cache = est.item("ElastiCache openwebui-redis")
    # a primary and one replica, each billed the node price, whatever the load
    assert cache.idle_hourly == cache.peak_hourly == pytest.approx(2 * VALKEY_T4G_MICRO)
    assert cache.detail.startswith("2 x Valkey cache.t4g.micro (primary + 1 replica(s)), $0.0128/h each")
    assert "ElastiCache openwebui-redis" in rendered(est) and est.complete
    assert any(n.startswith("ElastiCache openwebui-redis: the table's ElastiCache node prices are written from memory")
               for n in est.notes)
    # preflight has no plan: the same line comes from the config
    assert cost.estimate(_config_with(prod, ui)).item("ElastiCache openwebui-redis") == cache


def test_single_replica_has_no_openwebui_elasticache_line_but_the_gateways(prod):
    """OpenWebUI with one replica has no Valkey; prod's gateway (2 replicas, gateway.redis, 2 nodes)
    has one, priced alike from the plan and, for preflight, from the config."""
    from tests.harness import plan

    assert prod.openWebUi.replicas == 1 and prod.gateway.redis.enabled
    for est in (cost.estimate(prod, plan_facts=cost.facts_from_plan(plan("prod").to_json())), cost.estimate(prod)):
        assert [i.name for i in est.items if i.name.startswith("ElastiCache")] == ["ElastiCache inference-gateway-redis"]
        assert est.item("ElastiCache inference-gateway-redis").idle_hourly == pytest.approx(2 * VALKEY_T4G_MICRO)


def test_elasticache_node_type_outside_the_table_is_named_and_left_out(prod):
    est = cost.estimate(_config_with(prod, _prod_values_with_replicas(3, {"nodeType": "cache.x2gd.large", "nodes": 3})))

    cache = est.item("ElastiCache openwebui-redis")
    assert not cache.priced and cache.idle_hourly == 0 and not est.complete
    assert "ElastiCache openwebui-redis: no price for Valkey cache.x2gd.large; not in the totals (use --live-prices)" in est.notes


def test_elasticache_table_covers_the_default_node_type_in_every_region():
    from stack_config.openwebui import RedisConfig

    default = RedisConfig().nodeType
    pattern = RedisConfig.model_fields["nodeType"].metadata[0].pattern
    for region in load_table().region_names():
        nodes = load_table().region(region)["elasticacheValkeyNodes"]
        assert default in nodes, region
        for name, price in nodes.items():
            assert re.fullmatch(pattern, name) and 0 < price < 10, f"{region}: {name} {price}"


def _cache_product(usd: str) -> str:
    return json.dumps({
        "product": {"productFamily": "Cache Instance", "attributes": {"instanceType": "cache.t4g.micro", "cacheEngine": "Valkey"}},
        "terms": {"OnDemand": {"SKU.A": {"priceDimensions": {
            "SKU.A.RI": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0000000000"}},  # "reserved instance applied"
            "SKU.A.OD": {"unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}},
    })


def _live_estimate_with_cache(prod, cache_response):
    """prod with two replicas under LivePrices: every EC2 lookup answers the table's price back
    unchecked; the ElastiCache lookup must ask AmazonElastiCache for Valkey nodes of prod's region."""
    config = _config_with(prod, _prod_values_with_replicas(2))
    instance_types = {t for g in [config.cluster.systemNodeGroup, *config.gpuNodeGroups] for t in g.instanceTypes}
    client, stub = _pricing_stub()
    for _ in instance_types:
        stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [_product("1.0")]})
    expected = {"ServiceCode": "AmazonElastiCache", "FormatVersion": "aws_v1", "MaxResults": 10,
                "Filters": cost.cache_pricing_filters(config.region, "cache.t4g.micro", "valkey")}
    cache_response(stub, expected)
    stub.activate()
    est = cost.estimate(config, prices=LivePrices(config.region, client))
    stub.assert_no_pending_responses()
    return est


def test_live_prices_ask_the_pricing_api_for_elasticache_nodes(prod):
    est = _live_estimate_with_cache(prod, lambda stub, expected: stub.add_response(
        "get_products", {"FormatVersion": "aws_v1", "PriceList": [_cache_product("0.0150000000")]}, expected))

    cache = est.item("ElastiCache openwebui-redis")
    assert cache.idle_hourly == pytest.approx(0.015)  # the live price, not the zero "reserved" dimension
    assert "(live, Pricing API in us-east-1)" in cache.detail
    assert {"Type": "TERM_MATCH", "Field": "cacheEngine", "Value": "Valkey"} in cost.cache_pricing_filters("us-east-1", "cache.t4g.micro", "valkey")


def test_live_elasticache_price_failure_falls_back_to_the_table_and_says_so(prod):
    est = _live_estimate_with_cache(prod, lambda stub, expected: stub.add_client_error(
        "get_products", service_error_code="AccessDeniedException", expected_params=expected))

    cache = est.item("ElastiCache openwebui-redis")
    assert cache.idle_hourly == pytest.approx(VALKEY_T4G_MICRO)
    assert "(table, unchecked)" in cache.detail
    assert ("live price of ElastiCache cache.t4g.micro: permission denied (AccessDeniedException): needs "
            "pricing:GetProducts; table price used") in est.notes
