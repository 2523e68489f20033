"""C++ session vs bare onnxruntime Run vs the Python session, per call, on the example models.

    python benchmarks/cpp_session.py [--batch 1,32] [--steps 100] [--seconds 3] [--threads 1] [specs...]

Builds cpp/ (Release, tools/cpp_sdk.py for the SDK) into build/cpp-bench, builds each example spec,
then for each model and batch size, in one run of this script:
  * C++ `rnncompile_bench`: a bare Ort::Session::Run (inputs created once) and
    rnncompile::Session::run (checks, tensor wrapping, state carry), and a second bare session as
    the A/A control, called in turn call by call; `overhead` is the median of the per-call
    differences session - bare, `A/A` the same for bare B - bare A (the noise floor here);
  * Python: rnncompile's Session.run and a bare onnxruntime InferenceSession.run, interleaved too;
C++ and Python alternate over three rounds (the median of the three rounds' values is shown).
All four use the same session settings (intra-op threads as given, sequential, all optimizations)
and the same onnxruntime library (the wheel's). Medians in microseconds per call, the difference
of the fastest calls `(of mins)`, and the ratio Python session / C++ session.
Goal (issue 11): the C++ session adds at most max(5%, 10 us) over the bare Run.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import rnncompile
from rnncompile.qa.bench import make_feeds

ROOT = Path(__file__).resolve().parent.parent


def build_cpp(build_dir: Path) -> Path:
    sdk = subprocess.run([sys.executable, str(ROOT / "tools" / "cpp_sdk.py")], capture_output=True, text=True)
    info = json.loads(sdk.stdout)
    if sdk.returncode:
        sys.exit(f"cannot build the C++ runtime here: {info.get('missing')}")
    subprocess.run(["cmake", "-S", str(ROOT / "cpp"), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DRNNCOMPILE_BUILD_TESTS=OFF", *info["cmake_args"]], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir), "-j", "2", "--target", "rnncompile_bench"], check=True,
                   capture_output=True)
    return build_dir / "rnncompile_bench"


def python_times(out_dir: Path, batch: int, steps: int, calls: int, threads: int) -> tuple[float, float]:
    session = rnncompile.open_session(out_dir, threads=threads)
    ort = session.runner.session
    manifest = json.loads((out_dir / "manifest.json").read_text())
    full = make_feeds(manifest, batch, steps, "none", 0)  # every graph input, zero states included
    states = {s["input"] for s in manifest.get("states", [])}
    feeds = {k: v for k, v in full.items() if k not in states}
    for _ in range(5):
        session.run(feeds)
        ort.run(None, full)
    t_session, t_bare = [], []
    for _ in range(0, calls, 10):
        for _ in range(10):
            t0 = time.perf_counter()
            ort.run(None, full)
            t_bare.append((time.perf_counter() - t0) * 1e6)
        for _ in range(10):
            t0 = time.perf_counter()
            session.run(feeds)
            t_session.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(t_session), statistics.median(t_bare)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="time per measurement: the call count is chosen from a probe (100 to 2000 calls)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "cpp-bench"))
    ap.add_argument("specs", nargs="*", default=[str(p) for p in sorted((ROOT / "examples").glob("*.json"))])
    args = ap.parse_args()
    bench = build_cpp(Path(args.build_dir))
    batches = [int(b) for b in args.batch.split(",")]
    import onnxruntime

    import os
    import platform

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"onnxruntime {onnxruntime.__version__}, threads={args.threads}, "
          f"steps={args.steps}, about {args.seconds:g} s of calls per measurement; medians in microseconds per call")
    header = (f"{'model':<22}{'batch':>6}{'calls':>6}{'C++ bare Run':>14}{'C++ session':>13}{'overhead':>11}"
              f"{'(of mins)':>11}{'A/A':>10}{'goal':>6}{'Py ORT run':>12}{'Py session':>12}{'Py/C++ sess':>12}")
    print(header)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            name = Path(spec).stem
            out = Path(tmp) / name
            rnncompile.build(spec, out, threads=1)
            for batch in batches:
                probe, _ = python_times(out, batch, args.steps, 10, args.threads)
                calls = int(min(2000, max(90, args.seconds * 1e6 / probe)) // 30 * 10)
                rounds = []  # C++ and Python alternate, three rounds, so both see the same machine state
                for _ in range(3):
                    r = subprocess.run([str(bench), str(out), "--batch", str(batch), "--steps", str(args.steps),
                                        "--calls", str(calls), "--threads", str(args.threads)],
                                       capture_output=True, text=True, check=True)
                    py_times = python_times(out, batch, args.steps, calls, args.threads)
                    rounds.append({**json.loads(r.stdout),
                                   **dict(zip(("py_session_us", "py_ort_run_us"), py_times))})
                c = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k.endswith("_us")}
                py_session, py_bare = c["py_session_us"], c["py_ort_run_us"]
                calls *= 3
                overhead = c["session_us"] - c["bare_run_us"]
                ok = overhead <= max(0.05 * c["bare_run_us"], 10.0)
                rows.append({**c, "model": name, "batch": batch})
                print(f"{name:<22}{batch:>6}{calls:>6}{c['bare_run_us']:>14.1f}{c['session_us']:>13.1f}"
                      f"{overhead:>+8.1f} us{c['session_min_us'] - c['bare_run_min_us']:>+8.1f} us"
                      f"{c['aa_us']:>+7.1f} us"
                      f"{'ok' if ok else 'MISS':>6}{py_bare:>12.1f}{py_session:>12.1f}"
                      f"{py_session / c['session_us']:>11.2f}x")
    overheads = np.array([r["session_us"] - r["bare_run_us"] for r in rows])
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"C++ session overhead over a bare Run: median {np.median(overheads):+.1f} us, "
          f"max {overheads.max():+.1f} us; Python session minus C++ session: median "
          f"{np.median([r['py_session_us'] - r['session_us'] for r in rows]):+.1f} us")


if __name__ == "__main__":
    main()
