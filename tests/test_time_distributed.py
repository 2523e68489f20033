"""TimeDistributed around per-sample layers (the CRNN front end): no Loop/Scan, TensorRT-clean,
the input mask kept, bad wrapped layers refused cleanly. Agreement with Keras: the goldens
`timedistributed_*` and tests/keras_models/breadth_td_crnn.*"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rnncompile.cli import main
from rnncompile.lower import lower
from rnncompile.onnx_graph import describe
from rnncompile.onnx_trt_check import check_model
from rnncompile.spec import load_spec
from rnncompile.summary import summary_rows


def _spec(inner, shape=(None, 8, 6, 1)):
    return {"layers": [{"class_name": "Input", "name": "x", "shape": list(shape)},
                       {"class_name": "TimeDistributed", "name": "td", "layer": inner}]}


CRNN = {"layers": [
    {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
    {"class_name": "Embedding", "name": "e", "input_dim": 9, "output_dim": 12, "mask_zero": True},
    {"class_name": "Reshape", "name": "r", "target_shape": [-1, 3, 4, 1]},
    {"class_name": "TimeDistributed", "name": "c", "layer": {"class_name": "Conv2D", "filters": 2,
                                                              "kernel_size": [2, 2], "strides": [1, 2]}},
    {"class_name": "TimeDistributed", "name": "p", "layer": {"class_name": "MaxPooling2D", "pool_size": [2, 1]}},
    {"class_name": "TimeDistributed", "name": "f", "layer": {"class_name": "Flatten"}},
    {"class_name": "LSTM", "name": "l", "units": 3}]}


@pytest.mark.parametrize("target", ["onnxruntime", "tensorrt"])
def test_lowers_without_loops_and_tensorrt_clean(target):
    low = lower(load_spec(CRNN), target)
    ops = set(describe(low.model_bytes)["ops"])
    assert {"Conv", "MaxPool", "Flatten"} <= ops and not ops & {"Loop", "Scan"}
    if target == "tensorrt":
        assert not check_model(low.model_bytes).findings


def test_builds_and_verifies_and_summary(tmp_path):
    from rnncompile.build import build
    build(CRNN, tmp_path / "out")
    rows = {r["layer"]: r for r in summary_rows(load_spec(CRNN))}
    assert "Conv2D on time folded into the batch axis" in rows["c"]["lowering"]


def test_keeps_the_input_mask():
    spec = {"layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "name": "e", "input_dim": 9, "output_dim": 4, "mask_zero": True},
        {"class_name": "TimeDistributed", "name": "td", "layer": {"class_name": "Flatten"}}]}
    assert load_spec(spec).layers["td"].output_type().masked


@pytest.mark.parametrize("inner,shape,where,needle", [
    ({"class_name": "LSTM", "units": 2}, (None, 8, 6, 1), "layers[1].layer.class_name", "cannot wrap LSTM"),
    ({"class_name": "Dense", "units": 2}, (None, 8, 6, 1), "layers[1].layer.class_name", "cannot wrap Dense"),
    ({"class_name": "Conv2D", "filters": 2, "kernel_size": [9, 9]}, (None, 8, 6, 1), "layers[1]", "Conv2D"),
    ({"class_name": "Conv2D", "filters": 2}, (None, 8, 6, 1), "layers[1].layer", "kernel_size"),
    ({"class_name": "Flatten"}, (3,), "layers[1]", "sequence"),
    ({"class_name": "Nope"}, (None, 8, 6, 1), "layers[1].layer.class_name", "expected one of"),
])
def test_bad_wrapped_layers_are_clean_errors(inner, shape, where, needle, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(_spec(inner, shape)))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output and "internal error" not in r.output, r.output
    assert where in r.output and needle in r.output, r.output
