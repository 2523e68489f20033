"""LeakyReLU with any negative slope (Keras 3 `negative_slope`, default 0.3; Keras 2 `alpha`,
default 0.3): y = x for x >= 0, negative_slope * x otherwise. Keeps the mask (measured). Lowered to
ONNX LeakyRelu. (The `leaky_relu` activation name, slope 0.2, stays an Activation.)"""
from __future__ import annotations

import numpy as np

from ..layer import Layer, LayerError, Tensor, expect_float, passthrough, register


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


@register
class PReLU(Layer):
    class_name = "PReLU"
    description = "x if x >= 0 else alpha * x with a learned alpha per element (Keras PReLU); keeps the mask"
    attributes = {"shared_axes": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1, "maximum": 16},
                                  "default": None, "description": "axes (numbered from 1) sharing one alpha"}}
    keras_classes = ("PReLU",)
    keras_weight_paths = {"": "vars/"}

    def output_types(self, inputs):
        (x,) = inputs
        expect_float(x)
        self._alpha_shape(x)
        return [passthrough(x)]

    def _alpha_shape(self, x) -> tuple[int, ...]:
        shared = set(self["shared_axes"] or [])
        if any(a >= x.rank for a in shared):
            raise LayerError(f"shared_axes {sorted(shared)} name axes an input of shape {x} does not have",
                             "shared_axes")
        shape = tuple(1 if i in shared else d for i, d in enumerate(x.shape) if i > 0)
        if None in shape:
            raise LayerError(f"needs fixed sizes on the axes that are not shared (shared_axes), got shape {x}",
                             "shared_axes")
        return shape

    def weight_shapes(self, inputs):
        return {"alpha": self._alpha_shape(inputs[0])}

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        alpha = weights["alpha"].astype(np.float64)
        return [Tensor(np.maximum(data, 0.0) - alpha * np.maximum(-data, 0.0), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        return [self.sym(g.op("PRelu", x.name, g.const(weights["alpha"], "float32", name="alpha")), x.mask)]

    @classmethod
    def from_keras(cls, f):
        shared = f.get("shared_axes")
        if isinstance(shared, int) and not isinstance(shared, bool):
            shared = [shared]
        if shared is not None and not (isinstance(shared, list) and all(isinstance(a, int) and a >= 1 for a in shared)):
            f.refuse("shared_axes", shared, "expected a list of axes numbered from 1")
        return {"shared_axes": shared}
