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


def _replace(case, **changes):
    """A copy of an onnx TestCase (a NamedTuple in some onnx releases, a dataclass in others)."""
    import dataclasses

    if dataclasses.is_dataclass(case):
        return dataclasses.replace(case, **changes)
    return case._replace(**changes)


def random_weight_variants(cases) -> list:
    """The ONNX cases use constant weights (every W and R entry 0.1 in most of them), which hides
    gate-order and transposition mistakes, and none runs initial states through a Keras-expressible
    node. Each case without sequence_lens gets two twins with seeded random inputs, weights and
    biases: `<case>_random_weights`, and `<case>_random_initial_state`, which also feeds random
    initial_h (and initial_c) and a bias. Their expected outputs come from onnx's own reference
    implementation (onnx.reference), which reproduces every original case exactly."""
    import zlib

    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    out = []
    for case in cases:
        node = case.model.graph.node[0]
        if len(node.input) > 4 and node.input[4]:
            continue  # onnx.reference ignores sequence_lens
        rng = np.random.default_rng(zlib.crc32(case.name.encode()))
        inputs, _ = case.data_sets[0]
        rand = [(rng.standard_normal(np.shape(a)) * 0.5).astype(np.float32) for a in inputs]
        names = [i.name for i in case.model.graph.input]
        expected = ReferenceEvaluator(case.model).run(None, dict(zip(names, rand)))
        out.append(_replace(case, name=f"{case.name}_random_weights", data_sets=[(rand, expected)]))

        # with a bias and initial states
        attrs = _node_attributes(case.model)
        X, W = rand[0], rand[1]
        dirs, gh = W.shape[0], W.shape[1]
        hidden = int(attrs["hidden_size"])
        batch = X.shape[1] if int(attrs.get("layout", 0)) == 0 else X.shape[0]
        state_shape = ((dirs, batch, hidden) if int(attrs.get("layout", 0)) == 0
                       else (batch, dirs, hidden))
        feeds = {"X": X, "W": W, "R": rand[2],
                 "B": (rng.standard_normal((dirs, 2 * gh)) * 0.5).astype(np.float32),
                 "initial_h": (rng.standard_normal(state_shape) * 0.5).astype(np.float32)}
        if node.op_type == "LSTM":
            feeds["initial_c"] = (rng.standard_normal(state_shape) * 0.5).astype(np.float32)
        twins = [("_random_initial_state", attrs)]
        if node.op_type == "GRU":  # Keras 3's default GRU (reset_after=True); no onnx case has it
            twins.append(("_random_linear_before_reset", dict(attrs, linear_before_reset=1)))
        for suffix, twin_attrs in twins:
            n = helper.make_node(node.op_type, ["X", "W", "R", "B", "", *list(feeds)[4:]],
                                 list(node.output), **twin_attrs)
            graph = helper.make_graph([n], f"{case.name}{suffix}",
                                      [helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, v.shape)
                                       for k, v in feeds.items()], list(case.model.graph.output))
            model = helper.make_model(graph, opset_imports=list(case.model.opset_import),
                                      ir_version=case.model.ir_version)
            expected = ReferenceEvaluator(model).run(None, feeds)
            out.append(_replace(case, name=f"{case.name}{suffix}", model=model,
                                data_sets=[(list(feeds.values()), expected)]))
    return out


def _node_attributes(model) -> dict:
    from onnx import helper

    node = model.graph.node[0]
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _NotKeras(Exception):
    """An ONNX case that no Keras layer computes (peepholes, clip, ...)."""


_KERAS_KIND = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def onnx_case_as_keras(case):
    """Express an ONNX LSTM/GRU/RNN node test case as a spec with Keras-layout weights: the
    inverse of rnncompile's weight conversion. Returns (spec, weights, feeds, to_onnx) where
    to_onnx maps the model's outputs (by name) to the node's outputs in ONNX layout. Raises
    _NotKeras for cases no Keras layer computes."""
    node = case.model.graph.node[0]
    op = node.op_type
    attrs = _node_attributes(case.model)
    inputs, _ = case.data_sets[0]
    present = [n for n in node.input if n]
    given = dict(zip(present, [np.asarray(a) for a in inputs]))

    def arg(k):
        return given.get(node.input[k]) if k < len(node.input) and node.input[k] else None

    X, W, R, B, L, H0 = (arg(k) for k in range(6))
    C0 = arg(6) if op == "LSTM" else None
    P = arg(7) if op == "LSTM" else None
    acts = attrs.get("activations")
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    if acts is not None and list(acts) != _DEFAULT_ACTS[op] * dirs:
        raise _NotKeras(f"activations {list(acts)}")
    if attrs.get("clip") is not None:
        raise _NotKeras("clip has no Keras equivalent")
    if attrs.get("input_forget"):
        raise _NotKeras("input_forget has no Keras equivalent")
    if P is not None and np.any(P):
        raise _NotKeras("peepholes (P) have no Keras equivalent")
    layout = int(attrs.get("layout", 0))
    x = np.asarray(X, np.float32)
    if layout == 0:
        x = x.transpose(1, 0, 2)  # [B, T, I]
    batch, steps, features = x.shape
    if L is not None and np.any(np.asarray(L) != steps):
        raise _NotKeras("sequence_lens shorter than the sequence (a Keras mask is per step)")
    hidden = int(attrs["hidden_size"])
    g = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]

    def keras_weights(d):
        w, r = np.asarray(W[d], np.float64), np.asarray(R[d], np.float64)
        b = np.asarray(B[d], np.float64) if B is not None else None
        if op == "LSTM":  # ONNX gates i, o, f, c -> Keras i, f, c, o
            def order(a, axis=0):
                i, o, f, c = np.split(a, 4, axis=axis)
                return np.concatenate([i, f, c, o], axis=axis)
            out = {"kernel": order(w).T, "recurrent_kernel": order(r).T}
            if b is not None:
                out["bias"] = order(b[:4 * hidden] + b[4 * hidden:])
        else:
            out = {"kernel": w.T, "recurrent_kernel": r.T}
            if b is not None:
                wb, rb = b[:g * hidden], b[g * hidden:]
                if op == "GRU" and attrs.get("linear_before_reset", 0):
                    out["bias"] = np.stack([wb, rb])
                else:  # ONNX adds Rbh outside the reset gate when linear_before_reset=0
                    out["bias"] = wb + rb
        return {k: v.astype(np.float32) for k, v in out.items()}

    cell: dict = {"class_name": _KERAS_KIND[op], "units": hidden, "return_sequences": True,
                  "return_state": True, "use_bias": B is not None}
    if op == "GRU":
        cell["reset_after"] = bool(attrs.get("linear_before_reset", 0))
    layers: list[dict] = [{"class_name": "Input", "name": "x", "shape": [None, features]}]
    feeds = {"x": x}
    init = []
    if H0 is not None or C0 is not None:
        h0 = np.asarray(H0 if H0 is not None else np.zeros((dirs, batch, hidden)), np.float32)
        c0 = np.asarray(C0 if C0 is not None else np.zeros((dirs, batch, hidden)), np.float32)
        if layout == 1:
            h0, c0 = h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
        for d in range(dirs):
            for sname, arr in (("h", h0), ("c", c0))[: 2 if op == "LSTM" else 1]:
                layers.append({"class_name": "Input", "name": f"{sname}0_{d}", "shape": [hidden]})
                feeds[f"{sname}0_{d}"] = arr[d]
                init.append(f"{sname}0_{d}")
    n_states = 2 if op == "LSTM" else 1
    if dirs == 2:
        layer = {"class_name": "Bidirectional", "name": "rnn", "layer": cell, "merge_mode": None,
                 "inputs": "x"}
        weights = {f"rnn/{side}/{k}": v for d, side in enumerate(("forward", "backward"))
                   for k, v in keras_weights(d).items()}
    else:
        layer = dict(cell, name="rnn", inputs="x")
        if attrs.get("direction") == "reverse":
            layer["go_backwards"] = True
        weights = {f"rnn/{k}": v for k, v in keras_weights(0).items()}
    if init:
        layer["initial_state"] = init
    layers.append(layer)
    spec = {"name": case.name, "layers": layers}

    def to_onnx(outs: dict, output_names: list[str]) -> dict:
        vals = [outs[n] for n in output_names]
        if dirs == 2:
            seqs, states = vals[:2], vals[2:]
            hs = [states[0], states[n_states]]
            cs = [states[1], states[n_states + 1]] if op == "LSTM" else []
        else:
            seq = vals[0][:, ::-1] if attrs.get("direction") == "reverse" else vals[0]
            seqs, hs, cs = [seq], [vals[1]], ([vals[2]] if op == "LSTM" else [])
        if layout == 0:
            y = np.stack([q.transpose(1, 0, 2) for q in seqs], axis=1)  # [T, dirs, B, H]
            yh, yc = np.stack(hs), (np.stack(cs) if cs else None)
        else:
            y = np.stack(seqs, axis=2)  # [B, T, dirs, H]
            yh, yc = np.stack(hs, axis=1), (np.stack(cs, axis=1) if cs else None)
        full = [y, yh, yc]
        return {name: full[k] for k, name in enumerate(node.output) if name}
    return spec, weights, feeds, to_onnx


def _keras_checks(case, tol, threads) -> tuple[list, str]:
    """The case as a Keras layer: rnncompile's reference and its built ONNX model (onnxruntime)
    against the ONNX outputs. Returns (results by comparison, note)."""
    from .lower import lower
    from .backends import default_factory
    from .backends.reference import ReferenceRunner
    from .spec import load_spec

    spec, weights, feeds, to_onnx = onnx_case_as_keras(case)
    model = load_spec(spec, weights=weights)
    lowered = lower(model)
    _, expected = case.data_sets[0]
    node = case.model.graph.node[0]
    want = dict(zip([n for n in node.output if n], [np.asarray(e) for e in expected]))
    checks = []
    for label, runner in (("rnncompile reference vs onnx", ReferenceRunner(model)),
                          ("rnncompile build (onnxruntime) vs onnx",
                           default_factory(threads)(lowered.model_bytes))):
        got = to_onnx(runner.run(dict(feeds)), model.output_names)
        checks.append((label, [compare(k, want[k], got[k], tol) for k in want]))
    layer = model.layers["rnn"]
    kind = (f"Bidirectional({layer.inner.class_name})" if hasattr(layer, "inner") else
            layer.class_name + (" go_backwards" if layer.config.get("go_backwards") else ""))
    return checks, f"as Keras {kind}"


def run_onnx_suite(threads: int = 1) -> SuiteResult:
    import onnxruntime as ort

    suite = SuiteResult("onnx", "ONNX operator conformance (LSTM, GRU, RNN)",
                        "outputs computed by the ONNX project's reference (onnx.backend.test.case.node)")
    t0 = time.perf_counter()
    tol = TOLERANCES[PRECISION]
    try:
        cases = onnx_node_cases()
        cases = cases + random_weight_variants(cases)
    except Exception as e:  # an onnx release that moved its test cases: a failure, not a pass
        suite.cases.append(CaseOutcome("generate the ONNX node test cases", "failed",
                                       detail=f"{type(e).__name__}: {e}"))
        suite.seconds = time.perf_counter() - t0
        return suite
    for case in cases:
        c0 = time.perf_counter()
        op = case.model.graph.node[0].op_type
        attrs = _node_attributes(case.model)
        label = f"{op}: {case.name}"
        errors: dict = {}
        notes: list[str] = []
        results = []
        status = "passed"
        # 1. the node as given, on onnxruntime
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # a refused model is reported here, not logged by onnxruntime
        opts.intra_op_num_threads = threads
        try:
            sess = ort.InferenceSession(case.model.SerializeToString(), sess_options=opts,
                                        providers=["CPUExecutionProvider"])
        except Exception as e:
            sess = None
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if attrs.get("layout") == 1:
                status = "unsupported"
                notes.append("unsupported by runtime: onnxruntime refuses layout=1 (batch-major) "
                             "for LSTM/GRU/RNN; rnncompile always emits layout=0 with Transposes "
                             "around the op")
            else:
                status = "failed"
                notes.append(f"onnxruntime cannot load it: {msg}")
        if sess is not None:
            ort_results = []
            for inputs, expected in case.data_sets:
                feeds = {i.name: np.asarray(a) for i, a in zip(sess.get_inputs(), inputs)}
                try:
                    got = sess.run(None, feeds)
                except Exception as e:
                    status = "failed"
                    notes.append(f"onnxruntime failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                    break
                for o, want, have in zip(sess.get_outputs(), expected, got):
                    ort_results.append(compare(o.name, np.asarray(want), have, tol))
            if ort_results:
                a, _, ok, first = _worst(ort_results)
                errors["onnxruntime vs onnx"] = a
                results += ort_results
                if not ok:
                    status = "failed"
                    notes.append(f"onnxruntime vs onnx: {first}")
        # 2. the same computation as a Keras layer through rnncompile
        try:
            checks, how = _keras_checks(case, tol, threads)
            for what, rs in checks:
                a, _, ok, first = _worst(rs)
                errors[what] = a
                results += rs
                if not ok:
                    status = "failed"
                    notes.append(f"{what}: {first}")
            notes.append(f"{how}: reference and build match" if all(
                r.passed for _, rs in checks for r in rs) else how)
        except _NotKeras as e:
            notes.append(f"no Keras equivalent ({e}): checked on onnxruntime only")
        except RnnCompileError as e:
            status = "failed"
            notes.append(f"as a Keras layer: {type(e).__name__}: {e}")
        abs_, rel, _, _ = _worst(results)
        detail = "; ".join(notes + [", ".join(f"{k}={v}" for k, v in attrs.items())])
        suite.cases.append(CaseOutcome(label, status, abs_ if results else None,
                                       rel if results else None, detail, errors,
                                       time.perf_counter() - c0))
    import onnx

    n_random = sum("_random_" in c.name for c in suite.cases)
    suite.notes.append(f"{len(suite.cases) - n_random} case(s) from onnx {onnx.__version__} and {n_random} "
                       f"twin(s) with random weights (`_random_weights`, `_random_initial_state`, "
                       f"`_random_linear_before_reset`: the "
                       f"originals mostly use constant weights, blind to gate order; their expected "
                       f"outputs come from onnx.reference). Each runs as given on onnxruntime and, where a Keras "
                       f"layer computes it, as that layer through rnncompile (Keras-layout "
                       f"weights: reference and built model). onnx's own check uses rtol=1e-3, "
                       f"atol=1e-7; this suite the float32 tolerance table")
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
    from .backends import default_factory
    from .backends.reference import ReferenceRunner
    from .runtime import Session

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
            ort_ = Session(default_factory(threads)(lowered.model_bytes), io)
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
        problems = [f"{what}: {p}" for what, p in (("reference vs keras", rp),
                                                    ("onnxruntime vs keras", op_)) if p]
        detail = f"{len(chunks)} chunk(s)"
        if set_ignore:
            detail += (f"; Keras drops the mask of {', '.join(set_ignore)} (called with "
                       f"initial_state): checked with ignore_mask=true there")
        suite.cases.append(CaseOutcome(
            d.name, "passed" if rok and ook else "failed", max(_num(ra), _num(oa)), max(rr, orr),
            "; ".join(problems) or detail, {"reference vs keras": ra, "onnxruntime vs keras": oa},
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
        cond = getattr(report, "conditioning", None)
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


# ---------------------------------------------------------------------------------------------


def run_conformance(examples: int = 200, seed: int = 0, goldens: str | Path | None = None,
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
