"""The audit's verdict: one sentence per failure class, found from where the audited model is
right and where it is wrong (which padding, which T, which batch, which call of a stateful
sequence), plus the readable table. Each finding says what is wrong, where the worst error is, and
what the model is still right on, so a person can act on it."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from .layer import Layer

#: How a row's padding reads in a sentence.
KIND_TEXT = {"unpadded": "unpadded input", "right": "right-padded input", "left": "left-padded input",
             "gaps": "input with gaps (masked steps between valid ones)", "empty": "fully masked rows"}
MAX_GATE_TRIALS = 200


@dataclass
class Finding:
    kind: str  # refuses_batch, refuses_steps, runtime_error, output_shape, state, padding, steps, batch, gate_order, wrong
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
        seen_ok = {value(o) for o in ran}
        if fixed is None and len(seen_ok) == 1 and all(value(o) not in seen_ok for o in errs):
            fixed = next(iter(seen_ok))
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
        right = (f"; right at {axis} = {fixed}" if ok and len(ok) == len(ran) else "")
        findings.append(Finding(f"refuses_{'batch' if axis == 'batch' else 'steps'}",
                                f"{head} ({len(hit)} of {len(hit) + len(ran)} calls refused): {why}{right}"))
    if errs:
        findings.append(Finding("runtime_error", f"fails at run time on {len(errs)} call(s), e.g. case "
                                                 f"{errs[0].case}: {errs[0].error}"))
    return findings


def _shapes(bad: list) -> list[Finding]:
    findings = []
    for name in dict.fromkeys(c.output for _, c in bad):
        items = [(o, c) for o, c in bad if c.output == name]
        got = {tuple(c.shape) for _, c in items}
        o, c = items[0]
        text = (f"output {name!r} has shape {c.shape} where SOURCE gives {c.reference_shape} "
                f"(case {o.case})")
        kind = "output_shape"
        if len(got) == 1 and len(c.shape) == len(c.reference_shape):
            fixed = [a for a in range(len(c.shape))
                     if any(cc.reference_shape[a] != cc.shape[a] for _, cc in items)]
            if fixed == [0]:
                text = f"output {name!r} keeps batch {c.shape[0]} whatever the input's batch"
            elif fixed == [1] and all(cc.reference_shape[1] == oo.steps for oo, cc in items):
                text = (f"output shape depends on T: output {name!r} has {c.shape[1]} steps whatever "
                        f"the input's length (traced at T = {c.shape[1]})")
        findings.append(Finding(kind, text))
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
    text = "wrong on " + " and on ".join(
        f"{KIND_TEXT[k]} ({_worst([r for r in fails if r.kind == k])})" for k in wrong)
    text += "; right on " + " and on ".join(KIND_TEXT[k] for k in right)
    if "right" in right and "left" in wrong:
        text += (": the model derives sequence lengths assuming right padding (e.g. by counting "
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
        res = "pass" if ok else ("REFUSED" if r["refused"] == r["calls"] else "FAIL")
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
