"""Prices for the cost estimate: a small dated table shipped in the repo, or the AWS Pricing API.

The table (`prices.json`) holds on-demand list prices for the regions and instance types this
platform is usually deployed with. It is dated, and the date is printed with every estimate,
because list prices move. `--live-prices` asks the Pricing API for the instance types instead;
the fixed rates (EKS control plane, NAT, EBS, load balancers, RDS) always come from the table,
since they are the same in every covered region and rarely change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

TABLE_PATH = Path(__file__).with_name("prices.json")

# The Pricing API is served from a few regions only; us-east-1 answers for every region's prices.
PRICING_API_REGION = "us-east-1"


class PricesUnavailable(Exception):
    """No price source covers what was asked; the message says what to do instead."""


@dataclass(frozen=True)
class FixedRates:
    eks_control_plane_hour: float
    eks_extended_support_hour: float
    nat_gateway_hour: float
    public_ipv4_hour: float
    gp3_gb_month: float
    load_balancer_hour: float
    kms_key_month: float
    interface_endpoint_hour: float  # per endpoint and zone
    rds_gp3_gb_month: float  # Single-AZ; Multi-AZ bills it twice
    rds_instance_hours: dict[str, float] = field(default_factory=dict)  # PostgreSQL, Single-AZ

    def database_hour(self, instance_class: str, multi_az: bool) -> float | None:
        """$/hour of an RDS PostgreSQL instance (a Multi-AZ standby doubles it), None if not in the table."""
        hourly = self.rds_instance_hours.get(instance_class)
        return None if hourly is None else hourly * (2 if multi_az else 1)


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    source: str
    hours_per_month: int
    regions: dict[str, dict[str, Any]]

    def region_names(self) -> list[str]:
        return sorted(self.regions)

    def region(self, name: str) -> dict[str, Any]:
        entry = self.regions.get(name)
        if entry is None:
            raise PricesUnavailable(
                f"the price table ({self.as_of}) has no prices for {name} "
                f"(it covers {', '.join(self.region_names())}); run with --live-prices"
            )
        seen = {name}
        while "sameAs" in entry:
            name = entry["sameAs"]
            if name in seen or name not in self.regions:
                raise PricesUnavailable(f"price table: region entry sameAs {name!r} does not resolve")
            seen.add(name)
            entry = self.regions[name]
        return entry


@lru_cache(maxsize=4)
def load_table(path: Path = TABLE_PATH) -> PriceTable:
    doc = json.loads(path.read_text())
    return PriceTable(
        as_of=doc["asOf"],
        source=doc["source"],
        hours_per_month=int(doc["hoursPerMonth"]),
        regions=doc["regions"],
    )


class PriceBook(Protocol):
    region: str
    rates: FixedRates
    hours_per_month: int

    def instance_hour(self, instance_type: str) -> float | None:
        """On-demand $/hour, or None when this source has no price for the type."""

    def describe(self) -> str:
        """One line naming where the prices come from and how old they are."""

    def notes(self) -> list[str]:
        """Anything the reader should know about these prices (fallbacks, gaps)."""


def _rates(entry: dict[str, Any]) -> FixedRates:
    return FixedRates(
        eks_control_plane_hour=float(entry["eksControlPlaneHour"]),
        eks_extended_support_hour=float(entry["eksExtendedSupportHour"]),
        nat_gateway_hour=float(entry["natGatewayHour"]),
        public_ipv4_hour=float(entry["publicIpv4Hour"]),
        gp3_gb_month=float(entry["gp3GbMonth"]),
        load_balancer_hour=float(entry["loadBalancerHour"]),
        kms_key_month=float(entry["kmsKeyMonth"]),
        interface_endpoint_hour=float(entry["interfaceEndpointHour"]),
        rds_gp3_gb_month=float(entry["rdsGp3GbMonth"]),
        rds_instance_hours={k: float(v) for k, v in entry["rdsPostgresInstances"].items()},
    )


@dataclass
class TablePrices:
    """Prices of one region from the dated table in the repo."""

    region: str
    table: PriceTable = field(default_factory=load_table)

    def __post_init__(self):
        entry = self.table.region(self.region)
        self.rates = _rates(entry)
        self._instances: dict[str, float] = {k: float(v) for k, v in entry["instances"].items()}
        self.hours_per_month = self.table.hours_per_month

    def instance_hour(self, instance_type: str) -> float | None:
        return self._instances.get(instance_type)

    def describe(self) -> str:
        return f"price table dated {self.table.as_of} ({self.table.source}), region {self.region}"

    def notes(self) -> list[str]:
        return []


@dataclass
class LivePrices:
    """Instance prices from the AWS Pricing API; fixed rates from the table.

    A price the API cannot give (no product, API error) falls back to the table and is named in
    `notes()`, so an estimate never silently mixes sources.
    """

    region: str
    pricing_client: Any
    table: PriceTable = field(default_factory=load_table)

    def __post_init__(self):
        self._notes: list[str] = []
        try:
            entry = self.table.region(self.region)
            self._fallback: TablePrices | None = TablePrices(self.region, self.table)
        except PricesUnavailable:
            # EKS and the other fixed rates differ by a few percent at most between commercial
            # regions; us-east-1's are a fair stand-in and the note says so.
            entry = self.table.region("us-east-1")
            self._fallback = None
            self._notes.append(
                f"fixed rates (EKS, NAT, EBS, load balancer) are us-east-1's: the table has no {self.region}"
            )
        self.rates = _rates(entry)
        self.hours_per_month = self.table.hours_per_month
        self._cache: dict[str, float | None] = {}

    def instance_hour(self, instance_type: str) -> float | None:
        if instance_type not in self._cache:
            self._cache[instance_type] = self._lookup(instance_type)
        return self._cache[instance_type]

    def _lookup(self, instance_type: str) -> float | None:
        from .aws_errors import explain_error  # here, not at the top: the offline plan needs no botocore

        try:
            price = live_instance_hour(self.pricing_client, self.region, instance_type)
        except Exception as exc:  # noqa: BLE001 - every API failure becomes a note, never a traceback
            reason = explain_error(exc, "pricing:GetProducts")
            price = None
        else:
            if price is not None:
                return price
            reason = "no on-demand Linux product found"
        fallback = self._fallback.instance_hour(instance_type) if self._fallback else None
        where = f"table price ({self.table.as_of}) used" if fallback is not None else "left unpriced"
        self._notes.append(f"live price of {instance_type}: {reason}; {where}")
        return fallback

    def describe(self) -> str:
        return f"AWS Pricing API (live) for instances, table dated {self.table.as_of} for fixed rates, region {self.region}"

    def notes(self) -> list[str]:
        return list(self._notes)


def pricing_filters(region: str, instance_type: str) -> list[dict[str, str]]:
    """Filters that narrow AmazonEC2 products to the one plain on-demand Linux price of a type."""
    fields = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def live_instance_hour(pricing_client: Any, region: str, instance_type: str) -> float | None:
    """On-demand $/hour of an instance type from the Pricing API; None when no product matches."""
    response = pricing_client.get_products(
        ServiceCode="AmazonEC2",
        Filters=pricing_filters(region, instance_type),
        FormatVersion="aws_v1",
        MaxResults=10,
    )
    return on_demand_hourly(response)


def on_demand_hourly(response: dict) -> float | None:
    """The hourly on-demand USD price in a Pricing API `get_products` answer. $0 dimensions (e.g.
    "reserved instance applied") are skipped; several matches would be odd variants of the same
    product, and the lowest is the plain one."""
    prices = []
    for raw in response.get("PriceList", []):
        product = json.loads(raw) if isinstance(raw, str) else raw
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", "0") or 0)
                if usd > 0 and dimension.get("unit", "Hrs") in ("Hrs", "Hours"):
                    prices.append(usd)
    return min(prices) if prices else None
