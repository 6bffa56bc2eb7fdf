"""What every configuration section builds on: the model base class, `problems()`, and the field
types and patterns more than one section uses, each defined once here.

This module imports no other module of the project: the sections import it, `model.py` imports
the sections, so nothing imports back.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

PROBLEMS_ERROR = "ai_platform_problems"

# Placeholder `read_stack_files()` puts in place of an encrypted stack value it cannot decrypt.
OFFLINE_SECRET_PLACEHOLDER = "[secret]"


def problems(found: list[tuple[str, str]]) -> None:
    """Raise every (field, message) problem of one object at once; no-op when empty."""
    if found:
        raise PydanticCustomError(PROBLEMS_ERROR, "{count} problem(s)", {"count": len(found), "problems": found})


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def scaling_problems(min_size: int, desired: int, max_size: int) -> list[tuple[str, str]]:
    """minSize <= desiredSize <= maxSize of a node group."""
    found = []
    if max_size < min_size:
        found.append(("maxSize", f"must be >= minSize (got {max_size} < {min_size})"))
    if desired < min_size:
        found.append(("desiredSize", f"must be >= minSize (got {desired} < {min_size})"))
    elif desired > max_size:
        found.append(("desiredSize", f"must be <= maxSize (got {desired} > {max_size})"))
    return found


# --- patterns (unanchored pieces, then anchored field patterns) --------------------------------

# The `arn:<partition>` prefix of every ARN the config accepts (commercial, China, GovCloud).
ARN_PREFIX = r"arn:aws(-cn|-us-gov)?"
# An AWS region name: us-east-1, eu-central-2, us-gov-west-1.
REGION = r"[a-z]{2}(-gov)?-[a-z]+-\d"
REGION_PATTERN = rf"^{REGION}$"
# S3 bucket naming rules (general purpose buckets): 3-63 chars, lowercase letters, digits, dots
# and hyphens, starting and ending with a letter or digit. Dots are refused: they break
# virtual-hosted-style TLS (the wildcard certificate covers one label only).
BUCKET_NAME = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# A Kubernetes quantity as the config accepts it (no exponent forms): 500m, 2, 8Gi, 1.5G.
QUANTITY = r"^\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
_QUANTITY_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_value(text: str) -> float:
    """A Kubernetes quantity (as QUANTITY accepts it) as a plain number: "2Gi" -> 2147483648."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text)
    assert match, text
    return float(match.group(1)) * _QUANTITY_SUFFIX[match.group(2)]


# --- field types -------------------------------------------------------------------------------

def _cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "not a valid IPv4 CIDR ({reason})", {"reason": str(exc)}) from None
    return value


def _iam_role_arn(value: str) -> str:
    if not re.fullmatch(rf"{ARN_PREFIX}:iam::\d{{12}}:role/[\w+=,.@/-]+", value):
        raise PydanticCustomError("arn", "not an IAM role ARN (arn:aws:iam::<account>:role/<name>): {value!r}", {"value": value})
    return value


def _duration(value: str) -> str:
    if not re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?", value) or not value:
        raise PydanticCustomError("duration", "not a duration like 10m or 1h30m: {value!r}", {"value": value})
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
IamRoleArn = Annotated[str, AfterValidator(_iam_role_arn)]
Duration = Annotated[str, AfterValidator(_duration)]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=40)]
NamespaceName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
# Kubernetes label keys ([prefix/]name) and values, as the API server validates them.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
PodLabels = dict[Annotated[str, Field(pattern=LABEL_KEY, max_length=253)], Annotated[str, Field(pattern=LABEL_VALUE, max_length=63)]]


class PodClientsConfig(ConfigModel):
    """In-cluster pods a NetworkPolicy admits: the `podLabels` pods of `namespace`. Sections give
    `podLabels` their own default label."""

    namespace: NamespaceName
    # Every label must match; never empty (that would admit the whole namespace).
    podLabels: PodLabels

    @model_validator(mode="after")
    def _check(self):
        if not self.podLabels:
            problems([("podLabels", "name at least one label: an empty selector would admit every pod of "
                                    f"namespace {self.namespace}")])
        return self
Quantity = Annotated[str, Field(pattern=QUANTITY)]
BucketName = Annotated[str, Field(pattern=BUCKET_NAME)]
Email = Annotated[str, Field(pattern=EMAIL)]
Region = Annotated[str, Field(pattern=REGION_PATTERN)]
CapacityType = Literal["ON_DEMAND", "SPOT"]
