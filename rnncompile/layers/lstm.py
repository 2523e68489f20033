"""LSTM. Keras gate columns are i, f, c, o; ONNX wants i, o, f, c (see docs/semantics.md)."""
from __future__ import annotations

import numpy as np

from .. import activations as act
from ..layer import register
from .recurrent import GATED_ATTRIBUTES, Recurrent, split_gates

KERAS_TO_ONNX = [0, 3, 1, 2]  # i, f, c, o -> i, o, f, c


def _reorder(a: np.ndarray, axis: int = -1) -> np.ndarray:
    blocks = split_gates(a, 4, axis)
    return np.concatenate([blocks[i] for i in KERAS_TO_ONNX], axis=axis)


@register
class LSTM(Recurrent):
    class_name = "LSTM"
    description = "Long Short-Term Memory layer (Keras LSTM)"
    attributes = dict(GATED_ATTRIBUTES,
                      unit_forget_bias={"type": "boolean", "default": True,
                                        "description": "an initializer setting; no effect on given weights"})
    onnx_op = "LSTM"
    gates = 4
    gate_names = ("i", "f", "c", "o")
    state_names = ("h", "c")

    def cell_activations(self):
        # ONNX order: f (gates), g (cell input), h (cell output)
        return [self["recurrent_activation"], self["activation"], self["activation"]]

    def step_fn(self, w):
        fa = act.get(self["activation"]).numpy
        fr = act.get(self["recurrent_activation"]).numpy
        k, r = w["kernel"].astype(np.float64), w["recurrent_kernel"].astype(np.float64)
        b = w["bias"].astype(np.float64) if self["use_bias"] else 0.0

        def step(x, states):
            h, c = states
            zi, zf, zc, zo = split_gates(x @ k + h @ r + b, 4)
            c = fr(zf) * c + fr(zi) * fa(zc)
            h = fr(zo) * fa(c)
            return h, [h, c]
        return step

    def emit_cell(self, g, xw, states, w):
        fa, fr = act.get(self["activation"]).emit, act.get(self["recurrent_activation"]).emit
        h, c = states
        z = g.op("Add", xw, g.op("MatMul", h, g.const(w["recurrent_kernel"], "float32",
                                                     name="recurrent_kernel")))
        zi, zf, zc, zo = g.op("Split", z, axis=1, n_out=4)
        c = g.op("Add", g.op("Mul", fr(g, zf), c), g.op("Mul", fr(g, zi), fa(g, zc)))
        h = g.op("Mul", fr(g, zo), fa(g, c))
        return h, [h, c]

    def onnx_params(self, w):
        h = self["units"]
        bias = _reorder(w["bias"]) if self["use_bias"] else np.zeros(4 * h, np.float32)
        return (_reorder(w["kernel"]).T, _reorder(w["recurrent_kernel"]).T,
                np.concatenate([bias, np.zeros(4 * h, np.float32)]))

    keras_classes = ("LSTM",)
    keras_cells = ("LSTMCell",)

    @classmethod
    def from_keras(cls, f):
        f.cell.get("unit_forget_bias")  # an initializer setting
        return super().from_keras(f)
