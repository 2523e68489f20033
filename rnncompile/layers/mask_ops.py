"""SequenceMask: a layer that computes a NEW mask, from per-sample lengths (tf.sequence_mask).

The template for a layer with Keras's `compute_mask`: its shape rule declares `masked=True`, its
reference returns `Tensor(data, new_mask)` and its lowering returns `Sym(value, type, new_mask)`,
where the mask is a boolean [batch, time] value, True on valid steps.

Why this layer: real recurrent models are very often fed padded batches together with the true
length of each sequence (speech features and their frame counts, CTC models, anything exported
from TensorFlow with `sequence_length`, PyTorch's `pack_padded_sequence`). Keras's own ways to get
a mask cannot express that: `Masking` marks a step padded when all its features equal
`mask_value`, so a genuine all-zero frame (silence, a normalized feature) would be dropped and
padding filled with anything else would not be; `Embedding(mask_zero)` needs token ids. In Keras
this is a small custom layer whose `compute_mask` returns `tf.sequence_mask(lengths, maxlen=T)`.

    inputs:  x [batch, time, ...] (any dtype; passed through unchanged) and
             lengths [batch] or [batch, 1] (integers; an `Input` with `"shape": [1]`)
    output:  x, with mask[b, t] = t < lengths[b]  AND  x's incoming mask (if x has one)

A length of 0 (or less) masks the whole row; a length beyond the time axis keeps every step.
The data is not changed: downstream mask-aware layers ignore the padded steps (a layer that
ignores masks, like GlobalMaxPooling1D, still sees them, as in Keras).
"""
from __future__ import annotations

import numpy as np

from ..layer import Layer, LayerError, Tensor, TensorType, register


def sequence_and(inputs, second: str):
    """The [sequence, second] inputs of a layer that puts a mask on a sequence, checked."""
    if len(inputs) != 2:
        raise LayerError(f"takes two inputs, [sequence, {second}], got {len(inputs)}")
    x, other = inputs
    if x.rank < 3:
        raise LayerError(f"expects a sequence (batch, time, features...) as its first input, got shape {x}")
    return x, other


@register
class SequenceMask(Layer):
    class_name = "SequenceMask"
    description = "Masks the steps at or beyond each sample's length (tf.sequence_mask); inputs [x, lengths]"
    attributes = {}

    # -- shape and mask rule: a new mask ------------------------------------------------------
    def output_types(self, inputs):
        x, lengths = sequence_and(inputs, "lengths")
        if not lengths.dtype.startswith("int"):
            raise LayerError(f"expects integer lengths as its second input, got {lengths.dtype}")
        if not (lengths.rank == 1 or (lengths.rank == 2 and lengths.shape[1] == 1)):
            raise LayerError(f"expects lengths of shape (batch,) or (batch, 1), got {lengths}")
        return [TensorType(x.shape, x.dtype, masked=True)]

    # -- reference ----------------------------------------------------------------------------
    def reference(self, inputs, weights):
        x, lengths = inputs
        n = np.asarray(lengths.data).reshape(-1, 1)                      # [B, 1]
        steps = np.arange(np.shape(x.data)[1])[None, :]                  # [1, T]
        mask = steps < n                                                 # [B, T]
        if x.mask is not None:
            mask = mask & x.mask
        return [Tensor(x.data, mask)]

    # -- lowering -----------------------------------------------------------------------------
    def lower(self, g, inputs, weights):
        x, lengths = inputs
        i64 = np.int64
        n = g.op("Reshape", g.cast(lengths.name, "int64"), g.const(np.array([-1, 1], i64)))   # [B, 1]
        t = g.squeeze(g.dim(x.name, 1), [0])                                                 # scalar T
        steps = g.unsqueeze(g.op("Range", g.const(np.array(0, i64)), t, g.const(np.array(1, i64))), [0])
        mask = g.op("Less", steps, n)                                                        # [B, T]
        if x.mask is not None:
            mask = g.op("And", mask, x.mask)
        return [self.sym(x.name, mask)]
