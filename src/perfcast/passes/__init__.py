"""Graph passes: dead-code elimination and partitioning into kernels per target."""

from perfcast.passes.dce import eliminate_dead_code
from perfcast.passes.partition import Kernel, partition, view_roots
from perfcast.passes.targets import TARGETS, FusionTarget, UnknownTargetError, get_target

__all__ = ["TARGETS", "FusionTarget", "Kernel", "UnknownTargetError", "eliminate_dead_code",
           "get_target", "partition", "view_roots"]
