"""The ONNX `RNN` op (SimpleRNN) computed as an ONNX Scan, for targets whose RNN kernel is slower
than a loop over the same cell (`Target.rnn_ops_as_scan`; onnxruntime's CPU kernel).

Why (measured side by side, `benchmarks/rnn_formulations.py`, BENCHMARKS.md): onnxruntime's CPU
`RNN` kernel applies the activation one element at a time through a `std::function` (its LSTM and
GRU kernels use vectorized activations). A Scan whose body is one Gemm (h R^T + x_t W^T + b) and
the activation as a vectorized ONNX op, with the input projection done once for all steps outside
the loop, computes the same values; it is faster except at batch 1 with a cheap activation or a
small layer or masked input (there up to 18% slower).

Contract: the native op's outputs with `sequence_lens` (the valid steps of each row first, as the
mask compaction of `recurrent.emit_rnn` leaves them), per direction:
  * the output sequence [T, B, H]: the state after each valid step, 0 at or past a row's
    `sequence_lens` (a reverse direction stores step t at t, as the op does);
  * the final state [B, H]: the state after the last valid step (for an empty row a value the op
    leaves undefined too: `emit_rnn` pins empty rows).
"""
from __future__ import annotations

import numpy as np

from .. import activations as act


def rnn_as_scan(g, cells, params, X: str, length: str | None, init: list[list[str]] | None,
                need_seq: bool) -> tuple[list[str | None], list[str]]:
    """The RNN op over time-major X [T, B, I] for one cell (forward) or two (bidirectional: the
    second reads the steps backwards), as one Scan. `params` are the cells' ONNX (W, R, B);
    `length` [B] int64 is the number of valid steps per row (None: all steps are valid); `init`
    the initial state per direction. Returns per direction (output sequence or None, final state).

    The forward direction needs no mask in the loop: the valid steps come first, so its final
    state is gathered from the output sequence at step length - 1 after the loop (what the op
    does). The reverse direction starts at the last step, so it keeps its state with a Where
    until a row's valid steps begin."""
    units = cells[0]["units"]
    i64 = np.int64
    batch_units = g.op("Concat", g.dim(X, 1), g.const(np.array([units], i64)), axis=0)
    if length is not None:  # [T, B, 1]: step t < sequence_lens[b]
        steps = g.op("Range", g.const(np.array(0, i64)), g.squeeze(g.dim(X, 0), [0]), g.const(np.array(1, i64)))
        valid = g.op("Less", g.unsqueeze(steps, [1, 2]), g.unsqueeze(length, [0, 2]))

    body = g.subgraph("rnn_step")
    states0, scans, directions, state_in, scan_in, state_out, seq_out = [], [], [], [], [], [], []
    for d, (cell, (W, R, B)) in enumerate(zip(cells, params)):
        xw = g.op("MatMul", X, g.const(W.T, "float32", name="kernel"))     # [T, B, H]
        if cell["use_bias"]:
            xw = g.op("Add", xw, g.const(B[:units] + B[units:], "float32", name="bias"))
        states0.append(init[d][0] if init else g.constant_of_shape(batch_units, 0.0))
        h = body.fresh("h_prev")
        state_in.append(h)
        scans.append(xw)
        scan_in.append((body.fresh("xw_t"), "float32", [None, units]))
        z = body.op("Gemm", h, body.const(R.T, "float32", name="recurrent_kernel"), scan_in[-1][0])
        new = act.get(cell["activation"]).emit(body, z)
        if length is not None and d == 1:
            scans.append(valid)
            scan_in.append((body.fresh("valid_t"), "bool", [None, 1]))
            new = body.op("Where", scan_in[-1][0], new, h)
        directions += [d] * (len(scans) - len(directions))
        state_out.append(new)
        if need_seq or (length is not None and d == 0):
            seq_out.append((d, new))
    for name in state_in:
        body.add_input(name, "float32", [None, units])
    for name, dtype, shape in scan_in:
        body.add_input(name, dtype, shape)
    for v in state_out:  # the state under its own name: no Identity node in the step
        body.add_output(v, v, "float32", [None, units])
    for _, v in seq_out:
        body.add_output(v, body.fresh("y"), "float32", [None, units])
    n = len(cells)
    outs = g.op("Scan", *states0, *scans, n_out=n + len(seq_out), body=body.to_graph(),
                num_scan_inputs=len(scans), scan_input_directions=directions,
                scan_output_directions=[d for d, _ in seq_out] or None)
    outs = outs if isinstance(outs, list) else [outs]
    finals, seqs = outs[:n], [None] * n
    for (d, _), y in zip(seq_out, outs[n:]):
        seqs[d] = y
    if length is not None and need_seq:  # the op's 0 at or past sequence_lens (one Where per sequence)
        seqs = [g.op("Where", valid, y, g.const(np.float32(0))) for y in seqs]
    if length is not None:  # forward: the state after the last valid step, Y[max(length - 1, 0), b]
        batch = g.dim(X, 1)
        row = g.op("Range", g.const(np.array(0, i64)), g.squeeze(batch, [0]), g.const(np.array(1, i64)))
        last = g.op("Max", g.op("Sub", length, g.const(np.array(1, i64))), g.const(np.array(0, i64)))
        finals[0] = g.op("Gather", g.op("Flatten", seqs[0], axis=2),
                         g.op("Add", g.op("Mul", last, batch), row), axis=0)
    return (seqs if need_seq else [None] * n), finals
