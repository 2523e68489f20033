"""SimpleRNN on onnxruntime: the native `RNN` op against the Scan formulation the onnxruntime target
now emits (rnncompile/layers/rnn_scan.py: one Gemm + a vectorized activation per step, the input
projection once outside the loop), side by side in one run.

Both variants are the same model lowered by rnncompile, once for the onnxruntime target as it is
(`rnn_ops_as_scan={"RNN"}`) and once with that fact cleared (the native op, as before and as the
tensorrt target keeps it). Each is checked against the float64 reference on the very inputs it is
timed on, then they are timed round-robin (bench.time_interleaved), 1 thread, in several rounds;
the table gives the median times and the native/scan ratio of the pooled medians, and the spread
of the per-round ratios (min-max). Ratio > 1: the Scan is faster.

Usage:  python benchmarks/rnn_formulations.py [--batch 1,2,4,8,32,64] [--rounds 5] [--runs 30]
        [--models simplernn_tanh,...] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import CHECK, SEED_MODELS, check, load_json, ort_fn  # noqa: E402
from rnncompile.qa import bench  # noqa: E402
from rnncompile.backends.reference import ReferenceRunner  # noqa: E402
from rnncompile.build import io_description  # noqa: E402
from rnncompile.lower import lower  # noqa: E402
from rnncompile.spec import load_spec  # noqa: E402
from rnncompile.targets import ONNXRUNTIME  # noqa: E402
from rnncompile.verify import Tolerance  # noqa: E402

#: The onnxruntime target with the native RNN op (the lowering before the Scan formulation).
NATIVE = replace(ONNXRUNTIME, rnn_ops_as_scan=frozenset())


def _simple(act: str) -> dict:   # SimpleRNN(128) over 256 float features (benchmarks/simplernn_kernel.py)
    return {"name": f"simplernn_{act}", "seed": 3, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 256]},
        {"class_name": "SimpleRNN", "units": 128, "activation": act}]}


MODELS: dict[str, dict] = {
    **{f"simplernn_{a}": _simple(a) for a in ("tanh", "relu", "sigmoid", "linear")},
    # masked: Embedding mask_zero -> SimpleRNN(128, sequences) -> SimpleRNN(64)
    "masked_simplernn": {"name": "masked_simplernn", "seed": 4, "layers": [
        {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "input_dim": 1000, "output_dim": 64, "mask_zero": True},
        {"class_name": "SimpleRNN", "units": 128, "return_sequences": True},
        {"class_name": "SimpleRNN", "units": 64}]},
    # Bidirectional(SimpleRNN(64), concat, sequences) -> Dense, float input
    "bi_simplernn": {"name": "bi_simplernn", "seed": 5, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 64]},
        {"class_name": "Bidirectional", "layer": {"class_name": "SimpleRNN", "units": 64,
                                                  "return_sequences": True}},
        {"class_name": "Dense", "units": 8}]},
    "gru_simplernn": load_json(SEED_MODELS["gru_simplernn"]),   # Embedding -> GRU(256) -> SimpleRNN(128)
}


#: A linear recurrence grows to |y| ~ 135 over 100 steps with these weights, and float32 rounding
#: grows with it: both variants end up ~2.5e-4 from the float64 reference (either can exceed the
#: 1e-4 + 1e-4 |y| of compare.py first), so this model is checked at 1e-3.
TOLERANCE = {"simplernn_linear": Tolerance(atol=1e-3, rtol=1e-3)}


def measure(name: str, spec: dict, batches, steps: int, rounds: int, runs: int) -> list[dict]:
    model = load_spec(spec, base_dir=HERE.parent / "examples")
    low = {"native": lower(model, NATIVE), "scan": lower(model)}
    assert "RNN" in low["native"].io["ops"] and "RNN" not in low["scan"].io["ops"], low["scan"].io["ops"]
    io = io_description(model, low["scan"])
    rows = []
    for b in batches:
        for pattern in (["none", "left"] if bench.masked_inputs(io) else ["none"]):
            feeds = bench.make_feeds(io, b, steps, pattern, 0)
            want = ReferenceRunner(model).run(feeds)
            fns, err = {}, {}
            for k, lowered in low.items():
                fns[k], outs = ort_fn(lowered.model_bytes, feeds, 1)
                err[k] = check(f"{name} {k} batch {b} {pattern}", want, outs(), TOLERANCE.get(name, CHECK))
            load0 = bench.load_average()
            per_round, samples = [], {k: [] for k in fns}
            for _ in range(rounds):
                t = bench.time_interleaved(fns, runs=runs, warmup=3)
                per_round.append(t["native"].median / t["scan"].median)
                for k in fns:
                    samples[k] += t[k].samples
            med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
            row = {"model": name, "batch": b, "pattern": pattern, "steps": steps, "median_ms": med,
                   "native/scan": med["native"] / med["scan"], "round_ratios": per_round,
                   "max_abs_error": err, "load_average": [load0, bench.load_average()]}
            rows.append(row)
            print(f"{name:<18} {b:>5} {pattern:<5} {med['native']:>9.3f} {med['scan']:>9.3f} "
                  f"{row['native/scan']:>11.2f}x {min(per_round):>6.2f}-{max(per_round):<5.2f} "
                  f"{max(err.values()):>9.1e}  {row['load_average'][0]}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batch", default="1,2,4,8,32,64")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="calls per variant per round")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}; 1 thread, {args.steps} steps, {args.rounds} rounds x "
          f"{args.runs} calls per variant\n")
    print(f"{'model':<18} {'batch':>5} {'input':<5} {'native ms':>9} {'scan ms':>9} {'native/scan':>12} "
          f"{'rounds':>12} {'max err':>9}  load")
    t0 = time.perf_counter()
    rows = []
    for name in [n.strip() for n in args.models.split(",") if n.strip()]:
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
        rows += measure(name, MODELS[name], [int(b) for b in args.batch.split(",")], args.steps,
                        args.rounds, args.runs)
    print(f"\n{time.perf_counter() - t0:.0f} s; ratio > 1: the Scan formulation is faster")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
