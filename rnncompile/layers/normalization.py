"""Normalization layers, inference form; both keep the mask (Keras supports_masking; measured):
  * BatchNormalization: y = (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta on
    one axis (any non-batch axis). Lowered folded into one Mul and one Add (scale and shift computed
    in float64 at compile time).
  * LayerNormalization: mean and variance over `axis` (an axis or a list of axes) of each sample,
    y = (x - mean) / sqrt(var + epsilon) * gamma + beta. Lowered as ReduceMean/Sub/Mul/Sqrt/Div (all
    native, TensorRT-parsable).
Weights in Keras layout and save order: gamma (scale), beta (center), then BatchNormalization's
moving_mean, moving_variance; gamma/beta of LayerNormalization have the normalized axes' shape.
"""
from __future__ import annotations

import numpy as np

from ..layer import ATTR_BOOL, Layer, LayerError, Tensor, expect_float, passthrough, register, uniform

_EPS = {"type": "number", "exclusiveMinimum": 0, "default": 0.001}


def _axes(layer: Layer, rank: int, value) -> list[int]:
    axes = value if isinstance(value, list) else [value]
    out = []
    for a in axes:
        ax = a + rank if a < 0 else a
        if not 1 <= ax < rank or ax in out:
            raise LayerError(f"axis {value} does not name distinct non-batch axes of an input of rank "
                             f"{rank} (batch axis included)", "axis")
        out.append(ax)
    return sorted(out)


def _fixed(layer: Layer, t, axes: list[int]) -> tuple[int, ...]:
    dims = tuple(t.shape[a] for a in axes)
    if None in dims:
        raise LayerError(f"needs a fixed size on axis {layer['axis']} (its weights depend on it), got shape {t}")
    return dims


def _keras_axis(f):
    axis = f.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, list) and all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
        return axis
    if isinstance(axis, bool) or not isinstance(axis, int):
        f.refuse("axis", axis, "expected an integer axis or a list of them")
    return axis


class _Norm(Layer):

    def output_types(self, inputs):
        (x,) = inputs
        expect_float(x)
        if x.rank < 2:
            raise LayerError(f"expects an input with a non-batch axis, got shape {x}")
        _fixed(self, x, _axes(self, x.rank, self["axis"]))
        return [passthrough(x)]

    def _param_shape(self, rank: int, axes: list[int], dims) -> list[int]:
        shape = [1] * rank
        for a, d in zip(axes, dims):
            shape[a] = d
        return shape

    def weight_shapes(self, inputs):
        x = inputs[0]
        dims = _fixed(self, x, _axes(self, x.rank, self["axis"]))
        keys = (["gamma"] if self["scale"] else []) + (["beta"] if self["center"] else []) + self._extra
        return {k: dims for k in keys}

    def _gamma_beta(self, weights, shape):
        gamma = weights["gamma"].astype(np.float64).reshape(shape) if self["scale"] else 1.0
        beta = weights["beta"].astype(np.float64).reshape(shape) if self["center"] else 0.0
        return gamma, beta


@register
class BatchNormalization(_Norm):
    class_name = "BatchNormalization"
    description = "Batch normalization with the moving statistics (inference); keeps the mask"
    attributes = {
        "axis": {"type": "integer", "minimum": -16, "maximum": 16, "default": -1},
        "epsilon": _EPS,
        "center": dict(ATTR_BOOL, default=True),
        "scale": dict(ATTR_BOOL, default=True),
    }
    _extra = ["moving_mean", "moving_variance"]
    keras_classes = ("BatchNormalization",)

    def init_weight(self, key, shape, rng):
        if key == "moving_variance":
            return uniform(rng, shape, 0.5) + np.float32(1.0)   # positive, in [0.5, 1.5)
        return uniform(rng, shape, 0.5)

    def _fold(self, weights, rank):
        axes = _axes(self, rank, self["axis"])
        shape = self._param_shape(rank, axes, weights["moving_mean"].shape)
        gamma, beta = self._gamma_beta(weights, shape)
        mean = weights["moving_mean"].astype(np.float64).reshape(shape)
        var = weights["moving_variance"].astype(np.float64).reshape(shape)
        scale = gamma / np.sqrt(var + self["epsilon"])
        return mean, scale, beta

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        mean, scale, beta = self._fold(weights, data.ndim)
        return [Tensor((data - mean) * scale + beta, x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        mean, scale, beta = self._fold(weights, x.type.rank)
        shift = np.broadcast_to(beta - mean * scale, scale.shape)
        y = g.op("Mul", x.name, g.const(scale, "float32", name="scale"))
        return [self.sym(g.op("Add", y, g.const(shift, "float32", name="shift")), x.mask)]

    @classmethod
    def from_keras(cls, f):
        if f.boolean("renorm", False):
            f.refuse("renorm", True, "batch renormalization is not supported")
        if f.boolean("synchronized", False):
            f.get("synchronized")   # no effect at inference
        f.get("momentum"), f.get("renorm_clipping"), f.get("renorm_momentum")
        axis = _keras_axis(f)
        if isinstance(axis, list):
            f.refuse("axis", axis, "BatchNormalization over several axes is not supported")
        return {"axis": axis, "epsilon": f.number("epsilon", 0.001), "center": f.boolean("center", True),
                "scale": f.boolean("scale", True)}


@register
class LayerNormalization(_Norm):
    class_name = "LayerNormalization"
    description = "Normalizes each sample over `axis` (mean and variance), then gamma and beta; keeps the mask"
    attributes = {
        "axis": {"oneOf": [{"type": "integer", "minimum": -16, "maximum": 16},
                           {"type": "array", "items": {"type": "integer", "minimum": -16, "maximum": 16},
                            "minItems": 1, "maxItems": 16}], "default": -1},
        "epsilon": _EPS,
        "center": dict(ATTR_BOOL, default=True),
        "scale": dict(ATTR_BOOL, default=True),
    }
    _extra: list[str] = []
    keras_classes = ("LayerNormalization",)

    def init_weight(self, key, shape, rng):
        return uniform(rng, shape, 0.5) + np.float32(1.0 if key == "gamma" else 0.0)

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)
        axes = _axes(self, data.ndim, self["axis"])
        gamma, beta = self._gamma_beta(weights, self._param_shape(data.ndim, axes, _dims(data, axes)))
        mean = data.mean(axis=tuple(axes), keepdims=True)
        d = data - mean
        var = (d * d).mean(axis=tuple(axes), keepdims=True)
        return [Tensor(d / np.sqrt(var + self["epsilon"]) * gamma + beta, x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        rank = x.type.rank
        axes = _axes(self, rank, self["axis"])
        shape = self._param_shape(rank, axes, [x.type.shape[a] for a in axes])
        mean = g.reduce("ReduceMean", x.name, axes, keepdims=1)
        d = g.op("Sub", x.name, mean)
        var = g.reduce("ReduceMean", g.op("Mul", d, d), axes, keepdims=1)
        y = g.op("Div", d, g.op("Sqrt", g.op("Add", var, g.const(np.float32(self["epsilon"])))))
        if self["scale"]:
            y = g.op("Mul", y, g.const(weights["gamma"].reshape(shape), "float32", name="gamma"))
        if self["center"]:
            y = g.op("Add", y, g.const(weights["beta"].reshape(shape), "float32", name="beta"))
        return [self.sym(y, x.mask)]

    @classmethod
    def from_keras(cls, f):
        if f.boolean("rms_scaling", False):
            f.refuse("rms_scaling", True, "RMS scaling is not supported (use the RMSNormalization plugin)")
        return {"axis": _keras_axis(f), "epsilon": f.number("epsilon", 0.001),
                "center": f.boolean("center", True), "scale": f.boolean("scale", True)}


def _dims(data, axes):
    return [data.shape[a] for a in axes]
