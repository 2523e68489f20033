"""`rnncompile conformance`: the three suites, the table and the JSON report, exit codes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from rnncompile.qa import conformance as conf
from rnncompile.verify import Tolerance

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = ROOT / "tests" / "goldens"
HAVE_GOLDENS = any(GOLDENS.glob("*/spec.json"))


def test_onnx_suite_runs_every_lstm_gru_rnn_case():
    suite = conf.run_onnx_suite()
    names = [c.name for c in suite.cases]
    assert len(names) == len(set(names))
    originals = [n for n in names if "_random_" not in n]
    assert len(originals) >= 18
    for op in ("LSTM", "GRU", "RNN"):
        assert sum(n.startswith(op + ":") for n in originals) >= 6
    assert suite.count("failed") == 0, [(c.name, c.detail) for c in suite.cases if c.status == "failed"]
    # layout=1 cases are listed as unsupported by the runtime, not hidden
    unsupported = {c.name for c in suite.cases if c.status == "unsupported"}
    assert {"LSTM: test_lstm_batchwise", "GRU: test_gru_batchwise",
            "RNN: test_simple_rnn_batchwise"} <= unsupported
    assert all("batchwise" in n for n in unsupported)
    assert all("layout=1" in c.detail for c in suite.cases if c.status == "unsupported")
    passed = [c for c in suite.cases if c.status == "passed"]
    assert len(passed) >= 45 and all(c.max_abs_error <= 1e-5 for c in passed)


def test_onnx_cases_run_as_keras_layers_through_rnncompile():
    """Every case but the peephole one is a Keras layer too: rnncompile's reference and its built
    model are checked against ONNX's outputs, layout=1 cases included."""
    suite = conf.run_onnx_suite()
    as_keras = [c for c in suite.cases if "rnncompile reference vs onnx" in c.errors]
    assert len(as_keras) == len(suite.cases) - 1
    for c in as_keras:
        assert c.errors["rnncompile build (onnxruntime) vs onnx"] <= 1e-5, c
    peep = next(c for c in suite.cases if c.name.endswith("peepholes"))
    assert "no Keras equivalent" in peep.detail
    batchwise = next(c for c in suite.cases if c.name == "LSTM: test_lstm_batchwise")
    assert batchwise.status == "unsupported" and "reference and build match" in batchwise.detail
    twins = {c.name.split("_random_")[1] for c in suite.cases if "_random_" in c.name}
    assert twins == {"weights", "initial_state", "linear_before_reset"}


def test_random_weight_twins_match_the_original_oracle():
    """onnx.reference (the oracle of the twins) reproduces every original case exactly."""
    from onnx.reference import ReferenceEvaluator

    for case in conf.onnx_node_cases():
        ins, outs = case.data_sets[0]
        names = [i.name for i in case.model.graph.input]
        got = ReferenceEvaluator(case.model).run(None, dict(zip(names, ins)))
        for g, o in zip(got, outs):
            np.testing.assert_allclose(g, o, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case_name", ["test_lstm_with_initial_bias", "test_gru_defaults"])
def test_onnx_to_keras_mapping_is_not_vacuous(case_name):
    """The original ONNX cases use constant weights: swapping two gate blocks of the mapped kernel
    changes nothing there. On the random-weight twin it must break the match."""
    from rnncompile.reference import run_reference
    from rnncompile.spec import load_spec
    from rnncompile.verify import TOLERANCES, compare

    cases = conf.onnx_node_cases()
    original = next(c for c in cases if c.name == case_name)
    twin = next(c for c in conf.random_weight_variants([original])
                if c.name == case_name + "_random_weights")
    tol = TOLERANCES["float32"]
    for case, blind in ((original, True), (twin, False)):
        spec, weights, feeds, to_onnx = conf.onnx_case_as_keras(case)
        want = np.asarray(case.data_sets[0][1][0])

        def y_h(w):
            model = load_spec(spec, weights=w)
            outs, _ = run_reference(model, feeds)
            return to_onnx(dict(zip(model.output_names, outs)), model.output_names)["Y_h"]
        assert compare("Y_h", want, y_h(weights), tol).passed
        k = weights["rnn/kernel"]
        g = 4 if "lstm" in case_name else 3
        h = k.shape[1] // g
        swapped = dict(weights, **{"rnn/kernel": np.concatenate([k[:, h:2 * h], k[:, :h], k[:, 2 * h:]], 1)})
        assert compare("Y_h", want, y_h(swapped), tol).passed == blind


def test_onnx_cases_do_not_disturb_onnx_own_collection():
    import onnx.backend.test.case.node as node
    from onnx.backend.test.case.node import lstm

    before = list(node._NodeTestCases)
    first = conf.onnx_node_cases()
    again = conf.onnx_node_cases()  # twice: the same cases, no "name already used" error
    assert [c.name for c in first] == [c.name for c in again] and len(first) >= 18
    assert list(node._NodeTestCases) == before
    assert node.expect is lstm.expect and node.expect.__module__ == node.__name__


@pytest.mark.skipif(not HAVE_GOLDENS, reason="tests/goldens not present")
def test_goldens_suite_matches_keras():
    suite = conf.run_goldens_suite()
    assert len(suite.cases) >= 50
    failed = [(c.name, c.detail) for c in suite.cases if c.status == "failed"]
    assert not failed, failed
    c = suite.cases[0]
    assert set(c.errors) == {"reference vs keras", "onnxruntime vs keras"}


def test_goldens_found_from_the_source_tree():
    if HAVE_GOLDENS:
        assert conf.find_goldens() == GOLDENS


def test_goldens_absent_is_a_note_not_a_failure(monkeypatch):
    """An installed wheel has no tests/goldens: the suite is empty and says why."""
    from rnncompile.qa import goldens

    monkeypatch.setattr(goldens, "find_goldens", lambda: None)
    suite = conf.run_goldens_suite()
    assert suite.cases == [] and suite.passed
    assert "not found" in suite.notes[0] and "--goldens" in suite.notes[0]


def test_goldens_dir_given_but_missing_is_bad_input(tmp_path):
    rc, out, err = cli("conformance", "--suite", "goldens", "--goldens", tmp_path / "nope")
    assert rc == 2
    assert "goldens directory not found" in err and "nope" in err


def test_empty_goldens_dir(tmp_path):
    suite = conf.run_goldens_suite(tmp_path)
    assert suite.cases == [] and "no golden cases" in suite.notes[0]


@pytest.mark.skipif(not HAVE_GOLDENS, reason="tests/goldens not present")
def test_damaged_golden_case_fails_cleanly_and_others_still_run(tmp_path):
    root = tmp_path / "goldens"
    for name in ("lstm_seq", "gru_last"):
        shutil.copytree(GOLDENS / name, root / name)
    (root / "gru_last" / "io.npz").write_bytes(b"PK\x03\x04 damaged")
    shutil.copytree(GOLDENS / "lstm_seq", root / "lstm_wrong")
    with np.load(root / "lstm_wrong" / "io.npz") as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if "/out/" in k)
    arrays[key] = arrays[key] + 0.01  # Keras "said" something else
    np.savez(root / "lstm_wrong" / "io.npz", **arrays)
    suite = conf.run_goldens_suite(root)
    status = {c.name: c for c in suite.cases}
    assert status["lstm_seq"].status == "passed"
    assert status["gru_last"].status == "failed" and "not a valid .npz" in status["gru_last"].detail
    assert status["lstm_wrong"].status == "failed"
    assert status["lstm_wrong"].max_abs_error == pytest.approx(0.01, rel=1e-3)
    assert "reference vs keras" in status["lstm_wrong"].detail
    rc, out, err = cli("conformance", "--suite", "goldens", "--goldens", root)
    assert rc == 1
    assert "FAILED: gru_last" in out and "FAILED: lstm_wrong" in out
    assert "error: conformance: 2 conformance case(s) failed" in err


def test_generated_suite_is_seeded_and_passes():
    a = conf.run_generated_suite(8, seed=3)
    b = conf.run_generated_suite(8, seed=3)
    assert [c.name for c in a.cases] == [c.name for c in b.cases]
    assert [c.detail for c in a.cases] == [c.detail for c in b.cases]
    assert a.count("passed") == 16, [(c.name, c.detail) for c in a.cases if c.status != "passed"]
    assert [c.name for c in conf.run_generated_suite(2, seed=4).cases] != [c.name for c in a.cases[:2]]
    # the classic family's specs, then the breadth family's (the kinds around the recurrent core)
    assert [c.name for c in a.cases[:8]] == [f"gen{3 * 1_000_003 + i}" for i in range(8)]
    assert [c.name for c in a.cases[8:]] == [f"genb{3 * 1_000_003 + i}" for i in range(8)]
    kinds = " ".join(c.detail for c in a.cases[8:])
    assert any(k in kinds for k in ("Conv1D", "Attention", "SetMask", "TimeDistributed"))


def test_generated_ill_conditioned_spec_is_skipped_with_the_reason(monkeypatch):
    """A model that amplifies float32 rounding (an unbounded gate) is listed as skipped, with the
    measured sensitivity; a spec that does not even load is a failure."""
    import rnncompile.qa.specgen as specgen

    chaotic = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                          {"class_name": "GRU", "units": 16, "recurrent_activation": "linear",
                           "return_sequences": True}]}
    broken = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                         {"class_name": "GRU", "units": 0}]}
    specs = iter([chaotic, broken])
    monkeypatch.setattr(specgen, "random_spec", lambda seed, name=None, breadth=False: dict(next(specs), name=name))
    suite = conf.run_generated_suite(1)
    assert [c.status for c in suite.cases] == ["skipped", "failed"]
    assert "ill-conditioned" in suite.cases[0].detail
    assert "units" in suite.cases[1].detail and "SpecError" in suite.cases[1].detail


def test_cli_prints_a_table_and_writes_json(tmp_path):
    report = tmp_path / "conformance.json"
    rc, out, err = cli("conformance", "--examples", "4", "--seed", "1", "--report", report)
    assert rc == 0, out + err
    lines = out.splitlines()
    head = next(l for l in lines if l.startswith("suite"))
    for col in ("cases", "passed", "failed", "unsupported", "skipped", "worst abs err", "worst case"):
        assert col in head
    rows = {l.split()[0]: l.split() for l in lines if l.split() and l.split()[0] in conf.SUITES}
    assert set(rows) == set(conf.SUITES)
    assert rows["generated"][1:4] == ["8", "8", "0"]   # 4 classic + 4 breadth specs
    assert rows["onnx"][3] == "0" and int(rows["onnx"][4]) >= 3
    assert "conformance: PASSED" in out
    data = json.loads(report.read_text())
    assert data["conformance"] == "passed"
    assert data["tolerance"] == {"atol": 1e-5, "rtol": 1e-5}
    assert set(data["suites"]) == set(conf.SUITES)
    for s in data["suites"].values():
        assert set(s["counts"]) == {"passed", "failed", "unsupported", "skipped", "total"}
        assert s["counts"]["total"] == len(s["cases"])
    assert data["suites"]["generated"]["counts"]["passed"] == 8
    assert data["environment"]["onnxruntime"]


def test_cli_suite_selection():
    rc, out, err = cli("conformance", "--suite", "onnx")
    assert rc == 0
    assert "onnx " in out and "generated" not in out and "goldens" not in out.split("conformance:")[0]


def test_a_failure_exits_1_and_is_in_the_report(tmp_path, monkeypatch):
    """With a zero tolerance every compared case fails: exit 1, FAILED rows, JSON still written."""
    monkeypatch.setitem(conf.TOLERANCES, "float32", Tolerance(0.0, 0.0))
    report = tmp_path / "r.json"
    rc, out, err = cli("conformance", "--suite", "onnx", "--report", report)
    assert rc == 1
    assert "conformance: FAILED" in out and "FAILED: LSTM: test_lstm_defaults" in out
    assert "error: conformance:" in err
    data = json.loads(report.read_text())
    assert data["conformance"] == "failed" and data["suites"]["onnx"]["counts"]["failed"] >= 10


def test_report_path_unwritable_is_bad_input(tmp_path):
    rc, out, err = cli("conformance", "--suite", "onnx", "--report", tmp_path / "no" / "dir" / "r.json")
    assert rc == 2 and "cannot write the report" in err


def test_json_never_holds_nan_or_inf():
    s = conf.SuiteResult("x", "x", "x", [conf.CaseOutcome("a", "failed", float("nan"), float("inf"))])
    text = json.dumps(conf.ConformanceReport([s], 0, 0, {}).to_dict(), allow_nan=False)
    assert '"max_abs_error": "nan"' in text


@pytest.mark.parametrize("spec", [
    {"class_name": "LSTM", "units": 3}, {"class_name": "LSTM", "units": 2, "use_bias": False},
    {"class_name": "GRU", "units": 3}, {"class_name": "GRU", "units": 2, "reset_after": False},
    {"class_name": "SimpleRNN", "units": 4}])
def test_keras_weights_invert_the_kinds_own_onnx_params(spec):
    """The ONNX -> Keras weight mapping of the onnx suite is the inverse of each kind's
    onnx_params (the compiler's one copy of the gate-order conversion)."""
    from rnncompile.qa.onnx_cases import keras_weights
    from rnncompile.spec import load_spec

    model = load_spec({"layers": [{"class_name": "Input", "name": "x", "shape": [None, 5]},
                                  dict(spec, name="r")], "seed": 7})
    cell = model.layers["r"]
    w = {k.split("/", 1)[1]: v for k, v in model.weights.items()}
    back = keras_weights(cell, *cell.onnx_params(w))
    assert set(back) == set(w)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k].astype(np.float32))


def test_suites_run_on_the_runner_factory_they_are_given():
    from rnncompile.backends import default_factory

    made = []

    def factory(model):
        made.append(model)
        return default_factory(1)(model)
    suite = conf.run_onnx_suite(make_runner=factory)
    assert suite.count("failed") == 0
    # every case as given (a raw one-node graph, refused ones included) and as a built Keras layer
    assert len(made) == len(suite.cases) + sum("rnncompile reference vs onnx" in c.errors for c in suite.cases)
    made.clear()
    gen = conf.run_generated_suite(2, seed=5, make_runner=factory)
    assert gen.count("passed") == 4 and len(made) == 4   # 2 classic + 2 breadth specs
