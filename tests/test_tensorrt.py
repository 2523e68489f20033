"""The TensorRT target: parser-rules checker, typed fp16/bf16 graphs, profiles and trtexec lines
(all on the CPU), and engines (skipped with the reason when TensorRT or a GPU is absent)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import rnncompile
from rnncompile.backends import runner_factory
from rnncompile.backends import tensorrt as trt_backend
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.build import io_description, verify_dir
from rnncompile.cli import main
from rnncompile.errors import SpecError, TargetError
from rnncompile.lower import check_target, lower
from rnncompile.onnx_trt_check import check_model
from rnncompile.spec import load_spec
from rnncompile.qa.specgen import random_spec
from rnncompile.targets import get_target
from rnncompile.verify import verify

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def _rules(result):
    return {(f.op, f.rule) for f in result.findings}


# ---------------------------------------------------------------------------------------------
# The checker on our graphs


def test_default_target_sentiment_graph_has_findings_naming_node_layer_rule_and_source():
    result = check_model(lower(load_spec(ROOT / "examples/sentiment.json")).model_bytes)
    assert ("CumSum", "input-type") in _rules(result)
    f = next(f for f in result.findings if f.op == "CumSum")
    assert f.node.startswith("bidirectional/CumSum") and f.layer == "bidirectional"
    assert "int64" in f.message and "docs/operators.md" in f.source


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_builds_for_tensorrt_clean_and_verified(path, tmp_path):
    model = load_spec(path)
    lowered = lower(model, "tensorrt")
    assert check_model(lowered.model_bytes).findings == []
    result = rnncompile.build(path, tmp_path / "out", target="tensorrt", threads=1)
    assert result.report.passed
    assert (tmp_path / "out/trtexec.sh").is_file() and os.access(tmp_path / "out/trtexec.sh", os.X_OK)


def test_generated_specs_are_clean_for_tensorrt_or_refused_for_scan_only_cells():
    refused = clean = 0
    for seed in range(40):
        model = load_spec(random_spec(seed))
        if check_target(model, "tensorrt"):
            with pytest.raises(TargetError):
                lower(model, "tensorrt")
            refused += 1
            continue
        lowered = lower(model, "tensorrt")
        assert check_model(lowered.model_bytes).findings == [], seed
        report = verify(model, OnnxRuntimeRunner(lowered.model_bytes, threads=1),
                        io_description(model, lowered), seed=seed)
        assert report.passed, seed
        clean += 1
    assert refused and clean > refused  # the sweep exercises both outcomes


def test_bidirectional_activation_params_are_equal_in_both_directions_for_tensorrt():
    # regression: the unused alpha of the forward Sigmoid was 1.0 and of the reverse one 0.0,
    # which TensorRT's onnxOpCheckers.cpp rejects (found by the checker)
    spec = {"name": "b", "seed": 1, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 4]},
        {"class_name": "Bidirectional", "layer": {"class_name": "GRU", "units": 3, "activation": "linear"}}]}
    node = next(n for n in onnx.load_from_string(lower(load_spec(spec), "tensorrt").model_bytes).graph.node
                if n.op_type == "GRU")
    alphas = list(helper.get_attribute_value(next(a for a in node.attribute if a.name == "activation_alpha")))
    assert alphas[:2] == alphas[2:]


# ---------------------------------------------------------------------------------------------
# The checker on hand-made graphs (what other converters produce)


def _rnn_model(op="GRU", attrs=None, seq_lens_dtype=None, gates=3, x_dtype=TensorProto.FLOAT):
    h, i = 2, 3
    dirs = 2 if (attrs or {}).get("direction") == "bidirectional" else 1
    inits = [numpy_helper.from_array(np.zeros((dirs, gates * h, i), np.float32), "W"),
             numpy_helper.from_array(np.zeros((dirs, gates * h, h), np.float32), "R")]
    inputs = ["X", "W", "R"]
    if seq_lens_dtype is not None:
        inits.append(numpy_helper.from_array(np.array([2], seq_lens_dtype), "L"))
        inputs += ["", "L"]
    node = helper.make_node(op, inputs, ["Y"], name="enc/" + op, hidden_size=h, **(attrs or {}))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", x_dtype, [5, 1, i])],
                              [helper.make_tensor_value_info("Y", x_dtype, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op, attrs, rule", [
    ("GRU", {"activations": ["Sigmoid", "LeakyRelu"], "activation_alpha": [0.3]}, "activation-params"),
    ("GRU", {"activations": ["Sigmoid", "Affine"], "activation_alpha": [1.0], "activation_beta": [0.0]},
     "rnn-activation"),
    ("GRU", {"direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Sigmoid", "Relu"]}, "bidirectional"),
    ("LSTM", {"input_forget": 1}, "attribute"),
    ("LSTM", {"layout": 1}, "attribute"),
])
def test_recurrent_rules(op, attrs, rule):
    model = _rnn_model(op, attrs, gates=4 if op == "LSTM" else 3)
    result = check_model(model)
    assert rule in {f.rule for f in result.findings}
    assert all(f.node == f"enc/{op}" and f.layer == "enc" for f in result.findings)


def test_positional_params_that_both_readers_agree_on_are_clean():
    assert check_model(_rnn_model("GRU", {"activations": ["Sigmoid", "LeakyRelu"],
                                          "activation_alpha": [0.3, 0.3]})).clean
    # LSTM: TensorRT reads compactly over activations with a non-zero default: [0.3] is fine
    assert check_model(_rnn_model("LSTM", {"activations": ["Sigmoid", "LeakyRelu", "LeakyRelu"],
                                           "activation_alpha": [0.3, 0.3]}, gates=4)).clean


def test_sequence_lens_must_be_int32():
    assert "input-type" in {f.rule for f in check_model(_rnn_model(seq_lens_dtype=np.int64)).findings}
    assert check_model(_rnn_model(seq_lens_dtype=np.int32)).clean


def _single(node, inputs, inits=(), out_type=TensorProto.FLOAT):
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info(node.output[0], out_type, None)],
                              list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_other_op_rules():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    ax = helper.make_tensor_value_info("ax", TensorProto.INT64, [])
    # CumSum with a computed axis
    m = _single(helper.make_node("CumSum", ["x", "ax"], ["y"], name="l/CumSum"), [x, ax])
    assert {f.rule for f in check_model(m).findings} == {"constant-input"}
    # Equal on BOOL
    b = helper.make_tensor_value_info("b", TensorProto.BOOL, [2])
    m = _single(helper.make_node("Equal", ["b", "b"], ["y"], name="l/Equal"), [b], out_type=TensorProto.BOOL)
    assert {f.rule for f in check_model(m).findings} == {"input-type"}
    # TopK with a constant K too large, and sorted=0
    k = numpy_helper.from_array(np.array([4000], np.int64), "k")
    m = _single(helper.make_node("TopK", ["x", "k"], ["y", "i"], name="l/TopK", sorted=0), [x], [k])
    assert {f.rule for f in check_model(m).findings} == {"topk-k", "attribute"}
    # an op the parser does not import, and a custom domain
    m = _single(helper.make_node("Unique", ["x"], ["y"], name="l/Unique"), [x])
    assert {f.rule for f in check_model(m).findings} == {"operator"}
    node = helper.make_node("Foo", ["x"], ["y"], name="l/Foo", domain="com.example")
    m = _single(node, [x])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    assert {f.rule for f in check_model(m).findings} == {"domain"}


def test_topk_on_the_time_axis_is_a_note_not_a_finding():
    result = check_model(lower(load_spec(ROOT / "examples/sentiment.json"), "tensorrt").model_bytes)
    assert result.clean and any("3840" in n.message for n in result.notes)


def test_lint_tensorrt_command_exit_codes(tmp_path):
    bad = tmp_path / "default.onnx"
    bad.write_bytes(lower(load_spec(ROOT / "examples/sentiment.json")).model_bytes)
    good = tmp_path / "trt.onnx"
    good.write_bytes(lower(load_spec(ROOT / "examples/sentiment.json"), "tensorrt").model_bytes)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx at all")
    runner = CliRunner()
    r = runner.invoke(main, ["lint-tensorrt", str(bad)])
    assert r.exit_code == 1 and "bidirectional/CumSum" in r.output
    assert runner.invoke(main, ["lint-tensorrt", str(good)]).exit_code == 0
    r = runner.invoke(main, ["lint-tensorrt", str(junk)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = runner.invoke(main, ["lint-tensorrt", "--json", str(bad)])
    assert json.loads(r.output)["findings"][0]["layer"] == "bidirectional"


# ---------------------------------------------------------------------------------------------
# Typed fp16 / bf16 graphs


def _types(model_bytes):
    m = onnx.shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    t = {v.name: v.type.tensor_type.elem_type for v in list(m.graph.value_info) + list(m.graph.input)
         + list(m.graph.output)}
    t.update({i.name: i.data_type for i in m.graph.initializer})
    return m, t


def test_fp16_graph_types_weights_and_activations_and_keeps_edges_counts_and_tokens():
    m, t = _types(lower(load_spec(ROOT / "examples/sentiment.json"), get_target("tensorrt", "fp16")).model_bytes)
    g = m.graph
    assert [i.type.tensor_type.elem_type for i in g.input] == [TensorProto.INT32]      # tokens untouched
    assert all(o.type.tensor_type.elem_type == TensorProto.FLOAT for o in g.output)   # edges float32
    lstm = next(n for n in g.node if n.op_type == "LSTM")
    assert t[lstm.input[1]] == TensorProto.FLOAT16 and t[lstm.input[0]] == TensorProto.FLOAT16
    assert t[lstm.input[4]] == TensorProto.INT32                                     # sequence_lens
    assert lstm.input[5] and t[lstm.input[5]] == TensorProto.FLOAT16                 # explicit initial_h
    for n in g.node:
        if n.op_type == "CumSum":                                                    # counts stay fp32
            assert t[n.input[0]] == TensorProto.FLOAT
    assert all(i.data_type != TensorProto.FLOAT or i.dims == [] or np.prod(i.dims) < 16
               for i in g.initializer)                                              # no fp32 weights


def test_float32_graphs_are_untouched_by_the_precision_path():
    model = load_spec(ROOT / "examples/lstm_classifier.json")
    assert lower(model, "tensorrt").model_bytes == lower(model, get_target("tensorrt", "fp32")).model_bytes


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_typed_builds_of_every_example_verify_within_their_row(path, precision, tmp_path):
    result = rnncompile.build(path, tmp_path / "out", target=get_target("tensorrt", precision), threads=1)
    rep = result.report
    assert rep.passed and rep.precision == {"fp16": "float16", "bf16": "bfloat16"}[precision]
    man = json.loads((tmp_path / "out/manifest.json").read_text())
    assert man["typed_graph"]["precision"] == rep.precision


def test_bf16_on_the_cpu_says_which_ops_ran_in_float32():
    lowered = lower(load_spec(ROOT / "examples/lstm_classifier.json"), get_target("tensorrt", "bf16"))
    runner = OnnxRuntimeRunner(lowered.model_bytes, threads=1, precision="bfloat16")
    assert runner.widened and "ran in float32 between bfloat16 casts" in runner.name
    # ONNX's LSTM takes no bfloat16 before opset 22: it is a float32 island, listed
    assert any("LSTM" in s for s in lowered.precision_info.islands)


def test_drift_report_per_step_and_prefix_curves(tmp_path):
    from rnncompile.drift import drift, write

    spec = {"name": "d", "seed": 3, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 3]},
        {"class_name": "LSTM", "name": "l", "units": 4, "return_sequences": True},
        {"class_name": "GRU", "name": "g", "units": 2}],
        "outputs": ["l", "g"]}
    report = drift(load_spec(spec), "float16", steps=60)
    kinds = {o.name: o for o in report.outputs}
    assert kinds["l"].kind == "per-step" and len(kinds["l"].max_abs_error) == 60
    assert kinds["g"].kind == "prefix-lengths" and kinds["g"].steps[-1] == 60
    assert 0 < max(kinds["l"].max_abs_error) < report.tolerance["atol"]   # fp16 really rounds
    paths = write(report, tmp_path, plot=False)
    assert json.loads(paths[0].read_text())["outputs"][0]["steps"][-1] == 60


# ---------------------------------------------------------------------------------------------
# Profiles, trtexec, probe (CPU)


IO = {"inputs": [{"name": "tokens", "shape": ["batch", "time"]},
                 {"name": "feat", "shape": ["batch", "time", 5]},
                 {"name": "lstm_state_h_in", "shape": ["batch", 8]}], "onnx_ops": ["LSTM", "TopK"]}


def test_profiles_defaults_shared_axes_and_checks():
    p = trt_backend.profiles_for(IO)
    assert p.shapes["tokens"] == ((1, 1), (8, 128), (64, 512))
    assert p.shapes["feat"][2] == (64, 512, 5) and p.shapes["lstm_state_h_in"][0] == (1, 8)
    p = trt_backend.profiles_for(IO, ["tokens:2x4,16x64,32x256"])
    assert p.shapes["lstm_state_h_in"] == ((2, 8), (16, 8), (32, 8))   # batch follows tokens
    assert p.shapes["feat"][1] == (16, 64, 5)                          # and time too
    for bad in ["tokens:1x1,8x128", "nope:1x1,1x1,1x1", "tokens:1x1,8x128,4x512", "feat:1x1x4,1x1x5,1x1x5",
                "tokens:1x1,8x128,64x4000", "tokens:a,b,c", "tokens:1x1x1,1x1x1,1x1x1"]:
        with pytest.raises(SpecError):
            trt_backend.profiles_for(IO, [bad])
    with pytest.raises(SpecError):  # two ranges for the shared batch axis
        trt_backend.profiles_for(IO, ["tokens:1x1,8x8,64x64", "feat:2x1x5,8x8x5,64x64x5"])


def test_trtexec_command_line():
    line = trt_backend.trtexec_command(IO, trt_backend.profiles_for(IO), workspace_mib=512)
    assert line.startswith("trtexec --onnx=model.onnx --saveEngine=model.plan ")
    assert "--minShapes=tokens:1x1,feat:1x1x5,lstm_state_h_in:1x8" in line
    assert "--maxShapes=tokens:64x512,feat:64x512x5,lstm_state_h_in:64x8" in line
    assert "--stronglyTyped" in line and "--memPoolSize=workspace:512M" in line
    assert "--timingCacheFile=timing.cache" in line


def test_engine_command_refuses_other_targets_and_bad_profiles_without_a_gpu(tmp_path):
    rnncompile.build(ROOT / "examples/lstm_classifier.json", tmp_path / "ort", threads=1)
    r = CliRunner().invoke(main, ["engine", str(tmp_path / "ort")])
    assert r.exit_code == 2 and "--target tensorrt" in r.output


_PROBE = trt_backend.probe()


@pytest.mark.skipif(_PROBE["available"], reason="TensorRT and a GPU are here")
def test_probe_says_why_engines_cannot_be_built_here(tmp_path):
    assert _PROBE["reason"] and not _PROBE["available"]
    rnncompile.build(ROOT / "examples/lstm_classifier.json", tmp_path / "out", target="tensorrt", threads=1)
    r = CliRunner().invoke(main, ["engine", str(tmp_path / "out")])
    assert r.exit_code == 2 and "cannot build engines here" in r.output
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "out"), "--backend", "tensorrt"])
    assert r.exit_code == 2 and "TensorRT is not available" in r.output


# ---------------------------------------------------------------------------------------------
# Engines (GPU + TensorRT only)

needs_engine = pytest.mark.skipif(not _PROBE["available"],
                                  reason=f"TensorRT engines cannot be built here: {_PROBE['reason']}")


@needs_engine
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_and_verifies(precision, tmp_path):
    out = tmp_path / "out"
    rnncompile.build(ROOT / "examples/sentiment.json", out, target=get_target("tensorrt", precision))
    summary = trt_backend.build_engine(out, ("tokens:1x1,4x16,8x64",), timing_cache=tmp_path / "cache")
    assert (out / "model.plan").is_file() and summary["strongly_typed"]
    assert (tmp_path / "cache").is_file()
    factory = runner_factory("tensorrt", out_dir=str(out))
    report = verify_dir(out, runner_factory=factory)
    assert report.passed and report.runner.startswith("TensorRT")


@needs_engine
def test_stateful_session_on_an_engine(tmp_path):
    from rnncompile.build import open_session

    out = tmp_path / "out"
    rnncompile.build(ROOT / "examples/stateful_lstm.json", out, target="tensorrt")
    trt_backend.build_engine(out, ())
    ort = open_session(out)
    eng = open_session(out, runner_factory=runner_factory("tensorrt", out_dir=str(out)))
    x = np.random.default_rng(0).standard_normal((2, 7, 50)).astype(np.float32)
    for _ in range(3):
        a, b = ort.run(x), eng.run(x)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(_PROBE["available"], reason="TensorRT and a GPU are here: run tools/gpu_check.py itself")
def test_gpu_check_runs_here_and_says_what_it_could_not_run(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools/gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main(["--out", str(tmp_path), "--examples", "lstm_classifier"]) == 0
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["lstm_classifier fp16 build + verify on onnxruntime CPU"]["status"] == "ok"
    engine = steps["lstm_classifier fp32 engine build"]
    assert engine["status"] == "skipped" and "TensorRT engines cannot be built here" in engine["reason"]
    assert "did not" in (tmp_path / "gpu_check.md").read_text()


def test_loop_bodies_are_checked_and_loops_reported():
    spec = {"name": "g", "seed": 1, "layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                                               {"class_name": "LSTM", "name": "enc", "units": 3, "activation": "gelu"}]}
    model_bytes = lower(load_spec(spec)).model_bytes   # onnxruntime target: the exact Scan fallback
    result = check_model(model_bytes)
    assert ("Scan", "avoided-op") in _rules(result)
    assert result.nodes > len(onnx.load_from_string(model_bytes).graph.node)   # the body's nodes too


# fp16 32 and 52: casts at graph edges once reused an existing node's name (invalid model);
# bf16 17, fp16 74 and 111: onnxruntime's level-"all" optimizer crashed the process on those typed
# graphs (the runner loads typed graphs at level "extended")
_NATIVE_SEEDS = [s for s in range(12) if not check_target(load_spec(random_spec(s)), "tensorrt")]


@pytest.mark.parametrize("precision, seed", [("float16", s) for s in (32, 52, 74, 111, *_NATIVE_SEEDS[:6])]
                         + [("bfloat16", s) for s in (17, *_NATIVE_SEEDS[:4])])
def test_typed_graphs_of_generated_specs_verify(precision, seed):
    model = load_spec(random_spec(seed))
    target = get_target("tensorrt", precision)
    assert not check_target(model, target)
    lowered = lower(model, target)
    runner = OnnxRuntimeRunner(lowered.model_bytes, threads=1, precision=precision)
    report = verify(model, runner, io_description(model, lowered), seed=seed)
    assert report.passed and report.precision == precision
