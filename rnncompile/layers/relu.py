"""ReLU with Keras 3's options (`keras.activations.relu`, the ReLU layer): with t = threshold,

    y = clip(x if x > t else 0, 0, max_value) - negative_slope * max(t - x, 0)

(no clip when max_value is None). So x == t gives exactly 0; below the threshold the slope acts
on x - t (not on x); max_value = 0 leaves only the negative part; a max_value under the threshold
jumps from 0 to max_value at t. Keras casts threshold and max_value to the input's float32, and
so does the reference (an input equal to float32(0.3) is not above a threshold of 0.3). Keras 2
(tf.keras, Keras >= 2.2.3) has the same options and formula, and Keras 2's ThresholdedReLU(theta)
is ReLU(threshold=theta). Keeps the mask (Keras supports_masking).

Lowered with native ops only (all in TensorRT's parser): Relu, Clip or LeakyRelu (+ Min) without a
threshold; ThresholdedRelu, Min, Sub, Relu, Mul with one.
"""
from __future__ import annotations

import math

import numpy as np

from ..layer import Layer, Tensor, expect_float, passthrough, register

_F32_MAX = 3.4e38
_OPT = {"type": "number", "minimum": 0, "maximum": _F32_MAX}


def f32(v: float) -> float:
    """A float option as Keras uses it on a float32 input."""
    return float(np.float32(v))


@register
class ReLU(Layer):
    class_name = "ReLU"
    description = ("clip(x if x > threshold else 0, 0, max_value) - negative_slope * max(threshold - x, 0) "
                   "(Keras ReLU); keeps the mask")
    attributes = {
        "max_value": {"type": ["number", "null"], "minimum": 0, "maximum": _F32_MAX, "default": None,
                      "description": "upper clip (null: none)"},
        "negative_slope": dict(_OPT, default=0.0, description="slope below the threshold"),
        "threshold": dict(_OPT, default=0.0, description="x at or below it is 0 (before the slope)"),
    }
    keras_classes = ("ReLU", "ThresholdedReLU")
    keras_time_distributed = True

    def check(self):
        return [(k, f"must be a finite number >= 0, got {self[k]!r}") for k in self.attributes
                if self[k] is not None and not (isinstance(self[k], (int, float)) and math.isfinite(self[k]))]

    def output_types(self, inputs):
        expect_float(inputs[0])
        return [passthrough(inputs[0])]

    def _opts(self) -> tuple[float | None, float, float]:
        mx = self["max_value"]
        return (None if mx is None else f32(mx)), f32(self["negative_slope"]), f32(self["threshold"])

    def reference(self, inputs, weights):
        (x,) = inputs
        mx, slope, thr = self._opts()
        data = np.asarray(x.data, np.float64)
        y = np.where(data > thr, data, 0.0)
        if mx is not None:
            y = np.clip(y, 0.0, mx)
        if slope:
            y = y - slope * np.maximum(thr - data, 0.0)
        return [Tensor(y, x.mask)]

    def lowering(self, target=None) -> str:
        return " + ".join(op for op, _ in self._plan())

    def _plan(self):
        """The ONNX ops, in order: (op, what it computes)."""
        mx, slope, thr = self._opts()
        if thr == 0:
            head = [("LeakyRelu", "x or slope * x")] if slope else \
                [("Clip" if mx is not None else "Relu", "relu, clipped")]
            tail = [("Min", "upper clip")] if slope and mx is not None else []
            return head + tail
        steps = [("ThresholdedRelu", "x if x > threshold else 0")]
        if mx is not None:
            steps.append(("Min", "upper clip"))
        if slope:
            steps += [("Sub", "threshold - x"), ("Relu", ""), ("Mul", "slope"), ("Sub", "minus the slope part")]
        return steps

    def lower(self, g, inputs, weights):
        (x,) = inputs
        mx, slope, thr = self._opts()
        c = lambda v: g.const(np.float32(v))  # noqa: E731
        if thr == 0:
            if slope:
                y = g.op("LeakyRelu", x.name, alpha=slope)
                y = g.op("Min", y, c(mx)) if mx is not None else y
            else:
                y = g.op("Clip", x.name, c(0.0), c(mx)) if mx is not None else g.op("Relu", x.name)
            return [self.sym(y, x.mask)]
        y = g.op("ThresholdedRelu", x.name, alpha=thr)     # x > thr ? x : 0, so y >= 0: Min clips
        if mx is not None:
            y = g.op("Min", y, c(mx))
        if slope:
            neg = g.op("Relu", g.op("Sub", c(thr), x.name))     # Keras: relu(-x + threshold), same bits
            y = g.op("Sub", y, g.op("Mul", c(slope), neg))
        return [self.sym(y, x.mask)]

    @classmethod
    def from_keras(cls, f):
        return _KERAS[f.keras_class](f)


def _option(f, key, default, nullable=False):
    v = f.get(key, default)
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v > _F32_MAX:
        f.refuse(key, v, "expected a finite number >= 0" + (" or null" if nullable else "")
                 + " (Keras raises for a negative one)")
    return float(v)


def _relu(f):
    return {"max_value": _option(f, "max_value", None, nullable=True),
            "negative_slope": _option(f, "negative_slope", 0.0),
            "threshold": _option(f, "threshold", 0.0)}


def _thresholded(f):   # Keras 2: inputs * cast(inputs > theta)
    return {"max_value": None, "negative_slope": 0.0, "threshold": _option(f, "theta", 1.0)}


_KERAS = {"ReLU": _relu, "ThresholdedReLU": _thresholded}


