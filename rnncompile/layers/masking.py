"""Masking: a step is masked when every feature equals mask_value; masked steps are zeroed."""
from __future__ import annotations

import numpy as np

from ..layer import Layer, Sym, Tensor, expect_float, expect_rank, passthrough, register


@register
class Masking(Layer):
    class_name = "Masking"
    description = "Masks steps whose features all equal mask_value (Keras Masking)"
    attributes = {"mask_value": {"type": "number", "default": 0.0}}

    def output_types(self, inputs):
        (x,) = inputs
        expect_rank(x, (3,), "a sequence")
        expect_float(x)
        return [passthrough(x).with_mask(True)]

    def pad_value(self):
        return float(self["mask_value"])

    def reference(self, inputs, weights):
        (x,) = inputs
        keep = np.any(x.data != self["mask_value"], axis=-1)
        return [Tensor(x.data * keep[..., None], keep)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        differs = g.op("Not", g.op("Equal", x.name, g.const(np.float32(self["mask_value"]))))
        keep = g.cast(g.reduce("ReduceMax", g.cast(differs, "int32"), [-1]), "bool")
        out = g.op("Mul", x.name, g.unsqueeze(g.cast(keep, "float32"), [2]))
        return [Sym(out, self.output_types_[0], keep)]

    # -- Keras import ---------------------------------------------------------------------------
    keras_classes = ("Masking",)

    @classmethod
    def from_keras(cls, f):
        return {"mask_value": f.number("mask_value", 0.0)}

    def keras_new_mask(self):
        return ("any_not_equal", float(self["mask_value"]))
