"""SetMask: a bool [batch, time] model input as a sequence's mask (Keras `layer(x, mask=m)`).
Agreement with Keras: tests/keras_models/breadth_bool_mask.* (imported as SetMask layers)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from rnncompile.io import TensorIO
from rnncompile.build import build
from rnncompile.cli import main
from rnncompile.errors import RunError
from rnncompile.feeds import check_feeds
from rnncompile.lower import lower
from rnncompile.onnx_trt_check import check_model
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec

SPEC = {"layers": [
    {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
    {"class_name": "Input", "name": "m", "shape": [None], "dtype": "bool"},
    {"class_name": "Embedding", "name": "e", "inputs": "t", "input_dim": 9, "output_dim": 3, "mask_zero": True},
    {"class_name": "SetMask", "name": "s", "inputs": ["e", "m"]},
    {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True}], "outputs": ["g"]}


def test_builds_verifies_every_pattern_and_lowers_for_tensorrt(tmp_path):
    result = build(SPEC, tmp_path / "out")
    patterns = {c.pattern for c in result.report.cases}
    assert {"right", "left", "gaps", "empty"} <= patterns
    assert not check_model(lower(load_spec(SPEC), "tensorrt").model_bytes).findings


def test_the_bool_input_replaces_the_embedding_mask():
    model = load_spec(SPEC)
    t = np.array([[1, 2, 0, 3], [4, 5, 6, 7]], np.int32)
    m = np.array([[True, True, True, False], [False, True, True, True]])
    (g,), _ = run_reference(model, {"t": t, "m": m})
    assert np.all(g[0, 3] == g[0, 2])        # step 3 masked by m, though its token is not 0
    assert not np.allclose(g[0, 2], g[0, 1])  # step 2 runs, though its token is 0
    assert np.all(g[1, 0] == 0)               # leading masked step: zeros until the first valid one


def test_feeds_take_bool_or_0_1_and_refuse_other_values():
    inputs = [TensorIO("m", "bool", (None, None))]
    out = check_feeds(inputs, {"m": np.array([[1, 0]])})
    assert out["m"].dtype == bool and out["m"].tolist() == [[True, False]]
    with pytest.raises(RunError, match="expected a bool mask"):
        check_feeds(inputs, {"m": np.array([[2, 0]])})
    with pytest.raises(RunError, match="expected a bool mask"):
        check_feeds(inputs, {"m": np.array([["a", "b"]])})


@pytest.mark.parametrize("mask_input,x_shape,needle", [
    ({"shape": [None], "dtype": "int32"}, [None, 3], "bool (batch, time) mask"),
    ({"shape": [4], "dtype": "bool"}, [5, 3], "the mask has 4 steps, the sequence 5"),
    ({"shape": [None, 2], "dtype": "bool"}, [None, 3], "bool (batch, time) mask"),
    ({"shape": [None], "dtype": "bool"}, [3], "expects a sequence"),
])
def test_bad_inputs_are_clean_errors(mask_input, x_shape, needle, tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": x_shape},
                       dict({"class_name": "Input", "name": "m"}, **mask_input),
                       {"class_name": "SetMask", "name": "s", "inputs": ["x", "m"]}]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "layers[2]" in r.output and needle in r.output, r.output
