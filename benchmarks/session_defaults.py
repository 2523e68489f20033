"""The measurements behind the onnxruntime session defaults of `rnncompile run` (runtime.py):
intra-op threads (and pool-thread spinning), graph optimization level, and an ORT-optimized copy
of model.onnx (SessionOptions.optimized_model_filepath).

Each setting runs in its own process (a session whose pool threads spin after every run would
otherwise take the core from the next setting's runs), the settings alternate, and the whole
round repeats `--repeats` times; per setting it prints the session creation time and the median
and best latency at each batch size over all repeats.

Usage:  python benchmarks/session_defaults.py [--models lstm_classifier,sentiment] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: name -> (intra-op threads, allow_spinning, optimization level, load the pre-optimized copy)
SETTINGS = {
    "1t/all (default)": (1, "1", "all", False),
    "1t/none": (1, "1", "none", False),
    "1t/basic": (1, "1", "basic", False),
    "1t/extended": (1, "1", "extended", False),
    "1t/pre-optimized": (1, "1", "none", True),
    "2t/all": (2, "1", "all", False),
    "2t/all/no-spin": (2, "0", "all", False),
}


def child(args) -> None:
    import onnxruntime as ort

    from compare import SEED_MODELS, load_json
    from rnncompile.qa import bench
    from rnncompile.build import io_description
    from rnncompile.lower import lower
    from rnncompile.spec import load_spec

    threads, spin, level, pre = SETTINGS[args.setting]
    path = SEED_MODELS[args.model]
    model = load_spec(load_json(path), base_dir=path.parent)
    low = lower(model)
    io = io_description(model, low)
    tmp = Path(tempfile.mkdtemp(prefix="rnncompile-session-"))
    src = tmp / "model.onnx"
    src.write_bytes(low.model_bytes)

    def options(save=None):
        o = ort.SessionOptions()
        o.log_severity_level = 3
        o.intra_op_num_threads = threads
        o.inter_op_num_threads = 1
        o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        o.add_session_config_entry("session.intra_op.allow_spinning", spin)
        o.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}["all" if save else level]
        if save:
            o.optimized_model_filepath = save
        return o

    path = src
    if pre:
        path = tmp / "model.ort-optimized.onnx"
        ort.InferenceSession(str(src), options(str(path)), providers=["CPUExecutionProvider"])
    created = []
    for _ in range(5):
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(path), options(), providers=["CPUExecutionProvider"])
        created.append(time.perf_counter() - t0)
    out = {"create_ms": sorted(created)[2] * 1e3, "batches": {}}
    for b in args.batch:
        pattern = "left" if bench.masked_inputs(io) else "none"
        feeds = bench.make_feeds(io, b, args.steps, pattern)
        t = bench.time_calls(lambda: sess.run(None, feeds), runs=args.runs, warmup=5)
        out["batches"][b] = {"pattern": pattern, "samples": t.samples}
    print(json.dumps(out))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lstm_classifier,sentiment")
    ap.add_argument("--batch", default="1,32", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30, help="timed calls per batch size per process")
    ap.add_argument("--repeats", type=int, default=3, help="rounds over all settings")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    from rnncompile.qa import bench

    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}")
    for name in args.models.split(","):
        samples: dict[str, dict] = {k: {"create": [], "batches": {}} for k in SETTINGS}
        for _ in range(args.repeats):
            for setting in SETTINGS:
                cmd = [sys.executable, __file__, "--child", "--model", name, "--setting", setting,
                       "--batch", ",".join(map(str, args.batch)), "--steps", str(args.steps),
                       "--runs", str(args.runs)]
                res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
                samples[setting]["create"].append(res["create_ms"])
                for b, v in res["batches"].items():
                    samples[setting]["batches"].setdefault(int(b), []).extend(v["samples"])
        print(f"\n{name} ({args.repeats} rounds x {args.runs} runs, {args.steps} steps; load average "
              f"now {bench.load_average()})")
        base = samples["1t/all (default)"]["batches"]
        head = f"  {'setting':<18} {'open ms':>8}" + "".join(
            f"  {'b' + str(b) + ' median':>11} {'(ratio)':>7} {'b' + str(b) + ' best':>9} {'(ratio)':>7}"
            for b in args.batch)
        print(head)
        for setting, s in samples.items():
            line = f"  {setting:<18} {sorted(s['create'])[len(s['create']) // 2]:>8.1f}"
            for b in args.batch:
                t, t0 = bench.Timing(s["batches"][b]), bench.Timing(base[b])
                line += (f"  {t.median * 1e3:>11.3f} {t.median / t0.median:>6.2f}x"
                         f" {t.best * 1e3:>9.3f} {t.best / t0.best:>6.2f}x")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
