"""ReduceBool: any / all of a bool tensor over its last axis (Keras `ops.any(m, axis=-1)`,
`ops.all(m, axis=-1)`), a bool tensor with that axis removed.

It exists for masks computed in a Keras functional model: the Masking layer's own form
`ops.any(ops.not_equal(x, 0), axis=-1)` given as `mask=` to a layer whose input is not that
Masking's output imports as Compare(x) -> ReduceBool -> SetMask (rnncompile/keras/graph.py).
TensorRT reduces no BOOL: the lowering casts to float32 (0/1, exact), reduces with
ReduceMax (any) or ReduceMin (all) and casts back. An incoming mask is dropped.
"""
from __future__ import annotations

import numpy as np

from ..layer import LayerError, Tensor, TensorType, register
from .reshaping import DropsMask

_KERAS = {"Any": "any", "All": "all"}


@register
class ReduceBool(DropsMask):
    class_name = "ReduceBool"
    description = "any / all of a bool tensor over its last axis (Keras ops.any / ops.all, axis=-1)"
    attributes = {"op": {"enum": ["any", "all"]}}
    required = ("op",)
    #: Keras op classes the importer turns into this kind where they compute a `mask=` argument.
    keras_mask_ops = tuple(_KERAS)

    def output_types(self, inputs):
        if len(inputs) != 1:
            raise LayerError(f"takes one input, got {len(inputs)}")
        (x,) = inputs
        if x.dtype != "bool" or x.rank < 2:
            raise LayerError(f"expects a bool input of rank 2 or more, got {x.dtype} {x}")
        return [TensorType(x.shape[:-1], "bool", False)]

    def reference(self, inputs, weights):
        m = np.asarray(inputs[0].data, bool)
        return [Tensor(m.any(axis=-1) if self["op"] == "any" else m.all(axis=-1))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        red = g.reduce("ReduceMax" if self["op"] == "any" else "ReduceMin", g.cast(x.name, "float32"),
                       [x.type.rank - 1])
        return [self.sym(g.cast(red, "bool"))]

    @classmethod
    def from_keras_op(cls, op_class: str, config: dict, args: list, kwargs: dict) -> tuple[dict, object]:
        """(spec attributes, the tensor argument) of a Keras op node; ValueError says why not."""
        axis = config.get("axis")
        if axis not in (-1, [-1]) or config.get("keepdims"):
            raise ValueError(f"only axis=-1 without keepdims is supported (axis {axis!r}, keepdims "
                             f"{config.get('keepdims')!r})")
        if len(args) != 1 or kwargs:
            raise ValueError("expected one tensor argument")
        return {"op": _KERAS[op_class]}, args[0]
