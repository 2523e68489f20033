"""The one prepared GPU check of the TensorRT target. One command, under 10 minutes:

    python tools/gpu_check.py --out gpu_check            # writes gpu_check/gpu_check.json and .md

For every example (examples/*.json) at fp32 and fp16:
  1. build the tensorrt-target graph and verify it on onnxruntime CPU (runs anywhere);
  2. build a TensorRT engine (strongly typed, default profile: batch 1/8/64, time 1/128/512;
     one timing cache shared by all builds)                       -- needs TensorRT + a GPU;
  3. verify the engine against the float64 reference on every padding pattern the verifier makes
     (none, right, left, gaps, mixed, empty rows; stateful models chunk by chunk) -- same;
  4. time the engine against PyTorch's cuDNN LSTM/GRU/RNN with the same weights
     (benchmarks/torch_port.py on "cuda"), batch 1 and 64, 100 steps, host to host on both sides,
     round-robin                                                   -- needs TensorRT, torch+CUDA.
Without TensorRT, a GPU or torch it runs what it can and records, per step, exactly what it could
not run and why. Steps that would start after --budget seconds are skipped (and say so).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rnncompile  # noqa: E402
from rnncompile.io import ModelIO  # noqa: E402
from rnncompile.qa import bench  # noqa: E402
from rnncompile.backends import runner_factory  # noqa: E402
from rnncompile.backends import tensorrt as trt_backend  # noqa: E402
from rnncompile.build import verify_dir  # noqa: E402
from rnncompile.errors import RnnCompileError, VerificationError  # noqa: E402
from rnncompile.targets import get_target  # noqa: E402

PRECISIONS = ("fp32", "fp16")
BATCHES = (1, 64)
STEPS = 100


class Checker:
    def __init__(self, out: Path, budget: float):
        self.out, self.budget, self.t0 = out, budget, time.perf_counter()
        self.steps: list[dict] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def step(self, name: str, fn, needs: str | None = None) -> object:
        """Run one step; record ok / failed / skipped with the reason."""
        rec = {"step": name}
        if needs:
            rec.update(status="skipped", reason=needs)
        elif self.elapsed() > self.budget:
            rec.update(status="skipped", reason=f"time budget of {self.budget:.0f} s used up")
        else:
            t = time.perf_counter()
            try:
                rec["result"] = fn()
                rec["status"] = "ok"
            except VerificationError as e:
                rec.update(status="failed", reason=str(e)[:2000],
                           report=getattr(e, "report", None) and e.report.to_dict()["summary"])
            except RnnCompileError as e:
                rec.update(status="failed", reason=str(e)[:2000])
            except Exception as e:  # a crash in a GPU library must not end the whole check
                rec.update(status="failed", reason=f"{type(e).__name__}: {e}",
                           traceback=traceback.format_exc()[-3000:])
            rec["seconds"] = round(time.perf_counter() - t, 2)
        self.steps.append(rec)
        print(f"[{self.elapsed():6.1f} s] {rec['status']:<7} {name}"
              + (f": {rec.get('reason', '')[:200]}" if rec["status"] != "ok" else ""), flush=True)
        return rec.get("result") if rec["status"] == "ok" else None


def torch_cuda() -> str | None:
    """None when torch runs on CUDA here, else why not."""
    try:
        import torch
    except Exception as e:
        return f"torch is not installed ({type(e).__name__}: {e}); pip install '.[bench]'"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


def time_pair(model, out: Path, precision: str) -> list[dict]:
    """Engine vs torch cuDNN, batch 1 and 64, host to host."""
    from torch_port import TorchModel, Unsupported

    man = json.loads((out / "manifest.json").read_text())
    engine = trt_backend.open_runner(out / "model.plan", precision=man["precision"])
    try:
        torch_model, why = TorchModel(model, device="cuda"), ""
    except Unsupported as e:
        torch_model, why = None, f"no torch port: {e}"
    rows = []
    for b in BATCHES:
        feeds = bench.make_feeds(ModelIO.from_dict(man), b, STEPS, "none")  # states as zeros
        fns = {"tensorrt": lambda: engine.run(feeds)}
        if torch_model is not None:
            fns["torch_cudnn"] = lambda: torch_model(feeds)
        t = bench.time_interleaved(fns, runs=50, warmup=5)
        row = {"batch": b, "steps": STEPS, "precision": precision,
               "median_ms": {k: v.median * 1e3 for k, v in t.items()}, "torch": why or "cuda fp32"}
        if torch_model is not None:
            row["torch/tensorrt"] = t["torch_cudnn"].median / t["tensorrt"].median
        rows.append(row)
    return rows


def markdown(result: dict) -> str:
    lines = [f"# TensorRT GPU check ({result['date']})", "",
             f"probe: {json.dumps(result['probe'])}", "",
             "| step | status | seconds | detail |", "|---|---|---|---|"]
    for s in result["steps"]:
        detail = s.get("reason", "")
        r = s.get("result")
        if isinstance(r, dict) and "summary" in r:
            detail = ", ".join(f"{k}: {v['max_abs_error']:.2e}" for k, v in r["summary"].items())
        lines.append(f"| {s['step']} | {s['status']} | {s.get('seconds', '')} | {detail[:300].replace('|', '/')} |")
    timing = [(s["step"], row) for s in result["steps"] if s["step"].endswith("timing") and s.get("result")
              for row in s["result"]]
    if timing:
        lines += ["", "| model | precision | batch | TensorRT ms | torch cuDNN ms | torch/TensorRT |",
                  "|---|---|---|---|---|---|"]
        for name, row in timing:
            m = row["median_ms"]
            lines.append(f"| {name.split()[0]} | {row['precision']} | {row['batch']} | {m['tensorrt']:.3f} | "
                         f"{m.get('torch_cudnn', float('nan')):.3f} | {row.get('torch/tensorrt', float('nan')):.2f} |")
    not_run = [s for s in result["steps"] if s["status"] != "ok"]
    lines += ["", f"{len(result['steps']) - len(not_run)} step(s) ran, {len(not_run)} did not "
                  "(see the detail column)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check"))
    ap.add_argument("--budget", type=float, default=540.0, help="seconds after which no step starts")
    ap.add_argument("--examples", default="", help="comma-separated example names (default: all)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    c = Checker(args.out, args.budget)
    probe = c.step("probe TensorRT and the GPU (subprocess)", trt_backend.probe) or {}
    no_trt = None if probe.get("available") else f"TensorRT engines cannot be built here: {probe.get('reason')}"
    no_torch = torch_cuda()
    cache = args.out / "timing.cache"
    paths = sorted((ROOT / "examples").glob("*.json"))
    if args.examples:
        paths = [p for p in paths if p.stem in args.examples.split(",")]
    for path in paths:
        for precision in PRECISIONS:
            out = args.out / "builds" / f"{path.stem}_{precision}"
            label = f"{path.stem} {precision}"

            def build(path=path, out=out, precision=precision):
                r = rnncompile.build(path, out, target=get_target("tensorrt", precision), threads=1)
                return {"summary": r.report.to_dict()["summary"], "runner": r.report.runner,
                        "patterns": sorted({case.pattern for case in r.report.cases})}

            built = c.step(f"{label} build + verify on onnxruntime CPU", build)
            gate = no_trt or (None if built else "the ONNX build failed")
            engine = c.step(f"{label} engine build", lambda out=out: trt_backend.build_engine(
                out, (), timing_cache=cache, progress=False), needs=gate)

            def check_engine(out=out):
                rep = verify_dir(out, runner_factory=runner_factory("tensorrt", out_dir=str(out)))
                (out / "engine_report.json").write_text(json.dumps(rep.to_dict(), indent=2) + "\n")
                return {"summary": rep.to_dict()["summary"], "runner": rep.runner,
                        "patterns": sorted({case.pattern for case in rep.cases})}

            c.step(f"{label} engine verify (every padding pattern)", check_engine,
                   needs=gate or (None if engine else "no engine"))
            c.step(f"{label} timing", lambda out=out, path=path, precision=precision: time_pair(
                rnncompile.load(path), out, precision),
                needs=gate or (None if engine else "no engine") or no_torch)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.node(),
              "python": sys.version.split()[0], "rnncompile": rnncompile.__version__,
              "probe": probe, "seconds": round(c.elapsed(), 1), "steps": c.steps}
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(result))
    failed = [s for s in c.steps if s["status"] == "failed"]
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}; "
          f"{len(failed)} failed, {sum(s['status'] == 'skipped' for s in c.steps)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
