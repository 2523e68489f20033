"""`rnncompile audit`: is someone else's ONNX model (any converter's export, any hand-written
graph) right on the inputs it will see? It is run, through the backends' runner factory, next to
the float64 reference of the model it claims to implement (a spec or a Keras file), on every input
pattern the verifier knows plus the ones converters get wrong: no padding, right, left, gaps,
fully masked rows, batch 1 and odd batches, T = 1, a long T, T and batch varied independently (so
that a length or batch baked in at export shows as such), the model's own declared T and batch,
and for stateful sources with state inputs, consecutive chunks with carried state.

Inputs and outputs are paired by `--map their=ours`, then by name, then by order; token ids and
floats are cast where the values survive the cast. The verdict is a table per pattern and output
and one sentence per failure class (audit_verdict.py)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..backends import RunnerFactory, runner_factory as backend_factory
from ..backends.reference import ReferenceRunner
from ..errors import InputError, ModelFileError, Problem, RnnCompileError
from ..spec import Model
# The verifier's public pieces used here, in one place (a rename upstream is a one-line fix).
from ..verify import TOLERANCES, compare, input_infos, make_cases, make_inputs

#: Extra cases beyond the verifier's (batch, T, pattern): T and batch varied independently, so a
#: failure at one length or batch is not confounded with the other; a long T; odd batches.
EXTRA_PLAN = ((1, 13, "none"), (3, 9, "none"), (2, 41, "none"), (5, 41, "richest"))
MAX_MODEL_BYTES = 2 * 1024 ** 3  # protobuf's own limit
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


# ---------------------------------------------------------------------------------------------
# Pairing their inputs and outputs with ours.


@dataclass
class Pair:
    ours: str
    theirs: str
    how: str  # "--map", "name" or "order"
    dtype: str  # the audited model's element type
    lead_axis: bool = False  # theirs has an extra leading axis of 1 (torch's [layers, batch, units])


@dataclass
class Mapping:
    inputs: list[Pair]  # data inputs, then carried-state inputs
    outputs: list[Pair]  # outputs, then carried-state outputs
    states: list[tuple[str, str]] = field(default_factory=list)  # (their state in, their state out)
    ignored: list[str] = field(default_factory=list)  # their outputs without a counterpart
    notes: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    """Name as converters mangle it: tf2onnx's ':0', case, punctuation."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r":\d+$", "", name.lower()))


def _match(ours: list[str], theirs: list[str], explicit: dict[str, str]):
    """{ours: (theirs, how)}, by explicit map, exact name, normalized name, then order."""
    pairs: dict[str, tuple[str, str]] = {}
    left = list(theirs)
    for t, o in explicit.items():
        if t in left and o in ours and o not in pairs:
            pairs[o] = (t, "--map")
            left.remove(t)
    for key in (lambda s: s, _norm):
        for o in ours:
            hits = [t for t in left if key(t) == key(o)]
            if o not in pairs and len(hits) == 1:
                pairs[o] = (hits[0], "name")
                left.remove(hits[0])
    for o, t in zip([o for o in ours if o not in pairs], list(left)):
        pairs[o] = (t, "order")
        left.remove(t)
    return pairs, left


def _shape_text(shape) -> str:
    return "[" + ", ".join("?" if not isinstance(d, int) else str(d) for d in shape) + "]"


def _fit(what: str, ours: str, our_shape, our_dtype: str, theirs: str, their_shape,
         their_dtype: str) -> tuple[bool, str | None]:
    """(lead_axis, problem): whether their tensor can stand for ours."""
    lead = (their_shape is not None and len(their_shape) == len(our_shape) + 1
            and their_shape[0] == 1)
    shape = their_shape[1:] if lead else their_shape
    try:
        kind = np.dtype(their_dtype).kind
    except TypeError:
        return lead, f"{what} {theirs!r} has element type {their_dtype}, which NumPy cannot feed"
    if kind not in ("fiu" if np.dtype(our_dtype).kind in "iu" else "f"):
        return lead, (f"{what} {theirs!r} is {their_dtype}; SOURCE's {ours!r} is {our_dtype} "
                      "(no lossless cast)")
    if shape is not None and len(shape) != len(our_shape):
        return lead, (f"{what} {theirs!r} has shape {_shape_text(their_shape)}; SOURCE's {ours!r} "
                      f"has {_shape_text(our_shape)} (rank differs)")
    for axis, (d, w) in enumerate(zip(shape or (), our_shape)):
        if axis > 0 and isinstance(d, int) and isinstance(w, int) and d > 0 and d != w:
            return lead, (f"{what} {theirs!r} has {d} on axis {axis}; SOURCE's {ours!r} has {w} "
                          f"({_shape_text(their_shape)} vs {_shape_text(our_shape)})")
    return lead, None


def parse_maps(items) -> dict[str, str]:
    """`--map their=ours` flags -> {their: ours}."""
    out = {}
    for item in items:
        their, sep, ours = item.partition("=")
        if not sep or not their or not ours:
            raise InputError(f"expected THEIRS=OURS (a name in the audited model = a name in "
                             f"SOURCE), got {item!r}", where="--map")
        out[their] = ours
    return out


def _pairs(what: str, wanted: list[str], matched: dict, ours: dict, theirs: dict, where: str,
           problems: list[Problem]) -> list[Pair]:
    """The Pairs of `wanted` (SOURCE's names) from `_match`'s result; problems for those that are
    unpaired or do not fit."""
    pairs = []
    for o in wanted:
        if o not in matched:
            problems.append(Problem(where, f"SOURCE's {what} {o!r} has no counterpart in the audited "
                                           f"model (its {what}s: {', '.join(theirs)}); pass --map THEIRS={o}"))
            continue
        t, how = matched[o]
        lead, bad = _fit(what, o, *ours[o], t, *theirs[t])
        if bad:
            problems.append(Problem(where, bad))
        pairs.append(Pair(o, t, how, theirs[t][1], lead))
    return pairs


def map_io(model: Model, their_inputs: list, their_outputs: list, explicit: dict[str, str],
           where: str) -> Mapping:
    """Pair the audited model's inputs and outputs with SOURCE's. `their_inputs` are InputMeta,
    `their_outputs` dicts {name, dtype, shape} (shape None when undeclared). Raises InputError
    naming every tensor that cannot be paired."""
    our_in = {n: (model.input_type(n).shape, model.input_type(n).dtype) for n in model.inputs}
    our_in.update({s.input_name: ((None, *s.shape), "float32") for s in model.states})
    our_out = {model.output_name(r): (model.output_type(r).shape, "float32") for r in model.outputs}
    our_out.update({s.output_name: ((None, *s.shape), "float32") for s in model.states})
    t_in = {m.name: (m.shape, m.dtype) for m in their_inputs}
    t_out = {o["name"]: (o["shape"], o["dtype"]) for o in their_outputs}
    problems = [Problem("--map", f"{t!r} is neither an input nor an output of the audited model "
                                 f"(its inputs: {', '.join(t_in)}; outputs: {', '.join(t_out)})")
                for t in explicit if t not in t_in and t not in t_out]
    problems += [Problem("--map", f"{o!r} is neither an input nor an output of SOURCE (its inputs: "
                                  f"{', '.join(our_in)}; outputs: {', '.join(our_out)})")
                 for o in explicit.values() if o not in our_in and o not in our_out]
    if problems:
        raise InputError(problems)
    pin, left_in = _match(list(our_in), list(t_in), explicit)
    mapping = Mapping([], [])
    state_ins = [s.input_name for s in model.states]
    mapped_states = [s for s in state_ins if s in pin]
    stateless = bool(model.states) and not mapped_states
    if stateless:
        mapping.notes.append("SOURCE is stateful but the audited model has no state inputs: only "
                             "single calls from zero state are compared")
    mapping.inputs = _pairs("input", model.inputs + ([] if stateless else state_ins), pin, our_in,
                            t_in, where, problems)
    problems += [Problem(where, f"input {t!r} of the audited model has no counterpart in SOURCE "
                                f"(SOURCE's inputs: {', '.join(our_in)}); pass --map {t}=OURS")
                 for t in left_in]
    wanted = [n for n in our_out if not stateless or n not in {s.output_name for s in model.states}]
    pout, mapping.ignored = _match(wanted, list(t_out), explicit)
    mapping.outputs = _pairs("output", wanted, pout, our_out, t_out, where, problems)
    if problems:
        raise InputError(problems)
    by_ours = {p.ours: p.theirs for p in mapping.outputs}
    mapping.states = [(pin[s.input_name][0], by_ours[s.output_name]) for s in model.states
                      if not stateless]
    if mapping.ignored:
        mapping.notes.append(f"outputs of the audited model not compared (no counterpart in "
                             f"SOURCE): {', '.join(mapping.ignored)}")
    return mapping


# ---------------------------------------------------------------------------------------------
# Cases: the verifier's, plus T and batch varied independently and the model's declared sizes.


@dataclass
class AuditCase:
    name: str
    batch: int
    lengths: dict
    pattern: str
    chunks: list[dict]  # SOURCE's feeds, one dict per call


def _declared(mapping: Mapping, their_inputs: list, model: Model) -> tuple[int | None, int | None]:
    """(batch, T) the audited model fixes on its data inputs, if any."""
    shapes = {m.name: m.shape for m in their_inputs}
    data = [p for p in mapping.inputs if p.ours in model.inputs]
    batch = next((shapes[p.theirs][p.lead_axis] for p in data
                  if isinstance(shapes[p.theirs][p.lead_axis], int)), None)
    seq = [p for p in data if len(model.input_type(p.ours).shape) >= 3
           or (len(model.input_type(p.ours).shape) == 2 and model.input_type(p.ours).dtype.startswith("int"))]
    steps = next((shapes[p.theirs][1 + p.lead_axis] for p in seq
                  if isinstance(shapes[p.theirs][1 + p.lead_axis], int)), None)
    return batch, steps


def make_audit_cases(model: Model, seed: int, declared: tuple[int | None, int | None]
                     ) -> tuple[list[AuditCase], list[str]]:
    base, notes = make_cases(model, seed)
    cases = [AuditCase(c.name, c.batch, dict(c.lengths), c.pattern, c.chunks) for c in base]
    patterns = list(dict.fromkeys(c.pattern for c in base))
    fixed_batch = next((model.input_type(n).shape[0] for n in model.inputs
                        if model.input_type(n).shape[0] is not None), None)
    richest = "mixed" if "mixed" in patterns else patterns[-1]  # every row pattern in one batch
    plan = [(b, t, richest if p == "richest" else p) for b, t, p in EXTRA_PLAN]
    d_batch, d_steps = declared
    if d_steps:
        plan += [(d_batch or 3, d_steps, p) for p in patterns]
    if d_batch:
        plan += [(d_batch, 7, p) for p in patterns] + [(d_batch, 13, "none")]
    rng = np.random.default_rng(seed + 1)
    seen = {c.name for c in cases}
    for batch, t, pattern in plan:
        case = one_case(model, fixed_batch or batch, t, pattern, rng, len(base[0].chunks))
        if case.name not in seen:
            seen.add(case.name)
            cases.append(case)
    return cases, notes


def one_case(model: Model, batch: int, t: int, pattern: str, rng: np.random.Generator,
             chunks: int = 1) -> AuditCase:
    """A case of `chunks` calls at batch and T (the k-th input gets T + 2k steps, as in the
    verifier; fixed lengths stay)."""
    infos = input_infos(model)
    lengths = {}
    for k, info in enumerate(infos):
        fixed = info.shape[0] if info.shape else None
        lengths[info.name] = fixed if fixed is not None else max(1, t + 2 * k)
    name = f"batch{batch}_" + "_".join(f"{k}{v}" for k, v in lengths.items()) + f"_{pattern}"
    return AuditCase(name, batch, lengths, pattern,
                     [make_inputs(infos, batch, lengths, pattern, rng) for _ in range(chunks)])


def cast_feeds(cases: list[AuditCase], mapping: Mapping, notes: list[str]) -> None:
    """Make every feed representable in the audited model's input types: exact casts are kept;
    floats that a narrower float type rounds are rounded for both sides; anything else is refused."""
    for case in cases:
        for feeds in case.chunks:
            for p in mapping.inputs:
                x = feeds.get(p.ours)
                if x is None:
                    continue
                back = x.astype(p.dtype).astype(x.dtype)
                if np.array_equal(back, x):
                    continue
                if x.dtype.kind == "f" and np.dtype(p.dtype).kind == "f":
                    feeds[p.ours] = back
                    note = (f"input {p.ours!r}: values rounded to the audited model's {p.dtype} "
                            "for both sides")
                    if note not in notes:
                        notes.append(note)
                    continue
                raise InputError(f"SOURCE's {x.dtype} values (case {case.name}) do not fit the "
                                 f"audited model's {p.dtype} input {p.theirs!r}", where=f"input {p.ours!r}")


# ---------------------------------------------------------------------------------------------
# Running and comparing.


@dataclass
class Check:
    """One output of one call, compared with the reference."""

    output: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst: list[int] | None  # index of the largest error (NaN counts as infinite)
    problem: str
    shape: list
    reference_shape: list
    rows: list = field(default_factory=list, repr=False)  # per row: (failed, max error, index)


@dataclass
class Outcome:
    """One call (chunk) of one case."""

    case: str
    batch: int
    lengths: dict
    pattern: str
    chunk: int
    row_kinds: list[str]
    error: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def steps(self) -> int | None:
        return next(iter(self.lengths.values()), None)

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.checks)


def check_output(name: str, ref: np.ndarray, got: np.ndarray, tol) -> Check:
    r = compare(name, ref, got, tol)
    ref64, got64 = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    c = Check(name, r.passed, r.max_abs_error, r.max_rel_error, None, r.problem, list(got64.shape),
              list(ref64.shape))
    if ref64.shape != got64.shape or not ref64.size:
        return c
    with np.errstate(invalid="ignore"):
        err = np.where(np.isnan(got64) | np.isnan(ref64), np.inf, np.abs(got64 - ref64))
        bad = err > tol.atol + tol.rtol * np.abs(ref64)
    c.worst = [int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)]
    if err.ndim >= 1:
        for b in range(err.shape[0]):
            k = int(np.argmax(err[b]))
            c.rows.append((bool(bad[b].any()), float(err[b].flat[k]),
                           [b, *(int(i) for i in np.unravel_index(k, err[b].shape))]))
    return c


def row_kinds(model: Model, feeds: dict, batch: int) -> list[str]:
    """Padding of each row, read from the data: unpadded, right-padded, left-padded, gaps, empty."""
    info = next((i for i in input_infos(model) if i.pad_value is not None and len(i.shape) >= 1), None)
    if info is None:
        return ["unpadded"] * batch
    x = np.asarray(feeds[info.name])
    valid = ~np.all((x == info.pad_value).reshape(x.shape[0], x.shape[1], -1), axis=-1)
    kinds = []
    for row in valid:
        n = int(row.sum())
        kinds.append("unpadded" if n == row.size else "empty" if n == 0 else
                     "right" if row[:n].all() else "left" if row[-n:].all() else "gaps")
    return kinds


def _theirs(x: np.ndarray, p: Pair) -> np.ndarray:
    x = x.astype(p.dtype)
    return x[None] if p.lead_axis else x


def run_case(case: AuditCase, model: Model, runner, mapping: Mapping, tol) -> list[Outcome]:
    ref = ReferenceRunner(model)
    ours_state = {s.input_name: np.zeros((case.batch, *s.shape), np.float32) for s in model.states}
    state_pairs = [p for p in mapping.inputs if p.ours in ours_state]
    theirs_state = {p.theirs: _theirs(ours_state[p.ours], p) for p in state_pairs}
    outcomes = []
    for k, feeds in enumerate(case.chunks[:len(case.chunks) if mapping.states else 1]):
        out = Outcome(case.name, case.batch, case.lengths, case.pattern, k,
                      row_kinds(model, feeds, case.batch))
        outcomes.append(out)
        want = ref.run({**feeds, **ours_state})
        try:
            got = runner.run({**{p.theirs: _theirs(feeds[p.ours], p) for p in mapping.inputs
                                 if p.ours in feeds}, **theirs_state})
        except RnnCompileError as e:
            out.error = e.problems[0].message[:400]
            break  # a refused call carries no state on
        for p in mapping.outputs:
            value = np.asarray(got[p.theirs])
            out.checks.append(check_output(p.ours, want[p.ours], value[0] if p.lead_axis else value, tol))
        ours_state = {s.input_name: want[s.output_name] for s in model.states}
        theirs_state = {t_in: got[t_out] for t_in, t_out in mapping.states}
    return outcomes


# ---------------------------------------------------------------------------------------------
# The audit.


@dataclass
class AuditResult:
    model_path: str
    source: str
    runner: str
    precision: str
    tolerance: dict
    mapping: Mapping
    outcomes: list[Outcome]
    findings: list  # audit_verdict.Finding
    notes: list[str]
    bench: dict | None = None

    @property
    def conforms(self) -> bool:
        return bool(self.outcomes) and all(o.passed for o in self.outcomes)

    def table(self) -> list[dict]:
        """One row per pattern and output: cases passed, worst errors, worst element."""
        rows: dict[tuple[str, str], dict] = {}
        names = [p.ours for p in self.mapping.outputs]
        for o in self.outcomes:
            for name in names:
                c = next((c for c in o.checks if c.output == name), None)
                r = rows.setdefault((o.pattern, name), {
                    "pattern": o.pattern, "output": name, "calls": 0, "passed": 0, "refused": 0,
                    "max_abs_error": 0.0, "max_rel_error": 0.0, "worst": None})
                r["calls"] += 1
                if c is None:
                    r["refused"] += 1
                    continue
                r["passed"] += c.passed
                if c.max_abs_error >= r["max_abs_error"] and (c.max_abs_error > 0 or r["worst"] is None):
                    r["worst"] = {"case": o.case, "chunk": o.chunk, "index": c.worst,
                                  "problem": c.problem}
                r["max_abs_error"] = max(r["max_abs_error"], c.max_abs_error)
                r["max_rel_error"] = max(r["max_rel_error"], c.max_rel_error)
        return list(rows.values())

    def to_dict(self) -> dict:
        return {
            "conforms": self.conforms,
            "model": self.model_path, "source": self.source, "runner": self.runner,
            "precision": self.precision, "tolerance": self.tolerance,
            "rule": "|actual - reference| <= atol + rtol * |reference| elementwise; NaN fails",
            "mapping": {"inputs": [asdict(p) for p in self.mapping.inputs],
                        "outputs": [asdict(p) for p in self.mapping.outputs],
                        "states": [list(s) for s in self.mapping.states],
                        "ignored_outputs": self.mapping.ignored},
            "findings": [asdict(f) for f in self.findings],
            "table": self.table(),
            "calls": [{**{k: v for k, v in asdict(o).items() if k != "checks"},
                       "passed": o.passed,
                       "checks": [{k: v for k, v in asdict(c).items() if k != "rows"} for c in o.checks]}
                      for o in self.outcomes],
            "notes": self.notes,
            "bench": self.bench,
        }


def _read_model(path: Path) -> bytes:
    if not path.is_file():
        raise ModelFileError("file not found", where=str(path))
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError("larger than 2 GiB, the most an ONNX file can hold", where=str(path))
    return path.read_bytes()


def _declared_outputs(data: bytes, where: str) -> list[dict]:
    from ..onnx_graph import describe

    try:
        outputs = describe(data)["outputs"]
    except Exception as e:  # protobuf's decode errors have no common base worth naming
        raise ModelFileError(f"not a loadable ONNX model: {type(e).__name__}: {e}", where=where) from None
    # an output declared without a shape has no rank to check ([] would read as a scalar)
    return [dict(o, shape=o["shape"] or None) for o in outputs]


def audit(model_path: str | Path, source: str | Path, maps: dict[str, str] | None = None,
          seed: int = 0, precision: str | None = None, bench: bool = False,
          threads: int | None = None, runner_factory: RunnerFactory | None = None) -> AuditResult:
    """Audit the ONNX file `model_path` against SOURCE (spec or Keras file). Raises InputError
    (exit 2) when the model does not load or its inputs/outputs cannot be paired with SOURCE's."""
    from .audit_verdict import diagnose
    from ..build import load_model

    model_path = Path(model_path)
    where = str(model_path)
    model = load_model(source)
    data = _read_model(model_path)
    declared_outputs = _declared_outputs(data, where)
    # the audited model's refusals are findings: onnxruntime is asked not to log them too
    make_runner = runner_factory or backend_factory(
        "onnxruntime", threads=threads if threads or not bench else 1, quiet=True)
    runner = make_runner(data)
    mapping = map_io(model, runner.inputs, declared_outputs, maps or {}, where)
    notes = list(mapping.notes)
    floats = [p.dtype for p in mapping.inputs if np.dtype(p.dtype).kind == "f"]
    precision = PRECISIONS.get(precision, precision) or (
        "float16" if "float16" in floats else "float32")
    if precision not in TOLERANCES:
        raise InputError(f"unknown precision {precision!r}; expected one of "
                         f"{', '.join(PRECISIONS)}", where="--precision")
    tol = TOLERANCES[precision]
    declared = _declared(mapping, runner.inputs, model)
    cases, case_notes = make_audit_cases(model, seed, declared)
    notes += case_notes
    cast_feeds(cases, mapping, notes)
    outcomes = [o for case in cases for o in run_case(case, model, runner, mapping, tol)]
    findings = diagnose(model, runner, mapping, cases, outcomes, declared, tol)
    result = AuditResult(where, str(source), runner.name, precision, asdict(tol), mapping, outcomes,
                         findings, notes)
    if bench:
        result.bench = bench_side_by_side(model, runner, mapping, make_runner, declared, seed)
    return result


# ---------------------------------------------------------------------------------------------
# Speed next to accuracy: the audited model and rnncompile's own build of SOURCE, one run.

BENCH_SHAPES = ((1, 100), (32, 100))


def bench_side_by_side(model: Model, runner, mapping: Mapping, make_runner: RunnerFactory,
                       declared: tuple[int | None, int | None], seed: int, runs: int = 30,
                       warmup: int = 3) -> dict:
    """Median latency of the audited model and of rnncompile's onnxruntime build of SOURCE on the
    same inputs, timed interleaved in one run (rnncompile.bench.time_interleaved)."""
    from .bench import time_interleaved
    from ..lower import lower
    from ..targets import get_target

    ours = make_runner(lower(model, get_target("onnxruntime")).model_bytes)
    rng = np.random.default_rng(seed)
    rows = []
    for batch, steps in BENCH_SHAPES:
        batch, steps = declared[0] or batch, declared[1] or steps
        case = one_case(model, batch, steps, "none", rng)
        cast_feeds([case], mapping, [])
        feeds = case.chunks[0]
        feeds.update({s.input_name: np.zeros((batch, *s.shape), np.float32) for s in model.states})
        theirs = {p.theirs: _theirs(feeds[p.ours], p) for p in mapping.inputs if p.ours in feeds}
        label = f"batch {batch}, T = {steps}"
        try:
            runner.run(theirs)
        except RnnCompileError as e:
            rows.append({"batch": batch, "steps": steps, "text": f"{label}: the audited model "
                         f"refuses these inputs ({e.problems[0].message[:120]})"})
            continue
        t = time_interleaved({"audited": lambda: runner.run(theirs), "rnncompile": lambda: ours.run(feeds)},
                             runs, warmup)
        a, r = t["audited"].median * 1e3, t["rnncompile"].median * 1e3
        rows.append({"batch": batch, "steps": steps, "audited_ms": a, "rnncompile_ms": r,
                     "text": f"{label}: audited {a:.3f} ms, rnncompile {r:.3f} ms "
                             f"(audited / rnncompile = {a / r:.2f}x)"})
    return {"runs": runs, "warmup": warmup, "runner": runner.name, "rows": rows}
