"""The TensorRT target's graphs on onnxruntime CPU, side by side with the default target's: the
seed models lowered both ways, run with identical session options (1 thread), checked to agree
(fp32 tolerance), timed round-robin in one run. Goal: the tensorrt-target graph within 5% of the
default's latency (its differences: CumSum in float with two Casts, LeakyRelu(1) for linear,
positional alpha/beta lists).

Four of the six seed models lower to identical bytes on both targets (no mask, no linear
activation): their rows measure the machine's run-to-run noise, the yardstick for the others.

Usage:  python benchmarks/tensorrt_target.py [--models sentiment,masked_stack] [--batch 1,32]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import SEED_MODELS, load_json  # noqa: E402
from lowering_before_after import side_by_side  # noqa: E402
from rnncompile import bench  # noqa: E402
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from rnncompile.build import io_description  # noqa: E402
from rnncompile.lower import lower  # noqa: E402
from rnncompile.spec import load_spec  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(SEED_MODELS))
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args(argv)
    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}; onnxruntime target vs tensorrt target, 1 thread, "
          f"{args.steps} steps, median of {args.runs} round-robin runs")
    print(f"{'model':<20} {'batch':>5} {'input':<6} {'default ms':>10} {'tensorrt ms':>11} "
          f"{'trt/default':>11} {'best trt/default':>16}  graphs")
    worst = 0.0
    for name in args.models.split(","):
        path = SEED_MODELS[name]
        model = load_spec(load_json(path), base_dir=path.parent)
        default, trt = lower(model), lower(model, "tensorrt")
        io = io_description(model, default)
        # where both targets give the same bytes, the ratio measures the machine's noise only
        nodes = [len(onnx.load_from_string(x.model_bytes).graph.node) for x in (default, trt)]
        same = "identical bytes" if default.model_bytes == trt.model_bytes else \
            f"differ: {nodes[0]} vs {nodes[1]} nodes"
        a_run = OnnxRuntimeRunner(default.model_bytes, threads=1)
        b_run = OnnxRuntimeRunner(trt.model_bytes, threads=1)
        for b, pattern, t in side_by_side(name, io, {"default": a_run, "tensorrt": b_run}, args.batch,
                                          args.steps, args.runs):
            ratio = t["tensorrt"].median / t["default"].median
            worst = max(worst, ratio)
            print(f"{name:<20} {b:>5} {pattern:<6} {t['default'].median * 1e3:>10.3f} "
                  f"{t['tensorrt'].median * 1e3:>11.3f} {ratio:>10.3f}x "
                  f"{t['tensorrt'].best / t['default'].best:>15.3f}x  {same}", flush=True)
    print(f"worst median ratio: {worst:.3f}x (goal: <= 1.05x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
