"""GRU, both Keras variants. Gates z, r, h in Keras and ONNX alike.
reset_after=True (Keras 3 default) is ONNX linear_before_reset=1 with separate input and recurrent
biases; reset_after=False is linear_before_reset=0."""
from __future__ import annotations

import numpy as np

from .. import activations as act
from ..layer import register
from .recurrent import GATED_ATTRIBUTES, Recurrent, split_gates


@register
class GRU(Recurrent):
    class_name = "GRU"
    description = "Gated Recurrent Unit (Keras GRU)"
    attributes = dict(GATED_ATTRIBUTES, reset_after={"type": "boolean", "default": True})
    onnx_op = "GRU"
    gates = 3
    gate_names = ("z", "r", "h")
    state_names = ("h",)

    def cell_activations(self):
        return [self["recurrent_activation"], self["activation"]]

    def onnx_attributes(self):
        return {"linear_before_reset": 1 if self["reset_after"] else 0}

    def bias_shape(self):
        h3 = 3 * self["units"]
        return (2, h3) if self["reset_after"] else (h3,)

    def step_fn(self, w):
        fa = act.get(self["activation"]).numpy
        fr = act.get(self["recurrent_activation"]).numpy
        k, r = w["kernel"].astype(np.float64), w["recurrent_kernel"].astype(np.float64)
        h3 = 3 * self["units"]
        if not self["use_bias"]:
            b_in, b_rec = np.zeros(h3), np.zeros(h3)
        elif self["reset_after"]:
            b_in, b_rec = w["bias"].astype(np.float64)
        else:
            b_in, b_rec = w["bias"].astype(np.float64), np.zeros(h3)
        rz, rr, rh = split_gates(r, 3)

        def step(x, states):
            (h,) = states
            xz, xr, xh = split_gates(x @ k + b_in, 3)
            bz, br, bh = split_gates(b_rec, 3)
            z = fr(xz + h @ rz + bz)
            rg = fr(xr + h @ rr + br)
            if self["reset_after"]:
                hh = fa(xh + rg * (h @ rh + bh))
            else:
                hh = fa(xh + (rg * h) @ rh + bh)
            h = z * h + (1.0 - z) * hh
            return h, [h]
        return step

    def input_bias(self, w):
        if not self["use_bias"]:
            return None
        return w["bias"][0] if self["reset_after"] else w["bias"]

    def emit_cell(self, g, xw, states, w):
        fa, fr = act.get(self["activation"]).emit, act.get(self["recurrent_activation"]).emit
        (h,) = states
        units = self["units"]
        rk = w["recurrent_kernel"]
        xz, xr, xh = g.op("Split", xw, axis=1, n_out=3)
        if self["reset_after"]:
            hr = g.op("MatMul", h, g.const(rk, "float32", name="recurrent_kernel"))
            if self["use_bias"]:
                hr = g.op("Add", hr, g.const(w["bias"][1], "float32", name="recurrent_bias"))
            hz, hrr, hh = g.op("Split", hr, axis=1, n_out=3)
            z = fr(g, g.op("Add", xz, hz))
            r = fr(g, g.op("Add", xr, hrr))
            cand = fa(g, g.op("Add", xh, g.op("Mul", r, hh)))
        else:
            hzr = g.op("MatMul", h, g.const(rk[:, :2 * units], "float32", name="recurrent_kernel_zr"))
            hz, hrr = g.op("Split", hzr, axis=1, n_out=2)
            z = fr(g, g.op("Add", xz, hz))
            r = fr(g, g.op("Add", xr, hrr))
            rh = g.op("MatMul", g.op("Mul", r, h), g.const(rk[:, 2 * units:], "float32",
                                                          name="recurrent_kernel_h"))
            cand = fa(g, g.op("Add", xh, rh))
        # h' = z h + (1 - z) cand = cand + z (h - cand)
        h = g.op("Add", cand, g.op("Mul", z, g.op("Sub", h, cand)))
        return h, [h]

    def onnx_params(self, w):
        h3 = 3 * self["units"]
        if not self["use_bias"]:
            bias = np.zeros(2 * h3, np.float32)
        elif self["reset_after"]:
            bias = np.concatenate([w["bias"][0], w["bias"][1]])
        else:
            bias = np.concatenate([w["bias"], np.zeros(h3, np.float32)])
        return w["kernel"].T, w["recurrent_kernel"].T, bias

    keras_classes = ("GRU",)
    keras_cells = ("GRUCell",)

    @classmethod
    def from_keras(cls, f):
        # Keras 2.0 had no reset_after (the old GRU, reset before); tf.keras 2 writes it.
        return dict(super().from_keras(f), reset_after=f.cell.boolean("reset_after", f.major >= 3))
