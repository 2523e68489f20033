"""Issue 14's layer kinds around the recurrent core: built and verified (every padding pattern)
from JSON, reference against onnxruntime with masks, and hostile options refused cleanly (exit 2,
the layer's JSON path named, nothing written). Agreement with Keras: tests/goldens/ (the
`concatenate_*`, `add_*`, ..., `conv1d_*` cases) and tests/keras_models/breadth_*."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnncompile.build import build
from rnncompile.cli import main
from rnncompile.lower import lower
from rnncompile.onnx_graph import describe
from rnncompile.spec import load_spec

from helpers import MIXED, ort_vs_reference, tokens


def _inp(name, shape, dtype=None):
    d = {"class_name": "Input", "name": name, "shape": shape}
    return dict(d, dtype=dtype) if dtype else d


def _two_masked(*layers, outputs):
    return {"name": "m", "layers": [
        _inp("a", [None], "int32"), {"class_name": "Embedding", "name": "ea", "input_dim": 20, "output_dim": 4,
                                     "mask_zero": True},
        _inp("b", [None], "int32"), {"class_name": "Embedding", "name": "eb", "input_dim": 20, "output_dim": 4,
                                     "mask_zero": True},
        _inp("x", [None, 4]), *layers], "outputs": outputs}


MERGES = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


@pytest.mark.parametrize("kind", MERGES)
@pytest.mark.parametrize("inputs", [["ea", "eb"], ["ea", "x"], ["x", "eb"]])
def test_merge_masks_reach_the_next_rnn(kind, inputs):
    """The merged mask (or its absence) decides what the GRU skips: reference == onnxruntime on
    rows of every padding pattern, second input's patterns shifted."""
    spec = _two_masked({"class_name": kind, "name": "m", "inputs": inputs},
                       {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True},
                       outputs=["g", "m"])
    feeds = {"a": tokens(MIXED, steps=7, seed=1), "b": tokens(MIXED[2:] + MIXED[:2], steps=7, seed=2),
             "x": np.random.default_rng(3).normal(size=(5, 7, 4)).astype(np.float32)}
    ref, _ = ort_vs_reference(spec, feeds)
    masked = [i for i in inputs if i != "x"]
    model = load_spec(spec)
    # all masked -> masked output; Concatenate on features with an unmasked input -> all valid
    assert model.layers["m"].output_type().masked == (len(masked) == 2)


def test_time_axis_concatenate_joins_masks():
    spec = _two_masked({"class_name": "Concatenate", "name": "m", "inputs": ["ea", "x"], "axis": 1},
                       {"class_name": "LSTM", "name": "l", "units": 3}, outputs=["l"])
    feeds = {"a": tokens(MIXED, steps=5, seed=1), "b": tokens(MIXED, steps=5, seed=2),
             "x": np.random.default_rng(3).normal(size=(5, 6, 4)).astype(np.float32)}
    ort_vs_reference(spec, feeds)


SMOKE = {"name": "breadth", "layers": [
    _inp("t", [None], "int32"),
    {"class_name": "Embedding", "name": "emb", "input_dim": 12, "output_dim": 4, "mask_zero": True},
    {"class_name": "BatchNormalization", "name": "bn"},
    {"class_name": "LayerNormalization", "name": "ln"},
    {"class_name": "LeakyReLU", "name": "leaky", "negative_slope": 0.1},
    {"class_name": "LSTM", "name": "lstm", "units": 3},
    {"class_name": "RepeatVector", "name": "rep", "n": 6},
    {"class_name": "Conv1D", "name": "conv", "filters": 4, "kernel_size": 3, "padding": "causal", "dilation_rate": 2},
    {"class_name": "MaxPooling1D", "name": "mp", "padding": "same"},
    {"class_name": "AveragePooling1D", "name": "ap", "pool_size": 2, "strides": 1},
    {"class_name": "Permute", "name": "perm", "dims": [2, 1]},
    {"class_name": "Reshape", "name": "resh", "target_shape": [2, -1]},
    {"class_name": "Flatten", "name": "flat"},
    {"class_name": "Conv1D", "name": "conv2", "inputs": "emb", "filters": 2, "kernel_size": 2, "strides": 2},
], "outputs": ["flat", "conv2"]}


def test_every_new_kind_builds_and_verifies(tmp_path):
    """build() runs the verifier (seeded inputs of every padding pattern, batch 1/3/4, long and
    short sequences, long enough for the valid Conv1D) and raises if any output disagrees."""
    build(SMOKE, tmp_path / "out")
    assert (tmp_path / "out" / "model.onnx").is_file()
    ops = set(describe(lower(load_spec(SMOKE)).model_bytes)["ops"])
    assert {"Conv", "MaxPool", "AveragePool", "LeakyRelu", "Tile", "Transpose"} <= ops
    assert not ops & {"Loop", "Scan"}


def _check(spec, tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = CliRunner().invoke(main, ["check", str(path)])
    text = r.output
    assert "Traceback" not in text and "internal error" not in text, text
    return r.exit_code, text


@pytest.mark.parametrize("layer,where,needle", [
    ({"class_name": "Concatenate", "name": "bad", "inputs": ["ea", "x"], "axis": 3}, "bad", "axis 3"),
    ({"class_name": "Concatenate", "name": "bad", "inputs": ["ea", "x"], "axis": 0}, "bad", "axis 0"),
    ({"class_name": "Add", "name": "bad", "inputs": ["ea", "r"]}, "bad", "cannot merge"),
    ({"class_name": "Concatenate", "name": "bad", "inputs": ["ea", "r"], "axis": 1}, "bad", "differ on axis 2"),
    ({"class_name": "Subtract", "name": "bad", "inputs": ["ea", "eb", "x"]}, "bad", "exactly 2"),
    ({"class_name": "Add", "name": "bad", "inputs": ["ea"]}, "bad", "at least 2"),
    ({"class_name": "Reshape", "name": "bad", "inputs": "r", "target_shape": [7]}, "bad", "cannot reshape"),
    ({"class_name": "Reshape", "name": "bad", "inputs": "r", "target_shape": [-1, -1]}, "bad", "at most one -1"),
    ({"class_name": "Permute", "name": "bad", "inputs": "ea", "dims": [1, 1]}, "bad", "permutation"),
    ({"class_name": "BatchNormalization", "name": "bad", "inputs": "ea", "axis": 3}, "bad", "axis"),
    ({"class_name": "LayerNormalization", "name": "bad", "inputs": "ea", "axis": [2, 2]}, "bad", "axis"),
    ({"class_name": "Conv1D", "name": "bad", "inputs": "ea", "filters": 3, "kernel_size": 2, "groups": 2},
     "bad", "groups"),
    ({"class_name": "Conv1D", "name": "bad", "inputs": "r", "filters": 3, "kernel_size": 7}, "bad", "shorter"),
    ({"class_name": "RepeatVector", "name": "bad", "inputs": "ea", "n": 2}, "bad", "vector"),
    ({"class_name": "AveragePooling1D", "name": "bad", "inputs": "ea", "pool_size": 2, "padding": "same"},
     "bad", "unevenly"),
    ({"class_name": "Conv2D", "name": "bad", "inputs": "ea", "filters": 2, "kernel_size": [2, 2]}, "bad", "images"),
    ({"class_name": "Dot", "name": "bad", "inputs": ["ea", "r"], "axes": 2}, "bad", "differ"),
    ({"class_name": "Dot", "name": "bad", "inputs": ["ea", "eb"], "axes": 0}, "bad", "batch axis"),
    ({"class_name": "LeakyReLU", "name": "bad", "inputs": "ea", "negative_slope": -1}, "layers[6]", "negative_slope"),
])
def test_bad_options_are_clean_errors(layer, where, needle, tmp_path):
    spec = _two_masked({"class_name": "Reshape", "name": "r", "inputs": "x", "target_shape": [-1, 2]}, layer,
                       outputs=[layer["name"]])
    spec["layers"][4] = _inp("x", [3, 4])   # fixed T for the Reshape and the too-long kernel
    code, text = _check(spec, tmp_path)
    assert code == 2, text
    assert where in text and needle in text, text


def test_summary_says_where_keras_drops_the_mask():
    from rnncompile.summary import summary_rows
    rows = {r["layer"]: r for r in summary_rows(load_spec(SMOKE))}
    assert "drops the input mask" in rows["conv2"]["lowering"]          # Conv1D on a masked Embedding
    assert "drops the input mask" not in rows["conv"]["lowering"]       # its input carries no mask
    assert rows["ln"]["mask"] == "yes" and rows["flat"]["mask"] == ""


_CORE = {"Input", "Embedding", "Masking", "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Dense",
         "Dropout", "Activation", "GlobalAveragePooling1D", "GlobalMaxPooling1D"}


def _breadth_goldens():
    root = Path(__file__).resolve().parent / "goldens"
    for spec in sorted(root.glob("*/spec.json")):
        kinds = {l["class_name"] for l in json.loads(spec.read_text())["layers"]}
        if kinds - _CORE:
            yield spec.parent


@pytest.mark.parametrize("case", list(_breadth_goldens()), ids=lambda p: p.name)
def test_kinds_around_the_core_lower_for_tensorrt(case):
    """Every golden model that uses a kind of issue 14 lowers for TensorRT with no parser-rule
    finding, and that exact graph matches the reference on onnxruntime."""
    from rnncompile.backends import default_factory
    from rnncompile.build import io_description
    from rnncompile.lower import lower
    from rnncompile.onnx_trt_check import check_model
    from rnncompile.qa.goldens import read_golden
    from rnncompile.verify import verify

    model, _, _ = read_golden(case)
    low = lower(model, "tensorrt")
    assert not check_model(low.model_bytes).findings
    report = verify(model, default_factory(1)(low.model_bytes), io_description(model, low))
    assert report.passed


@pytest.mark.parametrize("cls,extra", [("MaxPooling1D", {"pool_size": 3, "strides": 2}),
                                       ("AveragePooling1D", {"pool_size": 3}),
                                       ("Conv1D", {"filters": 2, "kernel_size": 4})])
def test_a_sequence_shorter_than_the_window_is_a_clear_error(cls, extra):
    """The reference used to crash with a raw NumPy error (found by the breadth spec generator)."""
    import numpy as np

    from rnncompile.errors import RunError
    from rnncompile.reference import run_reference
    from rnncompile.spec import load_spec

    m = load_spec({"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                              {"class_name": cls, "name": "w", **extra}], "seed": 0})
    with pytest.raises(RunError, match=r"layer 'w'.*fewer than the window"):
        run_reference(m, {"x": np.zeros((1, 2, 3))}, {})
