"""Why SimpleRNN is the one layer where a Loop can beat the native op on onnxruntime: its RNN
kernel applies the activation one element at a time through a std::function (the LSTM and GRU
kernels use vectorized MLAS activations). This times, for SimpleRNN(128) over 256 input features
and 100 steps, the native RNN op against a Loop that does the input projection as one MatMul
outside and h @ R + tanh inside, at several batch sizes (1 thread, round-robin), after checking
that both compute the same thing.

Usage:  python benchmarks/simplernn_kernel.py [--batch 1,4,8,16,32,64] [--units 128] [--inputs 256]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from rnncompile.qa import bench


def _model(nodes, inits, out="Yh"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "B", "I"])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", default="1,4,8,16,32,64")
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
    native = _model([helper.make_node("RNN", ["X", "W", "R", "B"], ["", "Yh"], hidden_size=h)],
                    [numpy_helper.from_array(W[None], "W"), numpy_helper.from_array(R[None], "R"),
                     numpy_helper.from_array(np.concatenate([b, 0 * b])[None], "B")])
    body = helper.make_graph(
        [helper.make_node("Gather", ["XW", "it"], ["xt"], axis=0),
         helper.make_node("MatMul", ["h", "RT"], ["hr"]),
         helper.make_node("Add", ["xt", "hr"], ["z"]),
         helper.make_node("Tanh", ["z"], ["hn"]),
         helper.make_node("Identity", ["c"], ["co"]),
         helper.make_node("Identity", ["hn"], ["y"])], "body",
        [helper.make_tensor_value_info("it", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("co", TensorProto.BOOL, []),
         helper.make_tensor_value_info("hn", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    loop = _model(
        [helper.make_node("MatMul", ["X", "WT"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["XW"]),
         helper.make_node("Shape", ["X"], ["T1"], start=0, end=1), helper.make_node("Squeeze", ["T1"], ["T"]),
         helper.make_node("Shape", ["X"], ["B1"], start=1, end=2),
         helper.make_node("Concat", ["B1", "H"], ["hs"], axis=0),
         helper.make_node("ConstantOfShape", ["hs"], ["h0"]),
         helper.make_node("Loop", ["T", "true", "h0"], ["Yh", "Y"], body=body)],
        [numpy_helper.from_array(W.T.copy(), "WT"), numpy_helper.from_array(R.T.copy(), "RT"),
         numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(True), "true"),
         numpy_helper.from_array(np.array([h], np.int64), "H")])
    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}; SimpleRNN({h}) over {i} features, {args.steps} steps, 1 thread")
    print(f"{'batch':>5} {'native RNN ms':>14} {'Loop ms':>9} {'native/Loop':>12}")
    for B in [int(x) for x in args.batch.split(",")]:
        x = rng.standard_normal((args.steps, B, i)).astype(np.float32)
        a, c = native.run(None, {"X": x})[0][0], loop.run(None, {"X": x})[0]
        np.testing.assert_allclose(a, c, atol=1e-5, rtol=1e-5)
        t = bench.time_interleaved({"native": lambda: native.run(None, {"X": x}),
                                    "loop": lambda: loop.run(None, {"X": x})}, runs=args.runs, warmup=3)
        print(f"{B:>5} {t['native'].median * 1e3:>14.3f} {t['loop'].median * 1e3:>9.3f} "
              f"{t['native'].median / t['loop'].median:>11.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
