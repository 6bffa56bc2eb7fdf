"""Facts about the EC2 instance types that carry NVIDIA GPUs.

This table is the allow-list for GPU pools: a type that is not here has no NVIDIA GPU (or is not
supported yet) and is rejected by the config model. It also feeds the cluster-autoscaler node
template (GPUs per node), the GPU budget policy and the cost estimate. Figures are from the EC2
instance type pages (vCPUs, memory in GiB, GPUs per instance).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInstanceType:
    name: str
    vcpus: int
    memory_gib: int
    gpus: int
    gpu_model: str
    gpu_memory_gib: int
    arch: str  # "x86_64" | "arm64"
    mig_capable: bool = False

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def quota_bucket(self) -> str:
        """EC2 vCPU quota bucket: 'G' (G and VT instances) or 'P'."""
        return "P" if self.family.startswith("p") else "G"


def _family(family: str, gpu_model: str, gpu_memory_gib: int, arch: str,
            sizes: list[tuple[str, int, int, int]], mig: bool = False) -> dict[str, GpuInstanceType]:
    return {
        f"{family}.{size}": GpuInstanceType(
            f"{family}.{size}", vcpus, mem, gpus, gpu_model, gpu_memory_gib, arch, mig
        )
        for size, vcpus, mem, gpus in sizes
    }


GPU_INSTANCE_TYPES: dict[str, GpuInstanceType] = {
    **_family("g4dn", "T4", 16, "x86_64", [
        ("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
        ("8xlarge", 32, 128, 1), ("16xlarge", 64, 256, 1), ("12xlarge", 48, 192, 4),
        ("metal", 96, 384, 8),
    ]),
    **_family("g5", "A10G", 24, "x86_64", [
        ("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
        ("8xlarge", 32, 128, 1), ("16xlarge", 64, 256, 1), ("12xlarge", 48, 192, 4),
        ("24xlarge", 96, 384, 4), ("48xlarge", 192, 768, 8),
    ]),
    **_family("g5g", "T4G", 16, "arm64", [
        ("xlarge", 4, 8, 1), ("2xlarge", 8, 16, 1), ("4xlarge", 16, 32, 1),
        ("8xlarge", 32, 64, 1), ("16xlarge", 64, 128, 2), ("metal", 64, 128, 2),
    ]),
    **_family("g6", "L4", 24, "x86_64", [
        ("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
        ("8xlarge", 32, 128, 1), ("16xlarge", 64, 256, 1), ("12xlarge", 48, 192, 4),
        ("24xlarge", 96, 384, 4), ("48xlarge", 192, 768, 8),
    ]),
    **_family("g6e", "L40S", 48, "x86_64", [
        ("xlarge", 4, 32, 1), ("2xlarge", 8, 64, 1), ("4xlarge", 16, 128, 1),
        ("8xlarge", 32, 256, 1), ("16xlarge", 64, 512, 1), ("12xlarge", 48, 384, 4),
        ("24xlarge", 96, 768, 4), ("48xlarge", 192, 1536, 8),
    ]),
    **_family("p3", "V100", 16, "x86_64", [
        ("2xlarge", 8, 61, 1), ("8xlarge", 32, 244, 4), ("16xlarge", 64, 488, 8),
    ]),
    **_family("p3dn", "V100", 32, "x86_64", [("24xlarge", 96, 768, 8)]),
    **_family("p4d", "A100", 40, "x86_64", [("24xlarge", 96, 1152, 8)], mig=True),
    **_family("p4de", "A100", 80, "x86_64", [("24xlarge", 96, 1152, 8)], mig=True),
    **_family("p5", "H100", 80, "x86_64", [
        ("4xlarge", 16, 256, 1), ("48xlarge", 192, 2048, 8),
    ], mig=True),
    **_family("p5e", "H200", 141, "x86_64", [("48xlarge", 192, 2048, 8)], mig=True),
    **_family("p5en", "H200", 141, "x86_64", [("48xlarge", 192, 2048, 8)], mig=True),
}

# Accelerated families without an NVIDIA GPU, named so the error can say what they carry.
NON_NVIDIA_ACCELERATORS = {
    "g4ad": "AMD Radeon Pro V520",
    "inf1": "AWS Inferentia",
    "inf2": "AWS Inferentia2",
    "trn1": "AWS Trainium",
    "trn1n": "AWS Trainium",
    "trn2": "AWS Trainium2",
    "dl1": "Habana Gaudi",
    "dl2q": "Qualcomm AI 100",
    "f1": "FPGA",
    "f2": "FPGA",
    "vt1": "Xilinx video transcoder",
}

AMI_ARCH = {
    "AL2023_x86_64_NVIDIA": "x86_64",
    "AL2023_ARM_64_NVIDIA": "arm64",
    "BOTTLEROCKET_x86_64_NVIDIA": "x86_64",
    "BOTTLEROCKET_ARM_64_NVIDIA": "arm64",
}


def why_not_gpu(instance_type: str) -> str | None:
    """None when the type is a known NVIDIA GPU type, else a one-line reason."""
    if instance_type in GPU_INSTANCE_TYPES:
        return None
    family = instance_type.split(".", 1)[0]
    if family in NON_NVIDIA_ACCELERATORS:
        return f"{instance_type} has no NVIDIA GPU ({NON_NVIDIA_ACCELERATORS[family]})"
    known = sorted({t.family for t in GPU_INSTANCE_TYPES.values()})
    return f"{instance_type} is not an NVIDIA GPU instance type (known families: {', '.join(known)})"
