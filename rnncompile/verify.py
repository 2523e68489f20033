"""Verification: run a built artifact and the reference on the same seeded inputs (varied batch
sizes, lengths and padding patterns) and compare every output with explicit tolerances.

The tolerance table is the one place tolerances live. An element passes when
|actual - reference| <= atol + rtol * |reference|; a NaN anywhere fails."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import LayerContractError, Problem, RnnCompileError
from .io import ModelIO
from .inputs import input_infos, make_inputs  # also imported from here by build and others
from .backends import Runner, RunnerFactory
from .backends.reference import ReferenceRunner
from .runtime import Session
from .spec import Model


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


#: Per artifact precision. fp32 artifacts must be within 1e-5 of the float64 reference.
TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance(atol=1e-5, rtol=1e-5),
    "float16": Tolerance(atol=2e-2, rtol=2e-2),
    "bfloat16": Tolerance(atol=1e-1, rtol=5e-2),
    # a float64 runner (the reference itself, e.g. checking a plugin's reference twice)
    "float64": Tolerance(atol=1e-9, rtol=1e-9),
}

@dataclass
class OutputResult:
    name: str
    shape: list
    max_abs_error: float
    max_rel_error: float
    atol: float
    rtol: float
    passed: bool
    problem: str = ""


@dataclass
class CaseResult:
    name: str
    batch: int
    lengths: dict
    pattern: str
    chunk: int
    outputs: list[OutputResult]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)


@dataclass
class Report:
    runner: str
    reference: str
    precision: str
    tolerance: Tolerance
    cases: list[CaseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    def worst(self) -> dict[str, OutputResult]:
        worst: dict[str, OutputResult] = {}
        for c in self.cases:
            for o in c.outputs:
                w = worst.get(o.name)
                if w is None or (not o.passed and w.passed) or o.max_abs_error > w.max_abs_error:
                    worst[o.name] = o
        return worst

    def to_dict(self) -> dict:
        return {
            "verified": self.passed,
            "runner": self.runner,
            "reference": self.reference,
            "precision": self.precision,
            "tolerance": asdict(self.tolerance),
            "rule": "|actual - reference| <= atol + rtol * |reference| elementwise; NaN fails",
            "summary": {name: {"max_abs_error": o.max_abs_error, "max_rel_error": o.max_rel_error,
                               "passed": all(oo.passed for c in self.cases for oo in c.outputs
                                             if oo.name == name)}
                        for name, o in self.worst().items()},
            "cases": [dict(name=c.name, batch=c.batch, lengths=c.lengths, pattern=c.pattern,
                           chunk=c.chunk, passed=c.passed,
                           outputs=[asdict(o) for o in c.outputs]) for c in self.cases],
            "notes": self.notes,
        }


def compare(name: str, reference: np.ndarray, actual: np.ndarray, tol: Tolerance) -> OutputResult:
    ref = np.asarray(reference, np.float64)
    got = np.asarray(actual, np.float64)
    if ref.shape != got.shape:
        return OutputResult(name, list(got.shape), float("inf"), float("inf"), tol.atol, tol.rtol, False,
                            f"shape {got.shape}, reference {ref.shape}")
    nan = int(np.isnan(got).sum() + np.isnan(ref).sum())
    err = np.abs(got - ref)
    max_abs = float(np.nanmax(err)) if err.size else 0.0
    big = np.abs(ref) > tol.atol
    max_rel = float(np.nanmax(err[big] / np.abs(ref[big]))) if big.any() else 0.0
    ok = bool(np.all(err <= tol.atol + tol.rtol * np.abs(ref))) and nan == 0
    return OutputResult(name, list(got.shape), max_abs, max_rel, tol.atol, tol.rtol, ok,
                        f"{nan} NaN value(s)" if nan else "")


# ---------------------------------------------------------------------------------------------
# Seeded cases (inputs and padding patterns: rnncompile.inputs).


@dataclass
class Case:
    name: str
    batch: int
    lengths: dict
    pattern: str
    chunks: list[dict]  # one feed dict per call (several for stateful models)


def make_cases(model: Model, seed: int = 0) -> tuple[list[Case], list[str]]:
    """Seeded cases: batch sizes 1 and 4 (or the fixed batch), a long and a one-step sequence,
    every padding pattern when the model masks. Returns (cases, notes)."""
    rng = np.random.default_rng(seed)
    infos = input_infos(model)
    notes = []
    masked = any(i.masked for i in infos)
    fixed_batch = next((model.input_type(n).shape[0] for n in model.inputs
                        if model.input_type(n).shape[0] is not None), None)
    patterns = ["none"]
    if masked:
        patterns = ["none", "right", "left", "gaps", "mixed"]
        blockers = [l for l in model.layers.values() if not l.defined_for_empty_rows]
        if blockers:
            notes.append("fully masked rows are not generated: " + ", ".join(
                f"{l.class_name} {l.name!r}" for l in blockers) + " is undefined there in Keras (0/0)")
            patterns = [p for p in patterns if p != "mixed"]
        else:
            patterns.append("empty")
    chunks = 3 if model.states else 1
    cases = []

    # inputs get different lengths (seq2seq), unless a layer merges sequences step by step
    # (`equal_lengths()`, e.g. a feature-axis Concatenate): then every input gets the same.
    spread = 0 if any(l.equal_lengths() for l in model.layers.values()) else 2
    # windows over time (valid Conv1D, pooling) need a few steps: `min_steps()` of each, multiplied
    # (a bound for stacks of them)
    shortest = 1
    for l in model.layers.values():
        shortest = min(shortest * l.min_steps(), 64)

    def lengths_for(t: int) -> dict[str, int]:
        out = {}
        for k, info in enumerate(infos):
            fixed = info.shape[0] if info.shape and info.dtype != "string" else None   # text: words, below
            out[info.name] = fixed if fixed is not None else max(shortest, t + spread * k)
        return out

    plan = [(fixed_batch or 1, 9, "none"), (fixed_batch or 4, 1, patterns[-1])]
    plan += [(fixed_batch or 3, 7, p) for p in patterns]
    for batch, t, pattern in plan:
        lengths = lengths_for(t)
        feeds = [make_inputs(infos, batch, lengths, pattern, rng) for _ in range(chunks)]
        name = f"batch{batch}_" + "_".join(f"{k}{v}" for k, v in lengths.items()) + f"_{pattern}"
        cases.append(Case(name, batch, lengths, pattern, feeds))
    if model.states:
        notes.append(f"stateful: each case feeds {chunks} consecutive chunks and compares outputs "
                     "and carried states after every chunk")
    return cases, notes


# ---------------------------------------------------------------------------------------------


def verify(model: Model, runner: Runner, io: ModelIO, precision: str | None = None, seed: int = 0,
           cases: list[Case] | None = None) -> Report:
    """Compare `runner` with the reference on seeded cases (or the given ones), with the
    tolerance row of `precision` (default: the precision the runner computes in)."""
    precision = precision or runner.precision
    tol = TOLERANCES[precision]
    notes: list[str] = []
    if cases is None:
        cases, notes = make_cases(model, seed)
    report = Report(runner.name, ReferenceRunner.name, precision, tol, notes=notes)
    for case in cases:
        for k, results in run_and_compare(Session(ReferenceRunner(model), io), Session(runner, io),
                                          case.chunks, tol):
            report.cases.append(CaseResult(case.name, case.batch, case.lengths, case.pattern, k, results))
    return report


def compare_all(want: dict[str, np.ndarray], got: dict[str, np.ndarray], tol: Tolerance) -> list[OutputResult]:
    """Every output of `want` against the same name in `got` (a missing one fails)."""
    return [compare(name, want[name], got.get(name, np.array([])), tol) for name in want]


def run_and_compare(oracle: Session | list[dict], subject: Session, chunks: list[dict],
                    tol: Tolerance):
    """The one run-and-compare loop: feed `chunks` one after another to `subject` and compare
    each call's outputs with `oracle`'s: a Session run alongside (carried states compared too),
    or the expected outputs of each chunk (e.g. Keras's, from a golden case). Yields (chunk
    index, [OutputResult]); a call that fails with an input or runtime error gives one failing
    result named "*" (a layer that breaks its own contract raises)."""
    for k, feeds in enumerate(chunks):
        try:
            want = oracle.run(dict(feeds)) if isinstance(oracle, Session) else oracle[k]
            got = subject.run(dict(feeds))
        except LayerContractError:
            raise  # a layer kind broke its own contract: that is the error, not a case result
        except RnnCompileError as e:
            yield k, [OutputResult("*", [], float("inf"), float("inf"), tol.atol, tol.rtol, False, str(e))]
            continue
        results = compare_all(want, got, tol)
        if isinstance(oracle, Session):
            for s in subject.states_spec:
                results.append(compare(s.output, oracle.states[s.input], subject.states[s.input], tol))
        yield k, results


# ---------------------------------------------------------------------------------------------
# Localizing a failed verification to the layer whose lowering disagrees with its reference.


def _close(ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> tuple[bool, float]:
    """Elementwise tolerance check where NaN matches only NaN (an intermediate value may be NaN in
    both, e.g. a fully masked row of GlobalAveragePooling1D that later layers never see)."""
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    both_nan = np.isnan(ref) & np.isnan(got)
    with np.errstate(invalid="ignore"):
        err = np.where(both_nan, 0.0, np.abs(got - ref))
        same_inf = np.isinf(ref) & (ref == got)
        err = np.where(same_inf, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
    ok = bool(np.all(err <= tol.atol + tol.rtol * np.where(np.isfinite(ref), np.abs(ref), 0.0)))
    return ok, float(err.max()) if err.size else 0.0


def _first_disagreement(model: Model, trace: dict, got: dict, exposed: dict, tol: Tolerance,
                        case: str) -> Problem | None:
    for layer in model.layers.values():
        if layer.name not in exposed:
            continue
        where = f"layer {layer.name!r} ({layer.class_name})"
        outs = trace[layer.name]
        for i, ((value, mask), rule) in enumerate(zip(exposed[layer.name], layer.output_types_)):
            ref, act = outs[i], np.asarray(got[value])
            shape_bad = act.ndim != rule.rank or any(w is not None and d != w for d, w in zip(act.shape, rule.shape))
            if shape_bad or act.shape != np.shape(ref.data):
                return Problem(where, f"lowering of output {i} produced shape {act.shape} at run time; "
                                      f"its shape rule says {rule} and its reference gave "
                                      f"{np.shape(ref.data)} (case {case})")
            if mask is not None and ref.mask is not None:
                m = np.asarray(got[mask])
                if m.shape != np.shape(ref.mask):
                    return Problem(where, f"lowering of output {i} produced a mask of shape {m.shape}; "
                                          f"its reference's mask is {np.shape(ref.mask)} (case {case})")
                differ = int(np.count_nonzero(m.astype(bool) != ref.mask))
                if differ:
                    return Problem(where, f"lowering disagrees with its reference: output {i}'s mask "
                                          f"differs at {differ} of {m.size} step(s) (case {case})")
            if act.dtype.kind == "f" or np.asarray(ref.data).dtype.kind == "f":
                ok, err = _close(ref.data, act, tol)
            else:
                err = float(np.abs(act.astype(np.int64) - np.asarray(ref.data, np.int64)).max(initial=0))
                ok = err == 0
            if not ok:
                return Problem(where, f"lowering disagrees with its reference: output {i} "
                                      f"({layer.output_names()[i]}) max abs err {err:.3e} "
                                      f"(atol {tol.atol:g}, rtol {tol.rtol:g}; case {case})")
        n = len(layer.output_types_)
        for s, ref in zip([s for s in model.states if s.layer == layer.name], outs[n:]):
            ok, err = _close(ref.data, got[s.output_name], tol)
            if not ok:
                return Problem(where, f"lowering disagrees with its reference: carried state "
                                      f"{s.suffix} max abs err {err:.3e} (case {case})")
    return None


def localize(model: Model, report: Report, make_runner: RunnerFactory, target=None,
             seed: int = 0) -> Problem | None:
    """After a failed verification: rebuild the failing cases, run a debug lowering that exposes
    every layer's outputs next to the reference's per-layer values, and name the first layer whose
    lowering disagrees with its own reference (values, mask, or run-time shape). Layers are checked
    in model order, so every layer upstream of the one named agrees within tolerance: the error
    starts there. When the debug graph fails to run, graphs of growing prefixes of the model find
    the first layer that fails or disagrees. None when every layer agrees within tolerance (the
    error then only builds up across layers). The debug graphs are lowered for the `target` the
    artifact was built for and run on runners `make_runner` makes: the runtime that failed."""
    from .lower import host_layers, lower
    from .reference import run_reference

    failed = [c.name for c in report.cases if not c.passed]
    if not failed:
        return None
    cases, _ = make_cases(model, seed)
    cases = [c for c in cases if c.name in failed]
    tol = TOLERANCES[report.precision]
    debug = lower(model, target, expose_layers=True)
    runner = make_runner(debug.model_bytes)
    for case in cases:
        states: dict[str, np.ndarray] = {}
        for k, feeds in enumerate(case.chunks):
            full = dict(feeds)
            for s in model.states:
                full[s.input_name] = states.get(s.input_name, np.zeros((case.batch, *s.shape), np.float32))
            trace: dict = {}
            try:
                _, new_states = run_reference(model, dict(feeds), {s.input_name: full[s.input_name]
                                                                   for s in model.states}, trace=trace)
            except LayerContractError:
                raise
            except RnnCompileError:
                continue
            name = case.name if len(case.chunks) == 1 else f"{case.name} chunk {k}"
            for host in host_layers(model, target):   # a host tokenizer's ids are graph inputs
                full[host] = np.asarray(trace[host][0].data)
            takes = {i.name for i in runner.inputs}
            full = {n: v for n, v in full.items() if n in takes}
            try:
                got = runner.run(full)
            except RnnCompileError:
                problem = _localize_by_prefixes(model, trace, full, tol, name, make_runner, target)
            else:
                problem = _first_disagreement(model, trace, got, debug.layer_outputs, tol, name)
            if problem is not None:
                return problem
            # later chunks start from the reference's states, so each chunk is judged on its own
            states = {n: v.astype(np.float32) for n, v in new_states.items()}
    return None


def _localize_by_prefixes(model: Model, trace: dict, feeds: dict, tol: Tolerance, case: str,
                          make_runner: RunnerFactory, target) -> Problem | None:
    """The full debug graph fails at run time: run the layers up to each one in turn."""
    from .lower import lower

    from .lower import host_layers

    host = set(host_layers(model, target))
    for layer in model.layers.values():
        if layer.is_model_input or layer.name in host:
            continue
        prefix = lower(model, target, stop_after=layer.name)
        runner = make_runner(prefix.model_bytes)
        wanted = {i["name"] for i in prefix.io["inputs"]}
        try:
            got = runner.run({k: v for k, v in feeds.items() if k in wanted})
        except RnnCompileError as e:
            return Problem(f"layer {layer.name!r} ({layer.class_name})",
                           f"lowering fails at run time (case {case}): {e.problems[0].message}")
        problem = _first_disagreement(model, trace, got, prefix.layer_outputs, tol, case)
        if problem is not None:
            return problem
    return None


# ---------------------------------------------------------------------------------------------
# Diagnosing a failure: is it the model (float32 cannot represent it) or the artifact?


class Conditioning:
    """Whether a verification failure is explained by float32 rounding: the reference rerun with
    its weights and float inputs perturbed by relative float32 rounding noise (2^-24) moves by
    `sensitivity` (the largest such move, per failing output); a failure whose error is within
    `factor` times that is ill-conditioned (the model amplifies rounding; float32 cannot be
    verified to the tolerance), not a compiler bug."""

    factor = 30.0

    def __init__(self, explained: list[tuple[str, float, float]]):
        self.items = explained  # (case/chunk/output, error, sensitivity)

    @property
    def ill_conditioned(self) -> bool:
        return bool(self.items) and all(s > 0 and e <= self.factor * s for _, e, s in self.items)

    @property
    def text(self) -> str:
        worst = max(self.items, key=lambda t: t[1])
        return (f"ill-conditioned: float32 rounding of the weights and inputs alone moves the "
                f"reference by up to {worst[2]:.2e} where onnxruntime differs by {worst[1]:.2e} "
                f"({worst[0]})")


def conditioning(model, io: ModelIO, cases: list, report, seed: int = 0, trials: int = 3) -> Conditioning:
    """Sensitivity of the reference to float32-level perturbations, on the failing cases."""
    from .backends.reference import ReferenceRunner

    failing: dict[tuple[str, int], list] = {}
    for c in report.cases:
        for o in c.outputs:
            if not o.passed:
                failing.setdefault((c.name, c.chunk), []).append(o)
    by_name = {c.name: c for c in cases}
    rng = np.random.default_rng(seed)
    weights = model.weights
    items = []

    def run(case, w, noise):
        model.weights = w
        try:
            sess = Session(ReferenceRunner(model), io)
            outs = []
            for feeds in case.chunks:
                feeds = {k: (v * (1 + noise * rng.standard_normal(v.shape))).astype(v.dtype)
                         if v.dtype.kind == "f" else v for k, v in feeds.items()}
                r = sess.run(feeds)
                r.update({s.output: v for s, v in zip(io.states,
                                                          sess.states.values())})
                outs.append(r)
            return outs
        finally:
            model.weights = weights

    for (cname, chunk), outs in failing.items():
        case = by_name.get(cname)
        if case is None or any(o.name == "*" for o in outs):
            items.append((f"{cname}", float("inf"), 0.0))
            continue
        base = run(case, weights, 0.0)
        sens = {o.name: 0.0 for o in outs}
        for _ in range(trials):
            w = {k: (v.astype(np.float64) * (1 + 2.0 ** -24 * rng.standard_normal(v.shape)))
                 for k, v in weights.items()}
            moved = run(case, w, 2.0 ** -24)
            for o in outs:
                if o.name in moved[chunk] and o.name in base[chunk]:
                    with np.errstate(invalid="ignore"):
                        d = np.abs(np.asarray(moved[chunk][o.name], np.float64)
                                   - np.asarray(base[chunk][o.name], np.float64))
                    sens[o.name] = max(sens[o.name], float(np.nanmax(d)) if d.size else 0.0)
        for o in outs:
            err = o.max_abs_error if not o.problem else float("inf")
            items.append((f"case {cname} chunk {chunk} output {o.name}", err, sens[o.name]))
    return Conditioning(items)


def render(report: Report) -> str:
    """A readable table of the worst error per output."""
    lines = [f"{report.runner} vs {report.reference}, {report.precision}: "
             f"atol={report.tolerance.atol:g} rtol={report.tolerance.rtol:g}, {len(report.cases)} case(s)"]
    width = max([len(n) for n in report.worst()] + [6])
    lines.append(f"  {'output':<{width}}  {'max abs err':>12}  {'max rel err':>12}  result")
    for name, o in report.worst().items():
        ok = all(oo.passed for c in report.cases for oo in c.outputs if oo.name == name)
        lines.append(f"  {name:<{width}}  {o.max_abs_error:12.3e}  {o.max_rel_error:12.3e}  "
                     f"{'pass' if ok else 'FAIL'}{'  ' + o.problem if o.problem else ''}")
    for c in report.cases:
        for o in c.outputs:
            if not o.passed:
                lines.append(f"  failed: case {c.name} chunk {c.chunk} output {o.name}: "
                             f"max abs err {o.max_abs_error:.3e}{' ' + o.problem if o.problem else ''}")
    for n in report.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)
