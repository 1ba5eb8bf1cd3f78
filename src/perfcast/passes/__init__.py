"""Graph passes: constant folding, simplification, fusion, dead-code elimination, and
partitioning into kernels per target."""

from perfcast.passes.dce import dead_code, eliminate_dead_code
from perfcast.passes.fold import constant_fold
from perfcast.passes.fuse import FUSIONS, fuse
from perfcast.passes.partition import Kernel, partition, view_roots
from perfcast.passes.pipeline import PASS_NAMES, PassError, PassReport, PassStat, run_passes
from perfcast.passes.simplify import simplify
from perfcast.passes.targets import TARGETS, FusionTarget, UnknownTargetError, get_target

__all__ = ["FUSIONS", "PASS_NAMES", "TARGETS", "FusionTarget", "Kernel", "PassError",
           "PassReport", "PassStat", "UnknownTargetError", "constant_fold", "dead_code",
           "eliminate_dead_code", "fuse", "get_target", "partition", "run_passes", "simplify",
           "view_roots"]
