"""Compare: an elementwise comparison of a tensor with a number, giving a bool tensor of the same
shape (Keras `ops.not_equal(x, v)`, `ops.equal`, `ops.greater`, `ops.greater_equal`, `ops.less`,
`ops.less_equal`, and `ops.cast(x, "bool")`, which is `x != 0`).

It exists for masks computed in a Keras functional model: `LSTM(...)(x, mask=ops.not_equal(ids, 0))`
imports as Compare(ids) -> SetMask([x, compare]) -> LSTM (rnncompile/keras/graph.py).

Exactness. Keras compares in the input's dtype: a Python number against a float32 tensor is a
float32 number. The reference therefore compares against the value rounded to the input's dtype
(float64 data of a float32 input equal float32 values exactly), so comparisons of model inputs are
exact. A float value computed by other layers is float64 in the reference and float32 (or lower)
in the graph: a step within rounding of the threshold may flip (the mask is a step function).
An integer input is compared with an integer only (Keras would promote both to float).

A bool input (a mask already) takes `not_equal 0` (the identity: `ops.cast(m, "bool")`) and
`equal 0` (its negation) only. TensorRT's parser takes no BOOL into Equal/Less/Greater, and this
lowering never gives them one (a bool input is lowered to Identity / Not).

An incoming mask is dropped (Keras ops do not carry masks).
"""
from __future__ import annotations

import operator

import numpy as np

from ..layer import LayerError, Tensor, TensorType, register
from .reshaping import DropsMask

#: op -> (NumPy function, ONNX op, negate the ONNX result)
_OPS = {
    "equal": (operator.eq, "Equal", False),
    "not_equal": (operator.ne, "Equal", True),
    "greater": (operator.gt, "Greater", False),
    "greater_equal": (operator.ge, "GreaterOrEqual", False),
    "less": (operator.lt, "Less", False),
    "less_equal": (operator.le, "LessOrEqual", False),
}
#: Keras op class -> (op, the same op with the operands swapped: `0 < x` is `x > 0`)
_KERAS = {
    "NotEqual": ("not_equal", "not_equal"), "Equal": ("equal", "equal"),
    "Greater": ("greater", "less"), "GreaterEqual": ("greater_equal", "less_equal"),
    "Less": ("less", "greater"), "LessEqual": ("less_equal", "greater_equal"),
}
#: The value whose steps compare False: verification pads with it (see `pad_value`).
_PAD_SHIFT = {"equal": 1.0, "not_equal": 0.0, "greater": 0.0, "greater_equal": -1.0,
              "less": 0.0, "less_equal": 1.0}


@register
class Compare(DropsMask):
    class_name = "Compare"
    description = ("Elementwise comparison with a number, a bool tensor of the same shape (Keras ops.not_equal, "
                   "equal, greater, greater_equal, less, less_equal; ops.cast(x, 'bool') is not_equal 0)")
    attributes = {
        "op": {"enum": list(_OPS)},
        "value": {"type": "number"},
    }
    required = ("op", "value")
    #: Keras op classes the importer turns into this kind where they compute a `mask=` argument.
    keras_mask_ops = tuple(_KERAS) + ("Cast",)

    def output_types(self, inputs):
        if len(inputs) != 1:
            raise LayerError(f"takes one input, got {len(inputs)}")
        (x,) = inputs
        v = self["value"]
        if x.dtype == "bool":
            if not (v == 0 and self["op"] in ("equal", "not_equal")):
                raise LayerError(f"a bool input can only be compared with 0 by equal or not_equal "
                                 f"(cast or negate a mask), not {self['op']} {v:g}")
        elif x.dtype.startswith("int"):
            if float(v) != int(v):
                raise LayerError(f"compares integer input with the non-integer {v!r}; Keras would compare "
                                 f"in float; compare with an integer")
        elif not x.dtype.startswith("float"):
            raise LayerError(f"expects a numeric or bool input, got {x.dtype}")
        return [TensorType(x.shape, "bool", False)]

    def _value(self, dtype: str):
        """The number as Keras compares it: in the input's dtype."""
        if dtype == "bool":
            return np.bool_(self["value"])
        return np.asarray(self["value"]).astype(dtype)

    def pad_value(self):
        """A padded step of a model input read here compares False (the step is masked)."""
        if self.input_types and self.input_types[0].dtype == "bool":
            return self["op"] == "equal"
        return float(self["value"]) + _PAD_SHIFT[self["op"]]

    def reference(self, inputs, weights):
        (x,) = inputs
        fn = _OPS[self["op"]][0]
        dtype = self.input_types[0].dtype
        return [Tensor(np.asarray(fn(np.asarray(x.data), self._value(dtype)), bool))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        op, onnx_op, negate = self["op"], *_OPS[self["op"]][1:]
        if x.type.dtype == "bool":   # no BOOL into Equal (TensorRT): identity or Not
            out = g.op("Identity", x.name) if op == "not_equal" else g.op("Not", x.name)
            return [self.sym(out)]
        out = g.op(onnx_op, x.name, g.const(self._value(x.type.dtype)))
        return [self.sym(g.op("Not", out) if negate else out)]

    @classmethod
    def from_keras_op(cls, op_class: str, config: dict, args: list, kwargs: dict) -> tuple[dict, object]:
        """(spec attributes, the tensor argument) of a Keras op node; ValueError says why not."""
        if op_class == "Cast":
            if config.get("dtype") != "bool" or len(args) != 1 or kwargs:
                raise ValueError(f"only a cast to bool is a mask (dtype {config.get('dtype')!r})")
            return {"op": "not_equal", "value": 0}, args[0]
        op, swapped = _KERAS[op_class]
        if len(args) != 2 or kwargs:
            raise ValueError("expected two arguments")
        a, b = args
        if _number(b) and not _number(a):
            return {"op": op, "value": b}, a
        if _number(a) and not _number(b):
            return {"op": swapped, "value": a}, b
        raise ValueError("compares two tensors; only a tensor with a number is supported")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
