"""Make the third-party-style ONNX files `rnncompile audit` is tested on (dev-only; the committed
files under tests/fixtures/audit/ are what the tests use).

Each graph is written the way a converter or a person would write it, independently of
rnncompile's lowering, from the seeded weights of a source spec in the same folder:

  tokens_good.onnx        Embedding(mask_zero) -> LSTM -> Dense with Keras's mask rule written out
                          step by step in a Scan (state kept where the token is padding): right on
                          every padding pattern. Names differ from the spec's (paired by order).
  tokens_rightpad.onnx    native ONNX LSTM with sequence_lens = number of non-zero tokens (what a
                          PyTorch export of pack_padded_sequence does): right on right padding only.
  tokens_fixed_t.onnx     tokens_good with the time axis fixed at 20 (a dynamo-style export).
  tokens_fixed_batch.onnx tokens_good with the batch axis fixed at 1.
  tokens_gate_order.onnx  native ONNX LSTM fed Keras's i,f,c,o weight blocks without reordering
                          them to ONNX's i,o,f,c.
  stateful_good.onnx      LSTM with torch-style state inputs/outputs [1, batch, units].
  stateful_nocarry.onnx   the same, but its state inputs are ignored (it always starts at zero).
  stateful_nostate.onnx   the same LSTM with no state inputs or outputs at all.
  seq_unrolled_t20.onnx   for seq_lstm.json: an LSTM trace unrolled over 20 steps (dynamic axis
                          declared): output has 20 steps whatever the input's length.
  seq_traced_t20.onnx     native LSTM with sequence_lens fixed at the traced 20: refuses T < 20,
                          silently wrong past it.
  seq_torch.onnx          (only when torch is installed) torch.nn.LSTM + Linear exported by
                          torch.onnx, for seq_lstm.json: the docs' worked example.

Run: python tools/make_audit_fixtures.py [--out tests/fixtures/audit]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import rnncompile

HERE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "audit"
KERAS_TO_ONNX = [0, 3, 1, 2]  # LSTM gate blocks i, f, c, o -> i, o, f, c


def blocks(a: np.ndarray, order) -> np.ndarray:
    parts = np.split(a, 4, axis=-1)
    return np.concatenate([parts[i] for i in order], axis=-1)


def onnx_bias(bias: np.ndarray, order) -> np.ndarray:
    """ONNX LSTM's B [1, 8H]: the input bias in `order`, a zero recurrent bias."""
    return np.concatenate([blocks(bias, order), np.zeros_like(bias)])[None].astype(np.float32)


def lstm_consts(w: dict, layer: str, dense: str, order=KERAS_TO_ONNX) -> list[onnx.TensorProto]:
    """W, R, B of ONNX LSTM (gate blocks in `order`) and the Dense layer's Wd, bd."""
    return [const("W", blocks(w[f"{layer}/kernel"], order).T[None].astype(np.float32)),
            const("R", blocks(w[f"{layer}/recurrent_kernel"], order).T[None].astype(np.float32)),
            const("B", onnx_bias(w[f"{layer}/bias"], order)),
            const("Wd", w[f"{dense}/kernel"].astype(np.float32)),
            const("bd", w[f"{dense}/bias"].astype(np.float32))]


def const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, producer_name="hand-written", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def zeros_state(batch_of: str, units: int, name: str, nodes: list, inits: list) -> None:
    """A [batch, units] zero tensor, batch read from `batch_of`'s first axis."""
    inits += [const(f"{name}_units", np.array([units], np.int64)), const(f"{name}_zero", np.array([0], np.int64))]
    nodes += [helper.make_node("Shape", [batch_of], [f"{name}_shape"]),
              helper.make_node("Gather", [f"{name}_shape", f"{name}_zero"], [f"{name}_batch"]),
              helper.make_node("Concat", [f"{name}_batch", f"{name}_units"], [f"{name}_dims"], axis=0),
              helper.make_node("ConstantOfShape", [f"{name}_dims"], [name],
                               value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]))]


def tokens_scan(w: dict, batch="batch", steps="seq") -> onnx.GraphProto:
    """Keras semantics by hand: per step, new (h, c) where the token is not 0, else the old ones."""
    h = w["lstm/recurrent_kernel"].shape[0]
    body_nodes = [
        helper.make_node("MatMul", ["h", "R"], ["hr"]),
        helper.make_node("Add", ["xw_t", "hr"], ["z"]),
        helper.make_node("Split", ["z"], ["zi", "zf", "zc", "zo"], axis=1),
        helper.make_node("Sigmoid", ["zi"], ["gi"]), helper.make_node("Sigmoid", ["zf"], ["gf"]),
        helper.make_node("Tanh", ["zc"], ["gc"]), helper.make_node("Sigmoid", ["zo"], ["go"]),
        helper.make_node("Mul", ["gf", "c"], ["fc"]), helper.make_node("Mul", ["gi", "gc"], ["ic"]),
        helper.make_node("Add", ["fc", "ic"], ["c_new"]),
        helper.make_node("Tanh", ["c_new"], ["tc"]), helper.make_node("Mul", ["go", "tc"], ["h_new"]),
        helper.make_node("Where", ["m_t", "h_new", "h"], ["h_out"]),
        helper.make_node("Where", ["m_t", "c_new", "c"], ["c_out"]),
    ]
    f = TensorProto.FLOAT
    body = helper.make_graph(
        body_nodes, "step",
        [helper.make_tensor_value_info("h", f, ["B", h]), helper.make_tensor_value_info("c", f, ["B", h]),
         helper.make_tensor_value_info("xw_t", f, ["B", 4 * h]),
         helper.make_tensor_value_info("m_t", TensorProto.BOOL, ["B", 1])],
        [helper.make_tensor_value_info("h_out", f, ["B", h]), helper.make_tensor_value_info("c_out", f, ["B", h])],
        [const("R", w["lstm/recurrent_kernel"].astype(np.float32))])
    nodes, inits = [], [
        const("emb", w["embedding/embeddings"].astype(np.float32)),
        const("K", w["lstm/kernel"].astype(np.float32)), const("b", w["lstm/bias"].astype(np.float32)),
        const("Wd", w["logits/kernel"].astype(np.float32)), const("bd", w["logits/bias"].astype(np.float32)),
        const("pad", np.array(0, np.int64)), const("axis2", np.array([2], np.int64))]
    nodes += [helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
              helper.make_node("MatMul", ["x", "K"], ["xk"]), helper.make_node("Add", ["xk", "b"], ["xw"]),
              helper.make_node("Transpose", ["xw"], ["xw_tm"], perm=[1, 0, 2]),
              helper.make_node("Equal", ["input_ids", "pad"], ["is_pad"]),
              helper.make_node("Not", ["is_pad"], ["valid"]),
              helper.make_node("Unsqueeze", ["valid", "axis2"], ["valid3"]),
              helper.make_node("Transpose", ["valid3"], ["m_tm"], perm=[1, 0, 2])]
    zeros_state("input_ids", h, "h0", nodes, inits)
    nodes += [helper.make_node("Scan", ["h0", "h0", "xw_tm", "m_tm"], ["h_last", "c_last"],
                               body=body, num_scan_inputs=2),
              helper.make_node("MatMul", ["h_last", "Wd"], ["hd"]),
              helper.make_node("Add", ["hd", "bd"], ["class_scores"])]
    return helper.make_graph(
        nodes, "tokens_scan", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, steps])],
        [helper.make_tensor_value_info("class_scores", f, [batch, 3])], inits)


def tokens_native(w: dict, gate_order=KERAS_TO_ONNX) -> onnx.GraphProto:
    """ONNX LSTM with sequence_lens counted from non-zero tokens (assumes right padding)."""
    h = w["lstm/recurrent_kernel"].shape[0]
    f = TensorProto.FLOAT
    inits = [const("emb", w["embedding/embeddings"].astype(np.float32)),
             *lstm_consts(w, "lstm", "logits", gate_order),
             const("pad", np.array(0, np.int64)), const("one", np.array([1], np.int64)),
             const("zero", np.array([0], np.int64))]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["x"]),
             helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]),
             helper.make_node("Equal", ["input_ids", "pad"], ["is_pad"]),
             helper.make_node("Not", ["is_pad"], ["valid"]),
             helper.make_node("Cast", ["valid"], ["valid_i"], to=TensorProto.INT32),
             helper.make_node("ReduceSum", ["valid_i", "one"], ["lengths"], keepdims=0),
             helper.make_node("LSTM", ["x_tm", "W", "R", "B", "lengths"], ["", "Y_h"], hidden_size=h),
             helper.make_node("Squeeze", ["Y_h", "zero"], ["h_last"]),
             helper.make_node("MatMul", ["h_last", "Wd"], ["hd"]),
             helper.make_node("Add", ["hd", "bd"], ["class_scores"])]
    return helper.make_graph(
        nodes, "tokens_native", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("class_scores", f, ["batch", 3])], inits)


def stateful(w: dict, carry: bool = True, states: bool = True) -> onnx.GraphProto:
    """torch-style: x [batch, T, 4], h0/c0 [1, batch, 8] -> scores [batch, 2], hn/cn [1, batch, 8]."""
    h = w["reader/recurrent_kernel"].shape[0]
    f = TensorProto.FLOAT
    inits = [*lstm_consts(w, "reader", "scores"), const("zero", np.array([0], np.int64))]
    nodes = [helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2])]
    if not carry:  # the state inputs are declared but a zero state is used instead
        nodes += [helper.make_node("Mul", ["h0", "zero_f"], ["h_init"]),
                  helper.make_node("Mul", ["c0", "zero_f"], ["c_init"])]
        inits.append(const("zero_f", np.array(0.0, np.float32)))
    init_h, init_c = ("h0", "c0") if carry else ("h_init", "c_init")
    if not states:  # no state inputs or outputs at all: every call starts from zero
        init_h = init_c = ""
    nodes += [helper.make_node("LSTM", ["x_tm", "W", "R", "B", "", init_h, init_c], ["", "hn", "cn"], hidden_size=h),
              helper.make_node("Squeeze", ["hn", "zero"], ["h_last"]),
              helper.make_node("MatMul", ["h_last", "Wd"], ["hd"]),
              helper.make_node("Add", ["hd", "bd"], ["y"])]
    state_vi = [helper.make_tensor_value_info(n, f, [1, "batch", h]) for n in ("h0", "c0", "hn", "cn")]
    return helper.make_graph(
        nodes, "stateful", [helper.make_tensor_value_info("x", f, ["batch", "seq", 4])] + state_vi[:2] * states,
        [helper.make_tensor_value_info("y", f, ["batch", 2])] + state_vi[2:] * states, inits)


def seq_unrolled(w: dict, steps: int = 20) -> onnx.GraphProto:
    """A trace unrolled over `steps` time steps (what tracing a Python loop gives): the declared
    time axis is dynamic, the graph reads steps 0..steps-1 and returns `steps` outputs."""
    h = w["lstm/recurrent_kernel"].shape[0]
    f = TensorProto.FLOAT
    inits = [const("K", w["lstm/kernel"].astype(np.float32)), const("R", w["lstm/recurrent_kernel"].astype(np.float32)),
             const("b", w["lstm/bias"].astype(np.float32)), const("Wd", w["dense/kernel"].astype(np.float32)),
             const("bd", w["dense/bias"].astype(np.float32)), const("axis1", np.array([1], np.int64))]
    nodes = []
    zeros_state("x", h, "init", nodes, inits)
    hp, cp, outs = "init", "init", []
    for t in range(steps):
        inits.append(const(f"t{t}", np.array(t, np.int64)))
        n = lambda s: f"{s}{t}"  # noqa: E731
        node = helper.make_node
        nodes += [node("Gather", ["x", f"t{t}"], [n("x")], axis=1),
                  node("MatMul", [n("x"), "K"], [n("xk")]), node("MatMul", [hp, "R"], [n("hr")]),
                  node("Add", [n("xk"), n("hr")], [n("s")]), node("Add", [n("s"), "b"], [n("z")]),
                  node("Split", [n("z")], [n("zi"), n("zf"), n("zc"), n("zo")], axis=1),
                  node("Sigmoid", [n("zi")], [n("gi")]), node("Sigmoid", [n("zf")], [n("gf")]),
                  node("Tanh", [n("zc")], [n("gc")]), node("Sigmoid", [n("zo")], [n("go")]),
                  node("Mul", [n("gf"), cp], [n("fc")]), node("Mul", [n("gi"), n("gc")], [n("ic")]),
                  node("Add", [n("fc"), n("ic")], [n("c")]), node("Tanh", [n("c")], [n("tc")]),
                  node("Mul", [n("go"), n("tc")], [n("h")]), node("Unsqueeze", [n("h"), "axis1"], [n("y")])]
        hp, cp = n("h"), n("c")
        outs.append(n("y"))
    nodes += [helper.make_node("Concat", outs, ["seq"], axis=1), helper.make_node("MatMul", ["seq", "Wd"], ["yd"]),
              helper.make_node("Add", ["yd", "bd"], ["y"])]
    return helper.make_graph(nodes, "unrolled", [helper.make_tensor_value_info("x", f, ["batch", "seq", 4])],
                             [helper.make_tensor_value_info("y", f, ["batch", "seq", 2])], inits)


def seq_traced_lengths(w: dict, steps: int = 20) -> onnx.GraphProto:
    """Native LSTM whose sequence_lens is the traced length, a constant: silently wrong past it."""
    h = w["lstm/recurrent_kernel"].shape[0]
    f = TensorProto.FLOAT
    inits = [*lstm_consts(w, "lstm", "dense"), const("traced", np.array(steps, np.int32)),
             const("axis1", np.array([1], np.int64)), const("zero", np.array([0], np.int64)),
             const("one", np.array([1], np.int64))]
    nodes = [helper.make_node("Shape", ["x"], ["xs"]), helper.make_node("Slice", ["xs", "zero", "one"], ["batch"]),
             helper.make_node("Expand", ["traced", "batch"], ["lengths"]),
             helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["x_tm", "W", "R", "B", "lengths"], ["Y"], hidden_size=h),
             helper.make_node("Squeeze", ["Y", "axis1"], ["Y3"]),
             helper.make_node("Transpose", ["Y3"], ["seq"], perm=[1, 0, 2]),
             helper.make_node("MatMul", ["seq", "Wd"], ["yd"]), helper.make_node("Add", ["yd", "bd"], ["y"])]
    return helper.make_graph(nodes, "traced_lengths", [helper.make_tensor_value_info("x", f, ["batch", "seq", 4])],
                             [helper.make_tensor_value_info("y", f, ["batch", "seq", 2])], inits)


def torch_export(spec: Path, path: Path) -> None:
    """torch.nn.LSTM(batch_first) + Linear with the spec's weights, exported by torch.onnx."""
    try:
        import torch
    except ImportError:
        print(f"skipped {path.name}: torch is not installed (pip install torch==2.13.0)")
        return
    w = rnncompile.load(spec).weights
    units = w["lstm/recurrent_kernel"].shape[0]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(w["lstm/kernel"].shape[0], units, batch_first=True)
            self.dense = torch.nn.Linear(units, w["dense/kernel"].shape[1])

        def forward(self, x):
            return self.dense(self.lstm(x)[0])

    net = Net().eval()
    with torch.no_grad():  # torch's gate order i, f, g, o is Keras's i, f, c, o
        net.lstm.weight_ih_l0.copy_(torch.from_numpy(w["lstm/kernel"].T.copy()))
        net.lstm.weight_hh_l0.copy_(torch.from_numpy(w["lstm/recurrent_kernel"].T.copy()))
        net.lstm.bias_ih_l0.copy_(torch.from_numpy(w["lstm/bias"].copy()))
        net.lstm.bias_hh_l0.zero_()
        net.dense.weight.copy_(torch.from_numpy(w["dense/kernel"].T.copy()))
        net.dense.bias.copy_(torch.from_numpy(w["dense/bias"].copy()))
    x = torch.randn(2, 20, w["lstm/kernel"].shape[0])
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17,
                      dynamo=False, dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}})
    print(f"wrote {path} ({path.stat().st_size} bytes) with torch {torch.__version__}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    w = rnncompile.load(HERE / "tokens_lstm.json").weights
    save(tokens_scan(w), out / "tokens_good.onnx")
    save(tokens_native(w), out / "tokens_rightpad.onnx")
    save(tokens_scan(w, steps=20), out / "tokens_fixed_t.onnx")
    save(tokens_scan(w, batch=1), out / "tokens_fixed_batch.onnx")
    save(tokens_native(w, gate_order=[0, 1, 2, 3]), out / "tokens_gate_order.onnx")
    ws = rnncompile.load(HERE / "stateful_lstm.json").weights
    save(stateful(ws), out / "stateful_good.onnx")
    save(stateful(ws, carry=False), out / "stateful_nocarry.onnx")
    save(stateful(ws, states=False), out / "stateful_nostate.onnx")
    wq = rnncompile.load(HERE / "seq_lstm.json").weights
    save(seq_unrolled(wq), out / "seq_unrolled_t20.onnx")
    save(seq_traced_lengths(wq), out / "seq_traced_t20.onnx")
    torch_export(HERE / "seq_lstm.json", out / "seq_torch.onnx")


if __name__ == "__main__":
    main()
