"""Dense on the last axis (2-D or 3-D inputs; a sequence keeps its mask)."""
from __future__ import annotations

import numpy as np

from .. import activations as act
from ..layer import ATTR_BOOL, ATTR_UNITS, Layer, Sym, Tensor, expect_float, expect_rank, passthrough, register


@register
class Dense(Layer):
    class_name = "Dense"
    description = "Fully-connected layer on the last axis (Keras Dense)"
    attributes = {
        "units": ATTR_UNITS,
        "activation": {"enum": list(act.NAMES), "default": "linear"},
        "use_bias": dict(ATTR_BOOL, default=True),
    }
    required = ("units",)

    def output_types(self, inputs):
        (x,) = inputs
        expect_rank(x, (2, 3), "features")
        expect_float(x)
        return [passthrough(x, shape=(*x.shape[:-1], self["units"]))]

    def weight_shapes(self, inputs):
        shapes = {"kernel": (inputs[0].shape[-1], self["units"])}
        if self["use_bias"]:
            shapes["bias"] = (self["units"],)
        return shapes

    def reference(self, inputs, weights):
        (x,) = inputs
        y = x.data @ weights["kernel"].astype(np.float64)
        if self["use_bias"]:
            y = y + weights["bias"].astype(np.float64)
        return [Tensor(act.get(self["activation"]).numpy(y), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        y = g.op("MatMul", x.name, g.const(weights["kernel"], "float32", name="kernel"))
        if self["use_bias"]:
            y = g.op("Add", y, g.const(weights["bias"], "float32", name="bias"))
        return [Sym(act.get(self["activation"]).emit(g, y), self.output_types_[0], x.mask)]

    # -- Keras import ---------------------------------------------------------------------------
    keras_classes = ("Dense",)
    keras_time_distributed = True

    @classmethod
    def from_keras(cls, f):
        out = {"units": f.integer("units"), "activation": f.activation("activation", "linear"),
               "use_bias": f.boolean("use_bias", True)}
        f.refuse_set("lora_rank", "quantization_config", why="LoRA and quantized layers are not supported")
        return out
