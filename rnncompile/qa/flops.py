"""Matrix-multiply FLOPs of one call of a built model, counted from its ONNX graph (for
`rnncompile bench`'s rate and fraction of peak)."""
from __future__ import annotations

import numpy as np

from ..backends import RunnerFactory, default_factory

_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def flop_count(model_bytes: bytes, feeds: dict[str, np.ndarray], make_runner: RunnerFactory | None = None) -> dict:
    """Matrix-multiply FLOPs (2 per multiply-add) of one call on these feeds, from the ONNX graph:
    LSTM/GRU/RNN ops (input and recurrent matmuls over every time step, both directions),
    MatMul/Gemm (Dense, attention, the input projection of a Scan-lowered layer) and the MatMuls
    by constant weights inside a Scan body (its recurrent matmuls, every step). The shapes are the
    ones a run with the feeds produces (the graph is run once with the operators' inputs added as
    outputs). `recurrent_valid` counts only the steps inside sequence_lens (a Scan runs, and is
    counted for, every step). Elementwise work (gates, activations) is not counted. The
    augmented graph runs on a runner `make_runner` makes (default onnxruntime, one thread)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    wanted: list[str] = []
    for node in model.graph.node:
        if node.op_type in _RNN_GATES:
            wanted += [node.input[0]] + ([node.input[4]] if len(node.input) > 4 and node.input[4] else [])
        elif node.op_type in ("MatMul", "Gemm"):
            wanted += [i for i in node.input[:2] if i not in inits]
        elif node.op_type == "Scan":
            wanted += [i for i in node.input[-_scan_inputs(node):] if i]
    have = {o.name for o in model.graph.output} | {i.name for i in model.graph.input}
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    extra = [n for n in dict.fromkeys(wanted) if n not in have]
    for n in extra:
        model.graph.output.append(helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), None))
    values = (make_runner or default_factory(1))(model.SerializeToString()).run(feeds)
    values.update(feeds)

    def shape(name):
        return inits[name] if name in inits else tuple(np.shape(values[name]))

    recurrent = recurrent_valid = dense = 0
    ops = []
    for node in model.graph.node:
        if node.op_type in _RNN_GATES:
            steps, batch, i = shape(node.input[0])
            dirs, gh, _ = shape(node.input[1])
            per_step_row = dirs * 2 * gh * (i + gh // _RNN_GATES[node.op_type])
            f = steps * batch * per_step_row
            if len(node.input) > 4 and node.input[4]:
                valid = int(np.sum(np.minimum(values[node.input[4]], steps)))
            else:
                valid = steps * batch
            recurrent += f
            recurrent_valid += valid * per_step_row
            ops.append({"node": node.name, "op": node.op_type, "flops": f})
        elif node.op_type in ("MatMul", "Gemm"):
            a, b = shape(node.input[0]), shape(node.input[1])
            if node.op_type == "Gemm":
                ta = next((x.i for x in node.attribute if x.name == "transA"), 0)
                tb = next((x.i for x in node.attribute if x.name == "transB"), 0)
                m, k = (a[1], a[0]) if ta else (a[0], a[1])
                n = b[0] if tb else b[1]
                f = 2 * m * k * n
            else:
                k = a[-1]
                n = b[-1] if len(b) > 1 else 1
                rows = int(np.prod(np.broadcast_shapes(a[:-2], b[:-2]))) * (a[-2] if len(a) > 1 else 1)
                f = 2 * rows * k * n
            dense += f
            ops.append({"node": node.name, "op": node.op_type, "flops": int(f)})
        elif node.op_type == "Scan":
            steps, batch = shape(node.input[-_scan_inputs(node)])[:2]
            body = next(a.g for a in node.attribute if a.name == "body")
            per_row = sum(2 * int(np.prod(inits[n.input[1]])) for n in body.node
                          if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]]) == 2)
            f = steps * batch * per_row
            if f:
                recurrent += f
                recurrent_valid += f
                ops.append({"node": node.name, "op": "Scan", "flops": int(f)})
    return {"total": int(recurrent + dense), "recurrent": int(recurrent),
            "recurrent_valid": int(recurrent_valid), "dense": int(dense), "ops": ops}


def _scan_inputs(node) -> int:
    return next(a.i for a in node.attribute if a.name == "num_scan_inputs")
