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

    # -- Keras import: every layer that is the identity at inference ----------------------------
    keras_classes = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                     "ActivityRegularization")
    keras_time_distributed = True

    @classmethod
    def from_keras(cls, f):
        rate = f.get("rate", 0.0)
        f.random_in_training(bool(rate))
        if f.keras_class == "GaussianNoise":
            f.random_in_training(bool(f.get("stddev")))
            rate = 0.0
        elif f.keras_class == "ActivityRegularization":
            f.get("l1"), f.get("l2")
            rate = 0.0
        f.get("noise_shape")
        if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 <= rate <= 1):
            f.refuse("rate", rate, "expected a number in [0, 1]")
        return {"rate": float(rate)}
