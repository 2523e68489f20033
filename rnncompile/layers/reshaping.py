"""Shape layers: RepeatVector, Flatten, Reshape, Permute.

Masks (measured with Keras 3.15): all four DROP an incoming mask (none of them supports masking;
Keras warns and passes no mask on), so their outputs are never masked. RepeatVector's input is a
per-sample vector, which never carries a mask.
"""
from __future__ import annotations

import math

import numpy as np

from ..layer import Layer, LayerError, Tensor, TensorType, expect_rank, register

_DIMS = {"type": "array", "minItems": 1, "maxItems": 16}


class DropsMask(Layer):
    """A kind that drops an incoming mask, as Keras does: `summary` says so where it happens."""

    def lowering(self, target=None) -> str:
        if any(t.masked for t in self.input_types):
            return "ONNX ops; drops the input mask (as Keras)"
        return "ONNX ops"


def _dims_list(f, key: str) -> list[int]:
    v = f.require(key)
    if not isinstance(v, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in v):
        f.refuse(key, v, "expected a list of integers")
    return list(v)


@register
class RepeatVector(Layer):
    class_name = "RepeatVector"
    description = "Repeats a per-sample vector n times: (batch, features) -> (batch, n, features)"
    attributes = {"n": {"type": "integer", "minimum": 1, "maximum": 1 << 20}}
    required = ("n",)
    keras_classes = ("RepeatVector",)

    def output_types(self, inputs):
        (x,) = inputs
        expect_rank(x, (2,), "a vector")
        return [TensorType((x.shape[0], self["n"], x.shape[1]), x.dtype, False)]

    def reference(self, inputs, weights):
        data = np.asarray(inputs[0].data)
        return [Tensor(np.repeat(data[:, None, :], self["n"], axis=1))]

    def lower(self, g, inputs, weights):
        y = g.op("Tile", g.unsqueeze(inputs[0].name, [1]), g.const(np.array([1, self["n"], 1], np.int64)))
        return [self.sym(y)]

    @classmethod
    def from_keras(cls, f):
        return {"n": f.integer("n")}


@register
class Flatten(DropsMask):
    class_name = "Flatten"
    description = "Flattens every non-batch axis into one (drops the mask, as Keras does)"
    attributes = {"data_format": {"enum": ["channels_last"], "default": "channels_last"}}
    keras_classes = ("Flatten",)
    keras_time_distributed = False
    time_distributable = True

    def output_types(self, inputs):
        (x,) = inputs
        rest = x.shape[1:]
        size = None if None in rest else math.prod(rest)
        return [TensorType((x.shape[0], size), x.dtype, False)]

    def reference(self, inputs, weights):
        data = np.asarray(inputs[0].data)
        return [Tensor(data.reshape(data.shape[0], -1))]

    def lower(self, g, inputs, weights):
        return [self.sym(g.op("Flatten", inputs[0].name, axis=1))]

    @classmethod
    def from_keras(cls, f):
        fmt = f.get("data_format")
        if fmt not in (None, "channels_last"):
            f.refuse("data_format", fmt, "only channels_last is supported")
        return {}


@register
class Reshape(DropsMask):
    class_name = "Reshape"
    description = "Reshapes each sample to target_shape (one entry may be -1); drops the mask"
    attributes = {"target_shape": dict(_DIMS, items={"type": "integer", "minimum": -1, "maximum": 1 << 30})}
    required = ("target_shape",)
    keras_classes = ("Reshape",)

    def output_types(self, inputs):
        (x,) = inputs
        target = list(self["target_shape"])
        if 0 in target or target.count(-1) > 1:
            raise LayerError(f"target_shape {target} must hold positive sizes and at most one -1",
                             "target_shape")
        rest = x.shape[1:]
        known = math.prod(d for d in target if d != -1)
        if None in rest:
            out = [None if d == -1 else d for d in target]
        else:
            size = math.prod(rest)
            if (-1 in target and size % known) or (-1 not in target and size != known):
                raise LayerError(f"cannot reshape a sample of shape {tuple(rest)} ({size} values) to "
                                 f"target_shape {target}", "target_shape")
            out = [size // known if d == -1 else d for d in target]
        return [TensorType((x.shape[0], *out), x.dtype, False)]

    def reference(self, inputs, weights):
        data = np.asarray(inputs[0].data)
        return [Tensor(data.reshape(data.shape[0], *self["target_shape"]))]

    def lower(self, g, inputs, weights):
        x = inputs[0].name
        shape = g.op("Concat", g.dim(x, 0), g.const(np.array(self["target_shape"], np.int64)), axis=0)
        return [self.sym(g.op("Reshape", x, shape))]

    @classmethod
    def from_keras(cls, f):
        return {"target_shape": _dims_list(f, "target_shape")}


@register
class Permute(DropsMask):
    class_name = "Permute"
    description = "Permutes the non-batch axes (dims numbered from 1, as in Keras); drops the mask"
    attributes = {"dims": dict(_DIMS, items={"type": "integer", "minimum": 1, "maximum": 16})}
    required = ("dims",)
    keras_classes = ("Permute",)

    def output_types(self, inputs):
        (x,) = inputs
        dims = list(self["dims"])
        if sorted(dims) != list(range(1, x.rank)):
            raise LayerError(f"dims {dims} must be a permutation of 1..{x.rank - 1} for an input of shape {x}",
                             "dims")
        return [TensorType((x.shape[0], *(x.shape[d] for d in dims)), x.dtype, False)]

    def reference(self, inputs, weights):
        return [Tensor(np.transpose(np.asarray(inputs[0].data), [0, *self["dims"]]))]

    def lower(self, g, inputs, weights):
        return [self.sym(g.op("Transpose", inputs[0].name, perm=[0, *self["dims"]]))]

    @classmethod
    def from_keras(cls, f):
        return {"dims": _dims_list(f, "dims")}
