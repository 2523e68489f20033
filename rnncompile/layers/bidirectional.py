"""Bidirectional wrapper over SimpleRNN, LSTM or GRU.

Keras: the backward copy has go_backwards=True; both copies get zero_output_for_mask =
return_sequences; the backward sequence is flipped back before merging; states come out as
[h_f, (c_f), h_b, (c_b)]; initial_state[:half] is forward, [half:] backward. One native ONNX op
with direction=bidirectional computes both (its reverse direction runs inside `sequence_lens`,
which after compaction is exactly Keras's backward pass over the valid steps)."""
from __future__ import annotations

import numpy as np

from ..layer import LayerError, Sym, Tensor, TensorType, register, Layer
from ..targets import ONNXRUNTIME
from .recurrent import (RECURRENT_ATTRIBUTES, REF_LIST, Recurrent, batch_major, emit_rnn,
                        remember_time_major, without_mask)

MERGE_MODES = ["concat", "sum", "ave", "mul", None]


def _merge_ref(mode, a, b):
    return {"concat": lambda: np.concatenate([a, b], -1), "sum": lambda: a + b,
            "ave": lambda: (a + b) / 2.0, "mul": lambda: a * b}[mode]()


def _merge_onnx(g, mode, a, b):
    if mode == "concat":
        return g.op("Concat", a, b, axis=-1)
    if mode == "sum":
        return g.op("Add", a, b)
    if mode == "ave":
        return g.op("Mul", g.op("Add", a, b), g.const(np.float32(0.5)))
    return g.op("Mul", a, b)


@register
class Bidirectional(Layer):
    class_name = "Bidirectional"
    description = "Runs a recurrent layer forward and backward and merges the results"
    attributes = {
        "layer": {"type": "object", "required": ["class_name"],
                  "properties": {"class_name": {"enum": ["SimpleRNN", "LSTM", "GRU"]}},
                  "description": "the wrapped SimpleRNN, LSTM or GRU layer config"},
        "merge_mode": {"enum": MERGE_MODES, "default": "concat"},
        "initial_state": REF_LIST,
        "ignore_mask": RECURRENT_ATTRIBUTES["ignore_mask"],
    }
    required = ("layer",)
    reference_fields = ("initial_state",)

    def __init__(self, name, config, path="$"):
        super().__init__(name, config, path)
        from ..spec import make_inner_layer  # the spec module validates and builds layer configs
        fwd = make_inner_layer(config["layer"], f"{name}/forward", f"{path}.layer", Recurrent)
        self.forward: Recurrent = fwd
        bcfg = dict(fwd.config, go_backwards=not fwd["go_backwards"])
        self.backward: Recurrent = type(fwd)(f"{name}/backward", bcfg, f"{path}.layer")
        for sub in (self.forward, self.backward):
            sub.config["zero_output_for_mask"] = fwd["return_sequences"]

    @property
    def inner(self) -> Recurrent:
        return self.forward

    def check(self):
        problems = list(self.forward.check())
        if self.forward["go_backwards"]:
            problems.append(("layer.go_backwards", "a Bidirectional over a go_backwards layer is not "
                                                   "supported (it only swaps the two directions)"))
        return problems

    def output_types(self, inputs):
        n_init = len(self.config.get("initial_state") or [])
        inner = self.forward
        if n_init and n_init != 2 * inner.n_states:
            raise LayerError(f"takes {2 * inner.n_states} initial states (forward "
                             f"{', '.join(inner.state_names)}, then backward), got {n_init}", "initial_state")
        x = inner.sequence_input(inputs[:1])
        units = inner["units"]
        inner.check_states(inputs[1:], units)
        width = 2 * units if self["merge_mode"] == "concat" else units
        if inner["return_sequences"]:
            one = TensorType((x.shape[0], x.shape[1], units), "float32", x.masked)
            merged = TensorType((x.shape[0], x.shape[1], width), "float32", x.masked)
        else:
            one, merged = TensorType((x.shape[0], units)), TensorType((x.shape[0], width))
        outs = [one, one] if self["merge_mode"] is None else [merged]
        states = [TensorType((x.shape[0], units))] * (2 * inner.n_states)
        return outs + (states if inner["return_state"] else [])

    def output_names(self):
        names = ["forward", "backward"] if self["merge_mode"] is None else ["output"]
        if self.inner["return_state"]:
            names += [f"{d}_state_{s}" for d in ("forward", "backward") for s in self.inner.state_names]
        return names

    def state_shapes(self, inputs):
        if not self.inner["stateful"]:
            return []
        return [(f"{d}_state_{s}", (self.inner["units"],))
                for d in ("forward", "backward") for s in self.inner.state_names]

    def weight_shapes(self, inputs):
        inner = self.inner.weight_shapes(inputs)
        return {f"{d}/{k}": v for d in ("forward", "backward") for k, v in inner.items()}

    # -- Keras import ---------------------------------------------------------------------------
    keras_classes = ("Bidirectional",)
    keras_weight_paths = {"forward": "forward_layer/cell/vars/", "backward": "backward_layer/cell/vars/"}
    keras_call_args = ("initial_state", "mask")

    @classmethod
    def from_keras(cls, f):
        fwd = f.sublayer("layer", Recurrent)
        mode = f.get("merge_mode", "concat")
        if mode not in MERGE_MODES:
            f.refuse("merge_mode", mode, "expected concat, sum, ave, mul or None")
        if f.get("backward_layer") is not None:
            bwd = f.sublayer("backward_layer", Recurrent)
            a, b = ({k: v for k, v in d.items() if k not in ("go_backwards", "zero_output_for_mask")}
                    for d in (fwd, bwd))
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if diff or bwd["go_backwards"] == fwd["go_backwards"]:
                detail = ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in diff) or \
                    "go_backwards is the same in both directions"
                raise LayerError(f"option backward_layer is not supported: it differs from the forward "
                                 f"layer ({detail}); rnncompile supports a backward layer that is the "
                                 f"forward layer run backwards")
        fwd.pop("zero_output_for_mask", None)  # Bidirectional sets it to return_sequences
        return {"layer": fwd, "merge_mode": mode}

    def target_blocker(self, target):
        return self.inner.target_blocker(target)

    def fused_path(self, target=ONNXRUNTIME):
        masked = bool(self.input_types) and self.input_types[0].masked and not self["ignore_mask"]
        return self.inner.fused_path(target, masked)

    def lowering(self, target=ONNXRUNTIME):
        return self.inner.lowering(target).replace("native ONNX ", "native ONNX bidirectional ").replace(
            "ONNX Scan loop", "two ONNX Scan loops")

    def _split(self, weights):
        return ({k[8:]: v for k, v in weights.items() if k.startswith("forward/")},
                {k[9:]: v for k, v in weights.items() if k.startswith("backward/")})

    def _assemble(self, y_f, y_b, states, mask, wrap):
        """Outputs in Keras order: the merged sequence (or both with merge_mode None), the states
        if return_state, then the carried states if stateful. `wrap(value, mask, index)` makes the
        pass's value; a ("merge", a, b) value asks it to merge."""
        seq_mask = mask if self.inner["return_sequences"] else None
        if self["merge_mode"] is None:
            out = [wrap(y_f, seq_mask, 0), wrap(y_b, seq_mask, 1)]
        else:
            out = [wrap(("merge", y_f, y_b), seq_mask, 0)]
        k = len(out)
        if self.inner["return_state"]:
            out += [wrap(s, None, k + i) for i, s in enumerate(states)]
        if self.inner["stateful"]:
            out += [wrap(s, None, -1) for s in states]
        return out

    def reference(self, inputs, weights):
        x, init = without_mask(self, inputs[0]), [s.data for s in inputs[1:]]
        wf, wb = self._split(weights)
        n = self.inner.n_states
        zero = self.inner["return_sequences"]
        seq_f, last_f, st_f = self.forward.run(x, init[:n] or None, wf, False, zero)
        seq_b, last_b, st_b = self.backward.run(x, init[n:] or None, wb, True, zero)
        if self.inner["return_sequences"]:
            y_f, y_b = seq_f, seq_b[:, ::-1]
        else:
            y_f, y_b = last_f, last_b

        def wrap(v, m, _i):
            if isinstance(v, tuple):
                v = _merge_ref(self["merge_mode"], v[1], v[2])
            return Tensor(v, m)
        return self._assemble(y_f, y_b, st_f + st_b, inputs[0].mask, wrap)

    def _lower_scan(self, g, inputs, x, init, wf, wb):
        """Two ONNX Scan loops (layers/scan.py), for cells no native operator computes."""
        from .scan import emit_scan_rnn

        n, rs = self.inner.n_states, self.inner["return_sequences"]
        rf, rb = emit_scan_rnn(g, [self.forward, self.backward], [wf, wb], x.name, x.mask,
                               [init[:n], init[n:]] if init else None, zero_output=rs, need_seq=rs)
        types = self.output_types_

        def wrap(v, m, i):
            if isinstance(v, tuple):
                v = _merge_onnx(g, self["merge_mode"], v[1], v[2])
            return Sym(v, types[i] if i >= 0 else TensorType((None, self.inner["units"])), m)
        y_f, y_b = (rf.seq, rb.seq) if rs else (rf.last, rb.last)
        return self._assemble(y_f, y_b, rf.states + rb.states, inputs[0].mask, wrap)

    def lower(self, g, inputs, weights):
        x, init = without_mask(self, inputs[0]), [s.name for s in inputs[1:]]
        n = self.inner.n_states
        rs = self.inner["return_sequences"]
        mode = self["merge_mode"]
        wf, wb = self._split(weights)
        if self.inner.native_blocker(g.target):
            return self._lower_scan(g, inputs, x, init, wf, wb)
        rf, rb = emit_rnn(g, [self.forward, self.backward], [wf, wb], x.name, x.mask,
                          [init[:n], init[n:]] if init else None, zero_output=rs, need_seq=rs)
        types = self.output_types_
        merged = None
        if rs and mode is not None:
            # Merge in the op's time-major (compacted) layout, then put the merged sequence back
            # once; the time-major form is what a following recurrent layer reads. Exact: both
            # directions zero the same masked steps, and every merge maps (0, 0) to 0.
            if mode == "concat":      # [T, 2, B, H] -> [T, B, 2H]: forward first
                tm = g.op("Reshape", g.op("Transpose", rf.Y, perm=[0, 2, 1, 3]),
                          g.const(np.array([0, 0, -1], np.int64)))
                if x.mask is None:    # one copy: [T, 2, B, H] -> [B, T, 2, H] -> [B, T, 2H]
                    merged = g.op("Reshape", g.op("Transpose", rf.Y, perm=[2, 0, 1, 3]),
                                  g.const(np.array([0, 0, -1], np.int64)))
            else:
                tm = _merge_onnx(g, mode, rf.tm, rb.tm)
            if merged is None:
                merged = batch_major(g, tm, x.mask)
            remember_time_major(g, merged, tm, x.mask)
        elif rs:
            for r in (rf, rb):
                remember_time_major(g, r.seq, r.tm, x.mask)
        y_f, y_b = (rf.seq, rb.seq) if rs else (rf.last, rb.last)

        def wrap(v, m, i):
            if isinstance(v, tuple):
                v = merged if merged is not None else _merge_onnx(g, mode, v[1], v[2])
            t = types[i] if i >= 0 else TensorType((None, self.inner["units"]))
            return Sym(v, t, m)
        return self._assemble(y_f, y_b, rf.states + rb.states, inputs[0].mask, wrap)
