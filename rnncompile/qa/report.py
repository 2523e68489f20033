"""The conformance report: cases with a status (passed, failed, unsupported, skipped) and the
worst error against their oracle, per suite; plain data (`ConformanceReport.to_dict()`), a
terminal table (`render`) and an atomically written JSON file (`write_report`). Comparisons use
`verify.compare` and the float32 row of the tolerance table (|actual - expected| <= atol + rtol *
|expected|, NaN fails)."""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SpecError
from ..verify import TOLERANCES, Tolerance

STATUSES = ("passed", "failed", "unsupported", "skipped")
PRECISION = "float32"


def tolerance() -> Tolerance:
    """The tolerance row every conformance comparison uses (read at call time)."""
    return TOLERANCES[PRECISION]


@dataclass
class CaseOutcome:
    name: str
    status: str  # passed | failed | unsupported | skipped
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    detail: str = ""
    #: per-comparison worst errors, e.g. {"reference vs keras": 1e-7, "onnxruntime vs keras": 2e-7}
    errors: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class SuiteResult:
    name: str
    title: str
    oracle: str
    cases: list[CaseOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.cases)

    @property
    def passed(self) -> bool:
        return self.count("failed") == 0

    def worst(self) -> CaseOutcome | None:
        """The case with the largest error among those compared (a failure wins; skipped cases,
        whose errors are not meaningful, are left out)."""
        compared = [c for c in self.cases if c.max_abs_error is not None and c.status != "skipped"]
        if not compared:
            return None
        return max(compared, key=lambda c: (c.status == "failed", _num(c.max_abs_error)))

    def to_dict(self) -> dict:
        w = self.worst()
        return {
            "title": self.title,
            "oracle": self.oracle,
            "counts": {s: self.count(s) for s in STATUSES} | {"total": len(self.cases)},
            "passed": self.passed,
            "worst": None if w is None else {"case": w.name, "max_abs_error": _json_num(w.max_abs_error),
                                             "max_rel_error": _json_num(w.max_rel_error)},
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "cases": [{**asdict(c), "max_abs_error": _json_num(c.max_abs_error),
                       "max_rel_error": _json_num(c.max_rel_error),
                       "errors": {k: _json_num(v) for k, v in c.errors.items()},
                       "seconds": round(c.seconds, 4)} for c in self.cases],
        }


@dataclass
class ConformanceReport:
    suites: list[SuiteResult]
    seed: int
    examples: int
    environment: dict
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.suites)

    @property
    def failed(self) -> int:
        return sum(s.count("failed") for s in self.suites)

    def to_dict(self) -> dict:
        tol = tolerance()
        return {
            "conformance": "passed" if self.passed else "failed",
            "rnncompile": __version__,
            "environment": self.environment,
            "seed": self.seed,
            "examples": self.examples,
            "precision": PRECISION,
            "tolerance": asdict(tol),
            "rule": "|actual - expected| <= atol + rtol * |expected| elementwise; NaN fails",
            "seconds": round(self.seconds, 3),
            "suites": {s.name: s.to_dict() for s in self.suites},
        }


def _num(v: float | None) -> float:
    if v is None or v != v:  # NaN sorts as the worst
        return float("inf")
    return v


def _json_num(v):
    """JSON has no inf/NaN: write them as strings."""
    if v is None:
        return None
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    return v


def environment() -> dict:
    import onnx
    import onnxruntime

    return {"python": platform.python_version(), "platform": platform.platform(),
            "numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def worst(results) -> tuple[float, float, bool, str]:
    """(max abs, max rel, all passed, first problem) over OutputResults."""
    if not results:
        return 0.0, 0.0, True, ""
    abs_ = max(_num(r.max_abs_error) for r in results)
    rel = max(_num(r.max_rel_error) for r in results)
    ok = all(r.passed for r in results)
    problem = next((f"{r.name}: {r.problem or f'max abs err {r.max_abs_error:.3e}'}"
                    for r in results if not r.passed), "")
    return abs_, rel, ok, problem


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v != v:
        return "nan"
    return f"{v:.2e}" if v != float("inf") else "inf"


def render(report: ConformanceReport, verbose: bool = False) -> str:
    tol = tolerance()
    env = report.environment
    lines = [f"rnncompile {__version__} conformance: onnx {env.get('onnx')}, onnxruntime "
             f"{env.get('onnxruntime')}, numpy {env.get('numpy')}; {PRECISION} tolerance "
             f"atol={tol.atol:g} rtol={tol.rtol:g}", ""]
    head = ["suite", "cases", "passed", "failed", "unsupported", "skipped", "worst abs err", "worst case"]
    rows = []
    for s in report.suites:
        w = s.worst()
        rows.append([s.name, str(len(s.cases)), str(s.count("passed")), str(s.count("failed")),
                     str(s.count("unsupported")), str(s.count("skipped")),
                     _fmt(w.max_abs_error) if w else "-", w.name if w else "-"])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    align = ["<", ">", ">", ">", ">", ">", ">", "<"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()
    lines.append(line(head))
    lines.append(line(["-" * w for w in widths]))
    lines += [line(r) for r in rows]
    for s in report.suites:
        listed = [c for c in s.cases if c.status != "passed" or verbose]
        if not listed and not s.notes:
            continue
        lines.append("")
        lines.append(f"{s.name}: {s.title}  [{s.seconds:.1f} s; oracle: {s.oracle}]")
        for c in listed:
            err = f" (max abs err {_fmt(c.max_abs_error)})" if c.max_abs_error is not None else ""
            lines.append(f"  {c.status.upper() if c.status == 'failed' else c.status}: {c.name}{err}: {c.detail}")
        for n in s.notes:
            lines.append(f"  note: {n}")
    lines.append("")
    total = sum(len(s.cases) for s in report.suites)
    lines.append(f"conformance: {'PASSED' if report.passed else 'FAILED'} "
                 f"({total} case(s), {report.failed} failed, {report.seconds:.1f} s)")
    return "\n".join(lines)


def write_report(report: ConformanceReport, path: str | Path) -> None:
    """Write the JSON report atomically (a partial file never appears under `path`)."""
    import os

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SpecError(f"cannot write the report: {e.strerror or e}", where=str(path)) from None
