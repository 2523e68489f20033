"""The fallback lowering of a recurrent layer whose cell the native ONNX RNN/LSTM/GRU operators
cannot compute (an activation such as gelu, selu, swish, softplus or relu6): an ONNX Scan over
time whose body is the cell written in plain ONNX ops, with Keras's mask rule inside the body.
The input projection x K + b is one MatMul over all steps, outside the loop.

It is exact, and runs on onnxruntime; it is slower than a native op, and TensorRT's importer does
not take recurrent Scan bodies, which is why `rnncompile summary` says when a layer lands here."""
from __future__ import annotations

import numpy as np

from .recurrent import Recurrent, RnnResult


def _zeros(g, like_batch: str, units: int) -> str:
    shape = g.op("Concat", g.dim(like_batch, 0), g.const(np.array([units], np.int64)), axis=0)
    return g.constant_of_shape(shape, 0.0)


def emit_scan_one(g, cell: Recurrent, w: dict, x: str, mask: str | None, init: list[str] | None,
                  zero_output: bool) -> RnnResult:
    """One direction, in processing order (flip x and mask first for go_backwards)."""
    units, width = cell["units"], cell.gates * cell["units"]
    xw = g.op("MatMul", x, g.const(w["kernel"], "float32", name="kernel"))
    bias = cell.input_bias(w)
    if bias is not None:
        xw = g.op("Add", xw, g.const(bias, "float32", name="bias"))
    scans = [g.op("Transpose", xw, perm=[1, 0, 2])]                       # [T, B, G*H]
    if mask is not None:
        scans.append(g.op("Transpose", g.unsqueeze(mask, [2]), perm=[1, 0, 2]))  # [T, B, 1]
    carry = mask is not None and not zero_output
    states0 = list(init) if init else [_zeros(g, x, units) for _ in cell.state_names]
    if carry:
        states0.append(_zeros(g, x, units))

    body = g.subgraph("cell")
    s_in = [body.add_input(body.fresh(f"{n}_prev"), "float32", [None, units]) for n in cell.state_names]
    prev_out = body.add_input(body.fresh("out_prev"), "float32", [None, units]) if carry else None
    x_t = body.add_input(body.fresh("x_t"), "float32", [None, width])
    m_t = body.add_input(body.fresh("mask_t"), "bool", [None, 1]) if mask is not None else None
    out, new = cell.emit_cell(body, x_t, s_in, w)
    if m_t is not None:
        new = [body.op("Where", m_t, n, s) for n, s in zip(new, s_in)]
        out = body.op("Where", m_t, out, prev_out if carry else body.const(np.float32(0)))
    for v in new + ([out] if carry else []) + [out]:
        body.add_output(v, body.fresh("result"), "float32", [None, units])

    n_state = len(states0)
    outs = g.op("Scan", *states0, *scans, n_out=n_state + 1, body=body.to_graph(),
                num_scan_inputs=len(scans))
    ys = outs[-1]                                                       # [T, B, H]
    r = RnnResult()
    r.seq = g.op("Transpose", ys, perm=[1, 0, 2])
    r.last = g.take(ys, -1, axis=0)
    r.states = list(outs[:len(cell.state_names)])
    return r


def emit_scan_rnn(g, cells: list[Recurrent], weights: list[dict], x: str, mask: str | None,
                  init: list[list[str]] | None, zero_output: bool, need_seq: bool) -> list[RnnResult]:
    """Same contract as `recurrent.emit_rnn`: one cell forward, or two for Bidirectional (the
    second reads the steps backwards and its sequence comes back in time order)."""
    results = []
    for d, (cell, w) in enumerate(zip(cells, weights)):
        with g.scope("forward" if d == 0 else "backward"):
            xd, md = (x, mask) if d == 0 else (g.flip(x, 1), g.flip(mask, 1) if mask else None)
            r = emit_scan_one(g, cell, w, xd, md, init[d] if init else None, zero_output)
            if d == 1 and need_seq:
                r.seq = g.flip(r.seq, 1)
        results.append(r)
    return results
