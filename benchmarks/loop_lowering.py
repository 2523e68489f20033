"""A Loop-based ONNX lowering of the same model: what tf2onnx-style converters emit for Keras
recurrent layers they cannot map onto a native op (masked RNNs, SimpleRNN, Keras 3 GRU, custom
activations): the input transposed to time-major, then an ONNX Loop whose body gathers step t,
does the per-step MatMuls (x_t @ kernel, h @ recurrent_kernel), the gate arithmetic, and, with a
mask, Where(mask_t, new, old) on every state and on the output; the outputs are the Loop's scan
outputs. Bidirectional is two Loops, the backward one over the reversed input.

Only the recurrent layers change: every other layer keeps rnncompile's own lowering (the
comparison isolates the recurrence). `lower_with_loops(model)` returns ONNX bytes with the same
inputs and outputs as model.onnx.
"""
from __future__ import annotations

import contextlib

import numpy as np
from onnx import TensorProto, helper

from rnncompile import activations as act
from rnncompile.layer import Sym, TensorType
from rnncompile.layers.bidirectional import Bidirectional, _merge_onnx
from rnncompile.layers.recurrent import Recurrent, without_mask
from rnncompile.lower import lower
from rnncompile.onnx_graph import GraphBuilder


class _Body(GraphBuilder):
    """Builds a Loop body: node names come from the outer graph (unique across the model) and
    constants become outer initializers the body reads from the enclosing scope."""

    def __init__(self, outer: GraphBuilder, name: str):
        super().__init__(name)
        self.outer = outer

    def fresh(self, hint):
        return self.outer.fresh(f"loop_body/{hint}")

    def const(self, value, dtype=None, name=None):
        return self.outer.const(value, dtype, name)


def _f(g, a):
    return g.const(np.asarray(a, np.float32))


def _cell_step(cell: Recurrent, w: dict, g: GraphBuilder, b: _Body, x_t: str, states: list[str]):
    """The Keras cell, one step, as body nodes. Returns (output, new states)."""
    h = cell["units"]
    fa = act.get(cell["activation"]).emit
    kind = cell.class_name
    k = _f(g, w["kernel"])
    if kind == "LSTM":
        fr = act.get(cell["recurrent_activation"]).emit
        z = b.op("Add", b.op("MatMul", x_t, k), b.op("MatMul", states[0], _f(g, w["recurrent_kernel"])))
        if cell["use_bias"]:
            z = b.op("Add", z, _f(g, w["bias"]))
        zi, zf, zc, zo = b.op("Split", z, axis=1, n_out=4)
        c = b.op("Add", b.op("Mul", fr(b, zf), states[1]), b.op("Mul", fr(b, zi), fa(b, zc)))
        hn = b.op("Mul", fr(b, zo), fa(b, c))
        return hn, [hn, c]
    if kind == "GRU":
        fr = act.get(cell["recurrent_activation"]).emit
        rk = w["recurrent_kernel"]
        if cell["use_bias"]:
            b_in, b_rec = (w["bias"][0], w["bias"][1]) if cell["reset_after"] else (w["bias"], None)
        else:
            b_in, b_rec = np.zeros(3 * h, np.float32), None
        mx = b.op("Add", b.op("MatMul", x_t, k), _f(g, b_in))
        xz, xr, xh = b.op("Split", mx, axis=1, n_out=3)
        hprev = states[0]
        if cell["reset_after"]:
            mh = b.op("MatMul", hprev, _f(g, rk))
            if b_rec is not None:
                mh = b.op("Add", mh, _f(g, b_rec))
            hz, hr, hh = b.op("Split", mh, axis=1, n_out=3)
            zg = fr(b, b.op("Add", xz, hz))
            rg = fr(b, b.op("Add", xr, hr))
            cand = fa(b, b.op("Add", xh, b.op("Mul", rg, hh)))
        else:
            hzr = b.op("MatMul", hprev, _f(g, rk[:, :2 * h]))
            hz, hr = b.op("Split", hzr, axis=1, n_out=2)
            zg = fr(b, b.op("Add", xz, hz))
            rg = fr(b, b.op("Add", xr, hr))
            cand = fa(b, b.op("Add", xh, b.op("MatMul", b.op("Mul", rg, hprev), _f(g, rk[:, 2 * h:]))))
        one = _f(g, 1.0)
        hn = b.op("Add", b.op("Mul", zg, hprev), b.op("Mul", b.op("Sub", one, zg), cand))
        return hn, [hn]
    if kind == "SimpleRNN":
        z = b.op("Add", b.op("MatMul", x_t, k), b.op("MatMul", states[0], _f(g, w["recurrent_kernel"])))
        if cell["use_bias"]:
            z = b.op("Add", z, _f(g, w["bias"]))
        hn = fa(b, z)
        return hn, [hn]
    raise NotImplementedError(kind)


def emit_loop(g: GraphBuilder, cell: Recurrent, w: dict, x: str, mask: str | None, init: list[str] | None,
              zero_output: bool, go_backwards: bool):
    """One direction as an ONNX Loop. Returns (outputs [B, T, H] in processing order, last output,
    final states)."""
    i64 = np.int64
    h = cell["units"]
    if go_backwards:
        x = g.flip(x, 1)
        mask = g.flip(mask, 1) if mask is not None else None
    xt = g.op("Transpose", x, perm=[1, 0, 2])                              # [T, B, F]
    mt = g.op("Transpose", mask, perm=[1, 0]) if mask is not None else None
    trips = g.squeeze(g.dim(xt, 0), [0])
    cond = g.const(np.array(True))
    zeros = g.op("ConstantOfShape", g.op("Concat", g.dim(x, 0), g.const(np.array([h], i64)), axis=0),
                 value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))
    init = list(init) if init else [zeros] * cell.n_states
    carried = init + ([zeros] if mask is not None else [])                 # states (+ last output)

    b = _Body(g, "loop_body")
    it = b.fresh("iter")
    c_in = b.fresh("cond")
    s_in = [b.fresh(f"state{i}") for i in range(len(carried))]
    x_t = b.op("Gather", xt, it, axis=0)
    out, new = _cell_step(cell, w, g, b, x_t, s_in[:cell.n_states])
    if mask is not None:
        m_t = b.unsqueeze(b.op("Gather", mt, it, axis=0), [1])
        new = [b.op("Where", m_t, n, s) for n, s in zip(new, s_in)]
        out = b.op("Where", m_t, out, _f(g, 0.0) if zero_output else s_in[-1])
        new.append(out)
    c_out = b.op("Identity", c_in)
    y_t = b.op("Identity", out)
    f32 = TensorProto.FLOAT
    body = helper.make_graph(
        b.nodes, g.fresh("loop_body"),
        [helper.make_tensor_value_info(it, TensorProto.INT64, []),
         helper.make_tensor_value_info(c_in, TensorProto.BOOL, [])]
        + [helper.make_tensor_value_info(s, f32, None) for s in s_in],
        [helper.make_tensor_value_info(c_out, TensorProto.BOOL, [])]
        + [helper.make_tensor_value_info(n, f32, None) for n in new]
        + [helper.make_tensor_value_info(y_t, f32, None)])
    outs = g.op("Loop", trips, cond, *carried, n_out=len(carried) + 1, body=body)
    finals, ys = outs[:cell.n_states], outs[-1]
    seq = g.op("Transpose", ys, perm=[1, 0, 2])
    last = g.take(ys, -1, axis=0)
    return seq, last, finals


def _recurrent_lower(self, g, inputs, weights):
    x, init = without_mask(self, inputs[0]), [s.name for s in inputs[1:]]
    seq, last, states = emit_loop(g, self, weights, x.name, x.mask, init or None,
                                  self["zero_output_for_mask"], self["go_backwards"])
    rs = self["return_sequences"]
    types = self.output_types_
    out = [Sym(seq if rs else last, types[0], inputs[0].mask if rs else None)]
    if self["return_state"]:
        out += [Sym(s, t) for s, t in zip(states, types[1:])]
    if self["stateful"]:
        out += [Sym(s, TensorType((None, self["units"]))) for s in states]
    return out


def _bidirectional_lower(self, g, inputs, weights):
    x, init = without_mask(self, inputs[0]), [s.name for s in inputs[1:]]
    n = self.inner.n_states
    rs = self.inner["return_sequences"]
    wf, wb = self._split(weights)
    seq_f, last_f, st_f = emit_loop(g, self.forward, wf, x.name, x.mask, init[:n] or None, rs, False)
    seq_b, last_b, st_b = emit_loop(g, self.backward, wb, x.name, x.mask, init[n:] or None, rs, True)
    if rs:
        y_f, y_b = seq_f, g.flip(seq_b, 1)
    else:
        y_f, y_b = last_f, last_b
    types = self.output_types_

    def wrap(v, m, i):
        if isinstance(v, tuple):
            v = _merge_onnx(g, self["merge_mode"], v[1], v[2])
        t = types[i] if i >= 0 else TensorType((None, self.inner["units"]))
        return Sym(v, t, m)
    return self._assemble(y_f, y_b, st_f + st_b, inputs[0].mask, wrap)


@contextlib.contextmanager
def loop_lowerings():
    """Within the block, recurrent layers lower to ONNX Loops."""
    saved = Recurrent.lower, Bidirectional.lower
    Recurrent.lower, Bidirectional.lower = _recurrent_lower, _bidirectional_lower
    try:
        yield
    finally:
        Recurrent.lower, Bidirectional.lower = saved


def lower_with_loops(model) -> bytes:
    with loop_lowerings():
        return lower(model).model_bytes
