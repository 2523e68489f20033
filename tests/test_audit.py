"""`rnncompile audit`: third-party-style ONNX files (tests/fixtures/audit/, made by
tools/make_audit_fixtures.py) checked against the spec they claim to implement. A correct one
passes every pattern; each failure class is caught with its sentence; bad input exits 2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnncompile.qa.audit import AuditCase, Mapping, Pair, audit, cast_feeds, parse_maps
from rnncompile.qa.audit_verdict import diagnose
from rnncompile.cli import main
from rnncompile.errors import InputError

FIX = Path(__file__).resolve().parent / "fixtures" / "audit"
TOKENS, STATEFUL, SEQ = FIX / "tokens_lstm.json", FIX / "stateful_lstm.json", FIX / "seq_lstm.json"
_CACHE: dict = {}


def audited(name: str, source: Path, **kw):
    key = (name, source, tuple(sorted(kw.items())))
    if key not in _CACHE:
        _CACHE[key] = audit(FIX / name, source, threads=1,
                            **{k: dict(v) if k == "maps" else v for k, v in kw.items()})
    return _CACHE[key]


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


# ---------------------------------------------------------------------------------------------
# Correct models pass every pattern.


def test_correct_masked_model_passes_every_pattern():
    r = audited("tokens_good.onnx", TOKENS)
    assert r.conforms, [f.sentence for f in r.findings]
    assert r.findings == []
    assert {row["pattern"] for row in r.table()} == {"none", "right", "left", "gaps", "empty", "mixed"}
    assert all(row["passed"] == row["calls"] for row in r.table())
    steps = {o.steps for o in r.outcomes}
    batches = {o.batch for o in r.outcomes}
    assert {1, 41} <= steps and len(steps) >= 4  # T = 1, a long T, several others
    assert 1 in batches and {3, 5} <= batches  # batch 1 and odd batches
    kinds = {k for o in r.outcomes for k in o.row_kinds}
    assert kinds == {"unpadded", "right", "left", "gaps", "empty"}  # every row pattern was fed
    # names differ (input_ids/class_scores): paired by order, int32 tokens cast to int64
    assert [(p.ours, p.theirs, p.how, p.dtype) for p in r.mapping.inputs] == [
        ("tokens", "input_ids", "order", "int64")]


def test_torch_export_passes():
    r = audited("seq_torch.onnx", SEQ)
    assert r.conforms and r.outcomes


def test_stateful_model_carries_state_across_calls():
    r = audited("stateful_good.onnx", STATEFUL)
    assert r.conforms, [f.sentence for f in r.findings]
    assert {o.chunk for o in r.outcomes} == {0, 1, 2}
    assert {p.ours for p in r.mapping.outputs} == {"scores", "reader_state_h_out", "reader_state_c_out"}
    assert all(p.lead_axis for p in r.mapping.inputs[1:])  # torch-style [1, batch, units] states


# ---------------------------------------------------------------------------------------------
# Each failure class, with its sentence.

CLASSES = [
    ("tokens_rightpad.onnx", TOKENS, {"padding"},
     ["wrong on left-padded input (max error", "right on unpadded input, right-padded input",
      "assuming right padding"]),
    ("tokens_fixed_t.onnx", TOKENS, {"refuses_steps"},
     ["refuses every sequence length but T = 20", "traced at T = 20", "right at T = 20"]),
    ("tokens_fixed_batch.onnx", TOKENS, {"refuses_batch"},
     ["refuses batch > 1", "declares batch 1", "right at batch = 1"]),
    ("tokens_gate_order.onnx", TOKENS, {"gate_order"},
     ["wrong gate order in LSTM 'lstm'", "gates i, f, c, o from the weight blocks Keras stores "
                                         "for i, c, o, f"]),
    ("seq_unrolled_t20.onnx", SEQ, {"runtime_error", "output_shape"},
     ["output shape depends on T: output 'dense' has 20 steps", "(traced at T = 20)"]),
    ("seq_traced_t20.onnx", SEQ, {"runtime_error", "steps"},
     ["right only at T = 20", "wrong at T = 41", "traced at T = 20"]),
    ("stateful_nocarry.onnx", STATEFUL, {"state"},
     ["right on the first call, wrong once state is carried across calls"]),
]


@pytest.mark.parametrize("name,source,kinds,phrases", CLASSES, ids=[c[0] for c in CLASSES])
def test_failure_class_is_caught_with_its_sentence(name, source, kinds, phrases):
    r = audited(name, source)
    assert not r.conforms
    assert {f.kind for f in r.findings} == kinds, [f.sentence for f in r.findings]
    text = " ".join(f.sentence for f in r.findings)
    for phrase in phrases:
        assert phrase in text, text


def test_padding_sentence_names_the_worst_element():
    r = audited("tokens_rightpad.onnx", TOKENS)
    worst = max((c for o in r.outcomes if o.pattern == "left" for c in o.checks),
                key=lambda c: c.max_abs_error)
    assert f"max error {worst.max_abs_error:.3g} at row {worst.worst[0]}" in r.findings[0].sentence
    left = [row for row in r.table() if row["pattern"] == "left"][0]
    assert left["passed"] == 0 and left["max_abs_error"] == pytest.approx(worst.max_abs_error)


def _outcome(batch, steps, wrong, kind="unpadded"):
    from rnncompile.qa.audit import Check, Outcome

    err = 0.5 if wrong else 1e-8
    rows = [(wrong, err, [b, 0]) for b in range(batch)]
    return Outcome(f"batch{batch}_x{steps}_none", batch, {"x": steps}, "none", 0, [kind] * batch,
                   checks=[Check("y", not wrong, err, err, [0, 0], "", [batch, 2], [batch, 2], rows)])


@pytest.mark.parametrize("wrong_at,kind,phrases", [
    (lambda b, t: t != 9, "steps", ["wrong at T = 1, 7, 13, 41 (max error 0.5", "right at T = 9",
                                    "traced at T = 9?"]),
    (lambda b, t: b > 1, "batch", ["wrong at batch = 2, 3, 4 (max error 0.5", "right at batch = 1: rows"]),
], ids=["steps", "batch"])
def test_length_and_batch_dependence_are_told_apart(wrong_at, kind, phrases):
    plan = [(1, 9), (4, 1), (3, 7), (1, 13), (3, 9), (2, 41)]
    outcomes = [_outcome(b, t, wrong_at(b, t)) for b, t in plan]
    found = diagnose(None, None, Mapping([], []), [], outcomes, (None, None), None)
    assert [f.kind for f in found] == [kind]
    for phrase in phrases:
        assert phrase in found[0].sentence


# ---------------------------------------------------------------------------------------------
# Pairing, casts, the command line.


def test_explicit_map_pairs_states_and_a_wrong_map_is_caught():
    right = audited("stateful_good.onnx", STATEFUL,
                    maps=(("h0", "reader_state_h_in"), ("c0", "reader_state_c_in")))
    assert right.conforms
    assert {p.how for p in right.mapping.inputs if p.theirs in ("h0", "c0")} == {"--map"}
    swapped = audited("stateful_good.onnx", STATEFUL,
                      maps=(("h0", "reader_state_c_in"), ("c0", "reader_state_h_in")))
    assert not swapped.conforms


def test_lossless_casts_and_float_rounding():
    m = Mapping([Pair("x", "x", "name", "float16"), Pair("t", "t", "name", "int8")], [])
    case = AuditCase("c", 1, {}, "none", [{"x": np.array([[0.1]], np.float32),
                                            "t": np.array([[5, 100]], np.int32)}])
    notes: list[str] = []
    cast_feeds([case], m, notes)
    assert case.chunks[0]["x"].dtype == np.float32  # SOURCE's dtype, float16 values
    assert case.chunks[0]["x"][0, 0] == np.float32(np.float16(0.1)) and notes
    case.chunks[0]["t"][0, 1] = 300  # does not fit int8: refused, not wrapped
    with pytest.raises(InputError, match="do not fit"):
        cast_feeds([case], m, [])


def test_cli_exit_codes_and_report(tmp_path):
    code, out = cli("audit", FIX / "tokens_good.onnx", "--against", TOKENS, "--threads", "1")
    assert code == 0 and "conforms: yes" in out
    report = tmp_path / "audit.json"
    code, out = cli("audit", FIX / "tokens_fixed_batch.onnx", "--against", TOKENS, "--threads", "1",
                    "--report", report)
    assert code == 1 and "refuses batch > 1" in out
    data = json.loads(report.read_text())
    assert data["conforms"] is False and data["findings"][0]["kind"] == "refuses_batch"
    assert {row["pattern"] for row in data["table"]} >= {"none", "left"}


@pytest.mark.parametrize("args,message", [
    (["missing.onnx"], "file not found"),
    (["garbage"], "error:"),
    ([FIX / "tokens_good.onnx", "--map", "nonsense"], "expected THEIRS=OURS"),
    ([FIX / "tokens_good.onnx", "--map", "input_ids=nope"], "neither an input nor an output of SOURCE"),
    ([FIX / "tokens_good.onnx", "--map", "nope=tokens"], "neither an input nor an output of the audited"),
])
def test_bad_input_exits_2(tmp_path, args, message):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not an onnx model at all" * 10)
    args = [garbage if a == "garbage" else (tmp_path / a if a == "missing.onnx" else a) for a in args]
    code, out = cli("audit", args[0], "--against", TOKENS, *args[1:])
    assert code == 2 and message in out and "Traceback" not in out, out


@pytest.mark.parametrize("model,source,message", [
    ("tokens_good.onnx", SEQ, "int64; SOURCE's 'x' is float32 (no lossless cast)"),
    ("stateful_good.onnx", TOKENS, "has no counterpart in SOURCE"),
    ("seq_torch.onnx", STATEFUL, "rank differs"),
])
def test_unmappable_inputs_exit_2(model, source, message):
    code, out = cli("audit", FIX / model, "--against", source)
    assert code == 2 and message in out and "Traceback" not in out, out


def test_stateful_source_without_state_inputs_is_audited_from_zero_state():
    r = audited("stateful_nostate.onnx", STATEFUL)
    assert r.conforms and {o.chunk for o in r.outcomes} == {0}
    assert [p.ours for p in r.mapping.outputs] == ["scores"]
    assert any("no state inputs" in n for n in r.notes)


def test_pairing_by_normalized_name_and_undeclared_output_shapes():
    from rnncompile.qa.audit import map_io
    from rnncompile.backends import InputMeta
    from rnncompile.build import load_model

    model = load_model(TOKENS)
    theirs_in = [InputMeta("Tokens:0", "int64", (None, None))]
    m = map_io(model, theirs_in, [{"name": "extra", "dtype": "float32", "shape": None},
                                  {"name": "LOGITS", "dtype": "float32", "shape": None}], {}, "m.onnx")
    assert [(p.ours, p.theirs, p.how) for p in m.inputs + m.outputs] == [
        ("tokens", "Tokens:0", "name"), ("logits", "LOGITS", "name")]
    assert m.ignored == ["extra"] and m.notes
    with pytest.raises(InputError, match="rank differs"):
        map_io(model, theirs_in, [{"name": "y", "dtype": "float32", "shape": [None, None, 3]}], {}, "m")


def test_parse_maps():
    assert parse_maps(["a=b", "x:0=y"]) == {"a": "b", "x:0": "y"}
    with pytest.raises(InputError):
        parse_maps(["=b"])


def test_bench_times_both_side_by_side():
    r = audit(FIX / "tokens_good.onnx", TOKENS, bench=True, threads=1)
    rows = r.bench["rows"]
    assert [(row["batch"], row["steps"]) for row in rows] == [(1, 100), (32, 100)]
    assert all(row["audited_ms"] > 0 and row["rnncompile_ms"] > 0 for row in rows)
