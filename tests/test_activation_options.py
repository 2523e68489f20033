"""The activation layers with their options: ReLU(max_value, negative_slope, threshold), ELU(alpha),
Softmax(axis). The reference follows Keras 3's formulas (pinned against Keras itself by the
tests/goldens `relu_*`, `elu_*` and `softmax_axes` cases); here: the formulas on exact edge values,
onnxruntime against the reference, TensorRT's parser rules and typed fp16 builds, the Keras mapping
(Keras 3 and Keras 2 option names, files with edited options), and hostile options refused with
the JSON path or the Keras option named."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import rnncompile
from rnncompile.cli import main
from rnncompile.errors import SpecError
from rnncompile.keras import import_keras, load_model_file
from rnncompile.keras.fields import KindTable, Refused, map_layer
from rnncompile.lower import lower
from rnncompile.onnx_trt_check import check_model
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec
from rnncompile.targets import get_target

from helpers import MIXED, ort_vs_reference, tokens
from test_keras_import import MODELS, _layer, _rewrite_keras

X = np.array([-7, -6, -1, -0.3, -0.0, 0.0, 0.1, 0.2, 0.29999998, 0.3, 0.30000004, 0.5, 1, 6, 6.0000005, 9],
             np.float32)


def _one(layer: dict, x: np.ndarray, shape=None):
    spec = {"name": "m", "layers": [{"class_name": "Input", "name": "x", "shape": list(shape or x.shape[1:])},
                                    dict(layer, name="l")], "outputs": ["l"]}
    ref, got = ort_vs_reference(spec, {"x": x})
    return ref["l"], got["l"]


def _keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras 3's ReLU.static_call, op by op in float32 (keras/src/activations/activations.py)."""
    x = np.asarray(x, np.float32)
    thr = np.float32(threshold)
    neg = np.maximum(-x + thr, np.float32(0)) if negative_slope else 1
    if threshold:
        y = np.where(x > thr, x, np.float32(0))
    else:
        y = np.maximum(x, np.float32(0))
    if max_value is not None:
        y = np.clip(y, np.float32(0), np.float32(max_value))
    if negative_slope:
        y = y - np.float32(negative_slope) * neg
    return y


RELU_OPTIONS = [dict(max_value=mx, negative_slope=s, threshold=t)
                for mx in (None, 6, 0.5, 0) for s in (0.0, 0.2) for t in (0.0, 0.3)] + [
    dict(max_value=0.2, negative_slope=0.1, threshold=0.3), dict(max_value=6.5, threshold=7.0)]


@pytest.mark.parametrize("opts", RELU_OPTIONS, ids=str)
def test_relu_formula_on_ties_and_in_onnxruntime(opts):
    x = X.reshape(1, 4, 4)
    ref, got = _one({"class_name": "ReLU", **opts}, x)
    want = _keras_relu(x, **opts)
    np.testing.assert_allclose(ref, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got, want)       # the same float32 ops: bit for bit


def test_relu_edge_cases_by_value():
    x = X.reshape(1, 4, 4)
    r, _ = _one({"class_name": "ReLU", "threshold": 0.3, "negative_slope": 0.5}, x)
    flat = dict(zip(X.tolist(), r.ravel().tolist()))
    assert flat[float(np.float32(0.3))] == 0                 # x == threshold: 0, not x
    assert flat[float(np.float32(0.30000004))] > 0.3
    assert flat[float(np.float32(0.2))] == pytest.approx(-0.05)               # slope * (x - threshold), not slope * x
    r, _ = _one({"class_name": "ReLU", "max_value": 0, "negative_slope": 0.3}, x)
    assert np.all(r[x >= 0] == 0) and np.allclose(r[x < 0], 0.3 * x[x < 0])
    r, _ = _one({"class_name": "ReLU", "max_value": 0.2, "threshold": 0.3}, x)   # max under threshold
    assert set(np.unique(r).tolist()) == {0.0, float(np.float32(0.2))}


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.5, -0.7, 0.0])
def test_elu_any_alpha(alpha):
    x = X.reshape(1, 4, 4)
    ref, _ = _one({"class_name": "ELU", "alpha": alpha}, x)
    a, x = float(np.float32(alpha)), x.astype(np.float64)
    np.testing.assert_allclose(ref, np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))), rtol=1e-12)


@pytest.mark.parametrize("axis,shape", [(-1, (5, 3)), (1, (5, 3)), ([1, 2], (5, 3)), ([-2], (5, 3)),
                                        ([1, 3], (4, 5, 3)), ([3, -2, 1], (4, 5, 3)), (2, (4, 5, 3))])
def test_softmax_axes(axis, shape):
    x = np.random.default_rng(0).normal(0, 3, (2, *shape)).astype(np.float32)
    ref, _ = _one({"class_name": "Softmax", "axis": axis}, x)
    axes = tuple(sorted(a % x.ndim for a in (axis if isinstance(axis, list) else [axis])))
    np.testing.assert_allclose(ref.sum(axis=axes), 1.0, rtol=1e-12)
    e = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(ref, e / e.sum(axis=axes, keepdims=True), rtol=1e-9)


def test_softmax_over_time_with_variable_length():
    x = np.random.default_rng(1).normal(size=(3, 9, 2)).astype(np.float32)
    _one({"class_name": "Softmax", "axis": 1}, x, shape=[None, 2])


def _masked(*layers, outputs):
    return {"name": "m", "layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "name": "e", "input_dim": 20, "output_dim": 3, "mask_zero": True},
        *layers], "outputs": outputs}


def test_relu_and_elu_keep_the_mask():
    spec = _masked({"class_name": "ReLU", "name": "r", "threshold": 0.05, "negative_slope": 0.2, "max_value": 0.3},
                   {"class_name": "ELU", "name": "el", "alpha": 0.4},
                   {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True}, outputs=["g", "el"])
    model = load_spec(spec)
    assert model.layers["r"].output_type().masked and model.layers["el"].output_type().masked
    ort_vs_reference(spec, {"t": tokens(MIXED, steps=7)})


# ------------------------------------------------------------------------------------------------
# TensorRT's parser rules, typed fp16 graphs, and the Activation layer unchanged

def _all_options_spec():
    layers = [{"class_name": "Input", "name": "x", "shape": [None, 3]},
              {"class_name": "Input", "name": "img", "shape": [4, 5, 3]}]
    outs = []
    for i, o in enumerate(RELU_OPTIONS):
        layers.append({"class_name": "ReLU", "name": f"r{i}", "inputs": "x", **o})
        outs.append(f"r{i}")
    for i, a in enumerate((1.0, -0.7, 2.5)):
        layers.append({"class_name": "ELU", "name": f"e{i}", "inputs": "x", "alpha": a})
        outs.append(f"e{i}")
    for i, (inp, axis) in enumerate((("x", -1), ("x", 1), ("x", [1, 2]), ("img", [1, 3]))):
        layers.append({"class_name": "Softmax", "name": f"s{i}", "inputs": inp, "axis": axis})
        outs.append(f"s{i}")
    layers.append({"class_name": "Activation", "name": "a", "inputs": "x", "activation": "relu6"})
    return {"name": "acts", "layers": layers, "outputs": outs + ["a"]}


def test_every_option_passes_the_tensorrt_parser_rules():
    low = lower(load_spec(_all_options_spec()), "tensorrt")
    res = check_model(low.model_bytes)
    assert not res.findings, res.findings


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_typed_builds_verify(precision, tmp_path):
    result = rnncompile.build(_all_options_spec(), tmp_path / "out", target=get_target("tensorrt", precision),
                              threads=1)
    assert result.report.passed


def test_lowering_uses_native_ops():
    model = load_spec(_all_options_spec())
    low = {n: model.layers[n].lowering() for n in ("r0", "r1", "r2", "r6", "r7", "s0", "s2", "e1")}
    # RELU_OPTIONS order: max_value, then negative_slope, then threshold vary
    assert low["r0"] == "Relu" and low["r1"] == "ThresholdedRelu" and low["r2"] == "LeakyRelu"
    assert low["r6"] == "LeakyRelu + Min"
    assert low["r7"] == "ThresholdedRelu + Min + Sub + Relu + Mul + Sub"
    assert low["s0"] == "Softmax" and "ReduceMax" in low["s2"] and low["e1"] == "Elu"


def test_activation_layer_and_dense_activations_unchanged():
    spec = {"name": "m", "layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 3]},
        {"class_name": "Dense", "name": "d", "units": 4, "activation": "elu"},
        {"class_name": "Activation", "name": "a", "activation": "relu6"},
        {"class_name": "Activation", "name": "s", "activation": "softmax"}], "outputs": ["s", "a"]}
    x = np.random.default_rng(2).normal(0, 4, (2, 5, 3)).astype(np.float32)
    ref, _ = ort_vs_reference(spec, {"x": x})
    assert np.allclose(ref["s"].sum(-1), 1)


# ------------------------------------------------------------------------------------------------
# Masks into Softmax: Keras applies them to the wrong axes (goldens fact F13), so refused

def test_softmax_refuses_a_masked_input(tmp_path):
    spec = _masked({"class_name": "Softmax", "name": "sm", "axis": 1}, outputs=["sm"])
    code, text = _check(spec, tmp_path)
    assert code == 2 and "layers[2]" in text and "mask" in text and "Activation('softmax')" in text, text


def test_activation_softmax_on_a_masked_input_still_works():
    spec = _masked({"class_name": "Activation", "name": "sm", "activation": "softmax"}, outputs=["sm"])
    ort_vs_reference(spec, {"t": tokens(MIXED, steps=5)})


# ------------------------------------------------------------------------------------------------
# Hostile spec options: exit 2, the layer's JSON path and the field named, no traceback

def _check(spec, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r.exit_code, r.output


@pytest.mark.parametrize("layer,needle", [
    ({"class_name": "ReLU", "threshold": -0.1}, "threshold"),
    ({"class_name": "ReLU", "negative_slope": -1}, "negative_slope"),
    ({"class_name": "ReLU", "max_value": -6}, "max_value"),
    ({"class_name": "ReLU", "max_value": "6"}, "max_value"),
    ({"class_name": "ReLU", "threshold": True}, "threshold"),
    ({"class_name": "ReLU", "threshold": 1e39}, "threshold"),
    ({"class_name": "ReLU", "slope": 0.1}, "slope"),
    ({"class_name": "ELU", "alpha": None}, "alpha"),
    ({"class_name": "ELU", "alpha": 1e7}, "alpha"),
    ({"class_name": "ELU", "alpha": "1"}, "alpha"),
    ({"class_name": "Softmax", "axis": 0}, "batch axis"),
    ({"class_name": "Softmax", "axis": [0, 1]}, "batch axis"),
    ({"class_name": "Softmax", "axis": 3}, "axis"),
    ({"class_name": "Softmax", "axis": [1, -2]}, "distinct"),
    ({"class_name": "Softmax", "axis": []}, "axis"),
    ({"class_name": "Softmax", "axis": 1.5}, "axis"),
    ({"class_name": "Softmax", "axis": [1, "2"]}, "axis"),
])
def test_bad_options_name_the_json_path(layer, needle, tmp_path):
    spec = {"name": "m", "layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                                    dict(layer, name="bad")], "outputs": ["bad"]}
    code, text = _check(spec, tmp_path)
    assert code == 2, text
    assert "layers[1]" in text and needle in text, text


@pytest.mark.parametrize("field,kind", [("threshold", "ReLU"), ("max_value", "ReLU"), ("alpha", "ELU")])
def test_nan_options_are_refused(field, kind):
    spec = {"name": "m", "layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                                    {"class_name": kind, "name": "bad", field: float("nan")}], "outputs": ["bad"]}
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert field in str(e.value) and "layers[1]" in str(e.value)


# ------------------------------------------------------------------------------------------------
# Keras mapping: Keras 3 and Keras 2 configs, and files with edited options

KINDS = KindTable()


@pytest.mark.parametrize("major", [2, 3])
@pytest.mark.parametrize("cls,cfg,kind,want", [
    ("ReLU", {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}, "ReLU",
     {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}),
    ("ReLU", {"max_value": None, "negative_slope": 0.1, "threshold": 0.5}, "ReLU",
     {"max_value": None, "negative_slope": 0.1, "threshold": 0.5}),
    ("ReLU", {"max_value": 3}, "ReLU", {"max_value": 3.0, "negative_slope": 0.0, "threshold": 0.0}),
    ("ThresholdedReLU", {"theta": 0.7}, "ReLU", {"max_value": None, "negative_slope": 0.0, "threshold": 0.7}),
    ("ThresholdedReLU", {}, "ReLU", {"max_value": None, "negative_slope": 0.0, "threshold": 1.0}),
    ("ELU", {"alpha": 0.3}, "ELU", {"alpha": 0.3}),
    ("ELU", {}, "ELU", {"alpha": 1.0}),
    ("Softmax", {"axis": 1}, "Softmax", {"axis": 1}),
    ("Softmax", {"axis": [1, 2]}, "Softmax", {"axis": [1, 2]}),
    ("Softmax", {"axis": [-1]}, "Softmax", {"axis": -1}),
    ("Softmax", {}, "Softmax", {"axis": -1}),
    ("Activation", {"activation": "relu"}, "Activation", {"activation": "relu"}),
])
def test_keras_options_map(major, cls, cfg, kind, want):
    m = map_layer(cls, dict(cfg, name="l", trainable=True, dtype="float32"), major, KINDS)
    assert m.kind.class_name == kind and m.config == want


@pytest.mark.parametrize("cls,cfg,needle", [
    ("ReLU", {"threshold": -1.0}, "threshold=-1.0"),
    ("ReLU", {"negative_slope": None}, "negative_slope=None"),
    ("ReLU", {"max_value": -6}, "max_value=-6"),
    ("ReLU", {"max_value": "six"}, "max_value='six'"),
    ("ReLU", {"max_value": float("inf")}, "max_value=inf"),
    ("ReLU", {"alpha": 0.1}, "alpha=0.1"),                 # not a ReLU option: refused by name
    ("ThresholdedReLU", {"theta": -0.5}, "theta=-0.5"),
    ("ELU", {"alpha": float("nan")}, "alpha=nan"),
    ("ELU", {"alpha": [1.0]}, "alpha=[1.0]"),
    ("ELU", {"alpha": None}, "alpha=None"),
    ("Softmax", {"axis": "last"}, "axis='last'"),
    ("Softmax", {"axis": [1, None]}, "axis=[1, None]"),
    ("Softmax", {"axis": True}, "axis=True"),
    ("Softmax", {"axis": []}, "axis=[]"),
])
def test_odd_keras_options_are_refused_by_name(cls, cfg, needle):
    with pytest.raises(Refused) as e:
        map_layer(cls, dict(cfg, name="l"), 3, KINDS)
    assert needle in str(e.value)


def _edit_activations(tmp_path, layer: str, cls: str, config: dict) -> Path:
    def edit(cfg):
        entry = _layer(cfg, layer)
        entry["class_name"] = cls
        entry["config"].update(config)
    return _rewrite_keras(MODELS / "activations.keras", tmp_path / f"{layer}.keras", edit)


def test_keras_file_with_options_imports_and_builds(tmp_path):
    def edit(cfg):
        _layer(cfg, "relu6")["config"].update(max_value=2.0, negative_slope=0.1, threshold=0.2)
        _layer(cfg, "elu")["config"]["alpha"] = 0.25
        _layer(cfg, "softmax")["config"]["axis"] = [1, 2]
    p = _rewrite_keras(MODELS / "activations.keras", tmp_path / "opts.keras", edit)
    spec, _ = import_keras(p)
    by_name = {l["name"]: l for l in spec["layers"]}
    assert by_name["relu6"] == {**by_name["relu6"], "class_name": "ReLU", "max_value": 2.0,
                                "negative_slope": 0.1, "threshold": 0.2}
    assert by_name["elu"]["class_name"] == "ELU" and by_name["elu"]["alpha"] == 0.25
    assert by_name["softmax"]["class_name"] == "Softmax" and by_name["softmax"]["axis"] == [1, 2]
    result = rnncompile.build(p, tmp_path / "out", threads=1)
    assert result.report.passed


def test_unchanged_fixture_still_matches_keras():
    """The activations fixture (ReLU(max_value=6), ELU(), Softmax()) imports as the new kinds and
    still equals Keras's predict."""
    model = load_model_file(MODELS / "activations.keras")
    kinds = {n: l.class_name for n, l in model.layers.items()}
    assert kinds["relu6"] == "ReLU" and kinds["elu"] == "ELU" and kinds["softmax"] == "Softmax"
    with np.load(MODELS / "activations.npz") as d:
        feeds = {"x": d["call0/in/x"]}
        want = d["call0/out/0"]
    ref, _ = run_reference(model, feeds)
    np.testing.assert_allclose(ref[0], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer,cls,config,needle", [
    ("relu6", "ReLU", {"threshold": -0.5}, "threshold=-0.5"),
    ("relu6", "ReLU", {"max_value": -1}, "max_value=-1"),
    ("elu", "ELU", {"alpha": "big"}, "alpha='big'"),
    ("softmax", "Softmax", {"axis": 0}, "batch axis"),
    ("softmax", "Softmax", {"axis": {"a": 1}}, "axis={'a': 1}"),
    ("elu", "ELU", {"beta": 2.0}, "beta=2.0"),
])
def test_keras_file_with_odd_options_is_refused(tmp_path, layer, cls, config, needle):
    p = _edit_activations(tmp_path, layer, cls, config)
    with pytest.raises(SpecError) as e:
        load_model_file(p)
    text = str(e.value)
    for n in (p.name, f"'{layer}'", cls, needle):
        assert n in text, f"{n!r} not in: {text}"
