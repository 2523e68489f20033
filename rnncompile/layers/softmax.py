"""Softmax over any axis or axes (Keras Softmax layer, `axis`: an integer or a list of integers,
batch axis counted as 0; Keras 2 and 3 alike): y = exp(x - max) / sum(exp(x - max)) over the axes
(Keras 3 computes a list of several axes as exp(x - logsumexp(x, axes)), the same function).
The batch axis is refused (a row's result would depend on the rest of the batch).

Masks. Keras's Softmax takes `mask=` (Keras 3: masked entries set to -1e9 before and to 0 after
the softmax; Keras 2: -1e9 added), and Keras passes it the [batch, time] mask of a masked input.
But it broadcasts that mask against the input's LAST axes: on a (batch, time, features) input the
mask's batch axis meets time and its time axis meets features, so `model.predict` raises (Keras 3
checks the shapes) or, where the sizes happen to fit, masks the wrong entries. A masked input is
therefore refused, naming the alternatives (measured on Keras 3.15: tools/make_goldens.py, fact F13).

Lowered as ONNX Softmax on one axis; over several axes as ReduceMax, Sub, Exp, ReduceSum, Div
(all in TensorRT's parser).
"""
from __future__ import annotations

import numpy as np

from ..layer import Layer, LayerError, Tensor, expect_float, passthrough, register

_AXIS = {"type": "integer", "minimum": -16, "maximum": 16}


@register
class Softmax(Layer):
    class_name = "Softmax"
    description = "exp(x) / sum(exp(x)) over `axis` (an axis or a list of axes; Keras Softmax); refuses a masked input"
    attributes = {"axis": {"oneOf": [_AXIS, {"type": "array", "items": _AXIS, "minItems": 1, "maxItems": 16}],
                           "default": -1, "description": "axis or axes of the softmax (batch axis = 0)"}}
    keras_classes = ("Softmax",)

    def _axes(self, rank: int) -> list[int]:
        value = self["axis"]
        out = []
        for a in value if isinstance(value, list) else [value]:
            ax = a + rank if a < 0 else a
            if not 0 <= ax < rank or ax in out:
                raise LayerError(f"axis {value} does not name distinct axes of an input of rank {rank} "
                                 f"(batch axis included)", "axis")
            if ax == 0:
                raise LayerError(f"axis {value} includes the batch axis: each sample's softmax would "
                                 f"depend on the other samples in the batch", "axis")
            out.append(ax)
        return sorted(out)

    def output_types(self, inputs):
        (x,) = inputs
        expect_float(x)
        self._axes(x.rank)
        if x.masked:
            raise LayerError(
                "its input carries a [batch, time] mask, which Keras's Softmax layer would apply to "
                "the input's last two axes instead of (batch, time): Keras raises or masks the wrong "
                "entries. Use Activation('softmax') (ignores the mask, keeps it on) or Dense(activation="
                "'softmax') for a softmax over features, or drop the mask before the Softmax")
        return [passthrough(x)]

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        axes = tuple(self._axes(data.ndim))
        e = np.exp(data - np.max(data, axis=axes, keepdims=True))
        return [Tensor(e / np.sum(e, axis=axes, keepdims=True), x.mask)]

    def lowering(self, target=None) -> str:
        return "Softmax" if len(self._axes(self.input_types[0].rank)) == 1 else \
            "ReduceMax + Sub + Exp + ReduceSum + Div"

    def lower(self, g, inputs, weights):
        (x,) = inputs
        axes = self._axes(x.type.rank)
        if len(axes) == 1:
            return [self.sym(g.op("Softmax", x.name, axis=axes[0]))]
        e = g.op("Exp", g.op("Sub", x.name, g.reduce("ReduceMax", x.name, axes, keepdims=1)))
        return [self.sym(g.op("Div", e, g.reduce("ReduceSum", e, axes, keepdims=1)))]

    @classmethod
    def from_keras(cls, f):
        axis = f.get("axis", -1)
        if isinstance(axis, list) and len(axis) == 1:
            axis = axis[0]
        if not (_axis_ok(axis) or (isinstance(axis, list) and axis and len(axis) <= 16 and all(map(_axis_ok, axis)))):
            f.refuse("axis", axis, "expected an integer axis or a list of them")
        return {"axis": axis}


def _axis_ok(a) -> bool:
    return isinstance(a, int) and not isinstance(a, bool) and -16 <= a <= 16
