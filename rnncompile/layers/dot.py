"""Dot: Keras's batchwise dot product of two inputs of rank 2 or 3 (batch axis included), summed
over `axes` (one axis for both, or one per input; never the batch axis), optionally after L2
normalization along those axes (cosine similarity). The result keeps the other axes of the first
input, then those of the second; two vectors give (batch, 1). Keras's Dot has no mask (its
compute_mask returns None): an incoming mask is dropped.
"""
from __future__ import annotations

import numpy as np

from ..layer import ATTR_BOOL, LayerError, Tensor, TensorType, expect_float, register
from .reshaping import DropsMask

_AXES = {"oneOf": [{"type": "integer", "minimum": -3, "maximum": 2},
                   {"type": "array", "items": {"type": "integer", "minimum": -3, "maximum": 2},
                    "minItems": 2, "maxItems": 2}]}


@register
class Dot(DropsMask):
    class_name = "Dot"
    description = "Batchwise dot product of two inputs over `axes` (Keras Dot); no mask"
    attributes = {"axes": _AXES, "normalize": dict(ATTR_BOOL, default=False)}
    required = ("axes",)
    keras_classes = ("Dot",)
    keras_list_input = True

    def _axes(self, ranks: list[int]) -> list[int]:
        a = self["axes"]
        axes = [a, a] if isinstance(a, int) else list(a)
        out = [ax % r for ax, r in zip(axes, ranks)]
        if any(ax == 0 for ax in out):
            raise LayerError(f"axes {a} name the batch axis", "axes")
        return out

    def output_types(self, inputs):
        if len(inputs) != 2:
            raise LayerError(f"takes exactly 2 inputs, got {len(inputs)}")
        for t in inputs:
            expect_float(t)
            if t.rank not in (2, 3):
                raise LayerError(f"expects inputs of rank 2 or 3 (batch axis included), got shape {t}")
        x, y = inputs
        ax, ay = self._axes([x.rank, y.rank])
        if x.shape[ax] is not None and y.shape[ay] is not None and x.shape[ax] != y.shape[ay]:
            raise LayerError(f"cannot take the dot product of shapes {x} and {y} over axes {[ax, ay]}: "
                             f"sizes {x.shape[ax]} and {y.shape[ay]} differ", "axes")
        rest = [d for i, d in enumerate(x.shape) if i not in (0, ax)] + \
               [d for i, d in enumerate(y.shape) if i not in (0, ay)]
        return [TensorType((x.shape[0], *(rest or [1])), "float32", False)]

    def equal_lengths(self) -> bool:
        """For the verifier: contracting over the time axis needs equal lengths."""
        return 1 in self._axes([t.rank for t in self.input_types])

    def reference(self, inputs, weights):
        x, y = (np.asarray(t.data, np.float64) for t in inputs)
        ax, ay = self._axes([x.ndim, y.ndim])
        if self["normalize"]:
            x = x / np.sqrt(np.maximum((x * x).sum(ax, keepdims=True), 1e-12))
            y = y / np.sqrt(np.maximum((y * y).sum(ay, keepdims=True), 1e-12))
        xm = np.moveaxis(x, ax, -1).reshape(x.shape[0], -1, x.shape[ax])       # [B, Nx, A]
        ym = np.moveaxis(y, ay, 1).reshape(y.shape[0], y.shape[ay], -1)        # [B, A, Ny]
        out = xm @ ym
        return [Tensor(out.reshape(self.output_shape(out.shape[0], x, y, ax, ay)))]

    @staticmethod
    def output_shape(b, x, y, ax, ay):
        rest = [d for i, d in enumerate(x.shape) if i not in (0, ax)] + \
               [d for i, d in enumerate(y.shape) if i not in (0, ay)]
        return (b, *(rest or [1]))

    def lower(self, g, inputs, weights):
        x, y = inputs[0].name, inputs[1].name
        rx, ry = inputs[0].type.rank, inputs[1].type.rank
        ax, ay = self._axes([rx, ry])
        if self["normalize"]:
            x, y = _l2(g, x, ax), _l2(g, y, ay)
        xm = g.unsqueeze(x, [1]) if rx == 2 else (x if ax == 2 else g.op("Transpose", x, perm=[0, 2, 1]))
        ym = g.unsqueeze(y, [2]) if ry == 2 else (y if ay == 1 else g.op("Transpose", y, perm=[0, 2, 1]))
        out = g.op("MatMul", xm, ym)                                            # [B, Nx|1, Ny|1]
        added = ([1] if rx == 2 else []) + ([2] if ry == 2 else [])
        if len(added) == 1:
            out = g.squeeze(out, added)
        elif added:
            out = g.squeeze(out, [2])                                           # two vectors: (B, 1)
        return [self.sym(out)]

    @classmethod
    def from_keras(cls, f):
        axes = f.require("axes")
        ok = (isinstance(axes, int) and not isinstance(axes, bool)) or (
            isinstance(axes, (list, tuple)) and len(axes) == 2 and all(isinstance(a, int) for a in axes))
        if not ok:
            f.refuse("axes", axes, "expected an axis or a pair of axes")
        return {"axes": axes if isinstance(axes, int) else list(axes), "normalize": f.boolean("normalize", False)}


def _l2(g, x: str, axis: int) -> str:
    ss = g.reduce("ReduceSum", g.op("Mul", x, x), [axis], keepdims=1)
    return g.op("Div", x, g.op("Sqrt", g.op("Max", ss, g.const(np.float32(1e-12)))))
