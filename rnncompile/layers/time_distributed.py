"""TimeDistributed: applies a per-sample layer (Conv2D, MaxPooling2D, AveragePooling2D, Flatten:
kinds with `time_distributable`) to every time step: (batch, time, ...) -> (batch, time, ...').

The CRNN front end of Keras models: `TimeDistributed(Conv2D(...))` over a sequence of images.
The reference and the lowering fold time into the batch axis, run the wrapped layer, and unfold
it again (ONNX Reshape; no Loop/Scan). Keras 3's TimeDistributed supports masking and keeps
the input's [batch, time] mask on its output (the wrapped layer never sees it; these kinds take
none). A last-axis layer (Dense, activations, dropout) wrapped in Keras imports as that layer
itself (`keras_time_distributed`), not as this kind.
"""
from __future__ import annotations

import numpy as np

from ..layer import REGISTRY, Layer, LayerError, Sym, Tensor, TensorType, register


@register
class TimeDistributed(Layer):
    class_name = "TimeDistributed"
    description = ("Applies a per-sample layer (Conv2D, MaxPooling2D, AveragePooling2D, Flatten) to every "
                   "time step; keeps the input mask")
    attributes = {
        "layer": {"type": "object", "required": ["class_name"],
                  "description": "the wrapped layer config (a kind that can be time-distributed)"},
    }
    required = ("layer",)

    def __init__(self, name, config, path="$"):
        super().__init__(name, config, path)
        from ..spec import make_inner_layer  # the spec module validates and builds layer configs
        self.inner: Layer = make_inner_layer(config["layer"], f"{name}/layer", f"{path}.layer", Layer)

    def check(self):
        if not self.inner.time_distributable:
            ok = sorted(k for k, c in REGISTRY.items() if c.time_distributable)
            return [("layer.class_name", f"cannot wrap {self.inner.class_name}; expected one of {ok}")]
        return [(f"layer.{where}", msg) for where, msg in self.inner.check()]

    def _step_type(self, x: TensorType) -> TensorType:
        if x.rank < 3:
            raise LayerError(f"expects a sequence (batch, time, ...), got shape {x}")
        return TensorType((None, *x.shape[2:]), x.dtype, False)

    def output_types(self, inputs):
        (x,) = inputs
        inner = self.inner
        inner.input_types = [self._step_type(x)]
        try:
            inner.output_types_ = list(inner.output_types(inner.input_types))
        except LayerError as e:
            raise LayerError(f"wrapped {inner.class_name}: {e.message}", "layer") from None
        (y,) = inner.output_types_
        return [TensorType((x.shape[0], x.shape[1], *y.shape[1:]), y.dtype, x.masked)]

    def weight_shapes(self, inputs):
        return self.inner.weight_shapes([self._step_type(inputs[0])])

    def init_weight(self, key, shape, rng):
        return self.inner.init_weight(key, shape, rng)

    def reference(self, inputs, weights):
        (x,) = inputs
        data = np.asarray(x.data)
        b, t = data.shape[:2]
        (y,) = self.inner.reference([Tensor(data.reshape(b * t, *data.shape[2:]))], weights)
        out = np.asarray(y.data)
        return [Tensor(out.reshape(b, t, *out.shape[1:]), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        i64 = np.int64
        folded = g.op("Reshape", x.name, g.op("Concat", g.const(np.array([-1], i64)),
                                             g.op("Shape", x.name, start=2), axis=0))
        (y,) = self.inner.lower(g, [Sym(folded, self.inner.input_types[0])], weights)
        shape = g.op("Concat", g.op("Shape", x.name, start=0, end=2), g.op("Shape", y.name, start=1), axis=0)
        return [self.sym(g.op("Reshape", y.name, shape), x.mask)]

    def lowering(self, target=None) -> str:
        return f"ONNX ops: {self.inner.class_name} on time folded into the batch axis"
