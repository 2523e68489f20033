"""`rnncompile conformance`: evidence that compiled models compute what their source computes.

Three suites, each a list of cases with a status (passed, failed, unsupported, skipped) and the
worst error against its oracle (report.py: the float32 row of the tolerance table):

  onnx       the ONNX operator conformance cases for LSTM, GRU and RNN, as given and as Keras
             layers through rnncompile (onnx_cases.py).
  goldens    the Keras golden cases: the reference and the built model against Keras's outputs
             (goldens.py).
  generated  a seeded sweep of generated valid specs (specgen.py): each is validated, lowered and
             verified against the reference on the verifier's seeded inputs (every padding
             pattern when masked) plus one arbitrary random mask.

Every suite runs models on runners a RunnerFactory makes (rnncompile.backends; default
onnxruntime on the CPU).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..backends import RunnerFactory, default_factory
from ..errors import RnnCompileError, SpecError
from ..verify import TOLERANCES  # noqa: F401  (the table the report reads; tests patch it here)
from .goldens import find_goldens, read_golden, run_goldens_suite
from .onnx_cases import onnx_case_as_keras, onnx_node_cases, random_weight_variants, run_onnx_suite
from .report import (STATUSES, CaseOutcome, ConformanceReport, SuiteResult, environment, render,
                     worst, write_report)

SUITES = ("onnx", "goldens", "generated")


def run_generated_suite(examples: int, seed: int = 0, make_runner: RunnerFactory | None = None) -> SuiteResult:
    """`examples` specs of each family of specgen: the classic one (gen<i>), then the breadth one
    (genb<i>: the kinds around the recurrent core)."""
    from . import specgen

    make_runner = make_runner or default_factory(1)
    suite = SuiteResult("generated", f"Generated specs ({examples} + {examples} breadth, seed {seed})",
                        "rnncompile's float64 NumPy reference (Keras semantics) on seeded inputs")
    t0 = time.perf_counter()
    for breadth, i in [(False, i) for i in range(examples)] + [(True, i) for i in range(examples)]:
        c0 = time.perf_counter()
        spec_seed = seed * 1_000_003 + i
        name = f"genb{spec_seed}" if breadth else f"gen{spec_seed}"
        spec = specgen.random_spec(spec_seed, name, breadth=True) if breadth else specgen.random_spec(spec_seed, name)

        def extra(model, _s=spec_seed):
            rng = np.random.default_rng(_s)
            masks = specgen.random_masks(model, rng)
            return [specgen.mask_case(model, masks, rng)] if masks else []

        try:
            model, report, cond = specgen.check_spec(spec, seed=spec_seed, extra_cases=extra,
                                                     make_runner=make_runner)
        except RnnCompileError as e:
            suite.cases.append(CaseOutcome(name, "failed", detail=f"{type(e).__name__}: {e} | spec: "
                                           f"{json.dumps(spec)}", seconds=time.perf_counter() - c0))
            continue
        except Exception as e:
            suite.cases.append(CaseOutcome(name, "failed", detail=f"internal error {type(e).__name__}: {e} | "
                                           f"spec: {json.dumps(spec)}", seconds=time.perf_counter() - c0))
            continue
        results = [o for c in report.cases for o in c.outputs]
        abs_, rel, ok, first = worst(results)
        ok = ok and bool(report.cases)
        if not ok and cond is not None and cond.ill_conditioned:
            suite.cases.append(CaseOutcome(name, "skipped", abs_, rel,
                                           f"{cond.text} | spec: {json.dumps(spec)}",
                                           {"onnxruntime vs reference": abs_}, time.perf_counter() - c0))
            continue
        kinds = [l.class_name + (f"({l.inner.class_name})" if hasattr(l, "inner") else "")
                 for l in model.layers.values() if not l.is_model_input]
        detail = (f"{first} | spec: {json.dumps(spec)}" if not ok else
                  f"{' > '.join(kinds)}; {len(report.cases)} case(s)")
        suite.cases.append(CaseOutcome(name, "passed" if ok else "failed", abs_, rel, detail,
                                       {"onnxruntime vs reference": abs_}, time.perf_counter() - c0))
    suite.seconds = time.perf_counter() - t0
    return suite


def run_conformance(examples: int = 200, seed: int = 0, goldens: str | Path | None = None,
                    suites: tuple[str, ...] | list[str] | None = None, threads: int = 1,
                    progress=None, make_runner: RunnerFactory | None = None) -> ConformanceReport:
    """Run the selected suites (all by default) on runners `make_runner` makes (default:
    onnxruntime on the CPU with `threads`). `progress(name)` is called as each starts."""
    chosen = list(suites) if suites else list(SUITES)
    for s in chosen:
        if s not in SUITES:
            raise SpecError(f"unknown suite {s!r}; expected one of {', '.join(SUITES)}", where="--suite")
    run = {"onnx": lambda: run_onnx_suite(threads, make_runner),
           "goldens": lambda: run_goldens_suite(goldens, threads, make_runner),
           "generated": lambda: run_generated_suite(examples, seed, make_runner)}
    t0 = time.perf_counter()
    results = []
    for s in SUITES:
        if s in chosen:
            if progress:
                progress(s)
            results.append(run[s]())
    return ConformanceReport(results, seed, examples, environment(), time.perf_counter() - t0)


__all__ = ["CaseOutcome", "ConformanceReport", "STATUSES", "SUITES", "SuiteResult", "environment",
           "find_goldens", "onnx_case_as_keras", "onnx_node_cases", "random_weight_variants",
           "read_golden", "render", "run_conformance", "run_generated_suite", "run_goldens_suite",
           "run_onnx_suite", "write_report"]
