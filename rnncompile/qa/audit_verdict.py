"""The audit's verdict: one sentence per failure class, found from where the audited model is
right and where it is wrong (which padding, which T, which batch, which call of a stateful
sequence), plus the readable table. Each finding says what is wrong, where the worst error is, and
what the model is still right on, so a person can act on it."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from ..layer import Layer

#: How a row's padding reads in a sentence.
KIND_TEXT = {"unpadded": "unpadded input", "right": "right-padded input", "left": "left-padded input",
             "gaps": "input with gaps", "empty": "fully masked rows"}
MAX_GATE_TRIALS = 200
PROBE_STEPS, PROBE_BATCHES = 64, 16


@dataclass
class Finding:
    #: refuses_batch, refuses_steps, runtime_error, output_shape, state, padding, steps, batch,
    #: gate_order or wrong
    kind: str
    sentence: str


@dataclass
class Row:
    """One batch row of one output of one call."""

    outcome: object  # audit.Outcome
    output: str
    ndim: int
    kind: str
    failed: bool
    error: float
    index: list


def _nums(values) -> str:
    return ", ".join(str(v) for v in sorted(values))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _at(index: list, ndim: int) -> str:
    parts = [f"row {index[0]}"] + ([f"step {index[1]}"] if ndim >= 3 else [])
    return ", ".join(parts)


def _worst(rows: list[Row]) -> str:
    r = max(rows, key=lambda r: r.error)
    o = r.outcome
    err = "NaN" if not np.isfinite(r.error) else f"max error {r.error:.3g}"
    chunk = f", call {o.chunk + 1}" if o.chunk else ""
    return f"{err} at {_at(r.index, r.ndim)} of case {o.case}{chunk}, output {r.output!r}"


# ---------------------------------------------------------------------------------------------
# Refusals (the model raised at run time) and output shapes.


def _refusals(errs: list, ran: list, mapping, declared) -> list[Finding]:
    findings = []
    data_in = next((p.theirs for p in mapping.inputs), "?")
    for axis, fixed, value in (("batch", declared[0], lambda o: o.batch),
                               ("T", declared[1], lambda o: o.steps)):
        right = {value(o) for o in ran if o.passed}
        if fixed is None and len(right) == 1 and all(value(o) not in right for o in errs):
            fixed = next(iter(right))  # observed: it runs only at the one size it is right at
        hit = [o for o in errs if fixed is not None and value(o) != fixed]
        if not hit or any(value(o) != fixed for o in ran):
            continue
        errs = [o for o in errs if o not in hit]
        if axis == "batch":
            head = "refuses batch > 1" if fixed == 1 else f"refuses every batch size but {fixed}"
            why = (f"its input {data_in!r} declares batch {fixed}" if declared[0] is not None else
                   f"it declares a dynamic batch but fails at run time: {hit[0].error}")
        else:
            head = f"refuses every sequence length but T = {fixed}"
            why = (f"its input {data_in!r} fixes the time axis (traced at T = {fixed})"
                   if declared[1] is not None else
                   f"it declares a dynamic time axis but fails at run time (traced at T = {fixed}?): "
                   f"{hit[0].error}")
        ok = [o for o in ran if o.passed]
        right_text = (f"; right at {axis} = {fixed}" if ok and len(ok) == len(ran) else "")
        findings.append(Finding(f"refuses_{'batch' if axis == 'batch' else 'steps'}",
                                f"{head} ({len(hit)} of {len(hit) + len(ran)} calls refused): {why}{right_text}"))
    if errs:
        findings.append(Finding("runtime_error", (
            f"fails at run time on {len(errs)} call(s) (T = {_nums({o.steps for o in errs})}; batch = "
            f"{_nums({o.batch for o in errs})}), e.g. case {errs[0].case}: {errs[0].error}")))
    return findings


def _shapes(bad: list) -> list[Finding]:
    findings = []
    for name in dict.fromkeys(c.output for _, c in bad):
        items = [(o, c) for o, c in bad if c.output == name]
        o, c = items[0]
        text = (f"output {name!r} has shape {c.shape} where SOURCE gives {c.reference_shape} "
                f"(case {o.case})")
        if all(len(cc.shape) == len(cc.reference_shape) == len(c.shape) for _, cc in items):
            axes = {a for _, cc in items for a, (d, w) in enumerate(zip(cc.shape, cc.reference_shape)) if d != w}
            values = {cc.shape[min(axes)] for _, cc in items} if len(axes) == 1 else set()
            inputs = {cc.reference_shape[min(axes)] for _, cc in items} if values else set()
            many = len(inputs) > 1
            if axes == {0} and len(values) == 1:
                text = (f"output {name!r} keeps batch {c.shape[0]} "
                        + ("whatever the input's batch" if many else f"where the input has batch {_nums(inputs)}"))
            elif axes == {1} and len(values) == 1 and all(cc.reference_shape[1] == oo.steps for oo, cc in items):
                text = (f"output shape depends on T: output {name!r} has {c.shape[1]} steps "
                        + ("whatever the input's length" if many else f"where the input has {_nums(inputs)}")
                        + f" (traced at T = {c.shape[1]})")
        findings.append(Finding("output_shape", text))
    return findings


# ---------------------------------------------------------------------------------------------
# Wrong values: which factor separates the wrong calls from the right ones.


def _split(rows: list[Row], value) -> tuple[set, set, list[Row]]:
    """Values of `value(outcome)` on calls with a wrong row, and on calls with none."""
    calls: dict[int, tuple[object, bool]] = {}
    for r in rows:
        prev = calls.get(id(r.outcome), (r.outcome, False))
        calls[id(r.outcome)] = (r.outcome, prev[1] or r.failed)
    bad = {value(o) for o, f in calls.values() if f}
    good = {value(o) for o, f in calls.values() if not f}
    return bad, good, [r for r in rows if r.failed]


def _by_state(rows, fails):
    first = [r for r in rows if r.outcome.chunk == 0]
    if first and not any(r.failed for r in first):
        return Finding("state", f"right on the first call, wrong once state is carried across calls "
                                f"({_worst(fails)}): the state the model returns does not continue "
                                f"the sequence when fed back (check which state inputs and outputs "
                                f"are paired; --map THEIRS=OURS)")
    return None


def _by_padding(rows, fails):
    kinds = {r.kind for r in rows}
    if kinds == {"unpadded"} or any(r.failed for r in rows if r.kind == "unpadded") \
            or "unpadded" not in kinds:
        return None
    order = [k for k in KIND_TEXT if k in kinds]
    wrong = [k for k in order if any(r.failed for r in fails if r.kind == k)]
    right = [k for k in order if k not in wrong]
    text = "wrong on " + _and([f"{KIND_TEXT[k]} ({_worst([r for r in fails if r.kind == k])})"
                               for k in wrong])
    text += "; right on " + _and([KIND_TEXT[k] for k in right])
    if "right" in right and "left" in wrong:
        text += (": the model likely derives sequence lengths assuming right padding (e.g. by counting "
                 "non-zero tokens), so it runs over the padding of left-padded rows")
    elif {"right", "left"} <= set(wrong):
        text += ": the model ignores the mask (padding steps are computed as data)"
    elif wrong == ["empty"]:
        text += ": where no step is valid, Keras keeps the initial state (zeros)"
    return Finding("padding", text)


def _by_value(kind: str, label: str, value, why: str):
    def detect(rows, fails):
        bad, good, _ = _split(rows, value)
        if not good or bad & good:
            return None
        guess = f" (traced at {label} = {next(iter(good))}?)" if len(good) == 1 and kind == "steps" else ""
        return Finding(kind, f"wrong at {label} = {_nums(bad)} ({_worst(fails)}); right at {label} = "
                             f"{_nums(good)}: {why}{guess}")
    return detect


DETECTORS = (_by_state, _by_padding,
             _by_value("steps", "T", lambda o: o.steps,
                       "the results depend on the sequence length"),
             _by_value("batch", "batch", lambda o: o.batch,
                       "rows of a batch are not computed independently (a batch size baked in at export?)"))


def gated_cells(model) -> list[Layer]:
    """Recurrent cells with more than one gate block (LSTM, GRU; inside wrappers too)."""
    cells = {}
    for layer in model.layers.values():
        for cell in [layer, *(v for v in vars(layer).values() if isinstance(v, Layer))]:
            if len(getattr(cell, "gate_names", ())) > 1 and f"{cell.name}/kernel" in model.weights:
                cells[cell.name] = cell
    return list(cells.values())


def _permuted(model, cells, perm):
    w = dict(model.weights)
    for cell in cells:
        for key in ("kernel", "recurrent_kernel", "bias"):
            full = f"{cell.name}/{key}"
            if full in w:
                blocks = np.split(w[full], len(perm), axis=-1)
                w[full] = np.concatenate([blocks[i] for i in perm], axis=-1)
    m = copy.copy(model)
    m.weights = w
    return m


def _by_gate_order(model, runner, mapping, cases, rows, tol):
    """Everything wrong, unpadded input included: does the model compute SOURCE with the gate
    blocks of a recurrent layer permuted (weights not reordered to a runtime's gate order)?"""
    from .audit import AuditCase, run_case

    cells = gated_cells(model)
    wrong = [r.outcome for r in rows if r.failed and r.outcome.chunk == 0 and r.kind == "unpadded"]
    if not cells or not wrong:
        return None
    o = min(wrong, key=lambda o: o.batch * (o.steps or 1))
    case = next(c for c in cases if c.name == o.case)
    probe = AuditCase(case.name, case.batch, case.lengths, case.pattern, case.chunks[:1])
    groups = [[c] for c in cells] + ([cells] if len(cells) > 1 else [])
    trials = 0
    for group in groups:
        if len({len(c.gate_names) for c in group}) != 1:
            continue
        names = group[0].gate_names
        for perm in itertools.permutations(range(len(names))):
            trials += 1
            if list(perm) == sorted(perm) or trials > MAX_GATE_TRIALS:
                continue
            outs = run_case(probe, _permuted(model, group, perm), runner, mapping, tol)
            if outs and outs[0].passed:
                where = ", ".join(f"{c.class_name} {c.name!r}" for c in group)
                return Finding("gate_order", (
                    f"wrong gate order in {where}: the model computes the gates "
                    f"{', '.join(names)} from the weight blocks Keras stores for "
                    f"{', '.join(names[i] for i in perm)} (right on case {o.case} once permuted) — "
                    f"weights copied without reordering them to the runtime's gate order"))
    return None


def _probe(model, runner, mapping, rows, tol):
    """Nothing unpadded is right: a length or batch baked in at export (a trace) is right only at
    that size. Probe T = 1..PROBE_STEPS at batch 1 and batch 1..PROBE_BATCHES at T = 9."""
    from .audit import cast_feeds, one_case, run_case

    if any(not r.failed for r in rows if r.kind == "unpadded" and r.outcome.chunk == 0):
        return None
    rng = np.random.default_rng(0)
    fixed_b = next((model.input_type(n).shape[0] for n in model.inputs
                    if model.input_type(n).shape[0] is not None), None)
    for label, sizes, make in (
            ("T", range(1, PROBE_STEPS + 1), lambda t: one_case(model, fixed_b or 1, t, "none", rng)),
            ("batch", range(1, PROBE_BATCHES + 1), lambda b: one_case(model, b, 9, "none", rng))):
        if label == "batch" and fixed_b is not None:
            continue
        right = []
        for size in sizes:
            case = make(size)
            cast_feeds([case], mapping, [])
            if all(o.passed for o in run_case(case, model, runner, mapping, tol)):
                right.append(size)
        attr = "steps" if label == "T" else "batch"
        if right and len(right) <= 3 and len(right) < len(sizes):
            wrong = [r for r in rows if r.failed]
            return Finding("steps" if label == "T" else "batch", (
                f"right only at {label} = {_nums(right)} ({label} = 1..{len(sizes)} probed); wrong "
                f"at {label} = {_nums({getattr(r.outcome, attr) for r in wrong})} ({_worst(wrong)}): "
                f"the model was traced at {label} = {right[0]} and keeps it"))
    return None


def diagnose(model, runner, mapping, cases, outcomes, declared, tol) -> list[Finding]:
    errs = [o for o in outcomes if o.error]
    ran = [o for o in outcomes if not o.error]
    findings = _refusals(errs, ran, mapping, declared)
    findings += _shapes([(o, c) for o in ran for c in o.checks if c.shape != c.reference_shape])
    rows = [Row(o, c.output, len(c.shape), o.row_kinds[i], failed, err, idx)
            for o in ran for c in o.checks if c.shape == c.reference_shape
            for i, (failed, err, idx) in enumerate(c.rows)]
    fails = [r for r in rows if r.failed]
    if not fails:
        return findings
    for detect in DETECTORS:
        found = detect(rows, fails)
        if found is not None:
            return findings + [found]
    found = _by_gate_order(model, runner, mapping, cases, rows, tol)
    if found is not None:
        return findings + [found]
    found = _probe(model, runner, mapping, rows, tol)
    if found is not None:
        return findings + [found]
    if all(r.failed for r in rows if r.kind == "unpadded" and r.outcome.chunk == 0):
        text = (f"wrong on every input, unpadded included ({_worst(fails)}): the model does not "
                f"compute what SOURCE computes (different weights, activations or layer order?)")
    else:
        calls = {id(r.outcome) for r in fails}
        text = (f"wrong on {len(calls)} of {len({id(r.outcome) for r in rows})} calls with no "
                f"single cause found ({_worst(fails)}); see the table")
    return findings + [Finding("wrong", text)]


# ---------------------------------------------------------------------------------------------


def render(result, verbose: bool = False) -> str:
    t = result.tolerance
    lines = [f"audit: {result.model_path} against {result.source}",
             f"  runner {result.runner}; reference NumPy float64; {result.precision} tolerance "
             f"atol={t['atol']:g} rtol={t['rtol']:g}"]
    m = result.mapping
    for what, pairs in (("input", m.inputs), ("output", m.outputs)):
        for p in pairs:
            lead = ", leading axis of 1" if p.lead_axis else ""
            lines.append(f"  {what:<6} {p.ours:<24} <- {p.theirs} ({p.dtype}, by {p.how}{lead})")
    table = result.table()
    w = max([len(r["output"]) for r in table] + [6])
    lines.append(f"  {'pattern':<8} {'output':<{w}} {'calls':>7}  {'result':<7} {'max abs err':>11} "
                 f"{'max rel err':>11}  worst element")
    for r in table:
        ok = r["passed"] == r["calls"]
        res = "pass" if ok else ("REFUSED" if r["passed"] + r["refused"] == r["calls"] else "FAIL")
        worst = r["worst"]
        where = (f"case {worst['case']} index {worst['index']}" + (f" call {worst['chunk'] + 1}"
                                                                   if worst["chunk"] else "")
                 if worst and worst["index"] is not None else (worst or {}).get("problem", "") or "-")
        lines.append(f"  {r['pattern']:<8} {r['output']:<{w}} {r['passed']:>3}/{r['calls']:<3}  "
                     f"{res:<7} {r['max_abs_error']:>11.3e} {r['max_rel_error']:>11.3e}  {where}")
    if verbose:
        for o in result.outcomes:
            state = "pass" if o.passed else ("refused: " + o.error if o.error else "FAIL")
            lines.append(f"    case {o.case} call {o.chunk + 1}: {state}")
    for n in result.notes:
        lines.append(f"  note: {n}")
    if result.bench:
        lines.append("  speed (median latency, same inputs, one run, interleaved):")
        for row in result.bench["rows"]:
            lines.append("    " + row["text"])
    if result.conforms:
        lines.append(f"conforms: yes ({len(result.outcomes)} calls)")
    else:
        lines.append(f"conforms: no ({sum(not o.passed for o in result.outcomes)} of "
                     f"{len(result.outcomes)} calls wrong or refused)")
        lines += [f"  - {f.sentence}" for f in result.findings]
    return "\n".join(lines)
