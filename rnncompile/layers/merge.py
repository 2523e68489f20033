"""Merge layers: Concatenate (any axis) and the elementwise merges Add, Subtract, Multiply, Average,
Maximum, Minimum. Each takes a list of inputs (`"inputs": ["a", "b"]`).

Masks, as Keras 3.15 computes them (measured with Keras, and read in keras/src/layers/merging/):
  * Concatenate: a mask is [batch, time]; Keras widens each to its input's shape (an unmasked input
    counts as all valid), concatenates along `axis` and takes `any` over the last axis. So
      - on the feature axis (rank-3 inputs, axis -1): the OR of the masks; with an unmasked input
        the result is all valid, which rnncompile writes as no mask (every layer treats an
        all-valid mask and no mask alike);
      - on the time axis (axis 1): the masks concatenated along time (an unmasked input: valid).
  * Add, Subtract, Average: the plain op on the data; mask = OR of the masks when EVERY input is
    masked, else none.
  * Multiply: masked steps of an input count as 1; when every input is masked the product is then
    set to 0 where no input is valid and the mask is the OR; otherwise no mask.
  * Maximum, Minimum (Keras's `_apply_merge_op_and_or_mask`), left to right: a masked step of the
    next input takes the running result's value, a masked step of the running result takes the
    next input's value, then the op; mask = OR when every input is masked, else none.
A masked input must be a sequence [batch, time, features] (Keras's mask widening needs it).
"""
from __future__ import annotations

import numpy as np

from ..layer import Layer, LayerError, Tensor, TensorType, expect_float, register

_AXIS = {"type": "integer", "minimum": -16, "maximum": 16, "default": -1,
         "description": "axis to concatenate along (not the batch axis 0)"}


def _inputs(inputs: list[TensorType], at_least: int = 2) -> None:
    if len(inputs) < at_least:
        raise LayerError(f"takes a list of at least {at_least} inputs, got {len(inputs)}")
    for t in inputs:
        expect_float(t)
    ranks = {t.rank for t in inputs}
    if len(ranks) > 1:
        raise LayerError(f"expects inputs of one rank, got shapes {', '.join(map(str, inputs))}")
    if any(t.masked for t in inputs) and inputs[0].rank != 3:
        raise LayerError(f"a masked input must be a sequence (batch, time, features), got shapes "
                         f"{', '.join(map(str, inputs))}")


def _or(masks):
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    return out


def _keras_axis(f) -> int:
    axis = f.get("axis", -1)
    if isinstance(axis, bool) or not isinstance(axis, int):
        f.refuse("axis", axis, "expected an integer axis")
    return axis


class _Merge(Layer):
    """Shared: list input, float32 output; kinds set `_np`/`_onnx` and the mask treatment."""

    keras_list_input = True
    _np = staticmethod(np.add)
    _onnx = "Add"
    #: how the data uses masks: "plain", "multiply" or "select" (Maximum/Minimum)
    _mode = "plain"
    _arity: tuple[int, int | None] = (2, None)

    def equal_lengths(self) -> bool:
        """For the verifier: the inputs' time axes must agree."""
        return self.input_types[0].rank >= 3

    def output_types(self, inputs):
        _inputs(inputs)
        lo, hi = self._arity
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            raise LayerError(f"takes exactly {lo} inputs, got {len(inputs)}")
        shape = []
        for dims in zip(*(t.shape for t in inputs)):
            known = {d for d in dims if d not in (None, 1)}
            if len(known) > 1:
                raise LayerError(f"cannot merge inputs of shapes {', '.join(map(str, inputs))} "
                                 f"(sizes {sorted(known)} on one axis)")
            shape.append(known.pop() if known else (None if None in dims else 1))
        shape[0] = inputs[0].shape[0]
        return [TensorType(tuple(shape), "float32", all(t.masked for t in inputs))]

    # reference -----------------------------------------------------------------------------
    def _combine(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = self._np(out, x)
        return out

    def reference(self, inputs, weights):
        xs = [np.asarray(t.data, np.float64) for t in inputs]
        ms = [None if t.mask is None else np.asarray(t.mask, bool)[..., None] for t in inputs]
        full = all(m is not None for m in ms)
        if self._mode == "plain":
            y = self._combine(xs)
        elif self._mode == "multiply":
            y = self._combine([x if m is None else np.where(m, x, 1.0) for x, m in zip(xs, ms)])
            if full:
                y = np.where(_or(ms), y, 0.0)
        else:
            y, om = xs[0], ms[0]
            for x, m in zip(xs[1:], ms[1:]):
                if m is not None:
                    x = np.where(m, x, y)
                if om is not None:
                    y = np.where(om, y, x)
                om = om | m if (m is not None and om is not None) else None
                y = self._np(y, x)
        return [Tensor(y, _or(ms)[..., 0] if full else None)]

    # lowering ------------------------------------------------------------------------------
    def _emit(self, g, xs):
        out = xs[0]
        for x in xs[1:]:
            out = g.op(self._onnx, out, x)
        return out

    def lower(self, g, inputs, weights):
        xs = [t.name for t in inputs]
        ms = [None if t.mask is None else g.unsqueeze(t.mask, [2]) for t in inputs]
        full = all(m is not None for m in ms)
        mask = None
        if full:
            mask = inputs[0].mask
            for t in inputs[1:]:
                mask = g.op("Or", mask, t.mask)
        if self._mode == "plain":
            y = self._emit(g, xs)
        elif self._mode == "multiply":
            one = g.const(np.float32(1))
            y = self._emit(g, [x if m is None else g.op("Where", m, x, one) for x, m in zip(xs, ms)])
            if full:
                y = g.op("Where", g.unsqueeze(mask, [2]), y, g.const(np.float32(0)))
        else:
            y, om = xs[0], ms[0]
            for x, m in zip(xs[1:], ms[1:]):
                if m is not None:
                    x = g.op("Where", m, x, y)
                if om is not None:
                    y = g.op("Where", om, y, x)
                om = g.op("Or", om, m) if (m is not None and om is not None) else None
                y = g.op(self._onnx, y, x)
        return [self.sym(y, mask)]

    @classmethod
    def from_keras(cls, f):
        return {}


@register
class Add(_Merge):
    class_name = "Add"
    description = "Elementwise sum of its inputs; mask: OR of the masks if every input is masked"
    keras_classes = ("Add",)


@register
class Subtract(_Merge):
    class_name = "Subtract"
    description = "First input minus the second; mask: OR of the masks if both are masked"
    keras_classes = ("Subtract",)
    _np = staticmethod(np.subtract)
    _onnx = "Sub"
    _arity = (2, 2)


@register
class Average(_Merge):
    class_name = "Average"
    description = "Elementwise mean of its inputs; mask: OR of the masks if every input is masked"
    keras_classes = ("Average",)

    def _combine(self, xs):
        return super()._combine(xs) / len(xs)

    def _emit(self, g, xs):
        return g.op("Div", super()._emit(g, xs), g.const(np.float32(len(xs))))


@register
class Multiply(_Merge):
    class_name = "Multiply"
    description = ("Elementwise product; masked steps count as 1 and, if every input is masked, "
                   "steps no input has valid give 0 (mask: OR)")
    keras_classes = ("Multiply",)
    _np = staticmethod(np.multiply)
    _onnx = "Mul"
    _mode = "multiply"


@register
class Maximum(_Merge):
    class_name = "Maximum"
    description = "Elementwise maximum; a masked step takes the other inputs' value (mask: OR if all masked)"
    keras_classes = ("Maximum",)
    _np = staticmethod(np.maximum)
    _onnx = "Max"
    _mode = "select"


@register
class Minimum(_Merge):
    class_name = "Minimum"
    description = "Elementwise minimum; a masked step takes the other inputs' value (mask: OR if all masked)"
    keras_classes = ("Minimum",)
    _np = staticmethod(np.minimum)
    _onnx = "Min"
    _mode = "select"


@register
class Concatenate(Layer):
    class_name = "Concatenate"
    description = ("Concatenates its inputs along an axis; mask: OR on the feature axis (none if an "
                   "input is unmasked), joined along time on the time axis")
    attributes = {"axis": _AXIS}
    keras_classes = ("Concatenate",)
    keras_list_input = True

    def _axis(self, rank: int) -> int:
        a = self["axis"]
        ax = a + rank if a < 0 else a
        if not 1 <= ax < rank:
            raise LayerError(f"axis {a} is not a non-batch axis of inputs of rank {rank} (batch axis "
                             f"included)", "axis")
        return ax

    def equal_lengths(self) -> bool:
        """For the verifier: the inputs' time axes must agree unless joined along time."""
        return self.input_types[0].rank >= 3 and self._axis(self.input_types[0].rank) != 1

    def output_types(self, inputs):
        _inputs(inputs)
        ax = self._axis(inputs[0].rank)
        shape = []
        for i, dims in enumerate(zip(*(t.shape for t in inputs))):
            if i == ax:
                shape.append(None if None in dims else sum(dims))
                continue
            known = {d for d in dims if d is not None}
            if len(known) > 1:
                raise LayerError(f"cannot concatenate shapes {', '.join(map(str, inputs))} on axis "
                                 f"{self['axis']}: they differ on axis {i}")
            shape.append(known.pop() if known else None)
        shape[0] = inputs[0].shape[0]
        masked = any(t.masked for t in inputs) if ax == 1 else all(t.masked for t in inputs)
        return [TensorType(tuple(shape), "float32", masked)]

    def reference(self, inputs, weights):
        ax = self._axis(np.ndim(inputs[0].data))
        y = np.concatenate([np.asarray(t.data, np.float64) for t in inputs], axis=ax)
        mask = None
        if self.output_type().masked:
            ms = [np.ones(np.shape(t.data)[:2], bool) if t.mask is None else np.asarray(t.mask, bool)
                  for t in inputs]
            mask = np.concatenate(ms, axis=1) if ax == 1 else _or(ms)
        return [Tensor(y, mask)]

    def lower(self, g, inputs, weights):
        ax = self._axis(inputs[0].type.rank)
        y = g.op("Concat", *[t.name for t in inputs], axis=ax)
        mask = None
        if self.output_type().masked and ax == 1:
            ms = [t.mask if t.mask is not None else _all_valid(g, t.name) for t in inputs]
            mask = g.op("Concat", *ms, axis=1)
        elif self.output_type().masked:
            mask = inputs[0].mask
            for t in inputs[1:]:
                mask = g.op("Or", mask, t.mask)
        return [self.sym(y, mask)]

    @classmethod
    def from_keras(cls, f):
        return {"axis": _keras_axis(f)}


def _all_valid(g, x: str) -> str:
    """A [batch, time] all-True bool tensor for sequence x (built from its shape: padded data,
    NaN included, cannot change it)."""
    ones = g.op("Expand", g.const(np.float32(1)), g.op("Shape", x, start=0, end=2))
    return g.cast(ones, "bool")
