"""Normalizations: layer, RMS, batch (inference statistics) and group norm.

FLOPs per element: normalizing with statistics computed in the op costs 5
(mean sum, subtract, square, variance sum, scale by rstd); RMS norm 3 (square, sum,
scale); batch norm with running statistics 2 (subtract, scale). Each affine
parameter adds 1 (weight multiply, bias add).
"""

from __future__ import annotations

from perfcast.ir.graph import schema_arg
from perfcast.ir.ops._util import same_as_input
from perfcast.ir.registry import Category, define
from perfcast.ir.tensor import Dim


def _norm_flops(base: int, weight_pos: int, bias_pos: int | None):
    def flops(ins, outs, attrs) -> Dim:
        affine = int(schema_arg(ins, attrs, "weight", weight_pos) is not None)
        if bias_pos is not None:
            affine += int(schema_arg(ins, attrs, "bias", bias_pos) is not None)
        return (base + affine) * ins[0].numel

    return flops



def _stats_shape(x, attrs):
    n = len(attrs["normalized_shape"])  # type: ignore[arg-type]
    return (*x.shape[:-n], *([1] * n))


def _native_ln_infer(ins, attrs):
    x = ins[0]
    stats = _stats_shape(x, attrs)
    return [(x.shape, x.dtype), (stats, "float32"), (stats, "float32")]


define("layer_norm", Category.NORM, same_as_input, _norm_flops(5, 1, 2))
define("native_layer_norm", Category.NORM, _native_ln_infer, _norm_flops(5, 1, 2))
define(["rms_norm", "_fused_rms_norm"], Category.NORM, same_as_input, _norm_flops(3, 1, None))
define("group_norm", Category.NORM, same_as_input, _norm_flops(5, 1, 2))

# batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps)
define("batch_norm", Category.NORM, same_as_input, _norm_flops(2, 1, 2))


def _bn_triple_infer(ins, attrs):
    x = ins[0]
    return [(x.shape, x.dtype), ((0,), x.dtype), ((0,), x.dtype)]


define("_native_batch_norm_legit_no_training", Category.NORM, _bn_triple_infer,
       _norm_flops(2, 1, 2))


def _weight_norm_flops(ins, outs, attrs) -> Dim:
    """w = g * v / ||v||: square-and-add per element of v for the norms, then a multiply."""
    return 3 * ins[0].numel


# _weight_norm(v, g, dim): the weight of a weight-normalized layer (Wav2Vec2's conv)
define("_weight_norm", Category.NORM, same_as_input, _weight_norm_flops)
