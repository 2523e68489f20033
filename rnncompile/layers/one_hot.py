"""CategoryEncoding (output_mode="one_hot") and OneHot (`keras.ops.one_hot` in a functional graph,
saved as an op node): integer ids -> one-hot float vectors. OneHot always appends the new axis.

Keras 3.15 (pinned by the goldens): an input whose last axis has size 1 has that axis replaced
by `num_tokens`; any other input gets a new last axis of `num_tokens`. The layer does not support
masking in Keras (supports_masking is False): an incoming mask is dropped (integer inputs carry
none unless a SequenceMask put one on), and `summary` says so.

An id outside [0, num_tokens) has no one-hot vector (measured, Keras 3.15 on torch: an id beyond
the range raises "Class values must be smaller than num_classes", a negative one answers zeros).
rnncompile's CLI, Session and reference refuse it with a clear error; the ONNX artifact, which
cannot raise, answers NaN in every float output of that batch row (Embedding's row guard).
"""
from __future__ import annotations

import numpy as np

from ..errors import RunError
from ..layer import LayerError, Tensor, TensorType, register
from .reshaping import DropsMask


@register
class CategoryEncoding(DropsMask):
    class_name = "CategoryEncoding"
    description = ("One-hot encodes integer ids (Keras CategoryEncoding, output_mode one_hot): a last axis "
                   "of size 1 becomes num_tokens wide, else a num_tokens axis is appended")
    attributes = {
        "num_tokens": {"type": "integer", "minimum": 1, "maximum": 1 << 20},
        "output_mode": {"enum": ["one_hot"], "default": "one_hot"},
    }
    required = ("num_tokens",)
    keras_classes = ("CategoryEncoding",)
    _tokens_field = "num_tokens"

    def output_types(self, inputs):
        (x,) = inputs
        if not x.dtype.startswith("int"):
            raise LayerError(f"expects integer ids, got {x.dtype} input")
        if x.rank < 2:
            raise LayerError(f"expects ids of shape (batch, ...), got shape {x}")
        keep = x.shape[:-1] if x.shape[-1] == 1 else x.shape
        return [TensorType((*keep, self["num_tokens"]), "float32", False)]

    @property
    def _tokens(self) -> int:
        return self["num_tokens"]

    def token_range(self):
        return self._tokens

    def token_range_field(self):
        return self._tokens_field

    def _squeezes(self) -> bool:
        return self.input_types[0].shape[-1] == 1

    def reference(self, inputs, weights):
        ids = np.asarray(inputs[0].data)
        where = f"layer {self.name!r} ({self.class_name})"
        if ids.dtype.kind not in "iu":
            raise RunError(f"expected integer ids, got {ids.dtype} values", where=where)
        n = self._tokens
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise RunError(f"id {int(ids[at])} at index {at} is outside [0, {n})", where=where)
        if self._squeezes():
            ids = ids[..., 0]
        return [Tensor((ids[..., None] == np.arange(n)).astype(np.float64))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        dtype, n = x.type.dtype, self._tokens
        # Integer comparisons only (TensorRT's parser takes no BOOL into Equal/Less/Greater);
        # Equal broadcasts ids [..., 1] against the classes [n] to [..., n].
        ids = x.name if self._squeezes() else g.unsqueeze(x.name, [x.type.rank])
        hot = g.op("Equal", ids, g.const(np.arange(n, dtype=dtype)))
        valid = g.op("And", g.op("Greater", x.name, g.const(np.array(-1, dtype))),
                     g.op("Less", x.name, g.const(np.array(n, dtype))))
        ok = g.cast(valid, "float32")
        axes = list(range(1, x.type.rank))
        g.guard_rows(g.reduce("ReduceMin", ok, axes))
        return [self.sym(g.cast(hot, "float32"))]

    @classmethod
    def from_keras(cls, f):
        mode = f.get("output_mode", "multi_hot")
        if mode != "one_hot":
            f.refuse("output_mode", mode, "only one_hot is supported")
        _dense_float32(f)
        return {"num_tokens": f.integer("num_tokens"), "output_mode": "one_hot"}


@register
class OneHot(CategoryEncoding):
    class_name = "OneHot"
    description = ("One-hot encodes integer ids along a new last axis (keras.ops.one_hot in a functional "
                   "graph); unlike CategoryEncoding, a last axis of size 1 is kept")
    attributes = {"num_classes": {"type": "integer", "minimum": 1, "maximum": 1 << 20}}
    required = ("num_classes",)
    _tokens_field = "num_classes"
    keras_classes = ()
    keras_ops = ("OneHot",)

    def output_types(self, inputs):
        (x,) = inputs
        if not x.dtype.startswith("int"):
            raise LayerError(f"expects integer ids, got {x.dtype} input")
        return [TensorType((*x.shape, self["num_classes"]), "float32", False)]

    @property
    def _tokens(self) -> int:
        return self["num_classes"]

    def _squeezes(self) -> bool:
        return False

    @classmethod
    def from_keras(cls, f):
        axis = f.get("axis", -1)
        if axis != -1:
            f.refuse("axis", axis, "only axis=-1 (a new last axis) is supported")
        _dense_float32(f)
        f.get("name")
        return {"num_classes": f.integer("num_classes")}


def _dense_float32(f) -> None:
    """The Keras options both kinds accept only at their defaults: a dense float32 output."""
    if f.get("sparse"):
        f.refuse("sparse", True, "dense outputs only")
    dtype = f.dtype("dtype")
    if dtype not in (None, "float32"):
        f.refuse("dtype", dtype, "the one-hot output is float32")
