"""Activation: an elementwise (or, for softmax, last-axis) function; keeps the mask."""
from __future__ import annotations

from .. import activations as act
from ..layer import Layer, Sym, Tensor, expect_float, passthrough, register


@register
class Activation(Layer):
    class_name = "Activation"
    description = "Applies an activation function (Keras Activation)"
    attributes = {"activation": {"enum": list(act.NAMES)}}
    required = ("activation",)

    def output_types(self, inputs):
        expect_float(inputs[0])
        return [passthrough(inputs[0])]

    def reference(self, inputs, weights):
        (x,) = inputs
        return [Tensor(act.get(self["activation"]).numpy(x.data), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        return [Sym(act.get(self["activation"]).emit(g, x.name), self.output_types_[0], x.mask)]

    # -- Keras import: Activation, and the activation layers one activation name covers ---------
    keras_classes = ("Activation", "ReLU", "Softmax", "ELU")   # LeakyReLU: its own kind
    keras_time_distributed = True

    @classmethod
    def from_keras(cls, f):
        return {"activation": _KERAS_LAYERS[f.keras_class](f)}


def _relu(f):
    mx = f.get("max_value")
    if f.number("negative_slope", 0.0) != 0.0:
        f.refuse("negative_slope", f.get("negative_slope"), "only 0 is supported")
    if f.number("threshold", 0.0) != 0.0:
        f.refuse("threshold", f.get("threshold"), "only 0 is supported")
    if mx is not None and not (isinstance(mx, (int, float)) and not isinstance(mx, bool) and mx == 6):
        f.refuse("max_value", mx, "only None (relu) or 6 (relu6) is supported")
    return "relu" if mx is None else "relu6"


def _softmax(f):
    if f.get("axis", -1) not in (-1, [-1]):
        f.refuse("axis", f.get("axis"), "only the last axis (-1) is supported")
    return "softmax"


def _elu(f):
    if f.number("alpha", 1.0) != 1.0:
        f.refuse("alpha", f.get("alpha"), "only alpha=1.0 is supported")
    return "elu"


_KERAS_LAYERS = {"Activation": lambda f: f.activation("activation", "linear"), "ReLU": _relu,
                 "Softmax": _softmax, "ELU": _elu}
