"""The platform's layers, each a ComponentResource over its own config slice (see README, code layout):
Foundation (network, cluster, GPU capacity, cluster add-ons, CI role) hands a typed ClusterContext to
GpuStack (scheduling, monitoring, GPU operator), Inference (model repository, autoscaling adapter,
Triton fleet) and Apps (OpenWebUI). Resources created before the layers existed keep their URNs
through one alias on each moved component (`MOVED`); their children inherit it."""

from components.layers.apps import Apps, AppsArgs
from components.layers.context import MOVED, ClusterContext, moved
from components.layers.foundation import Foundation, FoundationArgs
from components.layers.gpu_stack import GpuStack, GpuStackArgs
from components.layers.inference import Inference, InferenceArgs

__all__ = ["MOVED", "Apps", "AppsArgs", "ClusterContext", "Foundation", "FoundationArgs", "GpuStack", "GpuStackArgs",
           "Inference", "InferenceArgs", "moved"]
