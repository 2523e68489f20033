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

    # -- Keras import: the Activation layer (ReLU, ELU, Softmax, LeakyReLU, PReLU: their own kinds)
    keras_classes = ("Activation",)
    keras_time_distributed = True

    @classmethod
    def from_keras(cls, f):
        return {"activation": f.activation("activation", "linear")}
