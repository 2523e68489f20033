"""LeakyReLU with any negative slope (Keras 3 `negative_slope`, default 0.3; Keras 2 `alpha`,
default 0.3): y = x for x >= 0, negative_slope * x otherwise. Keeps the mask (measured). Lowered to
ONNX LeakyRelu. (The `leaky_relu` activation name, slope 0.2, stays an Activation.)"""
from __future__ import annotations

import numpy as np

from ..layer import Layer, Tensor, expect_float, passthrough, register


@register
class LeakyReLU(Layer):
    class_name = "LeakyReLU"
    description = "x if x >= 0 else negative_slope * x (Keras LeakyReLU); keeps the mask"
    attributes = {"negative_slope": {"type": "number", "minimum": 0, "maximum": 1e6, "default": 0.3}}
    keras_classes = ("LeakyReLU",)
    keras_time_distributed = True

    def output_types(self, inputs):
        expect_float(inputs[0])
        return [passthrough(inputs[0])]

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        return [Tensor(np.where(data >= 0, data, self["negative_slope"] * data), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        return [self.sym(g.op("LeakyRelu", x.name, alpha=float(self["negative_slope"])), x.mask)]

    @classmethod
    def from_keras(cls, f):
        key = "negative_slope" if "negative_slope" in f.cfg else "alpha"
        return {"negative_slope": f.number(key, 0.3, 0.0, 1e6)}
