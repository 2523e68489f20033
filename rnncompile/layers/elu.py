"""ELU with any alpha (Keras ELU layer; Keras 2 and 3 both name it `alpha`, default 1.0):
y = x if x > 0 else alpha * (exp(x) - 1). Keras does not restrict alpha (a negative one is computed
as written). Keeps the mask (Keras supports_masking). Lowered to ONNX Elu (in TensorRT's parser).
(The `elu` activation name, alpha 1, stays an Activation.)"""
from __future__ import annotations

import math

import numpy as np

from ..layer import Layer, Tensor, expect_float, passthrough, register

_LIMIT = 1e6


@register
class ELU(Layer):
    class_name = "ELU"
    description = "x if x > 0 else alpha * (exp(x) - 1) (Keras ELU); keeps the mask"
    attributes = {"alpha": {"type": "number", "minimum": -_LIMIT, "maximum": _LIMIT, "default": 1.0}}
    keras_classes = ("ELU",)
    keras_time_distributed = True

    def check(self):
        a = self["alpha"]
        return [] if math.isfinite(a) else [("alpha", f"must be a finite number, got {a!r}")]

    def output_types(self, inputs):
        expect_float(inputs[0])
        return [passthrough(inputs[0])]

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        alpha = float(np.float32(self["alpha"]))   # a float32 attribute, as in Keras and ONNX
        return [Tensor(np.where(data > 0, data, alpha * np.expm1(np.minimum(data, 0.0))), x.mask)]

    def lowering(self, target=None) -> str:
        return "Elu"

    def lower(self, g, inputs, weights):
        (x,) = inputs
        return [self.sym(g.op("Elu", x.name, alpha=float(np.float32(self["alpha"]))), x.mask)]

    @classmethod
    def from_keras(cls, f):
        v = f.get("alpha", 1.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > _LIMIT:
            f.refuse("alpha", v, f"expected a finite number in [-{_LIMIT:g}, {_LIMIT:g}]")
        return {"alpha": float(v)}
