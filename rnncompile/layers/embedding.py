"""Embedding: integer ids -> vectors. With mask_zero, id 0 marks a padded step (mask = ids != 0).

An id outside [0, input_dim) has no vector. rnncompile's CLI, Session and reference refuse it
with a clear error. The ONNX artifact, which cannot raise, answers NaN in every float output of
that batch row (ONNX Gather would wrap -1 to the last row, as Keras 3 on torch does: a
plausible, silently wrong answer; and a NaN vector alone does not survive onnxruntime's
recurrent kernels, which clamp their inputs), so a user of model.onnx in C++, Triton or plain
onnxruntime never gets a number for it. docs/security.md records the measurements."""
from __future__ import annotations

import numpy as np

from ..errors import RunError
from ..layer import ATTR_BOOL, Layer, LayerError, Sym, Tensor, TensorType, register, uniform


@register
class Embedding(Layer):
    class_name = "Embedding"
    description = "Token ids to vectors (Keras Embedding); mask_zero makes id 0 a padding mask"
    attributes = {
        "input_dim": {"type": "integer", "minimum": 1, "maximum": 1 << 24, "description": "vocabulary size"},
        "output_dim": {"type": "integer", "minimum": 1, "maximum": 1 << 16},
        "mask_zero": dict(ATTR_BOOL, default=False),
        "input_length": {"type": ["integer", "null"], "description": "accepted (Keras 2 field)"},
    }
    required = ("input_dim", "output_dim")

    def check(self):
        if self["mask_zero"] and self["input_dim"] < 2:
            return [("input_dim", "with mask_zero, id 0 is padding: input_dim must be at least 2")]
        return []

    def output_types(self, inputs):
        (x,) = inputs
        if not x.dtype.startswith("int"):
            raise LayerError(f"expects integer token ids, got {x.dtype} input")
        if self["mask_zero"] and x.rank != 2:
            raise LayerError(f"mask_zero needs (batch, time) ids, got shape {x}")
        # Keras: compute_mask is `ids != 0` with mask_zero, else None (an incoming mask stops here)
        return [TensorType((*x.shape, self["output_dim"]), "float32", self["mask_zero"])]

    def weight_shapes(self, inputs):
        return {"embeddings": (self["input_dim"], self["output_dim"])}

    def init_weight(self, key, shape, rng):
        return uniform(rng, shape, 1.0)

    def token_range(self):
        return self["input_dim"]

    def token_range_field(self):
        return "input_dim"

    def pad_value(self):
        return 0 if self["mask_zero"] else None

    def reference(self, inputs, weights):
        (x,) = inputs
        ids = np.asarray(x.data)
        if ids.dtype.kind not in "iu":
            raise RunError(f"expected integer token ids, got {ids.dtype} values",
                           where=f"layer {self.name!r} (Embedding)")
        bad = (ids < 0) | (ids >= self["input_dim"])
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise RunError(f"token id {int(ids[where])} at index {where} is outside "
                           f"[0, {self['input_dim']})", where=f"layer {self.name!r} (Embedding)")
        mask = (ids != 0) if self["mask_zero"] else None
        return [Tensor(weights["embeddings"].astype(np.float64)[ids], mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        # Ids outside [0, input_dim) read row 0 here, and their batch row is guarded: every
        # float model output of that row becomes NaN (GraphBuilder.guard_rows). Integer
        # comparisons only: TensorRT's parser takes no BOOL into Less/Greater.
        dtype, n = x.type.dtype, self["input_dim"]
        valid = g.op("And", g.op("Greater", x.name, g.const(np.array(-1, dtype))),
                     g.op("Less", x.name, g.const(np.array(n, dtype))))
        ids = g.op("Where", valid, x.name, g.const(np.array(0, dtype)))
        table = g.const(weights["embeddings"].astype(np.float32), name="embeddings")
        out = g.op("Gather", table, ids, axis=0)
        axes = list(range(1, x.type.rank))
        ok = g.cast(valid, "float32")
        g.guard_rows(g.reduce("ReduceMin", ok, axes) if axes else ok)
        mask = None
        if self["mask_zero"]:
            mask = g.op("Not", g.op("Equal", x.name, g.const(np.array(0, x.type.dtype))))
        return [Sym(out, self.output_types_[0], mask)]

    # -- Keras import ---------------------------------------------------------------------------
    keras_classes = ("Embedding",)

    @classmethod
    def from_keras(cls, f):
        out = {"input_dim": f.integer("input_dim"), "output_dim": f.integer("output_dim"),
               "mask_zero": f.boolean("mask_zero", False)}
        f.get("input_length")
        f.refuse_set("lora_rank", "quantization_config", why="LoRA and quantized layers are not supported")
        return out

    def keras_new_mask(self):
        return ("not_equal", 0.0) if self["mask_zero"] else None
