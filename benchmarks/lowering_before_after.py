"""The effect of lowering changes: the seed models lowered by an older revision of rnncompile
(exported with `git archive`, imported under another package name) and by the working tree, run
on onnxruntime with identical session options (1 thread), checked to agree, timed round-robin.

Usage:  python benchmarks/lowering_before_after.py --rev b64bb68 [--models sentiment,masked_stack]
(b64bb68 is the last revision with the ScatterElements/GatherElements mask compaction.)
"""
from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from compare import SEED_MODELS, load_json  # noqa: E402
from rnncompile.qa import bench  # noqa: E402
from rnncompile.build import io_description  # noqa: E402
from rnncompile.io import ModelIO  # noqa: E402
from rnncompile.lower import lower  # noqa: E402
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from rnncompile.spec import load_spec  # noqa: E402


def old_package(rev: str, where: Path) -> str:
    """Export rnncompile/ at `rev` as package `rnncompile_<rev>` under `where`; return its name."""
    name = "rnncompile_" + "".join(c for c in rev if c.isalnum())
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rnncompile"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    shutil.move(str(where / "rnncompile"), str(where / name))
    sys.path.insert(0, str(where))
    return name


def side_by_side(name: str, io: ModelIO, runners: dict, batches: str, steps: int, runs: int):
    """For each batch (comma-separated) and padding pattern: check that the two onnxruntime
    runners agree (fp32 tolerance) on the same feeds, then time them round-robin. Yields
    (batch, pattern, {runner key: Timing})."""
    (ka, a_run), (kb, b_run) = runners.items()
    for b in [int(x) for x in batches.split(",")]:
        for pattern in (["none", "left"] if bench.masked_inputs(io) else ["none"]):
            feeds = bench.make_feeds(io, b, steps, pattern)
            a, c = a_run.run(feeds), b_run.run(feeds)
            for k in a:
                np.testing.assert_allclose(c[k], a[k], atol=1e-5, rtol=1e-5, err_msg=f"{name} {k}")
            yield b, pattern, bench.time_interleaved({ka: lambda: a_run.session.run(None, feeds),
                                                      kb: lambda: b_run.session.run(None, feeds)},
                                                     runs=runs, warmup=5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", required=True, help="git revision to compare the working tree with")
    ap.add_argument("--models", default=",".join(SEED_MODELS))
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rnncompile-before-after-"))
    pkg = old_package(args.rev, tmp)
    old_spec = importlib.import_module(pkg + ".spec")
    old_lower = importlib.import_module(pkg + ".lower")
    m = bench.machine_info()
    print(f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
          f"load average {m['load_average']}; {args.rev} vs working tree, 1 thread, {args.steps} steps")
    print(f"{'model':<20} {'batch':>5} {'input':<6} {'nodes old/new':>13} {'old ms':>9} {'new ms':>9} "
          f"{'new/old':>8} {'best new/old':>12}")
    for name in args.models.split(","):
        path = SEED_MODELS[name]
        spec = load_json(path)
        model = load_spec(spec, base_dir=path.parent)
        new_bytes = lower(model).model_bytes
        old_bytes = old_lower.lower(old_spec.load_spec(load_json(path), base_dir=path.parent)).model_bytes
        io = io_description(model, lower(model))
        import onnx
        nodes = (len(onnx.load_from_string(old_bytes).graph.node), len(onnx.load_from_string(new_bytes).graph.node))
        old = OnnxRuntimeRunner(old_bytes, threads=1)
        new = OnnxRuntimeRunner(new_bytes, threads=1)
        for b, pattern, t in side_by_side(name, io, {"old": old, "new": new}, args.batch, args.steps, args.runs):
            print(f"{name:<20} {b:>5} {pattern:<6} {nodes[0]:>6}/{nodes[1]:<6} "
                  f"{t['old'].median * 1e3:>9.3f} {t['new'].median * 1e3:>9.3f} "
                  f"{t['new'].median / t['old'].median:>7.2f}x {t['new'].best / t['old'].best:>11.2f}x",
                  flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
