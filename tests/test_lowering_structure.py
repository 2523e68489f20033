"""Structural pins of performance decisions in the lowering (each measured in BENCHMARKS.md): the
suite fails if one is disabled, although the numbers would still be right."""
from __future__ import annotations

import onnx

from rnncompile.lower import lower
from rnncompile.spec import load_spec


def _graph(spec):
    return onnx.load_from_string(lower(load_spec(spec)).model_bytes).graph


def _stack(second):
    return {"name": "stack", "seed": 0, "layers": [
        {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "input_dim": 50, "output_dim": 8, "mask_zero": True},
        {"class_name": "LSTM", "name": "first", "units": 6, "return_sequences": True},
        dict(second, name="second")]}


def test_stacked_masked_layers_share_one_gather_and_need_no_transpose():
    g = _graph(_stack({"class_name": "GRU", "units": 5}))
    ops = [n.op_type for n in g.node]
    producers = {o: n for n in g.node for o in n.output}
    rnn = [n for n in g.node if n.op_type in ("LSTM", "GRU")]
    assert [n.op_type for n in rnn] == ["LSTM", "GRU"]
    # the GRU reads the LSTM's time-major, compacted output directly (a Squeeze of Y), no gather
    # or transpose in between
    x = producers[rnn[1].input[0]]
    assert x.op_type == "Squeeze" and producers[x.input[0]] is rnn[0]
    assert ops.count("Transpose") == 1  # only the mask's index tensor; no [T, B, F] transpose
    assert ops.count("TopK") == 1       # one MaskPlan for the shared mask


def test_unused_return_state_adds_no_nodes_and_no_op_outputs():
    plain = _graph(_stack({"class_name": "LSTM", "units": 5}))
    spec = _stack({"class_name": "LSTM", "units": 5, "return_state": True})
    spec["outputs"] = ["second"]  # the states are outputs nothing reads
    unused = _graph(spec)
    assert len(unused.node) == len(plain.node)
    # and the op does not materialize what nobody reads: the second LSTM's Y (the sequence) and
    # Y_c are left out; only Y_h (its last output) is computed
    second = [n for n in unused.node if n.op_type == "LSTM"][1]
    assert [bool(o) for o in second.output] == [False, True]
    assert sum(1 for n in unused.node if n.op_type == "Identity") == len(unused.output)
