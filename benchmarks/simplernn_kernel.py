"""Why SimpleRNN is the one layer where a loop beats the native op on onnxruntime: its RNN kernel
applies the activation one element at a time through a std::function (the LSTM and GRU kernels use
vectorized MLAS activations). This times, for SimpleRNN(128) over 256 input features and 100
steps (1 thread, round-robin, after checking that all compute the same), at several batch sizes:

  * native   - the ONNX RNN op;
  * loop     - a tf2onnx-style Loop: input projection as one MatMul outside, Gather x_t, MatMul,
               Add, Tanh inside;
  * scan     - what the onnxruntime target now emits (rnncompile/layers/rnn_scan.py): the input
               projection outside, a Scan whose body is Gemm(h, R^T, xw_t) and Tanh;
  * if_native - If(batch >= 2) with the native op in both branches: what an If costs by itself;
  * if_scan  - If(batch >= 2, scan, native): dispatching on the batch size instead.

Usage:  python benchmarks/simplernn_kernel.py [--batch 1,2,4,8,16,32,64] [--units 128] [--inputs 256]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from rnncompile.qa import bench


def _model(nodes, inits):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", "I"])],
                          [helper.make_tensor_value_info("Yh", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])


def _vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _native(h, s=""):  # X -> Yh{s} [B, H]
    return [helper.make_node("RNN", ["X", "W", "R", "B"], ["", f"Yh3{s}"], hidden_size=h),
            helper.make_node("Squeeze", [f"Yh3{s}", "axis0"], [f"Yh{s}"])]


def _projection(s):  # XW{s} = X W^T + b [T, B, H]; h0{s} zeros [B, H]; T{s} scalar
    return [helper.make_node("MatMul", ["X", "WT"], [f"xw{s}"]),
            helper.make_node("Add", [f"xw{s}", "b"], [f"XW{s}"]),
            helper.make_node("Shape", ["X"], [f"T1{s}"], start=0, end=1),
            helper.make_node("Squeeze", [f"T1{s}"], [f"T{s}"]),
            helper.make_node("Shape", ["X"], [f"B1{s}"], start=1, end=2),
            helper.make_node("Concat", [f"B1{s}", "H"], [f"hs{s}"], axis=0),
            helper.make_node("ConstantOfShape", [f"hs{s}"], [f"h0{s}"])]


def _loop(s=""):
    body = helper.make_graph(
        [helper.make_node("Gather", [f"XW{s}", f"it{s}"], [f"xt{s}"], axis=0),
         helper.make_node("MatMul", [f"h{s}", "RT"], [f"hr{s}"]),
         helper.make_node("Add", [f"xt{s}", f"hr{s}"], [f"z{s}"]),
         helper.make_node("Tanh", [f"z{s}"], [f"hn{s}"]),
         helper.make_node("Identity", [f"c{s}"], [f"co{s}"]),
         helper.make_node("Identity", [f"hn{s}"], [f"y{s}"])], "body",
        [_vi(f"it{s}", TensorProto.INT64, []), _vi(f"c{s}", TensorProto.BOOL, []), _vi(f"h{s}")],
        [_vi(f"co{s}", TensorProto.BOOL, []), _vi(f"hn{s}"), _vi(f"y{s}")])
    return _projection(s) + [helper.make_node("Loop", [f"T{s}", "true", f"h0{s}"], [f"Yh{s}", f"Y{s}"], body=body)]


def _scan(h, s=""):
    body = helper.make_graph(
        [helper.make_node("Gemm", [f"h{s}", "RT", f"xt{s}"], [f"z{s}"]),
         helper.make_node("Tanh", [f"z{s}"], [f"hn{s}"])], "body",
        [_vi(f"h{s}", shape=[None, h]), _vi(f"xt{s}", shape=[None, h])], [_vi(f"hn{s}", shape=[None, h])])
    return _projection(s) + [helper.make_node("Scan", [f"h0{s}", f"XW{s}"], [f"Yh{s}"], body=body, num_scan_inputs=1)]


def _if(then_nodes, then_out, else_nodes, else_out):
    return [helper.make_node("Shape", ["X"], ["Bv"], start=1, end=2),
            helper.make_node("Squeeze", ["Bv"], ["Bs"]),
            helper.make_node("GreaterOrEqual", ["Bs", "two"], ["big"]),
            helper.make_node("If", ["big"], ["Yh"],
                             then_branch=helper.make_graph(then_nodes, "then", [], [_vi(then_out)]),
                             else_branch=helper.make_graph(else_nodes, "else", [], [_vi(else_out)]))]



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", default="1,2,4,8,16,32,64")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--inputs", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args(argv)
    h, i = args.units, args.inputs
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((h, i)) * 0.1).astype(np.float32)
    R = (rng.standard_normal((h, h)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(h) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (W[None], "W"), (R[None], "R"), (np.concatenate([b, 0 * b])[None], "B"), (W.T.copy(), "WT"),
        (R.T.copy(), "RT"), (b, "b"), (np.array(True), "true"), (np.array([h], np.int64), "H"),
        (np.array([0], np.int64), "axis0"), (np.array(2, np.int64), "two")]]
    variants = {
        "native": _model(_native(h), inits),
        "loop": _model(_loop(), inits),
        "scan": _model(_scan(h), inits),
        "if_native": _model(_if(_native(h, "_a"), "Yh_a", _native(h, "_b"), "Yh_b"), inits),
        "if_scan": _model(_if(_scan(h, "_a"), "Yh_a", _native(h, "_b"), "Yh_b"), inits),
    }
    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}; SimpleRNN({h}) over {i} features, {args.steps} steps, 1 thread")
    print(f"{'batch':>5} " + " ".join(f"{k + ' ms':>12}" for k in variants)
          + f" {'native/loop':>12} {'native/scan':>12} {'if_native/native':>17} {'if_scan/scan':>13}")
    for B in [int(x) for x in args.batch.split(",")]:
        x = rng.standard_normal((args.steps, B, i)).astype(np.float32)
        want = variants["native"].run(None, {"X": x})[0]
        for name, sess in variants.items():
            np.testing.assert_allclose(sess.run(None, {"X": x})[0], want, atol=1e-5, rtol=1e-5, err_msg=name)
        t = bench.time_interleaved({k: (lambda s=s: s.run(None, {"X": x})) for k, s in variants.items()},
                                   runs=args.runs, warmup=3)
        med = {k: v.median * 1e3 for k, v in t.items()}
        print(f"{B:>5} " + " ".join(f"{med[k]:>12.3f}" for k in variants)
              + f" {med['native'] / med['loop']:>11.2f}x {med['native'] / med['scan']:>11.2f}x"
              f" {med['if_native'] / med['native']:>16.2f}x {med['if_scan'] / med['scan']:>12.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
