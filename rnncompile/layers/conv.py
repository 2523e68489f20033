"""Convolution and pooling over time (channels_last, [batch, time, channels]): Conv1D,
MaxPooling1D, AveragePooling1D.

Masks: Keras 3.15 DROPS an incoming mask at all three (measured): the convolution and the pooling
run over every step, padded ones included, and no mask goes on.

Padding as Keras computes it: "valid" (none), "causal" (Conv1D only: (kernel - 1) * dilation
steps on the left), "same": total = max((kernel - 1) * dilation - (T - 1) % strides, 0), the
smaller half on the left (TensorFlow's rule, which Keras's torch backend copies). Lowered to ONNX
Conv / MaxPool / AveragePool on [batch, channels, time] between two Transposes; with a dynamic
time axis and strides > 1 "same" becomes auto_pad=SAME_UPPER (the same split). AveragePooling1D
with "same" averages only the real steps of a window (ONNX count_include_pad=0), and only where
the padding is even (else Keras's backends disagree: `check_even_same`).
"""
from __future__ import annotations

import numpy as np

from ..errors import RunError

from .. import activations as act
from ..layer import (ATTR_BOOL, ATTR_UNITS, LayerError, Tensor, TensorType, expect_fixed_features,
                     expect_sequence, register)
from .reshaping import DropsMask

_POS = {"type": "integer", "minimum": 1, "maximum": 4096}
#: attributes Conv1D and Conv2D share
CONV_COMMON = {
    "groups": dict(_POS, default=1),
    "activation": {"enum": list(act.NAMES), "default": "linear"},
    "use_bias": dict(ATTR_BOOL, default=True),
}


def _one(f, key: str, default):
    """A Keras size option written as n or [n]."""
    v = f.get(key, default)
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        f.refuse(key, v, "expected a positive integer")
    return v


def _channels_last(f) -> None:
    fmt = f.get("data_format")
    if fmt not in (None, "channels_last"):
        f.refuse("data_format", fmt, "only channels_last (time on axis 1) is supported")


def _pads(padding: str, t: int | None, span: int, stride: int) -> tuple[int, int] | None:
    """(left, right) padding of the time axis; None when it depends on a dynamic length."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if t is None:
        return ((span - 1) // 2, span - 1 - (span - 1) // 2) if stride == 1 else None
    total = max(span - 1 - (t - 1) % stride, 0)
    return total // 2, total - total // 2


def _out_len(t: int | None, padding: str, span: int, stride: int) -> int | None:
    if t is None:
        return None
    left, right = _pads(padding, t, span, stride)
    n = (t + left + right - span) // stride + 1
    if n < 1:
        raise LayerError(f"a sequence of {t} steps is shorter than the window ({span} steps)")
    return n


def check_even_same(padding: str, t: int | None, span: int, stride: int) -> None:
    """AveragePooling with padding="same" only where the padding is even on both sides: where it
    is not, Keras's backends disagree (TensorFlow averages the real steps only, torch repeats the
    edge step into the window), so there is no one Keras answer to reproduce."""
    if padding != "same":
        return
    even = (stride == 1 and span % 2 == 1) if t is None else max(span - 1 - (t - 1) % stride, 0) % 2 == 0
    if not even:
        size = "a variable size" if t is None else f"size {t}"
        raise LayerError(f"padding='same' pads an axis of {size} unevenly here (window {span}, stride "
                         f"{stride}); Keras's backends average such windows differently (TensorFlow: real "
                         f"steps only, torch: the edge step repeated), so this is not supported", "padding")


class _Window(DropsMask):
    """Shared shape rule and NCW lowering of a window over time."""

    def _geometry(self) -> tuple[int, int, int]:
        """(window span in steps, stride, dilation)."""
        raise NotImplementedError

    def min_steps(self) -> int:
        """For the verifier: a factor of sequence length that lets this layer and what follows
        it run (the window span unless padded, times the stride)."""
        span, stride, _ = self._geometry()
        return (1 if self["padding"] in ("same", "causal") else span) * stride

    def _time_out(self, x: TensorType) -> int | None:
        span, stride, _ = self._geometry()
        return _out_len(x.shape[1], self["padding"], span, stride)

    def _pad_ref(self, data: np.ndarray, fill: float) -> np.ndarray:
        span, stride, _ = self._geometry()
        left, right = _pads(self["padding"], data.shape[1], span, stride)
        if data.shape[1] + left + right < span:
            raise RunError(f"{data.shape[1]} time step(s) are fewer than the window's {span} (padding "
                           f"{self['padding']!r}); expected at least {span - left - right}",
                           where=f"layer {self.name!r} ({self.class_name})")
        return np.pad(data, ((0, 0), (left, right), (0, 0)), constant_values=fill)

    def _onnx_pads(self, x) -> dict:
        span, stride, _ = self._geometry()
        pads = _pads(self["padding"], x.type.shape[1], span, stride)
        return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": [pads[0], pads[1]]}

    def _ncw(self, g, x: str, op: str, *extra: str, **attrs) -> str:
        y = g.op(op, g.op("Transpose", x, perm=[0, 2, 1]), *extra, **attrs)
        return g.op("Transpose", y, perm=[0, 2, 1])


@register
class Conv1D(_Window):
    class_name = "Conv1D"
    description = "1-D convolution over time (Keras Conv1D); Keras drops the mask here"
    attributes = {
        "filters": ATTR_UNITS,
        "kernel_size": _POS,
        "strides": dict(_POS, default=1),
        "padding": {"enum": ["valid", "same", "causal"], "default": "valid"},
        "dilation_rate": dict(_POS, default=1),
        **CONV_COMMON,
    }
    required = ("filters", "kernel_size")
    keras_classes = ("Conv1D",)

    def _geometry(self):
        d = self["dilation_rate"]
        return (self["kernel_size"] - 1) * d + 1, self["strides"], d

    def output_types(self, inputs):
        (x,) = inputs
        expect_sequence(x)
        c = expect_fixed_features(x)
        if c % self["groups"] or self["filters"] % self["groups"]:
            raise LayerError(f"groups={self['groups']} must divide the input channels ({c}) and "
                             f"filters ({self['filters']})", "groups")
        if self["strides"] > 1 and self["dilation_rate"] > 1:
            raise LayerError("strides > 1 together with dilation_rate > 1 is not supported (Keras "
                             "refuses it too)", "strides")
        return [TensorType((x.shape[0], self._time_out(x), self["filters"]), "float32", False)]

    def weight_shapes(self, inputs):
        shapes = {"kernel": (self["kernel_size"], inputs[0].shape[-1] // self["groups"], self["filters"])}
        if self["use_bias"]:
            shapes["bias"] = (self["filters"],)
        return shapes

    def reference(self, inputs, weights):
        x = self._pad_ref(np.asarray(inputs[0].data, np.float64), 0.0)
        w = weights["kernel"].astype(np.float64)
        k, cg, filters = w.shape
        s, d = self["strides"], self["dilation_rate"]
        n = (x.shape[1] - (k - 1) * d - 1) // s + 1
        fg = filters // self["groups"]
        y = np.zeros((x.shape[0], n, filters))
        for j in range(k):
            seg = x[:, j * d: j * d + (n - 1) * s + 1: s, :]
            for gi in range(self["groups"]):
                y[..., gi * fg:(gi + 1) * fg] += seg[..., gi * cg:(gi + 1) * cg] @ w[j, :, gi * fg:(gi + 1) * fg]
        if self["use_bias"]:
            y = y + weights["bias"].astype(np.float64)
        return [Tensor(act.get(self["activation"]).numpy(y))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        w = g.const(np.transpose(weights["kernel"], (2, 1, 0)), "float32", name="kernel")  # [F, C/g, k]
        b = [g.const(weights["bias"], "float32", name="bias")] if self["use_bias"] else []
        y = self._ncw(g, x.name, "Conv", w, *b, kernel_shape=[self["kernel_size"]], strides=[self["strides"]],
                      dilations=[self["dilation_rate"]], group=self["groups"], **self._onnx_pads(x))
        return [self.sym(act.get(self["activation"]).emit(g, y))]

    @classmethod
    def from_keras(cls, f):
        _channels_last(f)
        f.refuse_set("lora_rank", "quantization_config", why="LoRA and quantized layers are not supported")
        return {"filters": f.integer("filters"), "kernel_size": _one(f, "kernel_size", None),
                "strides": _one(f, "strides", 1), "padding": f.get("padding", "valid"),
                "dilation_rate": _one(f, "dilation_rate", 1), "groups": _one(f, "groups", 1),
                "activation": f.activation("activation", "linear"), "use_bias": f.boolean("use_bias", True)}


class _Pool1D(_Window):
    attributes = {
        "pool_size": dict(_POS, default=2),
        "strides": {"type": ["integer", "null"], "minimum": 1, "maximum": 4096, "default": None,
                    "description": "default: pool_size"},
        "padding": {"enum": ["valid", "same"], "default": "valid"},
    }

    def _geometry(self):
        return self["pool_size"], self["strides"] or self["pool_size"], 1

    def output_types(self, inputs):
        (x,) = inputs
        expect_sequence(x)
        return [TensorType((x.shape[0], self._time_out(x), x.shape[2]), "float32", False)]

    def _windows(self, data: np.ndarray, fill: float) -> np.ndarray:
        """[batch, out, pool, channels] windows of the padded input."""
        x = self._pad_ref(data, fill)
        span, stride, _ = self._geometry()
        n = (x.shape[1] - span) // stride + 1
        return np.stack([x[:, j: j + (n - 1) * stride + 1: stride] for j in range(span)], axis=2)

    def lower(self, g, inputs, weights):
        (x,) = inputs
        span, stride, _ = self._geometry()
        y = self._ncw(g, x.name, self._onnx, kernel_shape=[span], strides=[stride], **self._onnx_pads(x))
        return [self.sym(y)]

    @classmethod
    def from_keras(cls, f):
        return pool_from_keras(f, _one)


def pool_from_keras(f, size) -> dict:
    """A Keras pooling layer's options, sizes read by `size(f, key, default)`."""
    _channels_last(f)
    return {"pool_size": size(f, "pool_size", 2),
            "strides": None if f.get("strides") is None else size(f, "strides", None),
            "padding": f.get("padding", "valid")}


@register
class MaxPooling1D(_Pool1D):
    class_name = "MaxPooling1D"
    description = "Max over windows of time steps (Keras MaxPooling1D); drops the mask"
    keras_classes = ("MaxPooling1D",)
    _onnx = "MaxPool"

    def reference(self, inputs, weights):
        return [Tensor(self._windows(np.asarray(inputs[0].data, np.float64), -np.inf).max(axis=2))]


@register
class AveragePooling1D(_Pool1D):
    class_name = "AveragePooling1D"
    description = "Mean over windows of time steps, padding excluded (Keras AveragePooling1D); drops the mask"
    keras_classes = ("AveragePooling1D",)
    _onnx = "AveragePool"

    def output_types(self, inputs):
        out = super().output_types(inputs)
        check_even_same(self["padding"], inputs[0].shape[1], *self._geometry()[:2])
        return out

    def reference(self, inputs, weights):
        data = np.asarray(inputs[0].data, np.float64)
        total = self._windows(data, 0.0).sum(axis=2)
        count = self._windows(np.ones_like(data[..., :1]), 0.0).sum(axis=2)
        return [Tensor(total / count)]
