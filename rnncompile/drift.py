"""Half-precision drift report: how far a typed fp16/bf16 graph strays from the float64 reference
as sequences grow, per output and time step. Recurrences feed rounding back step after step, so a
model that verifies on short sequences can drift on long ones: the report says where it stops
being within its tolerance row (rnncompile/verify.py TOLERANCES).

For every output with a time axis (return_sequences) the error is measured at every step of one
long run (default T = 1000). Outputs without one (a last state, a Dense head) are measured on runs
of growing length (a log-spaced grid up to T): the error at step t is the error of the output
after t steps. Inputs are seeded, unpadded, batch 4; stateful models start from zero states.

What runs: onnxruntime on the CPU, on the exact typed graph (ops without a half-precision CPU
kernel run in float32 between casts: the report's "runner" names them). A GPU engine's numbers
may differ; tools/gpu_check.py measures those.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backends import runner_factory
from .backends.reference import ReferenceRunner
from .lower import lower
from .spec import Model
from .targets import get_target
from .verify import TOLERANCES, input_infos, make_inputs


@dataclass
class OutputDrift:
    name: str
    kind: str                      # "per-step" or "prefix-lengths"
    steps: list[int]
    max_abs_error: list[float]
    max_rel_error: list[float]
    #: first step where some element leaves atol + rtol * |ref| (None: within it throughout)
    first_step_out_of_tolerance: int | None = None


@dataclass
class DriftReport:
    model: str
    target: str
    precision: str
    steps: int
    batch: int
    runner: str
    tolerance: dict
    outputs: list[OutputDrift] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.model, "target": self.target, "precision": self.precision,
                "steps": self.steps, "batch": self.batch, "runner": self.runner,
                "tolerance": self.tolerance, "notes": self.notes,
                "outputs": [o.__dict__ for o in self.outputs]}


def _grid(t: int) -> list[int]:
    return sorted({int(round(v)) for v in np.geomspace(1, t, num=min(t, 14))} | {t})


def drift(model: Model, precision: str = "float16", steps: int = 1000, batch: int = 4, seed: int = 0,
          target: str = "tensorrt", threads: int | None = 1) -> DriftReport:
    t = get_target(target, precision)
    lowered = lower(model, t)
    runner = runner_factory("onnxruntime", threads=threads, precision=t.precision)(lowered.model_bytes)
    ref = ReferenceRunner(model)
    tol = TOLERANCES[t.precision]
    infos = input_infos(model)
    var = [i for i in infos if i.shape and i.shape[0] is None]
    report = DriftReport(model.name, t.name, t.precision, steps, batch, runner.name,
                         {"atol": tol.atol, "rtol": tol.rtol})
    if not var:
        fixed = max((i.shape[0] for i in infos if i.shape), default=1)
        report.notes.append(f"the time axis is fixed at {fixed}: drift measured over those steps only")
        steps = fixed
        report.steps = steps

    def run(length: int) -> tuple[dict, dict]:
        rng = np.random.default_rng(seed)
        lengths = {i.name: (length if i in var else (i.shape[0] if i.shape else 1)) for i in infos}
        feeds = make_inputs(infos, batch, lengths, "none", rng)
        for s in model.states:
            feeds[s.input_name] = np.zeros((batch, *s.shape), np.float32)
        return ref.run(feeds), runner.run(feeds)

    want, got = run(steps)
    seq_outputs = {n for n, v in want.items() if np.ndim(v) == 3 and np.shape(v)[1] == steps}
    for name in want:
        if name in seq_outputs:
            err = np.abs(np.asarray(got[name], np.float64) - want[name])       # [B, T, F]
            rel = err / np.maximum(np.abs(want[name]), tol.atol)
            bad = err > tol.atol + tol.rtol * np.abs(want[name])
            per_abs = err.max(axis=(0, 2)).tolist()
            per_rel = rel.max(axis=(0, 2)).tolist()
            over = np.flatnonzero(bad.any(axis=(0, 2)))
            report.outputs.append(OutputDrift(name, "per-step", list(range(1, steps + 1)), per_abs, per_rel,
                                              int(over[0]) + 1 if over.size else None))
    rest = [n for n in want if n not in seq_outputs]
    if rest:
        grid = _grid(steps) if var else [steps]
        curves = {n: ([], [], None) for n in rest}
        for length in grid:
            w, g = (want, got) if length == steps else run(length)
            for n in rest:
                err = np.abs(np.asarray(g[n], np.float64) - w[n])
                a, r, first = curves[n]
                a.append(float(err.max()))
                r.append(float((err / np.maximum(np.abs(w[n]), tol.atol)).max()))
                if first is None and bool((err > tol.atol + tol.rtol * np.abs(w[n])).any()):
                    first = length
                curves[n] = (a, r, first)
        for n in rest:
            a, r, first = curves[n]
            report.outputs.append(OutputDrift(n, "prefix-lengths", grid, a, r, first))
    return report


def write(report: DriftReport, out_dir: str | Path, plot: bool = True) -> list[Path]:
    """<model>_<precision>_drift.json (and .png when matplotlib is installed and `plot`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report.model}_{report.precision}_drift"
    paths = [out / f"{stem}.json"]
    paths[0].write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    if plot:
        try:
            import matplotlib
        except ImportError:
            report.notes.append("no plot: matplotlib is not installed (pip install rnncompile[plot])")
            return paths
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        for o in report.outputs:
            style = "-" if o.kind == "per-step" else "o-"
            ax.plot(o.steps, np.maximum(o.max_abs_error, 1e-12), style, ms=3, lw=1,
                    label=f"{o.name} ({o.kind})")
        ax.axhline(report.tolerance["atol"], color="red", ls="--", lw=1, label="atol of the tolerance row")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("time step")
        ax.set_ylabel("max |typed graph - float64 reference|")
        ax.set_title(f"{report.model}: {report.precision} drift ({report.target} graph on onnxruntime CPU)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{stem}.png", dpi=110)
        plt.close(fig)
        paths.append(out / f"{stem}.png")
    return paths
