"""Input: a model input. Float features, integer token ids, a bool mask, or text (dtype string,
shape [] or [1]: one string per batch row, for TextVectorization); the batch axis is implicit."""
from __future__ import annotations

from ..layer import Layer, LayerError, TensorType, register


@register
class Input(Layer):
    class_name = "Input"
    description = "A model input (Keras Input); its name is the ONNX input name"
    attributes = {
        "shape": {"type": "array", "minItems": 0, "maxItems": 4,
                  "items": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1 << 20},
                                      {"type": "null"}]},
                  "description": "shape without the batch axis; null for a variable axis"},
        "dtype": {"enum": ["float32", "int32", "int64", "bool", "string"], "default": "float32",
                  "description": "bool: a [batch, time] mask for SetMask; string: text (shape [] or [1])"},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 1 << 16,
                       "description": "fixed batch size (optional)"},
    }
    required = ("shape",)
    #: The passes feed a model input's value to this layer as its only input.
    is_model_input = True

    def check(self):
        shape = self["shape"]
        if self["dtype"] == "string":
            if shape not in ([], [1]):
                return [("shape", f"a text input holds one string per batch row: shape [] or [1], got {shape}")]
        elif not shape:
            return [("shape", "expected at least one axis besides the batch (shape [] is for text inputs, "
                              "dtype string)")]
        return []

    def output_types(self, inputs):
        return [TensorType((self.config.get("batch_size"), *self["shape"]), self["dtype"])]

    def reference(self, inputs, weights):
        return inputs

    def lower(self, g, inputs, weights):
        return inputs

    # -- Keras import ---------------------------------------------------------------------------
    keras_classes = ("InputLayer",)

    @classmethod
    def from_keras(cls, f):
        shape = f.get("batch_shape", f.get("batch_input_shape"))
        if shape is None and "shape" in f.cfg:
            shape = [f.get("batch_size"), *(f.get("shape") or [])] if isinstance(f.get("shape"), list) else None
        text = f.dtype("dtype") == "string"
        if not isinstance(shape, list) or len(shape) < (1 if text else 2):
            raise LayerError(f"input shape {shape!r} is not supported: expected (batch, time[, features]) "
                             f"with at least one axis besides the batch")
        if len(shape) > 5 or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1)
                                     for d in shape):
            raise LayerError(f"input shape {shape!r} is not supported")
        for flag in ("sparse", "ragged", "optional"):
            if f.get(flag):
                raise LayerError(f"option {flag}=True is not supported (dense inputs only)")
        dtype = f.dtype("dtype") or "float32"
        if dtype not in _KERAS_DTYPES:
            raise LayerError(f"option dtype={dtype!r} is not supported: inputs are float32, integer ids, "
                             f"a bool mask or text (string)")
        if text and shape[1:] not in ([], [1]):
            raise LayerError(f"text input shape {shape!r} is not supported: expected (batch,) or "
                             f"(batch, 1)")
        out = {"shape": list(shape[1:]), "dtype": _KERAS_DTYPES[dtype]}
        if shape[0] is not None:
            out["batch_size"] = shape[0]
        return out


_KERAS_DTYPES = {"bool": "bool", "float32": "float32", "int32": "int32", "int64": "int64", "int8": "int32",
                 "int16": "int32", "uint8": "int32", "uint16": "int32", "uint32": "int64", "uint64": "int64",
                 "string": "string"}
