"""2-D convolution and pooling for CRNN-style front ends (channels_last [batch, H, W, channels]):
Conv2D, MaxPooling2D, AveragePooling2D. Typically Conv2D -> MaxPooling2D -> Permute/Reshape to
(time, features) -> a recurrent layer. Nothing here carries a mask (Keras drops it too).

Padding per spatial axis exactly as in conv.py (valid, or Keras's "same": the smaller half of
the padding before); lowered to ONNX Conv / MaxPool / AveragePool on NCHW between two Transposes.
"""
from __future__ import annotations

import numpy as np

from ..errors import RunError

from .. import activations as act
from ..layer import ATTR_UNITS, Layer, LayerError, Tensor, TensorType, expect_float, register
from .conv import CONV_COMMON, _channels_last, _out_len, _pads, check_even_same, pool_from_keras

_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 4096}, "minItems": 2, "maxItems": 2}
_NHWC_NCHW, _NCHW_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _pair(f, key: str, default):
    v = f.get(key, default)
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v, v]
    if not (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in v)):
        f.refuse(key, v, "expected a positive integer or a pair of them")
    return list(v)


class _Window2D(Layer):
    time_distributable = True

    def _geometry(self) -> tuple[list[int], list[int], list[int]]:
        """(window spans, strides, dilations) per spatial axis."""
        raise NotImplementedError

    def _spatial(self, x: TensorType) -> list[int | None]:
        if x.rank != 4:
            raise LayerError(f"expects images (batch, height, width, channels), got shape {x}")
        expect_float(x)
        spans, strides, _ = self._geometry()
        return [_out_len(x.shape[1 + i], self["padding"], spans[i], strides[i]) for i in range(2)]

    def min_steps(self) -> int:
        spans, strides, _ = self._geometry()
        return (1 if self["padding"] == "same" else spans[0]) * strides[0]

    def _padded(self, data: np.ndarray, fill: float) -> np.ndarray:
        spans, strides, _ = self._geometry()
        pads = [_pads(self["padding"], data.shape[1 + i], spans[i], strides[i]) for i in range(2)]
        for i in range(2):
            if data.shape[1 + i] + sum(pads[i]) < spans[i]:
                raise RunError(f"axis {1 + i} of size {data.shape[1 + i]} is smaller than the window's {spans[i]} "
                               f"(padding {self['padding']!r}); expected at least {spans[i] - sum(pads[i])}",
                               where=f"layer {self.name!r} ({self.class_name})")
        return np.pad(data, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)

    def _patches(self, data: np.ndarray, fill: float):
        """Yield (ki, kj, window slice [B, Ho, Wo, C]) over the kernel positions."""
        x = self._padded(data, fill)
        spans, s, d = self._geometry()
        k = [(spans[i] - 1) // d[i] + 1 for i in range(2)]
        n = [(x.shape[1 + i] - spans[i]) // s[i] + 1 for i in range(2)]
        for a in range(k[0]):
            for b in range(k[1]):
                yield a, b, x[:, a * d[0]: a * d[0] + (n[0] - 1) * s[0] + 1: s[0],
                              b * d[1]: b * d[1] + (n[1] - 1) * s[1] + 1: s[1]]

    def _onnx_pads(self, x) -> dict:
        spans, strides, _ = self._geometry()
        pads = [_pads(self["padding"], x.type.shape[1 + i], spans[i], strides[i]) for i in range(2)]
        if None in pads:
            return {"auto_pad": "SAME_UPPER"}
        return {"pads": [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]}

    def _nchw(self, g, x: str, op: str, *extra: str, **attrs) -> str:
        y = g.op(op, g.op("Transpose", x, perm=_NHWC_NCHW), *extra, **attrs)
        return g.op("Transpose", y, perm=_NCHW_NHWC)


@register
class Conv2D(_Window2D):
    class_name = "Conv2D"
    description = "2-D convolution over (height, width) (Keras Conv2D, channels_last)"
    attributes = {
        "filters": ATTR_UNITS,
        "kernel_size": _PAIR,
        "strides": dict(_PAIR, default=[1, 1]),
        "padding": {"enum": ["valid", "same"], "default": "valid"},
        "dilation_rate": dict(_PAIR, default=[1, 1]),
        **CONV_COMMON,
    }
    required = ("filters", "kernel_size")
    keras_classes = ("Conv2D",)

    def _geometry(self):
        d = self["dilation_rate"]
        return [(k - 1) * d[i] + 1 for i, k in enumerate(self["kernel_size"])], self["strides"], d

    def output_types(self, inputs):
        (x,) = inputs
        h, w = self._spatial(x)
        c = x.shape[3]
        if c is None or c % self["groups"] or self["filters"] % self["groups"]:
            raise LayerError(f"groups={self['groups']} must divide the input channels ({c}, fixed) and "
                             f"filters ({self['filters']})", "groups")
        return [TensorType((x.shape[0], h, w, self["filters"]), "float32", False)]

    def weight_shapes(self, inputs):
        shapes = {"kernel": (*self["kernel_size"], inputs[0].shape[3] // self["groups"], self["filters"])}
        if self["use_bias"]:
            shapes["bias"] = (self["filters"],)
        return shapes

    def reference(self, inputs, weights):
        w = weights["kernel"].astype(np.float64)
        cg, filters = w.shape[2], w.shape[3]
        fg = filters // self["groups"]
        y = None
        for a, b, patch in self._patches(np.asarray(inputs[0].data, np.float64), 0.0):
            part = np.concatenate([patch[..., gi * cg:(gi + 1) * cg] @ w[a, b, :, gi * fg:(gi + 1) * fg]
                                   for gi in range(self["groups"])], axis=-1)
            y = part if y is None else y + part
        if self["use_bias"]:
            y = y + weights["bias"].astype(np.float64)
        return [Tensor(act.get(self["activation"]).numpy(y))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        w = g.const(np.transpose(weights["kernel"], (3, 2, 0, 1)), "float32", name="kernel")   # [F, C/g, kh, kw]
        b = [g.const(weights["bias"], "float32", name="bias")] if self["use_bias"] else []
        y = self._nchw(g, x.name, "Conv", w, *b, kernel_shape=list(self["kernel_size"]),
                       strides=list(self["strides"]), dilations=list(self["dilation_rate"]),
                       group=self["groups"], **self._onnx_pads(x))
        return [self.sym(act.get(self["activation"]).emit(g, y))]

    @classmethod
    def from_keras(cls, f):
        _channels_last(f)
        f.refuse_set("lora_rank", "quantization_config", why="LoRA and quantized layers are not supported")
        return {"filters": f.integer("filters"), "kernel_size": _pair(f, "kernel_size", None),
                "strides": _pair(f, "strides", 1), "padding": f.get("padding", "valid"),
                "dilation_rate": _pair(f, "dilation_rate", 1), "groups": f.get("groups", 1),
                "activation": f.activation("activation", "linear"), "use_bias": f.boolean("use_bias", True)}


class _Pool2D(_Window2D):
    attributes = {
        "pool_size": dict(_PAIR, default=[2, 2]),
        "strides": {"oneOf": [_PAIR, {"type": "null"}], "default": None, "description": "default: pool_size"},
        "padding": {"enum": ["valid", "same"], "default": "valid"},
    }

    def _geometry(self):
        return list(self["pool_size"]), list(self["strides"] or self["pool_size"]), [1, 1]

    def output_types(self, inputs):
        (x,) = inputs
        h, w = self._spatial(x)
        return [TensorType((x.shape[0], h, w, x.shape[3]), "float32", False)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        spans, strides, _ = self._geometry()
        return [self.sym(self._nchw(g, x.name, self._onnx, kernel_shape=spans, strides=strides,
                                    **self._onnx_pads(x)))]

    @classmethod
    def from_keras(cls, f):
        return pool_from_keras(f, _pair)


@register
class MaxPooling2D(_Pool2D):
    class_name = "MaxPooling2D"
    description = "Max over (height, width) windows (Keras MaxPooling2D, channels_last)"
    keras_classes = ("MaxPooling2D",)
    _onnx = "MaxPool"

    def reference(self, inputs, weights):
        return [Tensor(np.max([p for _, _, p in self._patches(np.asarray(inputs[0].data, np.float64), -np.inf)],
                              axis=0))]


@register
class AveragePooling2D(_Pool2D):
    class_name = "AveragePooling2D"
    description = "Mean over (height, width) windows, padding excluded (Keras AveragePooling2D)"
    keras_classes = ("AveragePooling2D",)
    _onnx = "AveragePool"

    def output_types(self, inputs):
        out = super().output_types(inputs)
        spans, strides, _ = self._geometry()
        for i in range(2):
            check_even_same(self["padding"], inputs[0].shape[1 + i], spans[i], strides[i])
        return out

    def reference(self, inputs, weights):
        data = np.asarray(inputs[0].data, np.float64)
        total = sum(p for _, _, p in self._patches(data, 0.0))
        count = sum(p for _, _, p in self._patches(np.ones_like(data[..., :1]), 0.0))
        return [Tensor(total / count)]
