"""SetMask: a boolean [batch, time] tensor becomes a sequence's mask (Keras `layer(x, mask=m)`).

Keras models pass a mask explicitly when the padding is known outside the data: a boolean model
input `m` (True on valid steps) given as `LSTM(...)(x, mask=m)`. The Keras importer writes such
a call as SetMask([x, m]) followed by the layer. The explicit mask REPLACES any mask x carried
(as in Keras, where the `mask=` argument wins). Verification feeds the mask input every padding
pattern (rnncompile.inputs: its padded steps are False).

    inputs:  x [batch, time, ...] (passed through unchanged) and mask [batch, time] (bool)
    output:  x, with mask[b, t] = the given mask
"""
from __future__ import annotations

import numpy as np

from ..errors import RunError
from ..layer import Layer, LayerError, Tensor, TensorType, register
from .mask_ops import sequence_and


@register
class SetMask(Layer):
    class_name = "SetMask"
    description = "Uses a bool [batch, time] input as the mask of a sequence (Keras `mask=`); inputs [x, mask]"
    attributes = {}

    def output_types(self, inputs):
        x, mask = sequence_and(inputs, "mask")
        if mask.dtype != "bool" or mask.rank != 2:
            raise LayerError(f"expects a bool (batch, time) mask as its second input, got {mask.dtype} {mask}")
        if None not in (x.shape[1], mask.shape[1]) and x.shape[1] != mask.shape[1]:
            raise LayerError(f"the mask has {mask.shape[1]} steps, the sequence {x.shape[1]}")
        return [TensorType(x.shape, x.dtype, masked=True)]

    def equal_lengths(self) -> bool:
        return True   # the mask and the sequence have the same time axis

    def pad_value(self):
        return False  # a padded step of the mask input is False

    def reference(self, inputs, weights):
        x, mask = inputs
        m = np.asarray(mask.data, bool)
        if m.shape != np.shape(x.data)[:2]:
            raise RunError(f"mask of shape {m.shape} does not fit the sequence's (batch, time) "
                           f"{np.shape(x.data)[:2]}", where=f"layer {self.name!r} (SetMask)")
        return [Tensor(x.data, m)]

    def lowering(self, target=None) -> str:
        return "no ops: the bool input is the mask"

    def lower(self, g, inputs, weights):
        x, mask = inputs
        return [self.sym(x.name, mask.name)]
