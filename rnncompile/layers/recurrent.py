"""What SimpleRNN, LSTM, GRU and Bidirectional share: their attributes, the masked time loop of the
reference (it exists once, here), and the lowering onto the native ONNX RNN/LSTM/GRU operators,
masks included.

Keras semantics (see docs/semantics.md for the measured facts behind them):
  * a masked step runs the cell but keeps every state; its output is 0 with
    `zero_output_for_mask`, else the last valid output (0 before the first valid step);
  * `go_backwards` flips inputs and mask, and the output sequence stays in processing order;
  * the returned states are those after the last valid step (initial state for an empty row).

Lowering, for any mask (right- or left-padded, gaps, empty rows) with native ops only: the valid
steps of each row are gathered to the front ("compaction", one row gather that also makes the
op's time-major layout), the operator runs with `sequence_lens` = number of valid steps, and the
results are gathered back to their time steps, with the Keras rule for masked positions applied
by a Where. The index tensors are built once per mask (`MaskPlan`), and stacked recurrent layers
pass their time-major (compacted) output straight to the next one.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar

import numpy as np

from .. import activations as act
from ..targets import ONNXRUNTIME, Target, positional_params
from ..layer import (ATTR_BOOL, ATTR_UNITS, Layer, LayerError, Sym, Tensor, TensorType,
                     expect_float, expect_rank)

REF_LIST = {"type": "array", "items": {"type": "string"}, "minItems": 1,
            "description": "references (`layer` or `layer:k`) of the initial states"}

RECURRENT_ATTRIBUTES: dict[str, dict] = {
    "units": ATTR_UNITS,
    "activation": {"enum": list(act.CELL_NAMES), "default": "tanh"},
    "use_bias": dict(ATTR_BOOL, default=True),
    "return_sequences": dict(ATTR_BOOL, default=False),
    "return_state": dict(ATTR_BOOL, default=False),
    "go_backwards": dict(ATTR_BOOL, default=False),
    "stateful": dict(ATTR_BOOL, default=False),
    "zero_output_for_mask": dict(ATTR_BOOL, default=False),
    "unroll": dict(ATTR_BOOL, default=False, description="accepted; no effect on the result"),
    "dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                "description": "no-op at inference"},
    "recurrent_dropout": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                          "description": "no-op at inference"},
    "initial_state": REF_LIST,
    "ignore_mask": dict(ATTR_BOOL, default=False, description=(
        "compute as if unmasked even when the input carries a mask (the mask still passes on with "
        "return_sequences), as Keras 3 does for a layer called with initial_state in a "
        "functional model without an explicit mask= argument")),
}

#: LSTM and GRU: a gated cell adds the activation of its gates.
GATED_ATTRIBUTES: dict[str, dict] = dict(
    RECURRENT_ATTRIBUTES, recurrent_activation={"enum": list(act.CELL_NAMES), "default": "sigmoid"})

StepFn = Callable[[np.ndarray, list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


# ---------------------------------------------------------------------------------------------
# The reference time loop: the one place where Keras's masked recurrence is written.


def masked_scan(step: StepFn, x: np.ndarray, mask: np.ndarray | None, states: list[np.ndarray],
                go_backwards: bool, zero_output_for_mask: bool):
    """Run `step` over time as Keras's backend `rnn()` does. Returns (outputs [B, T, H] in
    processing order, last output [B, H], final states)."""
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    outputs = []
    prev = None
    for t in range(x.shape[1]):
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            if prev is None:
                prev = np.zeros_like(out)
            new = [np.where(m, n, s) for n, s in zip(new, states)]
            out = np.where(m, out, 0.0 if zero_output_for_mask else prev)
        states, prev = new, out
        outputs.append(out)
    return np.stack(outputs, axis=1), outputs[-1], states


# ---------------------------------------------------------------------------------------------
# The lowering onto the native operator, shared by unidirectional layers and Bidirectional.
#
# Cost model (measured with onnxruntime, one thread; see BENCHMARKS.md): the native op dominates,
# every extra node costs a few microseconds at batch 1, and every copy of a [B, T, F] tensor a
# few hundred microseconds at batch 32. So the mask machinery works on small [B, T] int64 index
# tensors, built once per mask, and moves data only with row gathers (Gather over a flattened
# tensor, one contiguous memcpy per time step): one gather into the op, one gather out.

#: Sort key offset that puts masked steps after every valid one (any T below 2**40 works).
_BIG = 1 << 40


class MaskPlan:
    """Index tensors of one [B, T] bool mask, shared by every recurrent layer that consumes it
    (kept in the graph's RecurrentLoweringState; nodes no layer uses are dropped when the graph is
    finished).

    * `seq_lens` [B] int32: the number of valid steps (the op's sequence_lens);
    * `x_index` [T, B]: X[k, b] = x[b, k-th valid step of row b] (then the masked steps, in
      order, past sequence_lens where the op ignores them): a gather over x viewed as [B*T, F]
      that compacts and transposes in one copy;
    * `y_index` [B, T]: out[b, t] = Y[max(pos - 1, 0), b] with pos = valid steps up to t: a
      gather over the op's time-major output viewed as [T*B, W]; it puts every valid output back
      at its step and gives a masked step the last valid output before it (Keras's carried
      output; `carry_keep` zeroes the steps before the first valid one).
    The sort key Where(mask, pos, BIG + invalid steps so far) is unique per row, so the order
    never depends on how stable a TopK implementation is."""

    def __init__(self, g, mask: str):
        i64 = np.int64
        self.mask = mask
        axis1 = g.const(np.array(1, i64))
        valid = g.cast(mask, "int64")
        invalid = g.cast(g.op("Not", mask), "int64")
        self.pos = _cumsum(g, valid, axis1)                         # [B, T]
        length = g.reduce("ReduceSum", valid, [1])                  # [B]
        self.length = length
        self.seq_lens = g.cast(length, g.target.sequence_lens_dtype)
        key = g.op("Where", mask, self.pos,
                   g.op("Add", _cumsum(g, invalid, axis1), g.const(np.array(_BIG, i64))))
        steps = g.dim(mask, 1)                                      # [1] = T
        batch = g.dim(mask, 0)                                      # [1] = B
        _, src = g.op("TopK", key, steps, axis=1, largest=0, sorted=1, n_out=2)
        row = g.unsqueeze(g.op("Range", g.const(np.array(0, i64)), g.squeeze(batch, [0]),
                               g.const(np.array(1, i64))), [1])     # [B, 1] = b
        self.x_index = g.op("Transpose", g.op("Add", src, g.op("Mul", row, steps)), perm=[1, 0])
        last_valid = g.op("Max", g.op("Sub", self.pos, axis1), g.const(np.array(0, i64)))
        self.y_index = g.op("Add", g.op("Mul", last_valid, batch), row)
        self.carry_keep = g.op("Greater", self.pos, g.const(np.array(0, i64)))
        self.nonempty = g.unsqueeze(g.op("Greater", length, g.const(np.array(0, i64))), [1])

    @staticmethod
    def of(g, mask: str) -> "MaskPlan":
        plans = g.shared(RecurrentLoweringState).mask_plans
        if mask not in plans:
            plans[mask] = MaskPlan(g, mask)
        return plans[mask]


@dataclass
class RecurrentLoweringState:
    """What recurrent lowerings share across the layers of one graph (`g.shared(...)`)."""

    #: one MaskPlan per mask value
    mask_plans: dict[str, MaskPlan] = field(default_factory=dict)
    #: batch-major value -> (its time-major form, the mask it was compacted under)
    time_major: dict[str, tuple[str, str | None]] = field(default_factory=dict)


def _cumsum(g, counts: str, axis: str) -> str:
    """Running count along time of an int64 0/1 tensor. Where the target's CumSum takes no
    integers (TensorRT), the sum runs in float32, exact for counts below 2**24 steps."""
    if g.target.accepts("CumSum", "int64"):
        return g.op("CumSum", counts, axis)
    return g.cast(g.op("CumSum", g.cast(counts, "float32"), axis), "int64")


def time_major(g, x: str, mask: str | None) -> str:
    """The op's input for x [B, T, F] under `mask`: [T, B, F], compacted when masked. Reuses the
    form a preceding recurrent layer left behind for the same value and mask (stacked layers:
    no transpose or re-compaction between them)."""
    known = g.shared(RecurrentLoweringState).time_major.get(x)
    if known is not None and known[1] == mask:
        return known[0]
    if mask is None:
        return g.op("Transpose", x, perm=[1, 0, 2])
    plan = MaskPlan.of(g, mask)
    return g.op("Gather", g.op("Flatten", x, axis=2), plan.x_index, axis=0)


def remember_time_major(g, out: str, tm: str | None, mask: str | None) -> None:
    if tm is None:  # the Scan fallback has no time-major form to share
        return
    g.shared(RecurrentLoweringState).time_major[out] = (tm, mask)


def batch_major(g, tm: str, mask: str | None, keep: str | None = None) -> str:
    """[T, B, W] (compacted when masked) -> [B, T, W] at the original time steps; a masked step
    where `keep` is False gets 0 (Keras: zero_output_for_mask, or before the first valid step)."""
    if mask is None:
        return g.op("Transpose", tm, perm=[1, 0, 2])
    plan = MaskPlan.of(g, mask)
    y = g.op("Gather", g.op("Flatten", tm, axis=2), plan.y_index, axis=0)
    return g.op("Where", g.unsqueeze(keep or mask, [2]), y, g.const(np.float32(0)))


def native_form(target, name: str) -> tuple[str, tuple[float, ...]]:
    """The ONNX RNN activation (op, params) for Keras activation `name` on `target`."""
    form = target.rnn_activation(name, act.get(name).rnn)
    if form is None:  # emitters run only when native_blocker() said there is a form
        raise LayerError(f"activation {name!r} has no native form on target {target.name}")
    return form


def activation_params(target, forms: list[tuple[str, tuple[float, ...]]]) -> tuple[list, list]:
    """activation_alpha and activation_beta of one op, laid out as the target reads them."""
    if target.activation_params == "positional":
        try:
            return positional_params(forms)
        except ValueError as e:
            raise LayerError(str(e)) from None
    alphas, betas = [], []
    for _, prm in forms:  # compact: only activations that take a parameter consume one
        alphas += prm[:1]
        betas += prm[1:2]
    return alphas, betas


class RnnResult:
    def __init__(self):
        self.tm: str | None = None       # [T, B, H] time-major output (compacted when masked)
        self.seq: str | None = None      # [B, T, H], at the time steps of the (possibly flipped) input
        self.last: str | None = None     # [B, H]
        self.states: list[str] = []      # each [B, H]


def emit_rnn(g, cells: list["Recurrent"], weights: list[dict], x: str, mask: str | None,
             init: list[list[str]] | None, zero_output: bool, need_seq: bool) -> list[RnnResult]:
    """One native ONNX op: forward (one cell) or bidirectional (two cells). Returns per direction
    the output sequence (if `need_seq`: time-major in `tm`, batch-major in `seq`), the last output
    and the final states. Also `results[0].Y`: the op's raw [T, dirs, B, H] output."""
    first = cells[0]
    params = [c.onnx_params(w) for c, w in zip(cells, weights)]
    W = g.const(np.stack([p[0] for p in params]), name="W")
    R = g.const(np.stack([p[1] for p in params]), name="R")
    B = g.const(np.stack([p[2] for p in params]), name="B") if first["use_bias"] else None
    forms = [native_form(g.target, name) for c in cells for name in c.onnx_activations()]
    acts = [op for op, _ in forms]
    alphas, betas = activation_params(g.target, forms)

    plan = MaskPlan.of(g, mask) if mask is not None else None
    X = time_major(g, x, mask)

    h0 = c0 = None
    if init:
        h0 = g.op("Concat", *[g.unsqueeze(s[0], [0]) for s in init], axis=0)
        if first.n_states == 2:
            c0 = g.op("Concat", *[g.unsqueeze(s[1], [0]) for s in init], axis=0)

    single = len(cells) == 1
    per_dir = None  # the op's outputs per direction: (sequence [T, B, H], [final states])
    if first.as_scan(g.target):  # the target's kernel is slower than a Scan of the same cell
        from .rnn_scan import rnn_as_scan
        seqs, lasts = rnn_as_scan(g, cells, params, X, plan.length if plan else None, init, need_seq)
        per_dir = [(s, [h]) for s, h in zip(seqs, lasts)]
        Y = None if single or not need_seq else g.op(
            "Concat", *[g.unsqueeze(s, [1]) for s in seqs], axis=1)
    else:
        inputs = [X, W, R, B, plan.seq_lens if plan else None, h0] + ([c0] if first.n_states == 2 else [])
        while inputs and inputs[-1] is None:
            inputs.pop()
        outs = g.op(first.onnx_op, *inputs, n_out=1 + first.n_states, hidden_size=first["units"],
                    direction="bidirectional" if len(cells) == 2 else "forward",
                    activations=acts, activation_alpha=alphas or None, activation_beta=betas or None,
                    **first.onnx_attributes())
        Y, finals = outs[0], outs[1:]

    # onnxruntime's LSTM/GRU give 0 for an empty row (sequence_lens 0), TensorRT the initial
    # state; onnxruntime's RNN reads the step before the first one there (undefined). Keras gives
    # the initial state as state and 0 as output: pinned below where the op may differ.
    fix_empty = bool(init) or first.onnx_op == "RNN"
    results = []
    for d in range(len(cells)):
        r = RnnResult()
        r.Y = Y
        if need_seq:   # [T, B, H]; Squeeze (no copy) when there is one direction
            r.tm = per_dir[d][0] if per_dir else g.squeeze(Y, [1]) if single else g.take(Y, d, axis=1)
            keep = None if (zero_output or d == 1 or plan is None) else plan.carry_keep
            r.seq = batch_major(g, r.tm, mask, keep)
        states = per_dir[d][1] if per_dir else [g.squeeze(f, [0]) if single else g.take(f, d, axis=0)
                                                 for f in finals]
        r.last = states[0]
        if plan is not None:
            if zero_output and d == 0:
                # the last processed step must itself be valid, else Keras outputs 0
                r.last = g.op("Where", g.unsqueeze(g.take(mask, -1, axis=1), [1]), r.last,
                              g.const(np.float32(0)))
            elif fix_empty:
                r.last = g.op("Where", plan.nonempty, r.last, g.const(np.float32(0)))
            if fix_empty:
                zeros = [g.const(np.float32(0))] * len(states)
                states = [g.op("Where", plan.nonempty, s, s0)
                          for s, s0 in zip(states, init[d] if init else zeros)]
        r.states = states
        results.append(r)
    return results


# ---------------------------------------------------------------------------------------------
# The base of SimpleRNN, LSTM and GRU.


class Recurrent(Layer):
    """A Keras RNN layer over one cell kind. Subclasses give the cell: its gates, states, step
    math and ONNX parameters."""

    reference_fields = ("initial_state",)
    required = ("units",)
    #: ONNX operator (RNN, LSTM, GRU), number of gates, state names.
    onnx_op: ClassVar[str] = ""
    gates: ClassVar[int] = 1
    #: Keras's names of the gate blocks, in the order of the kernel's columns (diagnostics).
    gate_names: ClassVar[tuple[str, ...]] = ()
    state_names: ClassVar[tuple[str, ...]] = ("h",)

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    # -- cell, per kind -----------------------------------------------------------------------
    def cell_activations(self) -> list[str]:
        """Activation names the cell uses, in ONNX order."""
        raise NotImplementedError

    def onnx_activations(self) -> list[str]:
        return self.cell_activations()

    def onnx_attributes(self) -> dict:
        return {}

    def step_fn(self, w: dict[str, np.ndarray]) -> StepFn:
        raise NotImplementedError

    def onnx_params(self, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(W [G*H, I], R [G*H, H], B [2*G*H]) for one direction."""
        raise NotImplementedError

    def input_bias(self, w: dict[str, np.ndarray]) -> np.ndarray | None:
        """The bias added to x K (the input projection), Keras layout; None without bias."""
        return w["bias"] if self["use_bias"] else None

    def emit_cell(self, g, xw: str, states: list[str], w: dict[str, np.ndarray]) -> tuple[str, list[str]]:
        """One step of the cell in plain ONNX ops, given xw = x K + input bias: (output, new
        states). Used by the Scan fallback (layers/scan.py)."""
        raise NotImplementedError

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self["units"],)

    # -- rules --------------------------------------------------------------------------------
    def check(self):
        problems = []
        if self["stateful"] and self.config.get("initial_state"):
            problems.append(("initial_state", "a stateful layer carries its own state; "
                                              "initial_state cannot be combined with stateful=true"))
        return problems

    def emitter(self, target: Target):
        """The lowering of the time loop: the native operator, or the Scan fallback."""
        if self.native_blocker(target) is None:
            return emit_rnn
        from .scan import emit_scan_rnn
        return emit_scan_rnn

    def as_scan(self, target: Target) -> bool:
        """Whether the native op is computed as an exact Scan on `target` (its kernel is slower)."""
        return self.onnx_op in target.rnn_ops_as_scan and target.allows_loops

    def native_blocker(self, target: Target = ONNXRUNTIME) -> str | None:
        """Why the native ONNX operator cannot compute this layer on `target`, or None."""
        for name in self.cell_activations():
            a = act.get(name)
            if target.rnn_activation(name, a.rnn) is None:
                if a.rnn is None:
                    return f"activation {name!r}: {a.note}"
                return f"activation {name!r}: {target.name} takes no {a.rnn[0]} in recurrent ops"
        return None

    def target_blocker(self, target: Target) -> str | None:
        why = self.native_blocker(target)
        if why is None or target.allows_loops:
            return None
        native = [n for n, a in act.ACTIVATIONS.items()
                  if not a.feature_only and target.rnn_activation(n, a.rnn) is not None]
        return (f"{why}, and {target.name} takes no Scan/Loop fallback. Nearest supported: an "
                f"activation with a native form ({', '.join(native)}), or --target onnxruntime, "
                f"where this layer runs as an exact Scan loop")

    def lowering(self, target: Target = ONNXRUNTIME) -> str:
        why = self.native_blocker(target)
        if why:
            if not target.allows_loops:
                return f"refused on {target.name}: {why}"
            return f"ONNX Scan loop, not native: {why} (slower; TensorRT cannot parse it)"
        if self.as_scan(target):
            return (f"ONNX Scan of Gemm + {self['activation']} per step (exact; faster than "
                    f"{target.name}'s {self.onnx_op} kernel)")
        notes = []
        for name in dict.fromkeys(self.cell_activations()):
            a = act.get(name)
            form = target.rnn_activation(name, a.rnn)
            if form != a.rnn:
                notes.append(f"{name} as {form[0]}({', '.join(f'{p:g}' for p in form[1])})")
            elif a.note:
                notes.append(a.note)
        base = f"native ONNX {self.onnx_op}"
        return base + (f" ({'; '.join(notes)})" if notes else "")

    def fused_path(self, target: Target = ONNXRUNTIME, masked: bool | None = None) -> dict:
        """For `summary --target`: whether this layer gets the native fused op on `target` and,
        if not, why; and the Keras guide's cuDNN conditions, each with what it means here."""
        why = self.native_blocker(target)
        if why is None and self.as_scan(target):
            why = (f"{target.name}'s {self.onnx_op} kernel is slower than an ONNX Scan of the cell, "
                   "which computes the same (BENCHMARKS.md)")
        keras_cudnn = []
        if self["activation"] != "tanh":
            keras_cudnn.append(f"activation={self['activation']!r} (cuDNN needs 'tanh')")
        if "recurrent_activation" in self.config and self["recurrent_activation"] != "sigmoid":
            keras_cudnn.append(f"recurrent_activation={self['recurrent_activation']!r} "
                               "(cuDNN needs 'sigmoid')")
        if self["recurrent_dropout"]:
            keras_cudnn.append("recurrent_dropout > 0 (no effect at inference here)")
        if self["unroll"]:
            keras_cudnn.append("unroll=True (no effect here)")
        if not self["use_bias"]:
            keras_cudnn.append("use_bias=False (native here: the op takes no B)")
        if masked is None:
            masked = bool(self.input_types) and self.input_types[0].masked and not self["ignore_mask"]
        if masked:
            keras_cudnn.append("masked input, padding not known to be right-aligned (native here: "
                               "valid steps are compacted, any padding)")
        return {"native": why is None, "why_not": why, "keras_cudnn_conditions_unmet": keras_cudnn}

    def sequence_input(self, inputs: list[TensorType]) -> TensorType:
        x = inputs[0]
        expect_rank(x, (3,), "a sequence")
        expect_float(x)
        if x.shape[1] == 0:
            raise LayerError("needs at least one time step")
        n_init = len(self.config.get("initial_state") or [])
        if n_init and n_init != self.n_states:
            raise LayerError(f"takes {self.n_states} initial state(s) "
                             f"({', '.join(self.state_names)}), got {n_init}", "initial_state")
        return x

    def check_states(self, states: list[TensorType], units: int) -> None:
        for i, s in enumerate(states):
            if s.rank != 2 or s.shape[1] != units:
                raise LayerError(f"initial state {i} must have shape (None, {units}), got {s}",
                                 "initial_state")

    def output_types(self, inputs):
        x = self.sequence_input(inputs)
        units = self["units"]
        self.check_states(inputs[1:1 + len(self.config.get("initial_state") or [])], units)
        if self["return_sequences"]:
            out = TensorType((x.shape[0], x.shape[1], units), "float32", x.masked)
        else:
            out = TensorType((x.shape[0], units), "float32", False)
        states = [TensorType((x.shape[0], units))] * self.n_states
        return [out] + (states if self["return_state"] else [])

    def output_names(self):
        return ["output"] + ([f"state_{s}" for s in self.state_names] if self["return_state"] else [])

    def state_shapes(self, inputs):
        if not self["stateful"]:
            return []
        return [(f"state_{s}", (self["units"],)) for s in self.state_names]

    def weight_shapes(self, inputs):
        i, h, g = inputs[0].shape[-1], self["units"], self.gates
        shapes = {"kernel": (i, g * h), "recurrent_kernel": (h, g * h)}
        if self["use_bias"]:
            shapes["bias"] = self.bias_shape()
        return shapes

    # -- Keras import: LSTM, GRU, SimpleRNN, and RNN over their cells ---------------------------
    keras_weight_paths = {"": "cell/vars/"}
    keras_call_args = ("initial_state", "mask")

    @classmethod
    def from_keras(cls, f):
        c = f.cell  # an RNN layer's cell options; the layer's own otherwise
        out = {"units": c.integer("units"), "activation": c.activation("activation", "tanh")}
        if "recurrent_activation" in cls.attributes:
            out["recurrent_activation"] = c.activation("recurrent_activation", "sigmoid")
        out["use_bias"] = c.boolean("use_bias", True)
        for k in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                  "zero_output_for_mask"):
            out[k] = f.boolean(k, False)
        if f.get("time_major"):
            f.refuse("time_major", True, "time-major inputs are not supported")
        for k in ("dropout", "recurrent_dropout"):
            out[k] = c.number(k, 0.0, 0, 1)
            f.random_in_training(out[k] > 0)
        c.refuse_set("lora_rank", "quantization_config", why="LoRA and quantized layers are not supported")
        return out

    # -- reference ----------------------------------------------------------------------------
    def run(self, x: Tensor, init: list[np.ndarray] | None, w, go_backwards: bool,
            zero_output: bool):
        batch = x.data.shape[0]
        states = init or [np.zeros((batch, self["units"]))] * self.n_states
        return masked_scan(self.step_fn(w), x.data.astype(np.float64), x.mask, list(states),
                           go_backwards, zero_output)

    def reference(self, inputs, weights):
        x, init = without_mask(self, inputs[0]), [s.data for s in inputs[1:]]
        seq, last, states = self.run(x, init, weights, self["go_backwards"],
                                     self["zero_output_for_mask"])
        out = Tensor(seq, inputs[0].mask) if self["return_sequences"] else Tensor(last)
        result = [out] + ([Tensor(s) for s in states] if self["return_state"] else [])
        return result + ([Tensor(s) for s in states] if self["stateful"] else [])

    # -- lowering -----------------------------------------------------------------------------
    def lower(self, g, inputs, weights):
        x, init = without_mask(self, inputs[0]), [s.name for s in inputs[1:]]
        xn, mn = x.name, x.mask
        if self["go_backwards"]:
            xn = g.flip(xn, 1)
            mn = g.flip(mn, 1) if mn else None
        (r,) = self.emitter(g.target)(g, [self], [weights], xn, mn, [init] if init else None,
                        self["zero_output_for_mask"], need_seq=self["return_sequences"])
        if self["return_sequences"]:
            remember_time_major(g, r.seq, r.tm, mn)
        types = self.output_types_
        out = [Sym(r.seq if self["return_sequences"] else r.last, types[0],
                   inputs[0].mask if self["return_sequences"] else None)]
        if self["return_state"]:
            out += [Sym(s, t) for s, t in zip(r.states, types[1:])]
        if self["stateful"]:
            out += [Sym(s, TensorType((None, self["units"]))) for s in r.states]
        return out


def without_mask(layer: Layer, value):
    """The input value the cell computes on: its mask dropped when the layer says `ignore_mask`
    (the output still carries the input's mask on, as Keras does)."""
    if layer.config.get("ignore_mask") and value.mask is not None:
        return replace(value, mask=None)
    return value


def split_gates(a: np.ndarray, n: int, axis: int = -1) -> list[np.ndarray]:
    return np.split(a, n, axis=axis)
