"""Keras's `Attention` (Luong: dot or concat scores) and `AdditiveAttention` (Bahdanau), inputs
`[query, value]` or `[query, value, key]` (key defaults to value):

    Attention, dot:        score[b, i, j] = scale * (query[b, i] . key[b, j])        (scale: 1 unless use_scale)
    Attention, concat:     score = concat_score_weight * sum_d tanh(scale * (query[b, i, d] + key[b, j, d]))
    AdditiveAttention:     score = sum_d scale[d] * tanh(query[b, i, d] + key[b, j, d])
    weights = softmax_j(score) over the allowed steps j; output[b, i] = sum_j weights * value[b, j]

Masks, as Keras 3.15 applies them: a step j is allowed where value's mask is true (and, with
`use_causal_mask`, j <= i). Keras subtracts 1e9 from the other scores in float32, where that
rounds every such score to exactly -1e9: so their weight is 0 and a query row with NO allowed step
weighs every value step equally (1 / time). The output is 0 where the query's mask is false, and
the query's mask travels on with the output. `return_attention_scores` (a call argument in Keras)
adds the weights as a second output `scores` [batch, Tq, Tv]. `dropout` has no effect at inference.
"""
from __future__ import annotations

import numpy as np

from ..errors import RunError
from ..layer import ATTR_BOOL, Layer, LayerError, Tensor, TensorType, expect_float, register

_NEG = np.float32(-1e9)


class _Attention(Layer):
    keras_list_input = True
    #: call arguments of the Keras layer that the spec keeps as attributes (the importer reads them)
    keras_call_options = ("use_causal_mask", "return_attention_scores")

    def output_types(self, inputs):
        if len(inputs) not in (2, 3):
            raise LayerError(f"takes [query, value] or [query, value, key], got {len(inputs)} inputs")
        for t in inputs:
            expect_float(t)
            if t.rank != 3:
                raise LayerError(f"expects sequences (batch, time, features), got shape {t}")
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        if q.shape[2] is None or q.shape[2] != k.shape[2]:
            raise LayerError(f"query and key need the same fixed feature size, got {q} and {k}")
        if k.shape[1] is not None and v.shape[1] is not None and k.shape[1] != v.shape[1]:
            raise LayerError(f"key and value need the same time axis, got {k} and {v}")
        outs = [TensorType((q.shape[0], q.shape[1], v.shape[2]), "float32", q.masked)]
        if self["return_attention_scores"]:
            outs.append(TensorType((q.shape[0], q.shape[1], v.shape[1]), "float32", False))
        return outs

    def output_names(self):
        return ["output", "scores"] if self["return_attention_scores"] else ["output"]

    def equal_lengths(self) -> bool:
        # the causal rule compares query and value positions; a separate key has value's steps
        return self["use_causal_mask"] or len(self.input_types) == 3

    # -- reference ------------------------------------------------------------------------------
    def reference(self, inputs, weights):
        q = np.asarray(inputs[0].data, np.float64)
        v = np.asarray(inputs[1].data, np.float64)
        k = np.asarray(inputs[2].data, np.float64) if len(inputs) == 3 else v
        if k.shape[1] != v.shape[1]:
            raise RunError(f"key has {k.shape[1]} time steps and value {v.shape[1]}; they must be equal",
                           where=f"layer {self.name!r} ({self.class_name})")
        s = self._scores_np(q, k, weights)
        allowed = np.ones(s.shape, bool)
        if inputs[1].mask is not None:
            allowed &= np.asarray(inputs[1].mask, bool)[:, None, :]
        if self["use_causal_mask"]:
            allowed &= np.tril(np.ones(s.shape[1:], bool))[None]
        some = allowed.any(-1, keepdims=True)
        mx = np.where(allowed, s, -np.inf).max(-1, keepdims=True)
        e = np.where(allowed, np.exp(s - np.where(some, mx, 0.0)), 0.0)
        w = np.where(some, e / np.where(some, e.sum(-1, keepdims=True), 1.0), 1.0 / s.shape[-1])
        out = w @ v
        qm = inputs[0].mask
        if qm is not None:
            out = np.where(np.asarray(qm, bool)[..., None], out, 0.0)
        res = [Tensor(out, qm)]
        if self["return_attention_scores"]:
            res.append(Tensor(w))
        return res

    # -- lowering -------------------------------------------------------------------------------
    def lower(self, g, inputs, weights):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) == 3 else v
        s = self._scores_onnx(g, q.name, k.name, weights)
        allowed = None
        if v.mask is not None:
            allowed = g.unsqueeze(v.mask, [1])                                    # [B, 1, Tv]
        if self["use_causal_mask"]:
            i64 = np.int64
            zero, one = g.const(np.array(0, i64)), g.const(np.array(1, i64))
            tq = g.op("Range", zero, g.squeeze(g.dim(q.name, 1), [0]), one)
            tv = g.op("Range", zero, g.squeeze(g.dim(v.name, 1), [0]), one)
            causal = g.op("GreaterOrEqual", g.unsqueeze(tq, [1]), g.unsqueeze(tv, [0]))   # int64 in
            allowed = causal if allowed is None else g.op("And", allowed, causal)
        if allowed is not None:
            s = g.op("Where", allowed, s, g.const(_NEG))
        w = g.op("Softmax", s, axis=-1)
        out = g.op("MatMul", w, v.name)
        if q.mask is not None:
            out = g.op("Where", g.unsqueeze(q.mask, [2]), out, g.const(np.float32(0)))
        res = [self.sym(out, q.mask)]
        if self["return_attention_scores"]:
            res.append(self.sym(w, index=1))
        return res

    @classmethod
    def from_keras(cls, f):
        f.get("dropout")   # no effect at inference
        f.random_in_training(bool(f.get("dropout")))
        return cls._keras_options(f)


_COMMON = {
    "use_scale": dict(ATTR_BOOL, default=False),
    "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                "description": "accepted; no effect at inference"},
    "use_causal_mask": dict(ATTR_BOOL, default=False),
    "return_attention_scores": dict(ATTR_BOOL, default=False),
}


@register
class Attention(_Attention):
    class_name = "Attention"
    description = "Dot-product (Luong) attention of [query, value(, key)]; keeps the query's mask"
    attributes = dict(_COMMON, score_mode={"enum": ["dot", "concat"], "default": "dot"})
    keras_classes = ("Attention",)

    def weight_shapes(self, inputs):
        shapes = {"scale": ()} if self["use_scale"] else {}
        if self["score_mode"] == "concat":
            shapes["concat_score_weight"] = ()
        return shapes

    def _scores_np(self, q, k, weights):
        scale = float(weights["scale"]) if self["use_scale"] else 1.0
        if self["score_mode"] == "dot":
            return np.einsum("bid,bjd->bij", q, k) * scale
        return float(weights["concat_score_weight"]) * np.tanh(scale * (q[:, :, None] + k[:, None])).sum(-1)

    def _scores_onnx(self, g, q, k, weights):
        scale = g.const(np.asarray(weights["scale"], np.float32), name="scale") if self["use_scale"] else None
        if self["score_mode"] == "dot":
            s = g.op("MatMul", q, g.op("Transpose", k, perm=[0, 2, 1]))
            return g.op("Mul", s, scale) if scale else s
        t = g.op("Add", g.unsqueeze(q, [2]), g.unsqueeze(k, [1]))                 # [B, Tq, Tv, D]
        if scale:
            t = g.op("Mul", t, scale)
        s = g.reduce("ReduceSum", g.op("Tanh", t), [3])
        w = g.const(np.asarray(weights["concat_score_weight"], np.float32), name="concat_score_weight")
        return g.op("Mul", s, w)

    @classmethod
    def _keras_options(cls, f):
        mode = f.get("score_mode", "dot")
        if mode not in ("dot", "concat"):
            f.refuse("score_mode", mode, "expected dot or concat")
        return {"use_scale": f.boolean("use_scale", False), "score_mode": mode,
                "dropout": f.number("dropout", 0.0, 0.0, 1.0)}


@register
class AdditiveAttention(_Attention):
    class_name = "AdditiveAttention"
    description = "Additive (Bahdanau) attention of [query, value(, key)]; keeps the query's mask"
    attributes = dict(_COMMON, use_scale=dict(ATTR_BOOL, default=True))
    keras_classes = ("AdditiveAttention",)

    def weight_shapes(self, inputs):
        return {"scale": (inputs[0].shape[2],)} if self["use_scale"] else {}

    def _scores_np(self, q, k, weights):
        scale = weights["scale"].astype(np.float64) if self["use_scale"] else 1.0
        return (scale * np.tanh(q[:, :, None] + k[:, None])).sum(-1)

    def _scores_onnx(self, g, q, k, weights):
        t = g.op("Tanh", g.op("Add", g.unsqueeze(q, [2]), g.unsqueeze(k, [1])))
        if self["use_scale"]:
            t = g.op("Mul", t, g.const(weights["scale"], "float32", name="scale"))
        return g.reduce("ReduceSum", t, [3])

    @classmethod
    def _keras_options(cls, f):
        return {"use_scale": f.boolean("use_scale", True), "dropout": f.number("dropout", 0.0, 0.0, 1.0)}
