"""LogicalOp: and / or / xor of two bool tensors, or not of one (Keras `ops.logical_and`,
`logical_or`, `logical_xor`, `logical_not`), a bool tensor.

It exists for masks computed in a Keras functional model: `GRU(...)(x, mask=ops.logical_and(m1, m2))`
imports as LogicalOp([m1, m2]) -> SetMask -> GRU (rnncompile/keras/graph.py). The two inputs
broadcast as NumPy (and Keras) do. Inputs must be bool (Keras would cast other dtypes to bool:
compare them first). ONNX And/Or/Xor/Not take BOOL on every target, TensorRT included.
An incoming mask is dropped (Keras ops do not carry masks).
"""
from __future__ import annotations

import numpy as np

from ..layer import LayerError, Tensor, TensorType, register
from .reshaping import DropsMask

_OPS = {"and": (np.logical_and, "And"), "or": (np.logical_or, "Or"), "xor": (np.logical_xor, "Xor"),
        "not": (np.logical_not, "Not")}
_KERAS = {"LogicalAnd": "and", "LogicalOr": "or", "LogicalXor": "xor", "LogicalNot": "not"}


@register
class LogicalOp(DropsMask):
    class_name = "LogicalOp"
    description = ("and / or / xor of two bool tensors, or not of one (Keras ops.logical_and, logical_or, "
                   "logical_xor, logical_not)")
    attributes = {"op": {"enum": list(_OPS)}}
    required = ("op",)
    #: Keras op classes the importer turns into this kind where they compute a `mask=` argument.
    keras_mask_ops = tuple(_KERAS)

    def output_types(self, inputs):
        want = 1 if self["op"] == "not" else 2
        if len(inputs) != want:
            raise LayerError(f"{self['op']} takes {want} input{'s' if want > 1 else ''}, got {len(inputs)}")
        for x in inputs:
            if x.dtype != "bool":
                raise LayerError(f"expects bool inputs, got {x.dtype} (compare it first)")
        if want == 1:
            return [TensorType(inputs[0].shape, "bool", False)]
        a, b = inputs
        if a.rank != b.rank:
            raise LayerError(f"inputs of rank {a.rank} and {b.rank}; equal ranks are supported")
        shape = []
        for i, (p, q) in enumerate(zip(a.shape, b.shape)):
            if p is not None and q is not None and p != q and 1 not in (p, q):
                raise LayerError(f"shapes {a} and {b} do not broadcast (axis {i})")
            shape.append(q if p in (None, 1) and q is not None else p)
        return [TensorType(tuple(shape), "bool", False)]

    def pad_value(self):
        return False   # a padded step of a bool model input read here is False

    def reference(self, inputs, weights):
        fn = _OPS[self["op"]][0]
        return [Tensor(np.asarray(fn(*[np.asarray(x.data, bool) for x in inputs]), bool))]

    def lower(self, g, inputs, weights):
        return [self.sym(g.op(_OPS[self["op"]][1], *[x.name for x in inputs]))]

    @classmethod
    def from_keras_op(cls, op_class: str, config: dict, args: list, kwargs: dict) -> tuple[dict, object]:
        """(spec attributes, the tensor argument(s)) of a Keras op node; ValueError says why not."""
        op = _KERAS[op_class]
        want = 1 if op == "not" else 2
        if len(args) != want or kwargs:
            raise ValueError(f"expected {want} tensor argument{'s' if want > 1 else ''}")
        return {"op": op}, list(args)
