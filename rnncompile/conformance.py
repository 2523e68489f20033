"""`rnncompile conformance`: evidence that compiled models compute what their source computes.

Three suites, each a list of cases with a status (passed, failed, unsupported, skipped) and the
worst error against its oracle, compared with `verify.compare` and the float32 row of the
tolerance table (|actual - expected| <= atol + rtol * |expected|, NaN fails):

  onnx       the ONNX operator conformance cases for LSTM, GRU and RNN (the `expect` cases of
             onnx.backend.test.case.node, built in memory: onnx wheels ship no data files), run on
             onnxruntime against the outputs the ONNX project computed. Cases onnxruntime refuses
             (layout=1, batch-major) are listed as unsupported by the runtime, not hidden;
             rnncompile itself always emits layout=0.
  goldens    the Keras golden cases (tests/goldens/<case>/spec.json, weights.npz, io.npz, written
             by tools/make_goldens.py with Keras): the NumPy reference and the built ONNX model
             (onnxruntime) each against Keras's outputs, chunk after chunk for stateful cases.
  generated  a seeded sweep of generated valid specs (rnncompile.specgen): each is validated,
             lowered and verified on onnxruntime against the reference on the verifier's seeded
             inputs (every padding pattern when masked) plus one arbitrary random mask.

The report is plain data (`ConformanceReport.to_dict()`) and a terminal table (`render`).
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ModelFileError, RnnCompileError, SpecError
from .verify import TOLERANCES, compare

SUITES = ("onnx", "goldens", "generated")
STATUSES = ("passed", "failed", "unsupported", "skipped")
PRECISION = "float32"


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
        """The case with the largest error among those compared (a failure wins)."""
        compared = [c for c in self.cases if c.max_abs_error is not None]
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
        tol = TOLERANCES[PRECISION]
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


def _worst(results) -> tuple[float, float, bool, str]:
    """(max abs, max rel, all passed, first problem) over OutputResults."""
    if not results:
        return 0.0, 0.0, True, ""
    abs_ = max(_num(r.max_abs_error) for r in results)
    rel = max(_num(r.max_rel_error) for r in results)
    ok = all(r.passed for r in results)
    problem = next((f"{r.name}: {r.problem or f'max abs err {r.max_abs_error:.3e}'}"
                    for r in results if not r.passed), "")
    return abs_, rel, ok, problem


# ---------------------------------------------------------------------------------------------
# Suite: ONNX operator conformance cases.

ONNX_OPS = ("LSTM", "GRU", "RNN")
_ONNX_MODULES = ("lstm", "gru", "rnn")


def onnx_node_cases() -> list:
    """The LSTM, GRU and RNN node test cases of onnx.backend.test.case.node, generated in memory
    by running their `export*` functions (as onnx's collect_testcases does, without importing
    the other ~200 operator modules). Returns onnx's TestCase tuples."""
    import importlib

    import onnx.backend.test.case.node as node_cases
    from onnx.backend.test.case.base import Base

    modules = [importlib.import_module(f"onnx.backend.test.case.node.{m}") for m in _ONNX_MODULES]
    saved = (node_cases._TargetOpType, node_cases._NodeTestCases, node_cases._existing_names)
    node_cases._TargetOpType = None
    node_cases._NodeTestCases = []
    node_cases._existing_names = {}
    try:
        for mod in modules:
            for obj in vars(mod).values():
                if (isinstance(obj, type) and issubclass(obj, Base) and obj is not Base
                        and obj.__module__ == mod.__name__):
                    for attr in sorted(vars(obj)):
                        if attr.startswith("export"):
                            np.random.seed(0)  # as onnx does before each export
                            getattr(obj, attr)()
        cases = [c for c in node_cases._NodeTestCases
                 if c.model.graph.node and c.model.graph.node[0].op_type in ONNX_OPS]
    finally:
        node_cases._TargetOpType, node_cases._NodeTestCases, node_cases._existing_names = saved
    return cases


def _node_attributes(model) -> dict:
    from onnx import helper

    node = model.graph.node[0]
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def run_onnx_suite(threads: int = 1) -> SuiteResult:
    import onnxruntime as ort

    suite = SuiteResult("onnx", "ONNX operator conformance (LSTM, GRU, RNN)",
                        "outputs computed by the ONNX project's reference (onnx.backend.test.case.node)")
    t0 = time.perf_counter()
    tol = TOLERANCES[PRECISION]
    try:
        cases = onnx_node_cases()
    except Exception as e:  # an onnx release that moved its test cases
        suite.notes.append(f"cannot generate the ONNX node test cases from this onnx release: "
                           f"{type(e).__name__}: {e}")
        suite.seconds = time.perf_counter() - t0
        return suite
    for case in cases:
        c0 = time.perf_counter()
        op = case.model.graph.node[0].op_type
        attrs = _node_attributes(case.model)
        label = f"{op}: {case.name}"
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # a refused model is reported here, not logged by onnxruntime
        opts.intra_op_num_threads = threads
        try:
            sess = ort.InferenceSession(case.model.SerializeToString(), sess_options=opts,
                                        providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if attrs.get("layout") == 1:
                suite.cases.append(CaseOutcome(
                    label, "unsupported", detail="unsupported by runtime: onnxruntime refuses "
                    "layout=1 (batch-major) for LSTM/GRU/RNN; rnncompile always emits layout=0 "
                    "with Transposes around the op", seconds=time.perf_counter() - c0))
            else:
                suite.cases.append(CaseOutcome(label, "failed", detail=f"onnxruntime cannot load it: {msg}",
                                               seconds=time.perf_counter() - c0))
            continue
        results = []
        problem = ""
        for inputs, expected in case.data_sets:
            feeds = {i.name: np.asarray(a) for i, a in zip(sess.get_inputs(), inputs)}
            try:
                got = sess.run(None, feeds)
            except Exception as e:
                problem = f"onnxruntime failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                break
            for o, want, have in zip(sess.get_outputs(), expected, got):
                results.append(compare(o.name, np.asarray(want), have, tol))
        abs_, rel, ok, first = _worst(results)
        status = "passed" if ok and not problem and results else "failed"
        detail = problem or first or ", ".join(f"{k}={v}" for k, v in attrs.items())
        suite.cases.append(CaseOutcome(label, status, abs_ if results else None, rel if results else None,
                                       detail, {"onnxruntime vs onnx": abs_} if results else {},
                                       time.perf_counter() - c0))
    import onnx

    suite.notes.append(f"{len(suite.cases)} case(s) from onnx {onnx.__version__}; "
                       f"onnx's own check uses rtol=1e-3, atol=1e-7; this suite uses the float32 "
                       f"tolerance table")
    suite.seconds = time.perf_counter() - t0
    return suite


# ---------------------------------------------------------------------------------------------
# Suite: Keras golden cases.


def find_goldens() -> Path | None:
    """tests/goldens of the source tree this package runs from (an editable install or a
    checkout); None for an installed wheel, which carries no test data."""
    here = Path(__file__).resolve().parent.parent
    for root in (here, Path.cwd()):
        d = root / "tests" / "goldens"
        if d.is_dir() and (any(d.glob("*/spec.json")) or (d / "manifest.json").is_file()):
            return d
    return None


def _read_golden(case_dir: Path, mask_dropped: bool = False):
    """(model, chunks, layers given ignore_mask) of one golden case, where chunks is
    [(inputs by name, [outputs])]. Uses rnncompile's own safe readers (no pickles); the format is
    tools/goldens_format.py's. `mask_dropped`: the Keras model was built the plain functional way,
    where Keras 3 drops the mask of a layer called with initial_state: such layers that do not
    say `ignore_mask` get ignore_mask=true, which is what Keras computed."""
    import re

    from .npz import read_npz
    from .spec import load_spec, read_json

    spec = read_json(case_dir / "spec.json")
    set_ignore = []
    if mask_dropped and isinstance(spec, dict):
        for layer in spec.get("layers") or []:
            if isinstance(layer, dict) and layer.get("initial_state") and "ignore_mask" not in layer:
                layer["ignore_mask"] = True
                set_ignore.append(str(layer.get("name", layer.get("class_name"))))
    model = load_spec(spec, base_dir=case_dir)
    io = read_npz(case_dir / "io.npz", "golden io file")
    raw: dict[int, tuple[dict, dict]] = {}
    for key, arr in io.items():
        m = re.match(r"^chunk(\d+)/(in|out)/(.+)$", key)
        if m is None:
            raise ModelFileError(f"unexpected key {key!r} (expected chunk<c>/in/<input> or "
                                 f"chunk<c>/out/<k>)", where=str(case_dir / "io.npz"))
        c, kind, name = int(m.group(1)), m.group(2), m.group(3)
        ins, outs = raw.setdefault(c, ({}, {}))
        if kind == "in":
            ins[name] = arr
        else:
            if not name.isdigit():
                raise ModelFileError(f"output key {key!r} is not numbered", where=str(case_dir / "io.npz"))
            outs[int(name)] = arr
    if sorted(raw) != list(range(len(raw))) or not raw:
        raise ModelFileError("chunks are not numbered 0..n-1", where=str(case_dir / "io.npz"))
    chunks = []
    for c in range(len(raw)):
        ins, outs = raw[c]
        if sorted(outs) != list(range(len(outs))) or len(outs) != len(model.outputs):
            raise ModelFileError(f"chunk{c} holds {len(outs)} output(s); the spec has "
                                 f"{len(model.outputs)}", where=str(case_dir / "io.npz"))
        chunks.append((ins, [outs[i] for i in range(len(outs))]))
    return model, chunks, set_ignore


def run_goldens_suite(goldens: str | Path | None = None, threads: int = 1) -> SuiteResult:
    from .build import io_description
    from .lower import lower
    from .runtime import OnnxRuntimeRunner, ReferenceRunner, Session

    suite = SuiteResult("goldens", "Keras golden cases (reference and onnxruntime vs Keras)",
                        "outputs of Keras models built from the same specs and weights")
    t0 = time.perf_counter()
    if goldens is None:
        root = find_goldens()
        if root is None:
            suite.notes.append("golden data not found: it lives in the source repository's "
                               "tests/goldens/ and is not installed with the package; run from a "
                               "checkout or pass --goldens DIR. Suite skipped.")
            return suite
    else:
        root = Path(goldens)
        if not root.is_dir():
            raise SpecError("goldens directory not found", where=str(root))
    case_dirs = sorted(p.parent for p in root.glob("*/spec.json"))
    if not case_dirs:
        suite.notes.append(f"no golden cases in {root} (expected <case>/spec.json, weights.npz, io.npz)")
        return suite
    manifest = {}
    if (root / "manifest.json").is_file():
        try:
            manifest = json.loads((root / "manifest.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
            suite.notes.append(f"cannot read {root / 'manifest.json'}: {e}")
    info = manifest.get("cases", {}) if isinstance(manifest, dict) else {}
    if isinstance(manifest, dict) and manifest.get("keras"):
        suite.notes.append(f"goldens from Keras {manifest.get('keras')} ({manifest.get('backend')} backend), "
                           f"{root}")
    tol = TOLERANCES[PRECISION]
    for d in case_dirs:
        c0 = time.perf_counter()
        meta = info.get(d.name, {}) if isinstance(info, dict) else {}
        dropped = isinstance(meta, dict) and bool(meta.get("keras_drops_mask_with_initial_state"))
        try:
            model, chunks, set_ignore = _read_golden(d, dropped)
            lowered = lower(model)
            io = io_description(model, lowered)
            ref = Session(ReferenceRunner(model), io)
            ort_ = Session(OnnxRuntimeRunner(lowered.model_bytes, threads=threads), io)
            r_res, o_res = [], []
            for k, (ins, outs) in enumerate(chunks):
                want_r = ref.run(dict(ins))
                want_o = ort_.run(dict(ins))
                for name, keras_out in zip(model.output_names, outs):
                    r_res.append(compare(f"chunk{k}/{name}", keras_out, want_r[name], tol))
                    o_res.append(compare(f"chunk{k}/{name}", keras_out, want_o[name], tol))
        except RnnCompileError as e:
            suite.cases.append(CaseOutcome(d.name, "failed", detail=f"{type(e).__name__}: {e}",
                                           seconds=time.perf_counter() - c0))
            continue
        except Exception as e:  # a damaged case or an internal bug: report, keep going
            suite.cases.append(CaseOutcome(d.name, "failed", detail=f"internal error {type(e).__name__}: {e}",
                                           seconds=time.perf_counter() - c0))
            continue
        ra, rr, rok, rp = _worst(r_res)
        oa, orr, ook, op_ = _worst(o_res)
        detail = "; ".join(x for x in (f"reference vs keras: {rp}" if rp else "",
                                       f"onnxruntime vs keras: {op_}" if op_ else "") if x)
        suite.cases.append(CaseOutcome(
            d.name, "passed" if rok and ook else "failed", max(_num(ra), _num(oa)), max(rr, orr),
            detail or (f"{len(chunks)} chunk(s)" + (
                f"; Keras drops the mask of {', '.join(set_ignore)} (called with initial_state): "
                "checked with ignore_mask=true there" if set_ignore else "")), {"reference vs keras": ra, "onnxruntime vs keras": oa},
            time.perf_counter() - c0))
    suite.seconds = time.perf_counter() - t0
    return suite


# ---------------------------------------------------------------------------------------------
# Suite: generated specs.


def run_generated_suite(examples: int, seed: int = 0) -> SuiteResult:
    from .specgen import check_spec, mask_case, random_masks, random_spec

    suite = SuiteResult("generated", f"Generated specs ({examples}, seed {seed})",
                        "rnncompile's float64 NumPy reference (Keras semantics) on seeded inputs")
    t0 = time.perf_counter()
    for i in range(examples):
        c0 = time.perf_counter()
        spec_seed = seed * 1_000_003 + i
        name = f"gen{spec_seed}"
        spec = random_spec(spec_seed, name)

        def extra(model, _s=spec_seed):
            rng = np.random.default_rng(_s)
            masks = random_masks(model, rng)
            return [mask_case(model, masks, rng)] if masks else []

        try:
            model, report = check_spec(spec, seed=spec_seed, extra_cases=extra)
        except RnnCompileError as e:
            suite.cases.append(CaseOutcome(name, "failed", detail=f"{type(e).__name__}: {e} | spec: "
                                           f"{json.dumps(spec)}", seconds=time.perf_counter() - c0))
            continue
        except Exception as e:
            suite.cases.append(CaseOutcome(name, "failed", detail=f"internal error {type(e).__name__}: {e} | "
                                           f"spec: {json.dumps(spec)}", seconds=time.perf_counter() - c0))
            continue
        results = [o for c in report.cases for o in c.outputs]
        abs_, rel, ok, first = _worst(results)
        ok = ok and bool(report.cases)
        kinds = [l.class_name + (f"({l.inner.class_name})" if hasattr(l, "inner") else "")
                 for l in model.layers.values() if not getattr(l, "is_model_input", False)]
        detail = (f"{first} | spec: {json.dumps(spec)}" if not ok else
                  f"{' > '.join(kinds)}; {len(report.cases)} case(s)")
        suite.cases.append(CaseOutcome(name, "passed" if ok else "failed", abs_, rel, detail,
                                       {"onnxruntime vs reference": abs_}, time.perf_counter() - c0))
    suite.seconds = time.perf_counter() - t0
    return suite


# ---------------------------------------------------------------------------------------------


def run_conformance(examples: int = 100, seed: int = 0, goldens: str | Path | None = None,
                    suites: tuple[str, ...] | list[str] | None = None, threads: int = 1,
                    progress=None) -> ConformanceReport:
    """Run the selected suites (all by default). `progress(name)` is called as each starts."""
    chosen = list(suites) if suites else list(SUITES)
    for s in chosen:
        if s not in SUITES:
            raise SpecError(f"unknown suite {s!r}; expected one of {', '.join(SUITES)}", where="--suite")
    t0 = time.perf_counter()
    results = []
    for s in SUITES:
        if s not in chosen:
            continue
        if progress:
            progress(s)
        if s == "onnx":
            results.append(run_onnx_suite(threads))
        elif s == "goldens":
            results.append(run_goldens_suite(goldens, threads))
        else:
            results.append(run_generated_suite(examples, seed))
    return ConformanceReport(results, seed, examples, environment(), time.perf_counter() - t0)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v != v:
        return "nan"
    return f"{v:.2e}" if v != float("inf") else "inf"


def render(report: ConformanceReport, verbose: bool = False) -> str:
    tol = TOLERANCES[PRECISION]
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


__all__ = ["CaseOutcome", "ConformanceReport", "SuiteResult", "SUITES", "find_goldens",
           "onnx_node_cases", "render", "run_conformance", "run_goldens_suite",
           "run_generated_suite", "run_onnx_suite", "write_report"]
