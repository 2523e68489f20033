"""Input: a model input. Float features or integer token ids; the batch axis is implicit."""
from __future__ import annotations

from ..layer import Layer, TensorType, register


@register
class Input(Layer):
    class_name = "Input"
    description = "A model input (Keras Input); its name is the ONNX input name"
    attributes = {
        "shape": {"type": "array", "minItems": 1, "maxItems": 4,
                  "items": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1 << 20},
                                      {"type": "null"}]},
                  "description": "shape without the batch axis; null for a variable axis"},
        "dtype": {"enum": ["float32", "int32", "int64"], "default": "float32"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1 << 16,
                       "description": "fixed batch size (optional)"},
    }
    required = ("shape",)
    #: The passes feed a model input's value to this layer as its only input.
    is_model_input = True

    def output_types(self, inputs):
        return [TensorType((self.config.get("batch_size"), *self["shape"]), self["dtype"])]

    def reference(self, inputs, weights):
        return inputs

    def lower(self, g, inputs, weights):
        return inputs
