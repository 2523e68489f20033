"""Dropout: identity at inference."""
from __future__ import annotations

from ..layer import Layer, passthrough, register


@register
class Dropout(Layer):
    class_name = "Dropout"
    description = "Identity at inference (Keras Dropout)"
    attributes = {
        "rate": {"type": "number", "minimum": 0, "maximum": 1},
        "noise_shape": {"type": ["array", "null"], "description": "accepted; no effect at inference"},
        "seed": {"type": ["integer", "null"], "description": "accepted; no effect at inference"},
    }
    required = ("rate",)

    def output_types(self, inputs):
        return [passthrough(inputs[0])]

    def reference(self, inputs, weights):
        return list(inputs)

    def lower(self, g, inputs, weights):
        return list(inputs)
