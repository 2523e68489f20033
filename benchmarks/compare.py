"""Side-by-side comparison for the seed models, in one run, printed as ratios:

  * ours        - the model rnncompile builds (native LSTM/GRU/RNN ops), on onnxruntime with the
                  session defaults of `rnncompile run`, threads as given;
  * torch       - PyTorch eager, torch.nn.LSTM/GRU/RNN with the same weights and the same mask
                  semantics (benchmarks/torch_port.py), torch.set_num_threads(threads);
  * loop        - a Loop-based lowering of the same model, as tf2onnx-style converters emit
                  (benchmarks/loop_lowering.py), on onnxruntime with the same session options;
  * nomask      - for masked models: the same model with the mask switched off (Embedding
                  mask_zero=false), ours, on the same token ids.

Inputs: `none` = no padding; `left` = every row left-padded by a seeded random number of steps in
[1, T-1] (as in verification). Before anything is timed, every variant is checked against the
float64 NumPy reference on the very inputs it is timed on. Variants are then timed round-robin
(bench.time_interleaved), so load from elsewhere on a shared machine hits them alike.

Usage (from the repository root, torch installed: pip install -e .[bench]):
    python benchmarks/compare.py                       # all seed models, batch 1 and 32, 100 steps
    python benchmarks/compare.py --models sentiment --batch 32 --runs 50 --json out.json
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from rnncompile.qa import bench  # noqa: E402
from rnncompile.build import io_description  # noqa: E402
from rnncompile.lower import lower  # noqa: E402
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from rnncompile.backends.reference import ReferenceRunner  # noqa: E402
from rnncompile.spec import load_spec  # noqa: E402
from rnncompile.verify import Tolerance, compare  # noqa: E402

#: The seed models of the comparison (issue 6): name -> spec path.
SEED_MODELS = {
    "lstm_classifier": ROOT / "examples" / "lstm_classifier.json",   # Embedding -> LSTM(128) -> Dense
    "sentiment": ROOT / "examples" / "sentiment.json",               # masked Bidirectional LSTM
    "gru_simplernn": ROOT / "examples" / "gru_simplernn.json",       # GRU(256) -> SimpleRNN(128)
    "bidirectional_stack": HERE / "models" / "bidirectional_stack.json",  # stacked BiLSTM, float input
    "masked_stack": HERE / "models" / "masked_stack.json",          # masked BiGRU -> LSTM
    "encoder_decoder": ROOT / "examples" / "encoder_decoder.json",   # LSTM states into an LSTM
}

#: Tolerance of the pre-timing check against the float64 reference (100 fp32 steps).
CHECK = Tolerance(atol=1e-4, rtol=1e-4)


def unmasked_spec(spec: dict) -> dict | None:
    """The same model without its mask (Embedding mask_zero=false), or None if it has none."""
    spec = copy.deepcopy(spec)
    changed = False
    for layer in spec["layers"]:
        if layer.get("class_name") == "Embedding" and layer.get("mask_zero"):
            layer["mask_zero"] = False
            changed = True
    return spec if changed else None


def load_json(path: Path) -> dict:
    spec = json.loads(path.read_text())
    w = spec.get("weights")
    if isinstance(w, str) and not Path(w).is_absolute():
        spec["weights"] = str((path.parent / w).resolve())
    return spec


def ort_fn(model_bytes: bytes, feeds: dict, threads: int):
    sess = OnnxRuntimeRunner(model_bytes, threads=threads).session
    return lambda: sess.run(None, feeds), lambda: dict(zip([o.name for o in sess.get_outputs()],
                                                            sess.run(None, feeds)))


def check(name: str, want: dict, got: dict, tolerance: Tolerance = CHECK) -> float:
    worst = 0.0
    for k, v in want.items():
        r = compare(k, v, got[k], tolerance)
        if not r.passed:
            raise SystemExit(f"{name}: output {k} disagrees with the reference "
                             f"(max abs err {r.max_abs_error:.3e}); refusing to time it")
        worst = max(worst, r.max_abs_error)
    return worst


def compare_model(name: str, path: Path, batches, steps: int, threads: int, runs: int, warmup: int,
                  with_torch: bool, seed: int = 0) -> list[dict]:
    from loop_lowering import lower_with_loops

    spec = load_json(path)
    model = load_spec(spec, base_dir=path.parent)
    lowered = lower(model)
    io = io_description(model, lowered)
    loop_bytes = lower_with_loops(model)
    nomask = unmasked_spec(spec)
    nomask_bytes = lower(load_spec(nomask, base_dir=path.parent)).model_bytes if nomask else None
    torch_model, torch_why = None, ""
    if with_torch:
        from torch_port import TorchModel, Unsupported
        try:
            torch_model = TorchModel(model)
        except Unsupported as e:
            torch_why = str(e)
    patterns = ["none", "left"] if bench.masked_inputs(io) else ["none"]
    rows = []
    for b in batches:
        fns, errors = {}, {}
        for p in patterns:
            feeds = bench.make_feeds(io, b, steps, p, seed)
            want = ReferenceRunner(model).run(feeds)
            run, outs = ort_fn(lowered.model_bytes, feeds, threads)
            errors[f"ours/{p}"] = check(f"{name} ours {p}", want, outs())
            fns[f"ours/{p}"] = run
            run, outs = ort_fn(loop_bytes, feeds, threads)
            errors[f"loop/{p}"] = check(f"{name} loop {p}", want, outs())
            fns[f"loop/{p}"] = run
            if torch_model is not None:
                errors[f"torch/{p}"] = check(f"{name} torch {p}", want, torch_model(feeds))
                fns[f"torch/{p}"] = (lambda f: lambda: torch_model(f))(feeds)
            if nomask_bytes is not None:
                fns[f"nomask/{p}"] = ort_fn(nomask_bytes, feeds, threads)[0]
        load0 = bench.load_average()
        t0 = time.perf_counter()
        timings = bench.time_interleaved(fns, runs=runs, warmup=warmup)
        med = {k: v.median * 1e3 for k, v in timings.items()}
        row = {"model": name, "batch": b, "steps": steps, "threads": threads, "runs": runs,
               "median_ms": med, "p90_ms": {k: v.p90 * 1e3 for k, v in timings.items()},
               "max_abs_error": errors, "load_average": [load0, bench.load_average()],
               "seconds": time.perf_counter() - t0, "torch": torch_why or ("yes" if torch_model else "off")}
        ratios = {}
        for p in patterns:
            if f"torch/{p}" in med:
                ratios[f"torch/ours {p}"] = med[f"torch/{p}"] / med[f"ours/{p}"]
            ratios[f"loop/ours {p}"] = med[f"loop/{p}"] / med[f"ours/{p}"]
        if nomask_bytes is not None:
            ratios["masked left / unmasked"] = med["ours/left"] / med["nomask/none"]
            ratios["masked none / unmasked"] = med["ours/none"] / med["nomask/none"]
        row["ratios"] = ratios
        rows.append(row)
        print(render_row(row), flush=True)
    return rows


def render_row(row: dict) -> str:
    med = row["median_ms"]
    times = "  ".join(f"{k} {v:.3f}" for k, v in med.items())
    ratios = "  ".join(f"{k} {v:.2f}x" for k, v in row["ratios"].items())
    extra = "" if row["torch"] in ("yes", "off") else f"  (torch: {row['torch']})"
    return (f"{row['model']:<20} batch {row['batch']:>3}: median ms  {times}\n"
            f"{'':<20}            ratios     {ratios}{extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(SEED_MODELS),
                    help="comma-separated seed model names (default: all)")
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--json", type=Path, default=None, help="write all rows and the machine as JSON")
    args = ap.parse_args(argv)

    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed (pip install -e .[bench]): comparing without it")
            with_torch = False
        else:
            torch.set_num_threads(args.threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
    machine = bench.machine_info()
    peak = bench.matmul_peak(args.threads)
    print(f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, onnxruntime "
          f"{machine['onnxruntime']}" + (f", torch {torch.__version__}" if with_torch else "")
          + f", {args.threads} thread(s); fp32 matmul peak {peak['gflops']:.1f} GFLOP/s; "
          f"load average {machine['load_average']}")
    print("ratios: torch/ours and loop/ours > 1 mean ours is faster; masked/unmasked <= 1.3 is the goal\n")
    batches = [int(b) for b in args.batch.split(",")]
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in SEED_MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join(SEED_MODELS)}")
        rows += compare_model(name, SEED_MODELS[name], batches, args.steps, args.threads, args.runs,
                              args.warmup, with_torch)
    print("\nsummary (median ratios):")
    keys = list(dict.fromkeys(k for r in rows for k in r["ratios"]))
    print(f"{'model':<20} {'batch':>5}  " + "  ".join(f"{k:>22}" for k in keys))
    for r in rows:
        print(f"{r['model']:<20} {r['batch']:>5}  " + "  ".join(
            f"{r['ratios'][k]:>21.2f}x" if k in r["ratios"] else f"{'-':>22}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "matmul_peak": peak,
                                         "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
