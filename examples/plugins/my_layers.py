"""An example rnncompile plugin: two custom layer kinds, defined outside the package.

Copy this file, rename the kinds, and change the four rules of each. Enable it with

    rnncompile build --plugin my_layers.py speaker_id.json -o out/     # a .py file
    rnncompile build --plugin my_layers speaker_id.json -o out/        # a module on sys.path
    import my_layers                                                   # from Python

or, for an installed package, an entry point in its pyproject.toml:

    [project.entry-points."rnncompile.layers"]
    my_layers = "my_layers"

The kinds (walked through in docs/custom_layers.md):
  * RMSNorm         - has weights (`gamma`) and passes the mask on (Keras: supports_masking);
  * StatsPooling    - consumes the mask: mean and standard deviation over the valid steps
                      (the "statistics pooling" of x-vector speaker models), [B, T, F] -> [B, 2F].
"""
from __future__ import annotations

import numpy as np

import rnncompile
from rnncompile.layer import expect_fixed_features, expect_sequence, passthrough, valid_steps


@rnncompile.register
class RMSNorm(rnncompile.Layer):
    """y = x / sqrt(mean(x**2 over features) + epsilon) * gamma, step by step."""

    # 1. Attributes: a JSON Schema per field; `default` where the field is optional. The spec
    #    validator, `rnncompile schema` and error messages all come from this.
    class_name = "RMSNorm"
    description = "Root-mean-square normalization of the last axis, with a learned scale"
    attributes = {
        "epsilon": {"type": "number", "exclusiveMinimum": 0, "default": 1e-6},
    }

    # 2. Shape and mask rule. `inputs` are TensorTypes (batch axis first, None = dynamic).
    #    Raise rnncompile.LayerError for inputs the kind cannot take; the message is shown with
    #    the layer's JSON path. `passthrough` keeps shape, dtype and the mask: the mask is passed on.
    def output_types(self, inputs):
        (x,) = inputs
        expect_sequence(x)
        expect_fixed_features(x)
        return [passthrough(x)]

    # 3. Weights, in Keras layout, keyed relative to the layer: the weights file holds
    #    "<layer name>/gamma". `init_weight` gives the seeded weights used when a spec names no
    #    weights file (the default draws uniform values; a scale is better near 1).
    def weight_shapes(self, inputs):
        return {"gamma": (inputs[0].shape[-1],)}

    def init_weight(self, key, shape, rng):
        return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)

    # 4. Reference: float64 NumPy, the semantics. Tensor(data, mask); return the input's mask
    #    unchanged, as the rule says.
    def reference(self, inputs, weights):
        (x,) = inputs
        rms = np.sqrt(np.mean(x.data ** 2, axis=-1, keepdims=True) + self["epsilon"])
        return [rnncompile.Tensor(x.data / rms * weights["gamma"].astype(np.float64), x.mask)]

    # 5. Lowering: ONNX nodes through the GraphBuilder `g` (g.op, g.const, g.reduce, ...).
    #    Sym.name is an ONNX value name, Sym.mask the name of its bool [batch, time] mask or None.
    #    `self.sym(value, mask)` types the result by the shape rule.
    def lower(self, g, inputs, weights):
        (x,) = inputs
        mean_sq = g.reduce("ReduceMean", g.op("Mul", x.name, x.name), [-1], keepdims=1)
        rms = g.op("Sqrt", g.op("Add", mean_sq, g.const(np.float32(self["epsilon"]))))
        y = g.op("Mul", g.op("Div", x.name, rms), g.const(weights["gamma"], "float32", name="gamma"))
        return [self.sym(y, x.mask)]

    # 6. Keras import (optional): the Keras classes imported as this kind, and the mapping of one
    #    Keras config to its attributes. Keras 3's RMSNormalization computes the same function
    #    (its weight `scale` is `gamma`); an option not read here must be inert or null.
    keras_classes = ("RMSNormalization",)

    @classmethod
    def from_keras(cls, f):
        if f.get("axis", -1) not in (-1, [-1]):
            f.refuse("axis", f.get("axis"), "only the last axis (-1) is supported")
        return {"epsilon": f.number("epsilon", 1e-6)}


@rnncompile.register
class StatsPooling(rnncompile.Layer):
    """[mean, std] over the valid steps: [B, T, F] -> [B, 2F]. Consumes the mask.

    A fully masked row has no statistics; it is defined here as mean 0 and std sqrt(epsilon)
    (the count is taken as 1), so verification also feeds such rows."""

    class_name = "StatsPooling"
    description = "Mean and standard deviation over the valid time steps (x-vector statistics pooling)"
    attributes = {
        "epsilon": {"type": "number", "minimum": 0, "default": 1e-5},
    }

    def output_types(self, inputs):
        (x,) = inputs
        expect_sequence(x)
        features = expect_fixed_features(x)
        # masked=False: the mask is consumed; the output has no time axis for a mask to follow.
        return [rnncompile.TensorType((x.shape[0], 2 * features), "float32", masked=False)]

    def reference(self, inputs, weights):
        (x,) = inputs
        keep = valid_steps(x)[..., None]                            # [B, T, 1]; all True if unmasked
        n = np.maximum(keep.sum(axis=1), 1)                         # [B, 1]
        mean = np.where(keep, x.data, 0.0).sum(axis=1) / n
        var = np.where(keep, (x.data - mean[:, None]) ** 2, 0.0).sum(axis=1) / n
        return [rnncompile.Tensor(np.concatenate([mean, np.sqrt(var + self["epsilon"])], axis=-1))]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        if x.mask is None:                                          # an unmasked input: plain means
            mean = g.reduce("ReduceMean", x.name, [1])
            dev = g.op("Sub", x.name, g.unsqueeze(mean, [1]))
            var = g.reduce("ReduceMean", g.op("Mul", dev, dev), [1])
        else:                                                       # sums over the valid steps only
            zero = g.const(np.float32(0))
            keep = g.unsqueeze(x.mask, [2])                         # [B, T, 1]
            n = g.op("Max", g.reduce("ReduceSum", g.cast(keep, "float32"), [1]), g.const(np.float32(1)))
            mean = g.op("Div", g.reduce("ReduceSum", g.op("Where", keep, x.name, zero), [1]), n)
            dev = g.op("Sub", x.name, g.unsqueeze(mean, [1]))
            var = g.op("Div", g.reduce("ReduceSum", g.op("Where", keep, g.op("Mul", dev, dev), zero), [1]), n)
        std = g.op("Sqrt", g.op("Add", var, g.const(np.float32(self["epsilon"]))))
        return [self.sym(g.op("Concat", mean, std, axis=-1))]
