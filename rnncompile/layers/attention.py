"""AttentionPooling1D: additive attention pooling over a sequence, masked steps excluded exactly.

This is the usual attention layer put on top of an RNN's output sequence (Yang et al. 2016,
"Hierarchical Attention Networks"; Raffel & Ellis 2015, "feed-forward attention"):

    score[b, t]   = tanh(x[b, t] @ kernel + bias) @ score_kernel          (a scalar per step)
    weight[b, :]  = softmax over the VALID steps of score[b, :]              (masked steps: 0)
    output[b]     = sum_t weight[b, t] * x[b, t]                             ([batch, features])

In Keras it is `Dense(units, "tanh")` -> `Dense(1, use_bias=False)` -> a softmax over time that
honours the mask -> a weighted sum, so its weights are those two Dense layers' weights, in Keras
layout: `kernel` (features, units), `bias` (units,), `score_kernel` (units, 1).

Mask rule: it CONSUMES the mask (Keras: `call(inputs, mask)`); the output is a per-sample vector
with no time axis, so no mask goes on. The mask is applied twice, so that padding is ignored
exactly, whatever the padded steps hold:
  * before the softmax, a masked step's score is set to -inf (it cannot be the maximum that the
    softmax subtracts), and its exp is then replaced by an exact 0 with a `Where`, so its weight is
    exactly 0 (not merely tiny);
  * in the weighted sum, a masked step contributes an exact 0 (`Where`), so even NaN or inf in a
    padded step cannot leak in.
and the sums over time accumulate strictly in time order (CumSum in ONNX, a step-by-step loop in
the reference), so the exact zeros of padded steps leave every partial sum unchanged. Hence adding
padding on the right or the left changes not a single bit of the output.

A fully masked row (no valid step) is defined: every weight is 0 and the output is the zero
vector (the softmax denominator 0 is replaced by 1; no 0/0 NaN). `defined_for_empty_rows` stays
True, so verification also feeds fully masked rows.

With `return_attention_scores` (Keras's name for the same option of its attention layers), a
second output `scores` (spec reference `<layer>:1`, ONNX output `<layer>_scores`) [batch, time]
holds the weights (0 on masked steps).
"""
from __future__ import annotations

import numpy as np

from ..layer import (ATTR_BOOL, ATTR_UNITS, Layer, TensorType, Tensor, expect_fixed_features,
                     expect_sequence, register, valid_steps)


@register
class AttentionPooling1D(Layer):
    class_name = "AttentionPooling1D"
    description = ("Additive attention pooling over time: softmax over the valid steps of "
                   "tanh(x kernel + bias) score_kernel, then the weighted sum of x")
    attributes = {
        "units": dict(ATTR_UNITS, description="size of the attention hidden layer"),
        "use_bias": dict(ATTR_BOOL, default=True),
        "return_attention_scores": dict(ATTR_BOOL, default=False,
                                        description="also output the [batch, time] attention weights"),
    }
    required = ("units",)

    # -- shape and mask rule: consumes the mask -----------------------------------------------
    def output_types(self, inputs):
        (x,) = inputs
        expect_sequence(x, "an RNN output sequence")
        features = expect_fixed_features(x)
        outs = [TensorType((x.shape[0], features), "float32", masked=False)]
        if self["return_attention_scores"]:
            outs.append(TensorType((x.shape[0], x.shape[1]), "float32", masked=False))
        return outs

    def output_names(self):
        return ["output", "scores"] if self["return_attention_scores"] else ["output"]

    # -- weights (Keras layout) ---------------------------------------------------------------
    def weight_shapes(self, inputs):
        features, units = inputs[0].shape[-1], self["units"]
        shapes = {"kernel": (features, units)}
        if self["use_bias"]:
            shapes["bias"] = (units,)
        shapes["score_kernel"] = (units, 1)
        return shapes

    # -- reference: float64 NumPy, the source of truth ----------------------------------------
    # Every sum below (over features, units and time) runs element by element, left to right:
    # each step's score is then bitwise independent of where the step sits in the batch, and the
    # exact zeros of padded steps leave every partial sum unchanged. So padding, on either side,
    # does not change a single bit of the reference's output.
    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data, np.float64)                       # [B, T, F]
        keep = valid_steps(x)                                       # [B, T], all True if unmasked
        kernel = weights["kernel"].astype(np.float64)
        v = weights["score_kernel"].astype(np.float64)[:, 0]
        with np.errstate(over="ignore", invalid="ignore"):         # padded steps may hold inf/NaN
            h = weights["bias"].astype(np.float64) if self["use_bias"] else 0.0
            for k in range(data.shape[2]):
                h = h + data[:, :, k:k + 1] * kernel[k]             # x @ kernel + bias: [B, T, U]
            h = np.tanh(h)
            score = np.zeros(data.shape[:2])
            for u in range(h.shape[2]):
                score = score + h[:, :, u] * v[u]                   # [B, T]
            masked_score = np.where(keep, score, -np.inf)           # masked steps: -inf
            mx = masked_score.max(axis=1, keepdims=True)            # -inf on a fully masked row
            shift = np.where(np.isinf(mx), 0.0, mx)
            e = np.where(keep, np.exp(score - shift), 0.0)          # masked steps: exactly 0
        x0 = np.where(keep[..., None], data, 0.0)                   # padded steps hold 0 (NaN-proof)
        num = np.cumsum(e[..., None] * x0, axis=1)[:, -1]           # sequential sums over time
        denom = np.cumsum(e, axis=1)[:, -1:]
        safe = np.where(denom > 0, denom, 1.0)                      # fully masked row: 0 / 1
        result = [Tensor(num / safe)]
        if self["return_attention_scores"]:
            result.append(Tensor(e / safe))
        return result

    # -- lowering: ONNX ops -------------------------------------------------------------------
    # The sums over time are CumSum's last step: a prefix sum accumulates strictly in time order,
    # so the exact zeros of padded steps (before or after the valid ones) change no partial sum.
    # (ReduceSum and MatMul may split a long axis into interleaved partial sums, and then where a
    # valid step sits changes the rounding.)
    def lower(self, g, inputs, weights):
        (x,) = inputs
        h = g.op("MatMul", x.name, g.const(weights["kernel"], "float32", name="kernel"))
        if self["use_bias"]:
            h = g.op("Add", h, g.const(weights["bias"], "float32", name="bias"))
        score = g.op("MatMul", g.op("Tanh", h), g.const(weights["score_kernel"], "float32", name="score_kernel"))
        score = g.squeeze(score, [2])                                              # [B, T]
        zero = g.const(np.float32(0))
        if x.mask is None:
            weight = g.op("Softmax", score, axis=1)
            out = g.reduce("ReduceSum", g.op("Mul", x.name, g.unsqueeze(weight, [2])), [1])
        else:
            m = x.mask
            masked_score = g.op("Where", m, score, g.const(np.float32(-np.inf)))   # masked: -inf
            mx = g.reduce("ReduceMax", masked_score, [1], keepdims=1)              # -inf: empty row
            shift = g.op("Where", g.op("IsInf", mx), zero, mx)
            e = g.op("Where", m, g.op("Exp", g.op("Sub", score, shift)), zero)      # masked: exactly 0
            x0 = g.op("Where", g.unsqueeze(m, [2]), x.name, zero)                  # NaN-proof padding
            time = g.const(np.array(1, np.int64))
            num = g.take(g.op("CumSum", g.op("Mul", x0, g.unsqueeze(e, [2])), time), -1, axis=1)  # [B, F]
            denom = g.unsqueeze(g.take(g.op("CumSum", e, time), -1, axis=1), [1])                # [B, 1]
            safe = g.op("Where", g.op("Greater", denom, zero), denom, g.const(np.float32(1)))
            out = g.op("Div", num, safe)                                           # empty row: 0
            weight = g.op("Div", e, safe)
        result = [self.sym(out)]
        if self["return_attention_scores"]:
            result.append(self.sym(weight, index=1))
        return result
