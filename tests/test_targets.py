"""Targets are data the lowering consults; backends are the one way to run a model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnncompile
from rnncompile.backends import default_factory, runner_factory
from rnncompile.errors import RunError, TargetError, VerificationError
from rnncompile.lower import lower
from rnncompile.spec import load_spec
from rnncompile.targets import ONNXRUNTIME, TENSORRT, get_target, positional_params

ROOT = Path(__file__).resolve().parents[1]


def _nodes(model_bytes):
    return onnx.load_from_string(model_bytes).graph.node


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def test_positional_params_serve_compact_and_positional_readers():
    # LSTM [recurrent, cell, cell] where only the cell activation takes alpha: both readings agree
    alphas, betas = positional_params([("Sigmoid", ()), ("LeakyRelu", (1.0,)), ("LeakyRelu", (1.0,))])
    assert alphas == [1.0, 1.0, 1.0] and betas == []
    # Bidirectional GRU [HardSigmoid, LeakyRelu] x 2
    acts = [("HardSigmoid", (1 / 6, 0.5)), ("LeakyRelu", (1.0,))] * 2
    alphas, betas = positional_params(acts)
    assert alphas == [1 / 6, 1.0, 1 / 6, 1.0]
    assert betas[0] == betas[2] == 0.5 and betas[1] == 0.5  # compact reader takes betas[1] for act 2
    with pytest.raises(ValueError):  # no single list can serve both readers here
        positional_params([("Sigmoid", ()), ("LeakyRelu", (0.2,)), ("LeakyRelu", (1.0,))])


def test_tensorrt_graph_follows_the_targets_data():
    spec = {"name": "t", "seed": 1, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 4]},
        {"class_name": "Masking", "mask_value": 0.0},
        {"class_name": "Bidirectional", "layer": {"class_name": "GRU", "units": 3, "activation": "linear",
                                                  "return_sequences": True}},
        {"class_name": "SimpleRNN", "units": 2, "activation": "linear"}]}
    model = load_spec(spec)
    default = {n.op_type for n in _nodes(lower(model).model_bytes)}
    trt_nodes = _nodes(lower(model, "tensorrt").model_bytes)
    assert "CumSum" in default
    for node in trt_nodes:
        a = _attrs(node)
        if node.op_type in ("GRU", "RNN", "LSTM"):
            acts = [s.decode() for s in a["activations"]]
            assert "Affine" not in acts and "LeakyRelu" in acts
            assert len(a.get("activation_alpha", acts)) == len(acts)  # one per activation
    # the default target keeps Affine (byte-identical to earlier releases)
    assert any("Affine".encode() in _attrs(n).get("activations", []) for n in _nodes(lower(model).model_bytes))
    # CumSum runs on float for TensorRT: its input is a Cast to float
    producers = {o: n for n in trt_nodes for o in n.output}
    for node in trt_nodes:
        if node.op_type == "CumSum":
            src = producers[node.input[0]]
            assert src.op_type == "Cast" and _attrs(src)["to"] == onnx.TensorProto.FLOAT


def test_tensorrt_build_is_verified_on_onnxruntime(tmp_path):
    result = rnncompile.build(ROOT / "examples/sentiment.json", tmp_path / "out", target="tensorrt")
    assert result.report.passed
    man = json.loads((tmp_path / "out/manifest.json").read_text())
    assert man["target"] == "tensorrt" and man["precision"] == "float32"


def test_scan_only_cells_are_refused_for_tensorrt_naming_layer_and_alternative():
    spec = {"name": "g", "seed": 1, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 4]},
        {"class_name": "LSTM", "name": "enc", "units": 3, "activation": "gelu"}]}
    model = load_spec(spec)
    assert lower(model).model_bytes  # onnxruntime: the exact Scan fallback
    with pytest.raises(TargetError) as e:
        lower(model, "tensorrt")
    msg = str(e.value)
    assert "'enc'" in msg and "gelu" in msg and "--target onnxruntime" in msg and "tanh" in msg


def test_summary_says_per_layer_whether_the_op_is_native_and_why_not():
    from rnncompile.summary import render_summary, summary_rows

    spec = {"name": "s", "seed": 1, "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 4]},
        {"class_name": "LSTM", "name": "a", "units": 3, "activation": "relu", "return_sequences": True},
        {"class_name": "GRU", "name": "b", "units": 3, "activation": "selu"}]}
    model = load_spec(spec)
    rows = {r["layer"]: r for r in summary_rows(model, "onnxruntime")}
    assert rows["a"]["fused"]["native"] and "activation='relu'" in rows["a"]["fused"]["keras_cudnn_conditions_unmet"][0]
    assert not rows["b"]["fused"]["native"] and "selu" in rows["b"]["fused"]["why_not"]
    assert "refused" not in rows["b"]
    text = render_summary(model, "tensorrt")
    assert "REFUSED on tensorrt: b (GRU)" in text
    assert "a: native fused op" in text


def test_target_and_precision_names():
    assert get_target() is ONNXRUNTIME and get_target("tensorrt") is TENSORRT
    assert get_target("tensorrt", "fp16").precision == "float16"
    with pytest.raises(rnncompile.SpecError):
        get_target("tflite")
    with pytest.raises(rnncompile.SpecError):
        get_target(None, "fp8")
    assert TENSORRT.accepts("CumSum", "float32") and not TENSORRT.accepts("CumSum", "int64")
    assert not TENSORRT.accepts("Equal", "bool") and ONNXRUNTIME.accepts("Equal", "bool")


def test_localization_reruns_on_the_runtime_that_failed(tmp_path):
    """A runner factory is how every caller runs a model: a build whose runtime is off is
    diagnosed on that same runtime (its debug graphs go through the same factory)."""
    base = default_factory(1)
    opened = []

    class Off:
        def __init__(self, inner):
            self.inner, self.name, self.precision, self.inputs = inner, "off", "float32", inner.inputs

        def run(self, feeds):
            return {k: v + np.float32(0.1) for k, v in self.inner.run(feeds).items()}

    def factory(model):
        opened.append(model)
        return Off(base(model))

    with pytest.raises(VerificationError):
        rnncompile.build(ROOT / "examples/lstm_classifier.json", tmp_path / "out", runner_factory=factory)
    assert len(opened) >= 2  # the artifact, then at least one debug graph on the same runtime
    assert not (tmp_path / "out").exists()


def test_runner_factory_refuses_unknown_backends_and_options():
    with pytest.raises(RunError):
        runner_factory("tflite")
    with pytest.raises(RunError):
        runner_factory("onnxruntime", thread=2)


def test_bad_input_errors_share_one_base_and_internal_errors_keep_their_traceback(tmp_path, monkeypatch):
    import subprocess
    import sys

    from rnncompile import errors

    for cls in (errors.SpecError, errors.ModelFileError, errors.PluginError, errors.TargetError,
                errors.RunError):
        assert issubclass(cls, errors.InputError) and cls("x").exit_code == 2
    assert not issubclass(errors.VerificationError, errors.InputError)
    report = object()
    assert errors.VerificationError("bad", report=report).report is report
    # an internal bug (here: a plugin layer whose shape rule crashes) is exit 3 with one line, and
    # RNNCOMPILE_DEBUG=1 shows its traceback
    plugin = tmp_path / "crashy.py"
    plugin.write_text(
        "import rnncompile\n"
        "@rnncompile.register\n"
        "class Crashy(rnncompile.Layer):\n"
        "    class_name = 'Crashy'\n"
        "    def output_types(self, inputs):\n"
        "        return [inputs[0]]\n"
        "    def reference(self, inputs, weights):\n"
        "        return inputs\n"
        "    def lower(self, g, inputs, weights):\n"
        "        raise ZeroDivisionError('bug in the plugin')\n")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"name": "c", "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 2]}, {"class_name": "Crashy"}]}))
    cmd = [sys.executable, "-m", "rnncompile.cli", "build", "--plugin", str(plugin), str(spec),
           "-o", str(tmp_path / "out")]
    plain = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode == 3 and "internal error: ZeroDivisionError" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path,
                           env={**__import__("os").environ, "RNNCOMPILE_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "bug in the plugin" in debug.stderr
