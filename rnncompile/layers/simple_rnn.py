"""SimpleRNN: h' = activation(x K + b + h R). ONNX RNN computes the same with W = K^T, R = R^T."""
from __future__ import annotations

import numpy as np

from .. import activations as act
from ..layer import register
from .recurrent import RECURRENT_ATTRIBUTES, Recurrent


@register
class SimpleRNN(Recurrent):
    class_name = "SimpleRNN"
    description = "Fully-connected RNN (Keras SimpleRNN)"
    attributes = dict(RECURRENT_ATTRIBUTES)
    onnx_op = "RNN"
    gates = 1
    state_names = ("h",)

    def cell_activations(self):
        return [self["activation"]]

    def step_fn(self, w):
        f = act.get(self["activation"]).numpy
        k, r = w["kernel"].astype(np.float64), w["recurrent_kernel"].astype(np.float64)
        b = w["bias"].astype(np.float64) if self["use_bias"] else 0.0

        def step(x, states):
            h = f(x @ k + b + states[0] @ r)
            return h, [h]
        return step

    def emit_cell(self, g, xw, states, w):
        r = g.const(w["recurrent_kernel"], "float32", name="recurrent_kernel")
        h = act.get(self["activation"]).emit(g, g.op("Add", xw, g.op("MatMul", states[0], r)))
        return h, [h]

    def onnx_params(self, w):
        h = self["units"]
        bias = w["bias"] if self["use_bias"] else np.zeros(h, np.float32)
        return w["kernel"].T, w["recurrent_kernel"].T, np.concatenate([bias, np.zeros(h, np.float32)])

    keras_classes = ("SimpleRNN",)
    keras_cells = ("SimpleRNNCell",)
