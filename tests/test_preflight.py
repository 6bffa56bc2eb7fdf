"""`platformctl preflight` against moto's EC2 (zone offerings and instance facts per region) and
botocore Stubbers for what moto lacks: EC2 Service Quotas, EKS cluster versions and the SSM
public AMI parameters (moto refuses to store names under /aws/service/)."""

from __future__ import annotations

import io
import shutil
import socket
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws
from rich.console import Console

import stack_config
from platformctl import preflight as pf
from platformctl.cli import main

PROJECT = stack_config.PROJECT_DIR
AL2023_X86 = "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/recommended/image_id"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    """Never reach a real account: fixed fake credentials, no profile, no endpoint override."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    # preflight reads AMIs from SSM (stubbed), never EC2 images: skip moto's default AMI catalogue,
    # which it otherwise builds for every region backend (moto 5.2.5, moto/settings.py ec2_load_default_amis).
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def moto():
    with mock_aws():
        yield


NO_BUILDS: list = []  # dev without its TensorRT build, for checks about pool shapes


def write_stack(directory: Path, base: str = "dev", name: str = "t", **overrides) -> Path:
    """A project dir with Pulumi.yaml and Pulumi.<name>.yaml = the base stack with `overrides`
    (object keys are merged one level deep, lists replaced)."""
    shutil.copy(PROJECT / "Pulumi.yaml", directory / "Pulumi.yaml")
    doc = yaml.safe_load((PROJECT / f"Pulumi.{base}.yaml").read_text())
    for key, value in overrides.items():
        full = key if ":" in key else f"ai-platform:{key}"
        current = doc["config"].get(full)
        doc["config"][full] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    (directory / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))
    for build in doc["config"].get("ai-platform:modelBuilds") or []:
        if build.get("sourceFile"):  # as `make examples` writes it
            (directory / build["sourceFile"]).parent.mkdir(parents=True, exist_ok=True)
            (directory / build["sourceFile"]).write_bytes(b"onnx")
    return directory


def pool(name="inference", types=("g6.xlarge",), capacity="SPOT", minimum=0, desired=0, maximum=2, ami="AL2023_x86_64_NVIDIA"):
    return {"name": name, "instanceTypes": list(types), "capacityType": capacity, "minSize": minimum,
            "desiredSize": desired, "maxSize": maximum, "amiType": ami}


class FakeAws:
    """Stubbed Service Quotas / EKS / SSM clients; EC2 and STS come from moto."""

    def __init__(self, region: str):
        self.region = region
        self.stubs: dict[str, Stubber] = {}
        self.overrides = {}
        for service in ("service-quotas", "eks", "ssm"):
            client = boto3.client(service, region_name=region)
            self.overrides[service] = client
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()

    def quota(self, code: str, value: float | None = None, error: str | None = None):
        params = {"ServiceCode": "ec2", "QuotaCode": code}
        if error:
            self.stubs["service-quotas"].add_client_error("get_service_quota", service_error_code=error, expected_params=params)
        else:
            self.stubs["service-quotas"].add_response(
                "get_service_quota", {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}}, params)
        return self

    def eks_version(self, version="1.33", status: str | None = "STANDARD_SUPPORT", error: str | None = None):
        params = {"clusterVersions": [version], "includeAll": True}
        if error:
            self.stubs["eks"].add_client_error("describe_cluster_versions", service_error_code=error, expected_params=params)
        else:
            versions = [{"clusterVersion": version, "versionStatus": status}] if status else []
            self.stubs["eks"].add_response("describe_cluster_versions", {"clusterVersions": versions}, params)
        return self

    def ami(self, name: str = AL2023_X86, value: str = "ami-0123456789abcdef0", error: str | None = None):
        if error:
            self.stubs["ssm"].add_client_error("get_parameter", service_error_code=error, expected_params={"Name": name})
        else:
            self.stubs["ssm"].add_response(
                "get_parameter", {"Parameter": {"Name": name, "Type": "String", "Value": value}}, {"Name": name})
        return self

    def clients(self) -> pf.AwsClients:
        return pf.AwsClients(self.region, overrides=self.overrides)

    def verify(self):
        """Every stubbed answer was asked for, with exactly the expected parameters."""
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def run(project: Path, fake: FakeAws | None, stack="t", **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = pf.preflight(
        stack, project_dir=project, clients=fake.clients() if fake else kwargs.pop("clients", None),
        console=Console(file=out, width=1000, color_system=None),
        err_console=Console(file=err, width=1000, color_system=None), **kwargs,
    )
    return code, out.getvalue(), err.getvalue()


def checks(project: Path, fake: FakeAws, stack="t", region: str | None = None) -> pf.Report:
    config = stack_config.load_from_files(stack, project)
    if region:
        config = pf.retarget(config, region)
    return pf.run_checks(config, fake.clients(), project_dir=project)


# --- a stack that fits ----------------------------------------------------------------------

def test_dev_stack_that_fits_passes_every_check(moto, tmp_path):
    write_stack(tmp_path)  # dev as shipped: us-west-2a/b, SPOT [g6.xlarge, g5.xlarge] 0..3
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()

    code, out, err = run(tmp_path, fake)

    assert code == 0, out + err
    fake.verify()  # the G *spot* and standard *spot* quotas (system pool on SPOT) were asked, nothing else
    assert "preflight: 11 ok, 0 warn, 0 fail" in out
    assert "needs 0 vCPUs at desired, 12 at max (inference: 0/3 nodes x 4 vCPUs); quota L-3819A6DF is 16" in out
    # dev's build source is its sourceFile, uploaded by `pulumi up` itself: no bucket needed before
    assert "`pulumi up` uploads it to s3://ai-platform-t-models-us-west-2/sources/text-orientation/model.onnx" in out
    assert "ami-0123456789abcdef0 for Kubernetes 1.33 (inference)" in out
    assert "Estimated cost (us-west-2)" in out and "Traceback" not in out + err


def test_instance_facts_come_from_ec2_and_size_the_quota_need(moto, tmp_path):
    write_stack(tmp_path, base="prod")  # inference g6e.xlarge 2/6, llm g6e.12xlarge 1/2, system m6i.xlarge 3/6
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 512).quota("L-1216C47A", 512).eks_version().ami()

    report = checks(tmp_path, fake)

    facts = report.by_name("instance types")
    assert facts.status == "ok"
    assert "g6e.12xlarge: 48 vCPUs, 4x NVIDIA L40S" in facts.detail
    assert "g6e.xlarge: 4 vCPUs, 1x NVIDIA L40S" in facts.detail
    quota = report.by_name("quota G on-demand")
    assert quota.status == "ok"
    assert quota.detail.startswith("needs 56 vCPUs at desired, 120 at max (inference: 2/6 nodes x 4 vCPUs; llm: 1/2 nodes x 48 vCPUs)")
    assert "needs 12 vCPUs at desired, 24 at max" in report.by_name("quota Standard on-demand").detail
    fake.verify()


# --- zone offerings -------------------------------------------------------------------------

def test_zone_without_the_type_fails_and_suggests_types_and_zones(moto, tmp_path):
    # moto (like us-west-2 today) has g5.xlarge in a, b, c but not d; g6.xlarge is in all four.
    write_stack(tmp_path, network={"availabilityZones": ["us-west-2a", "us-west-2d"]},
                gpuNodeGroups=[pool(types=["g5.xlarge"])], modelBuilds=NO_BUILDS)
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()

    code, out, _ = run(tmp_path, fake)
    offerings = checks(tmp_path, FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640)
                       .eks_version().ami()).by_name("offerings: inference")

    assert code == 1
    assert offerings.status == "fail"
    assert offerings.detail == "g5.xlarge not offered in us-west-2d: the pool cannot launch nodes in us-west-2d"
    assert "ai-platform:gpuNodeGroups[0].instanceTypes: use g6.xlarge (1x L4 24 GiB)" in offerings.fix
    assert "ai-platform:network.availabilityZones: pick from us-west-2a, us-west-2b, us-west-2c" in offerings.fix
    row = next(line for line in out.splitlines() if "offerings: inference" in line)
    assert "│ fail " in row and "us-west-2d" in row


def test_mixed_pool_covering_every_zone_only_warns(moto, tmp_path):
    write_stack(tmp_path, network={"availabilityZones": ["us-west-2a", "us-west-2d"]},
                gpuNodeGroups=[pool(types=["g6.xlarge", "g5.xlarge"])], modelBuilds=NO_BUILDS)
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()

    report = checks(tmp_path, fake)

    offerings = report.by_name("offerings: inference")
    assert offerings.status == "warn"
    assert "g5.xlarge not offered in us-west-2d (other types of the pool cover those zones)" == offerings.detail
    assert "drop g5.xlarge" in offerings.fix
    assert report.count("fail") == 0


def test_region_without_the_type_fails_with_the_suggested_alternative(moto, tmp_path):
    # eu-west-1 offers g5.xlarge and g4dn.xlarge but no g6.xlarge (moto's data, as in AWS).
    write_stack(tmp_path, gpuNodeGroups=[pool(types=["g6.xlarge"])], modelBuilds=NO_BUILDS)
    fake = FakeAws("eu-west-1").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()

    code, out, _ = run(tmp_path, fake, region="eu-west-1")

    assert code == 1
    assert "configured for us-west-2; checking eu-west-1" in out
    report = checks(tmp_path, FakeAws("eu-west-1").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami(),
                    region="eu-west-1")
    offerings = report.by_name("offerings: inference")
    assert offerings.status == "fail"
    assert offerings.detail.startswith("g6.xlarge is not offered in eu-west-1")
    # same GPU count, at least as much GPU memory first: the A10G (24 GiB) before the T4 (16 GiB)
    assert "use g5.xlarge (1x A10G 24 GiB), g4dn.xlarge (1x T4 16 GiB)" in offerings.fix
    assert report.by_name("zones").detail == "eu-west-1a, eu-west-1b available in eu-west-1"
    # the table has no eu-west-1 prices: one clear line instead of a wrong estimate
    assert "Cost estimate: not available: the price table (2025-06-01) has no prices for eu-west-1" in out
    assert "run with --live-prices" in out


def test_unknown_zone_fails_and_lists_the_real_ones(moto, tmp_path):
    write_stack(tmp_path, network={"availabilityZones": ["us-west-2a", "us-west-2z"]})
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()

    zones = checks(tmp_path, fake).by_name("zones")

    assert zones.status == "fail"
    assert "us-west-2z not available in us-west-2" in zones.detail
    assert zones.fix == "set ai-platform:network.availabilityZones to zones from: us-west-2a, us-west-2b, us-west-2c, us-west-2d"


# --- quotas ---------------------------------------------------------------------------------

def test_insufficient_quota_fails_with_the_exact_increase(moto, tmp_path):
    write_stack(tmp_path, base="prod")
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 64).quota("L-1216C47A", 512).eks_version().ami()

    code, out, _ = run(tmp_path, fake)

    assert code == 1
    report = checks(tmp_path, FakeAws("us-east-1").quota("L-DB2E81BA", 64).quota("L-1216C47A", 512).eks_version().ami())
    quota = report.by_name("quota G on-demand")
    assert quota.status == "fail"
    assert quota.detail.endswith("quota L-DB2E81BA 'Running On-Demand G and VT instances' is 64: node groups cannot scale to max size")
    assert quota.fix == (
        "request L-DB2E81BA >= 120 vCPUs (+56): aws service-quotas request-service-quota-increase "
        "--region us-east-1 --service-code ec2 --quota-code L-DB2E81BA --desired-value 120"
    )
    assert "--quota-code L-DB2E81BA --desired-value 120" in out


def test_quota_below_desired_says_the_pools_cannot_even_start(moto, tmp_path):
    write_stack(tmp_path, base="prod")
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 32).quota("L-1216C47A", 512).eks_version().ami()

    quota = checks(tmp_path, fake).by_name("quota G on-demand")

    assert quota.status == "fail"
    assert "node groups cannot reach their desired size" in quota.detail
    assert "(+88)" in quota.fix


def test_spot_and_p_pools_use_their_own_quota_codes(moto, tmp_path):
    write_stack(tmp_path, base="prod", gpuNodeGroups=[
        pool("inference", types=["g6e.xlarge"], capacity="ON_DEMAND", minimum=2, desired=2, maximum=6),
        pool("gspot", types=["g6.xlarge"], capacity="SPOT", maximum=4),
        pool("llm", types=["p5.48xlarge"], capacity="ON_DEMAND", maximum=1),
        pool("h100spot", types=["p5.48xlarge"], capacity="SPOT", maximum=2),
    ])
    fake = (FakeAws("us-east-1")
            .quota("L-DB2E81BA", 24).quota("L-3819A6DF", 16).quota("L-417A185B", 192).quota("L-7212CCBC", 0)
            .quota("L-1216C47A", 512).eks_version().ami())

    report = checks(tmp_path, fake)

    fake.verify()  # asked in order G on-demand, G spot, P on-demand, P spot, standard
    assert report.by_name("quota G on-demand").status == "ok"
    assert report.by_name("quota G spot").status == "ok"
    assert report.by_name("quota P on-demand").status == "ok"
    p_spot = report.by_name("quota P spot")
    assert p_spot.status == "fail" and "--quota-code L-7212CCBC --desired-value 384" in p_spot.fix


def test_quota_not_visible_is_a_warning_not_a_failure(moto, tmp_path):
    write_stack(tmp_path)
    fake = FakeAws("us-west-2").quota("L-3819A6DF", error="NoSuchResourceException").quota("L-34B43A08", 640).eks_version().ami()

    code, out, err = run(tmp_path, fake)

    assert code == 0, out
    assert "quota L-3819A6DF not visible in us-west-2 (NoSuchResourceException)" in out
    assert "'All G and VT Spot Instance Requests' (L-3819A6DF) is >= 12" in out
    # The build's source is no warning on a new account: the stack uploads it (sourceFile).
    assert "preflight: 10 ok, 1 warn, 0 fail" in out

    strict = FakeAws("us-west-2").quota("L-3819A6DF", error="NoSuchResourceException").quota("L-34B43A08", 640).eks_version().ami()
    assert run(tmp_path, strict, strict=True)[0] == 1


def test_permission_denied_names_the_missing_iam_action(moto, tmp_path):
    write_stack(tmp_path)
    fake = (FakeAws("us-west-2").quota("L-3819A6DF", error="AccessDeniedException").quota("L-34B43A08", error="AccessDeniedException")
            .eks_version(error="AccessDeniedException").ami(error="AccessDeniedException"))

    report = checks(tmp_path, fake)

    assert report.count("fail") == 0
    assert "permission denied (AccessDeniedException): needs servicequotas:GetServiceQuota" in report.by_name("quota G spot").detail
    assert report.by_name("EKS 1.33").detail == "not checked: permission denied (AccessDeniedException): needs eks:DescribeClusterVersions"
    assert "needs ssm:GetParameter" in report.by_name("AMI AL2023_x86_64_NVIDIA").detail


def test_ec2_denied_falls_back_to_the_local_table_for_vcpus(tmp_path):
    write_stack(tmp_path)
    ec2 = boto3.client("ec2", region_name="us-west-2")
    ec2_stub = Stubber(ec2)
    for method in ("describe_availability_zones", "describe_instance_type_offerings", "describe_instance_types"):
        ec2_stub.add_client_error(method, service_error_code="UnauthorizedOperation", http_status_code=403)
    ec2_stub.activate()
    sts = boto3.client("sts", region_name="us-west-2")
    sts_stub = Stubber(sts)
    sts_stub.add_response("get_caller_identity", {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/ops", "UserId": "X"})
    sts_stub.activate()
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 12).eks_version().ami()
    fake.overrides.update({"ec2": ec2, "sts": sts})

    report = checks(tmp_path, fake)

    assert report.by_name("zones").detail == "not checked: permission denied (UnauthorizedOperation): needs ec2:DescribeAvailabilityZones"
    assert report.by_name("offerings").status == "warn"
    assert "quota figures use the local table" in report.by_name("instance types").detail
    assert report.by_name("quota G spot").status == "ok"  # 12 vCPUs from the local table (3 x g6.xlarge)
    assert report.by_name("quota (other)").detail == "no vCPU quota bucket known for m5.large, m6a.large, m6i.large, m7i.large; not checked"
    fake.verify()


# --- EKS version and AMI --------------------------------------------------------------------

def test_missing_nvidia_ami_fails_and_extended_support_warns_with_its_price(moto, tmp_path):
    write_stack(tmp_path)
    fake = (FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640)
            .eks_version(status="EXTENDED_SUPPORT").ami(error="ParameterNotFound"))

    code, out, _ = run(tmp_path, fake)

    assert code == 1
    assert f"no AL2023_x86_64_NVIDIA AMI for Kubernetes 1.33 in us-west-2 ({AL2023_X86} not found); used by inference" in out
    assert "offered in us-west-2 in extended support" in out
    assert "Kubernetes 1.33, extended support" in out and "$0.6000" in out  # the estimate bills it


def test_version_eks_does_not_offer_fails(moto, tmp_path):
    write_stack(tmp_path)
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version(status=None).ami()

    check = checks(tmp_path, fake).by_name("EKS 1.33")

    assert check.status == "fail"
    assert check.detail == "EKS does not offer Kubernetes 1.33 in us-west-2"


def test_each_ami_type_is_looked_up_at_its_own_parameter(moto, tmp_path):
    write_stack(tmp_path, gpuNodeGroups=[
        pool("inference", types=["g6.xlarge"]),
        pool("arm", types=["g5g.xlarge"], ami="BOTTLEROCKET_ARM_64_NVIDIA"),
    ], modelBuilds=NO_BUILDS)
    fake = (FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version()
            .ami().ami("/aws/service/bottlerocket/aws-k8s-1.33-nvidia/arm64/latest/image_id", "ami-0bbbbbbbbbbbbbbbb"))

    report = checks(tmp_path, fake)

    fake.verify()
    assert report.by_name("AMI BOTTLEROCKET_ARM_64_NVIDIA").detail == "ami-0bbbbbbbbbbbbbbbb for Kubernetes 1.33 (arm)"


# --- cannot answer: warnings, never a traceback ---------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_api_gives_warnings_and_the_offline_quota_need(tmp_path):
    write_stack(tmp_path)
    clients = pf.AwsClients("us-west-2", endpoint_url=f"http://127.0.0.1:{_closed_port()}")

    code, out, err = run(tmp_path, None, clients=clients, live_prices=True)

    assert code == 0, out + err
    assert "AWS API not reachable" in out
    assert "check network access to the AWS API" in out and "configure AWS credentials" not in out
    assert "Live prices skipped (AWS API not reachable" in out  # no minute of pricing timeouts
    assert "needs 0 vCPUs at desired, 12 at max; not checked" in out
    assert "make sure 'All G and VT Spot Instance Requests' (L-3819A6DF) is >= 12 in us-west-2" in out
    assert "Estimated cost (us-west-2)" in out  # the estimate needs no AWS
    assert "Traceback" not in out + err


def test_cli_honours_aws_endpoint_url_and_rejects_bad_input_cleanly(capsys, monkeypatch):
    """`platformctl preflight` through the CLI's `main` (in this process: the fake credentials above,
    no profile, and every AWS call sent to AWS_ENDPOINT_URL, a closed port)."""
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.chdir(PROJECT)

    def cli(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["preflight", *args])  # any other exception fails the test, as a traceback would
        except SystemExit as exit_:  # argparse rejecting an argument
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = cli("--stack", "dev")
    assert code == 0, err
    assert "AWS API not reachable" in out and "Traceback" not in err

    code, _, err = cli("--stack", "nope")
    assert code == 2
    assert "Pulumi.nope.yaml: no such stack file" in err and "Traceback" not in err

    code, _, err = cli("--stack", "dev", "--spot-discount", "1.5")
    assert code == 2 and "must be in [0, 1)" in err


def test_invalid_stack_config_exits_2_with_the_config_message(tmp_path):
    write_stack(tmp_path, gpuNodeGroups=[pool(types=["inf2.xlarge"])])

    code, out, err = run(tmp_path, FakeAws("us-west-2"))

    assert code == 2 and out == ""
    assert "ai-platform:gpuNodeGroups[0].instanceTypes[0]: inf2.xlarge has no NVIDIA GPU (AWS Inferentia2)" in err


def test_preflight_prices_what_the_plan_counts():
    """preflight and plan print the same estimate: both count volumes, load balancers, KMS keys
    and databases from the offline plan."""
    import io

    from rich.console import Console

    from platformctl import cost, preflight as preflight_module
    from tests.harness import plan

    facts = preflight_module._plan_facts("dev", stack_config.PROJECT_DIR, Console(file=io.StringIO()))
    assert facts is not None and facts == cost.facts_from_plan(plan("dev").to_json())
    assert facts.persistent_volume_gib > 0


# --- who can reach the API (issue 12, finding 2) ---------------------------------------------

def test_the_committed_prod_placeholder_fails_preflight_even_without_aws(tmp_path):
    """prod ships an RFC 5737 placeholder in cluster.publicAccessCidrs: `pulumi up` would create a
    cluster nobody can reach (EKS User Guide, cluster-endpoint.adoc: the public endpoint admits only
    publicAccessCidrs). preflight fails on it with the key and the fix, with or without credentials."""
    write_stack(tmp_path, base="prod")
    code, out, err = run(tmp_path, None, clients=pf.AwsClients("us-east-1", "http://127.0.0.1:9"))
    assert code == 1, out + err
    assert "API access" in out and "ai-platform:cluster.publicAccessCidrs[0] = 203.0.113.10/32" in out
    assert "replace it with the egress address(es) of whoever runs `pulumi up`" in out

    write_stack(tmp_path, base="prod", cluster={"publicAccessCidrs": ["198.18.0.0/15"]})  # benchmark range: not public
    code, _, err = run(tmp_path, None, clients=pf.AwsClients("us-east-1", "http://127.0.0.1:9"))
    assert code == 2 and "not internet address(es)" in err


def test_api_access_check_names_every_way_in():
    config = stack_config.load_from_files("dev")
    assert pf.check_api_access(config) == pf.Check("API access", "ok", "public endpoint from 0.0.0.0/0: run `pulumi up` from one of these")
    cluster = config.cluster.model_copy(update={"publicAccessCidrs": ["198.51.100.0/24", "8.8.8.8/32"], "apiAccessCidrs": ["10.99.0.0/16"],
                                                "apiAccessSecurityGroupIds": ["sg-0123456789abcdef0"]})
    check = pf.check_api_access(config.model_copy(update={"cluster": cluster}))
    assert check.status == "fail" and check.detail.endswith("ai-platform:cluster.publicAccessCidrs[0] = 198.51.100.0/24")
    cluster = cluster.model_copy(update={"publicAccessCidrs": ["8.8.8.8/32"]})
    assert pf.check_api_access(config.model_copy(update={"cluster": cluster})).detail == (
        "public endpoint from 8.8.8.8/32; private endpoint (443) from 10.99.0.0/16, sg-0123456789abcdef0: run `pulumi up` from one of these")


# --- models Triton must load at start --------------------------------------------------------

def explicit_standard(load_models: list[str]) -> list[dict]:
    """prod's tritonDeployments with `standard` naming the models it loads at start."""
    deployments = yaml.safe_load((PROJECT / "Pulumi.prod.yaml").read_text())["config"]["ai-platform:tritonDeployments"]
    [standard] = [d for d in deployments if d["name"] == "standard"]
    standard["modelControl"] = {"mode": "explicit", "loadModels": load_models}
    return deployments


def checks_with_stack(project: Path, fake: FakeAws, stack="t") -> pf.Report:
    config = stack_config.load_from_files(stack, project)
    return pf.run_checks(config, fake.clients(), stack, project)


def test_explicit_startup_models_missing_from_the_bucket_fail_before_deploy(moto, tmp_path):
    """tritonserver exits at start when a --load-model is missing: in explicit mode the core loads
    each startup model (triton-inference-server/core r25.06 model_repository_manager.cc,
    ModelRepositoryManager::Create -> LoadUnloadModels) and TRITONSERVER_ServerNew stops the server
    on the error while exit-on-error is true, its default (server src/command_line_parser.h,
    `exit_on_error_{true}`, at v2.59.0 = the 25.06 image). A new account has no bucket yet; a
    bucket holding only the stack's `.keep` markers has no model either: both fail, naming the fix."""
    write_stack(tmp_path, base="prod", tritonDeployments=explicit_standard(["add_sub"]))
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 512).quota("L-1216C47A", 512).eks_version().ami()
    new_account = checks_with_stack(tmp_path, fake).by_name("models: standard")
    assert new_account.status == "fail"
    assert "bucket ai-platform-t-models-us-east-1 does not exist yet" in new_account.detail
    assert 'ai-platform:tritonDeployments[0].modelControl.loadModels to ["*"]' in new_account.fix

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="ai-platform-t-models-us-east-1")
    s3.put_object(Bucket="ai-platform-t-models-us-east-1", Key="triton/standard/.keep", Body=b"")
    s3.put_object(Bucket="ai-platform-t-models-us-east-1", Key="triton/llm/add_sub/config.pbtxt", Body=b"")  # another prefix
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 512).quota("L-1216C47A", 512).eks_version().ami()
    only_markers = checks_with_stack(tmp_path, fake).by_name("models: standard")
    assert only_markers.status == "fail"
    assert "add_sub not under s3://ai-platform-t-models-us-east-1/triton/standard/" in only_markers.detail
    assert "platformctl models push DIR --bucket ai-platform-t-models-us-east-1 --prefix triton/standard" in only_markers.fix

    s3.put_object(Bucket="ai-platform-t-models-us-east-1", Key="triton/standard/add_sub/config.pbtxt", Body=b"")
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 512).quota("L-1216C47A", 512).eks_version().ami()
    pushed = checks_with_stack(tmp_path, fake).by_name("models: standard")
    assert pushed.status == "ok" and "add_sub present" in pushed.detail


def test_access_denied_on_the_bucket_is_a_warning_naming_the_action():
    s3 = boto3.client("s3", region_name="us-east-1")
    config = stack_config.load_from_files("prod")
    deployments = [d.model_copy(update={"modelControl": d.modelControl.model_copy(
        update={"mode": "explicit", "loadModels": ["add_sub"]})}) if d.name == "standard" else d
        for d in config.tritonDeployments]
    with Stubber(s3) as stub:
        stub.add_client_error("list_objects_v2", service_error_code="AccessDenied")
        [check] = pf.check_startup_models(s3, "b", deployments)
    assert check.status == "warn" and "needs s3:ListBucket" in check.detail


def test_committed_prod_needs_no_model_at_start_and_the_bucket_is_not_asked(moto, tmp_path):
    """prod as committed (`loadModels: ["*"]`) loads whatever the prefix holds: nothing, without
    error, on a new bucket (core r25.06 ModelRepositoryManager::Create: `*` polls the repository
    instead of loading named models), so there is nothing to check in S3."""
    config = stack_config.load_from_files("prod")
    assert [d.modelControl.loadModels for d in config.tritonDeployments if d.modelControl.mode == "explicit"] == [["*"]]
    write_stack(tmp_path, base="prod")
    fake = FakeAws("us-east-1").quota("L-DB2E81BA", 512).quota("L-1216C47A", 512).eks_version().ami()
    report = checks_with_stack(tmp_path, fake)
    assert not [c for c in report.checks if c.name.startswith("models:")]
    # Only the committed API-access placeholder fails (tested above); nothing about models.
    assert [c.name for c in report.checks if c.status == "fail"] == ["API access"]


def _actions_named_in_calls(path: Path) -> set[str]:
    """The IAM action of every `explain_error(exc, "<service>:<Action>")` in a module: each AWS
    call preflight makes (cost and prices: `--live-prices`) names its action there."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "explain_error":
            action = node.args[1]
            assert isinstance(action, ast.Constant), f"{path.name}:{node.lineno}: name the action literally"
            found.add(action.value)
    return found


def test_the_readme_iam_policy_grants_every_action_preflight_calls():
    """The README's read-only policy is what operators paste; an action missing there turns a check
    into a permanent 'permission denied' warning (s3:ListBucket was missing once). STS
    GetCallerIdentity needs no permission (AWS STS API reference, API_GetCallerIdentity: "No
    permissions are required to perform this operation")."""
    import json
    import re

    readme = (PROJECT / "README.md").read_text()
    section = readme[readme.index("IAM permissions it needs"):]
    policy = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    called = set().union(*(_actions_named_in_calls(PROJECT / "platformctl" / f"{m}.py") for m in ("preflight", "cost", "prices")))
    assert "s3:ListBucket" in called and "pricing:GetProducts" in called
    assert called - {"sts:GetCallerIdentity"} - granted == set()


def test_a_build_source_missing_from_the_bucket_fails_and_no_bucket_yet_warns(moto, tmp_path):
    """The build Job's fetch waits SOURCE_WAIT_SECONDS for its source, then fails, and `pulumi up`
    with it (components/model_builds.py fetch_script). On a new account the bucket comes with the
    first `pulumi up`: the source can only follow it (a warning, naming the upload). Here the
    source key is published by something else (no sourceFile)."""
    build = {k: v for k, v in yaml.safe_load((PROJECT / "Pulumi.dev.yaml").read_text())["config"]["ai-platform:modelBuilds"][0].items()
             if k != "sourceFile"}
    write_stack(tmp_path, modelBuilds=[build])  # source sources/text-orientation/model.onnx
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()
    where = "s3://ai-platform-t-models-us-west-2/sources/text-orientation/model.onnx"
    new_account = checks_with_stack(tmp_path, fake).by_name("build source: text-orientation")
    assert new_account.status == "warn" and "does not exist yet" in new_account.detail
    assert f"aws s3 cp model.onnx {where}" in new_account.fix

    s3 = boto3.client("s3", region_name="us-west-2")
    s3.create_bucket(Bucket="ai-platform-t-models-us-west-2", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="ai-platform-t-models-us-west-2", Key="sources/text-orientation/model.onnx.bak", Body=b"")  # not it
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()
    missing = checks_with_stack(tmp_path, fake).by_name("build source: text-orientation")
    assert missing.status == "fail" and f"{where} missing" in missing.detail and "waits 15 min" in missing.detail
    assert f"aws s3 cp model.onnx {where}" in missing.fix


def test_a_build_source_the_stack_uploads_needs_only_its_local_file(moto, tmp_path):
    """dev as shipped: `sourceFile` (what `make examples` writes) is uploaded by `pulumi up` itself,
    so the bucket is not asked; a missing file fails (`pulumi preview`/`up` refuse to start), naming
    the key and the command that writes it."""
    write_stack(tmp_path)  # with the file, as `make examples` writes it
    source = tmp_path / "build/examples/trt-source/text_orientation/1/model.onnx"
    source.unlink()
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()
    missing = checks_with_stack(tmp_path, fake).by_name("build source: text-orientation")
    assert missing.status == "fail" and "ai-platform:modelBuilds[0].sourceFile" in missing.detail
    assert "`make trt-sources`" in missing.fix

    source.write_bytes(b"onnx")
    fake = FakeAws("us-west-2").quota("L-3819A6DF", 16).quota("L-34B43A08", 640).eks_version().ami()
    present = checks_with_stack(tmp_path, fake).by_name("build source: text-orientation")
    assert present.status == "ok" and "uploads it to s3://ai-platform-t-models-us-west-2/sources/text-orientation/model.onnx" in present.detail
