"""What on-cluster components wait for, by what it provides (not `depends_on` lists in args)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi


@dataclass(frozen=True)
class GpuCapacity:
    """What a GPU pod needs before it can be placed: the priority classes it names, the node groups
    it runs on and the autoscaler that scales them up from zero."""

    priority_classes: tuple[pulumi.Resource, ...] = ()
    node_groups: tuple[pulumi.Resource, ...] = ()
    autoscaler: Optional[pulumi.Resource] = None

    def resources(self) -> list[pulumi.Resource]:
        return [*self.priority_classes, *self.node_groups, *([self.autoscaler] if self.autoscaler else [])]
