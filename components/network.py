"""VPC with public and private subnets per zone, NAT, and the tags EKS load balancers look for."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.karpenter_manifests import DISCOVERY_TAG


@dataclass(frozen=True)
class NetworkArgs:
    cluster_name: str
    region: str
    vpc_cidr: str
    availability_zones: list[str]
    nat_gateways: str  # "single" | "perAz"
    existing_vpc_id: Optional[str] = None
    existing_public_subnet_ids: tuple[str, ...] = ()
    existing_private_subnet_ids: tuple[str, ...] = ()
    # gpuProvisioner karpenter: private subnets carry `karpenter.sh/discovery: <cluster>` (the
    # EC2NodeClasses select them by it). Off, nothing about the subnets changes.
    karpenter_discovery: bool = False


def subnet_cidrs(vpc_cidr: str, zone_count: int) -> tuple[list[str], list[str]]:
    """(public, private) CIDRs: private subnets get an eighth of the VPC each (pods take VPC IPs
    with the VPC CNI); the last eighth is split into small public subnets for load balancers/NAT."""
    eighths = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=3))
    private = [str(n) for n in eighths[:zone_count]]
    public = [str(n) for n in list(eighths[-1].subnets(prefixlen_diff=3))[:zone_count]]
    return public, private


def cluster_tag(args: NetworkArgs) -> dict[str, str]:
    return {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}


def private_subnet_tags(args: NetworkArgs) -> dict[str, str]:
    """Tags private subnets carry beside their name (a tag change updates a subnet in place)."""
    discovery = {DISCOVERY_TAG: args.cluster_name} if args.karpenter_discovery else {}
    return {"kubernetes.io/role/internal-elb": "1", **cluster_tag(args), **discovery}


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("ai-platform:network:Network", name, None, opts)
        if args.existing_vpc_id:
            self._tag_brought_subnets(name, args)
            self.register_outputs({"vpcId": self.vpc_id})
            return
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{args.cluster_name}-vpc"},
            opts=child,
        )
        public_subnets, nat_ids = self._public_subnets(name, args, vpc)
        private_subnets, private_route_table_ids = self._private_subnets(name, args, vpc, nat_ids)
        # S3 traffic (model downloads) stays off the NAT gateways: cheaper and faster.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=private_route_table_ids,
            tags={"Name": f"{args.cluster_name}-s3"},
            opts=child,
        )
        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.register_outputs({
            "vpcId": self.vpc_id,
            "publicSubnetIds": self.public_subnet_ids,
            "privateSubnetIds": self.private_subnet_ids,
        })

    def _tag_brought_subnets(self, name: str, args: NetworkArgs) -> None:
        """Brought subnets still need the load-balancer discovery tags; tag them without owning them."""
        self.vpc_id = pulumi.Output.from_input(args.existing_vpc_id)
        self.public_subnet_ids = pulumi.Output.from_input(list(args.existing_public_subnet_ids))
        self.private_subnet_ids = pulumi.Output.from_input(list(args.existing_private_subnet_ids))
        for role, subnet_ids in (("elb", args.existing_public_subnet_ids), ("internal-elb", args.existing_private_subnet_ids)):
            for subnet_id in subnet_ids:
                for key, value in {f"kubernetes.io/role/{role}": "1", **cluster_tag(args)}.items():
                    aws.ec2.Tag(f"{name}-{subnet_id}-{key.rsplit('/', 1)[-1]}", resource_id=subnet_id, key=key, value=value,
                                opts=pulumi.ResourceOptions(parent=self))
        if args.karpenter_discovery:
            for subnet_id in args.existing_private_subnet_ids:
                aws.ec2.Tag(f"{name}-{subnet_id}-karpenter-discovery", resource_id=subnet_id, key=DISCOVERY_TAG,
                            value=args.cluster_name, opts=pulumi.ResourceOptions(parent=self))

    def _public_subnets(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> tuple[list[aws.ec2.Subnet], list[pulumi.Output[str]]]:
        """A public subnet per zone (the ALB, the NAT gateways) routed to the internet gateway; the NAT gateway IDs."""
        child = pulumi.ResourceOptions(parent=self)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{args.cluster_name}-igw"}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{args.cluster_name}-public"},
            opts=child,
        )
        public_cidrs = subnet_cidrs(args.vpc_cidr, len(args.availability_zones))[0]
        public_subnets, nat_ids = [], []
        for index, zone in enumerate(args.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=public_cidrs[index],
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.cluster_name}-public-{zone}", "kubernetes.io/role/elb": "1", **cluster_tag(args)},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id, opts=child)
            public_subnets.append(public)
            if args.nat_gateways == "perAz" or index == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags={"Name": f"{args.cluster_name}-nat-{zone}"}, opts=child)
                nat = aws.ec2.NatGateway(
                    f"{name}-nat-{zone}",
                    allocation_id=eip.id,
                    subnet_id=public.id,
                    tags={"Name": f"{args.cluster_name}-nat-{zone}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
                nat_ids.append(nat.id)
        return public_subnets, nat_ids

    def _private_subnets(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc,
                         nat_ids: list[pulumi.Output[str]]) -> tuple[list[aws.ec2.Subnet], list[pulumi.Output[str]]]:
        """A private subnet per zone (nodes, pods) egressing through a NAT gateway; their route table IDs."""
        child = pulumi.ResourceOptions(parent=self)
        private_cidrs = subnet_cidrs(args.vpc_cidr, len(args.availability_zones))[1]
        private_subnets, route_table_ids = [], []
        for index, zone in enumerate(args.availability_zones):
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=private_cidrs[index],
                tags={"Name": f"{args.cluster_name}-private-{zone}", **private_subnet_tags(args)},
                opts=child,
            )
            route_table = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                # With a single NAT gateway every zone egresses through it (cheaper, not zone-redundant).
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat_ids[min(index, len(nat_ids) - 1)])],
                tags={"Name": f"{args.cluster_name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=private.id, route_table_id=route_table.id, opts=child)
            private_subnets.append(private)
            route_table_ids.append(route_table.id)
        return private_subnets, route_table_ids
