"""Global pooling over time, as Keras 3 does it:
GlobalAveragePooling1D averages the valid steps only (a fully masked row is 0/0 = NaN in Keras);
GlobalMaxPooling1D takes no mask in Keras 3 (its call has no mask argument): it maxes every step."""
from __future__ import annotations

import numpy as np

from ..layer import Layer, Sym, Tensor, TensorType, expect_float, expect_rank, register

POOL_ATTRIBUTES = {
    "keepdims": {"type": "boolean", "default": False},
    "data_format": {"enum": ["channels_last"], "default": "channels_last"},
}


class _GlobalPool1D(Layer):
    attributes = POOL_ATTRIBUTES

    def output_types(self, inputs):
        (x,) = inputs
        expect_rank(x, (3,), "a sequence")
        expect_float(x)
        shape = (x.shape[0], 1, x.shape[2]) if self["keepdims"] else (x.shape[0], x.shape[2])
        return [TensorType(shape, "float32", False)]

    @classmethod
    def from_keras(cls, f):
        fmt = f.get("data_format", "channels_last")
        if fmt not in (None, "channels_last"):
            f.refuse("data_format", fmt, "only channels_last (time on axis 1) is supported")
        return {"keepdims": f.boolean("keepdims", False)}


@register
class GlobalAveragePooling1D(_GlobalPool1D):
    class_name = "GlobalAveragePooling1D"
    description = "Mean over the valid time steps (Keras GlobalAveragePooling1D)"
    defined_for_empty_rows = False
    keras_classes = ("GlobalAveragePooling1D",)
    keras_call_args = ("mask",)

    def reference(self, inputs, weights):
        (x,) = inputs
        if x.mask is None:
            return [Tensor(x.data.mean(axis=1, keepdims=self["keepdims"]))]
        m = x.mask[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(m, x.data, 0.0).sum(1, keepdims=self["keepdims"]) / m.sum(1, keepdims=self["keepdims"])
        return [Tensor(y)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        keep = 1 if self["keepdims"] else 0
        if x.mask is None:
            return [Sym(g.reduce("ReduceMean", x.name, [1], keep), self.output_types_[0])]
        m = g.unsqueeze(x.mask, [2])
        total = g.reduce("ReduceSum", g.op("Where", m, x.name, g.const(np.float32(0))), [1], keep)
        count = g.reduce("ReduceSum", g.cast(m, "float32"), [1], keep)
        return [Sym(g.op("Div", total, count), self.output_types_[0])]


@register
class GlobalMaxPooling1D(_GlobalPool1D):
    class_name = "GlobalMaxPooling1D"
    description = "Max over all time steps; Keras 3 ignores the mask here"
    keras_classes = ("GlobalMaxPooling1D",)

    def reference(self, inputs, weights):
        return [Tensor(inputs[0].data.max(axis=1, keepdims=self["keepdims"]))]

    def lower(self, g, inputs, weights):
        keep = 1 if self["keepdims"] else 0
        return [Sym(g.reduce("ReduceMax", inputs[0].name, [1], keep), self.output_types_[0])]
