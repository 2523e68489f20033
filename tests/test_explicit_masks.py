"""Explicit masks computed by other layers and ops (Keras `layer(x, mask=ops.not_equal(ids, 0))`,
`ops.logical_and(m1, m2)`, `ops.any(ops.not_equal(x, 0), axis=-1)`, ...): imported as the
Compare / LogicalOp / ReduceBool kinds feeding a SetMask. Agreement with Keras 3.15 (every file,
every output, reference and onnxruntime): tests/keras_models/explicit_mask_* through
tests/test_keras_import.py::test_matches_keras_predict; here: the imported structure, verified
builds over every padding pattern, TensorRT rules, the exact semantics and the refusals."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnncompile.build import build
from rnncompile.errors import SpecError
from rnncompile.keras import import_keras, load_model_file
from rnncompile.layer import Tensor
from rnncompile.lower import lower
from rnncompile.onnx_trt_check import check_model
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec

ort = pytest.importorskip("onnxruntime")

MODELS = Path(__file__).parent / "keras_models"
FIXTURES = ["explicit_mask_compare", "explicit_mask_logical", "explicit_mask_override", "explicit_mask_attention"]


def _kinds(name: str) -> tuple[dict[str, str], dict[str, dict]]:
    spec, _ = import_keras(MODELS / f"{name}.keras")
    return {l["name"]: l["class_name"] for l in spec["layers"]}, {l["name"]: l for l in spec["layers"]}


def test_imported_structure():
    kinds, layers = _kinds("explicit_mask_compare")
    assert kinds["lstm.mask"] == "SetMask" and layers["lstm.mask"]["inputs"] == ["x", "not_equal"]
    assert layers["not_equal"] == {"class_name": "Compare", "name": "not_equal", "inputs": "ids",
                                   "op": "not_equal", "value": 0}
    assert layers["less"]["op"] == "greater" and layers["less"]["value"] == 0.5   # 0.5 < w is w > 0.5
    assert layers["cast"]["op"] == "not_equal" and layers["cast"]["value"] == 0    # cast to bool is != 0
    assert "gru_after.mask" not in kinds             # the LSTM's output carries the explicit mask on
    kinds, layers = _kinds("explicit_mask_logical")
    assert {layers[n]["op"] for n in kinds if kinds[n] == "LogicalOp"} == {"and", "or", "not", "xor"}
    kinds, layers = _kinds("explicit_mask_override")
    x, m = layers["lstm.mask"]["inputs"]
    assert x == "emb" and layers[m]["class_name"] == "Compare" and layers[m]["inputs"] == "t2"   # t2's mask wins
    assert sorted(layers[n]["op"] for n in kinds if kinds[n] == "ReduceBool") == ["all", "any", "any"]
    kinds, _ = _kinds("explicit_mask_attention")
    assert kinds["att.mask0"] == kinds["att.mask1"] == kinds["gap.mask"] == "SetMask"


@pytest.mark.parametrize("name", FIXTURES)
def test_builds_verified_over_every_padding_pattern_and_passes_tensorrt_rules(name, tmp_path):
    result = build(MODELS / f"{name}.keras", tmp_path / "out")
    assert result.report.passed
    assert {"right", "left", "gaps"} <= {c.pattern for c in result.report.cases}
    model = load_model_file(MODELS / f"{name}.keras")
    assert not check_model(lower(model, "tensorrt").model_bytes).findings


def test_the_masks_matter_in_the_fixtures():
    """Each explicit mask changes the result: rerun with the mask's source all-valid."""
    model = load_model_file(MODELS / "explicit_mask_compare.keras")
    d = np.load(MODELS / "explicit_mask_compare.npz")
    feeds = {n: d[f"call0/in/{n}"].astype(model.input_type(n).dtype) for n in model.inputs}
    ref, _ = run_reference(model, feeds)
    plain = dict(feeds, ids=np.ones_like(feeds["ids"]), w=np.ones_like(feeds["w"]))
    other, _ = run_reference(model, plain)
    for k, (a, b) in enumerate(zip(ref, other)):
        assert not np.allclose(a, b), f"output {k} ignores its mask"


def _spec(mask_layers, mask_name, extra_inputs):
    return {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 2]}, *extra_inputs, *mask_layers,
                       {"class_name": "SetMask", "name": "s", "inputs": ["x", mask_name]},
                       {"class_name": "GRU", "name": "g", "units": 2, "return_sequences": True}],
            "outputs": ["g"]}


def _both(spec, feeds):
    model = load_spec(spec)
    (ref,), _ = run_reference(model, feeds)
    sess = ort.InferenceSession(lower(model).model_bytes, providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, feeds)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
    return ref


def test_compare_uses_the_inputs_dtype_like_keras():
    """w > 0.1 with w = float32(0.1): False in Keras (float32 compare), so in the reference too."""
    spec = _spec([{"class_name": "Compare", "name": "c", "inputs": "w", "op": "greater", "value": 0.1}], "c",
                 [{"class_name": "Input", "name": "w", "shape": [None]}])
    x = np.arange(8, dtype=np.float32).reshape(1, 4, 2) / 8
    w = np.array([[1.0, 0.1, 0.2, 0.1]], np.float32)
    g = _both(spec, {"x": x, "w": w})
    assert np.all(g[0, 1] == g[0, 0]) and np.all(g[0, 3] == g[0, 2])   # 0.1f steps masked
    assert not np.allclose(g[0, 2], g[0, 1])


@pytest.mark.parametrize("op,value,expect", [
    ("equal", 2, [False, True, False, False]), ("not_equal", 2, [True, False, True, True]),
    ("greater", 2, [False, False, True, False]), ("greater_equal", 2, [False, True, True, False]),
    ("less", 2, [True, False, False, True]), ("less_equal", 2, [True, True, False, True]),
])
def test_compare_ops(op, value, expect):
    spec = _spec([{"class_name": "Compare", "name": "c", "inputs": "t", "op": op, "value": value}], "c",
                 [{"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"}])
    x = np.random.default_rng(0).normal(size=(1, 4, 2)).astype(np.float32)
    g = _both(spec, {"x": x, "t": np.array([[1, 2, 3, 0]], np.int32)})
    model = load_spec(spec)
    c = model.layers["c"]
    (m,) = c.reference([Tensor(np.array([[1, 2, 3, 0]]))], {})
    assert m.data.tolist() == [expect]
    assert g.shape == (1, 4, 2)


def test_logical_and_reduce_kinds_lower_exactly():
    spec = _spec([{"class_name": "Compare", "name": "nz", "inputs": "f", "op": "not_equal", "value": 0},
                  {"class_name": "ReduceBool", "name": "any", "inputs": "nz", "op": "any"},
                  {"class_name": "ReduceBool", "name": "all", "inputs": "nz", "op": "all"},
                  {"class_name": "LogicalOp", "name": "nall", "inputs": "all", "op": "not"},
                  {"class_name": "LogicalOp", "name": "x1", "inputs": ["any", "nall"], "op": "xor"},
                  {"class_name": "LogicalOp", "name": "m", "inputs": ["x1", "b"], "op": "or"}], "m",
                 [{"class_name": "Input", "name": "f", "shape": [None, 3]},
                  {"class_name": "Input", "name": "b", "shape": [None], "dtype": "bool"}])
    rng = np.random.default_rng(1)
    f = rng.normal(size=(3, 5, 3)).astype(np.float32)
    f[0, 1] = 0
    f[1, 2, 0] = 0
    b = rng.random((3, 5)) < 0.3
    _both(spec, {"x": rng.normal(size=(3, 5, 2)).astype(np.float32), "f": f, "b": b})
    assert not check_model(lower(load_spec(spec), "tensorrt").model_bytes).findings


@pytest.mark.parametrize("layer,inputs,needle", [
    ({"class_name": "Compare", "name": "c", "inputs": "m", "op": "greater", "value": 0}, [], "a bool input can only"),
    ({"class_name": "Compare", "name": "c", "inputs": "t", "op": "less", "value": 0.5}, [], "non-integer"),
    ({"class_name": "LogicalOp", "name": "c", "inputs": ["t", "m"], "op": "and"}, [], "expects bool inputs"),
    ({"class_name": "LogicalOp", "name": "c", "inputs": "m", "op": "and"}, [], "and takes 2 inputs"),
    ({"class_name": "ReduceBool", "name": "c", "inputs": "t", "op": "any"}, [], "expects a bool input"),
])
def test_bad_specs_are_clean_errors(layer, inputs, needle):
    spec = {"layers": [{"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
                       {"class_name": "Input", "name": "m", "shape": [None], "dtype": "bool"}, layer],
            "outputs": ["t"]}
    with pytest.raises(SpecError, match=needle):
        load_spec(spec)


# ------------------------------------------------------------------------------------------------
# Refusals: the op and the reason named.


def _edited(tmp_path, name, edit) -> Path:
    dst = tmp_path / f"{name}.keras"
    with zipfile.ZipFile(MODELS / f"{name}.keras") as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                edit({l["name"]: l for l in cfg["config"]["layers"]})
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    return dst


def _refused(path, *needles):
    with pytest.raises(SpecError) as e:
        load_model_file(path)
    for n in (path.name, *needles):
        assert n in str(e.value), f"{n!r} not in {e.value}"


def test_refuses_an_op_it_cannot_import(tmp_path):
    def edit(layers):
        layers["greater"]["class_name"] = layers["greater"]["registered_name"] = "Maximum"
    _refused(_edited(tmp_path, "explicit_mask_compare", edit), "'gru_w'", "operation Maximum 'greater'",
             "cannot be imported into a mask", "NotEqual")


def test_refuses_a_comparison_of_two_tensors(tmp_path):
    def edit(layers):
        args = layers["greater"]["inbound_nodes"][0]["args"]
        args[1] = args[0]
    _refused(_edited(tmp_path, "explicit_mask_compare", edit), "'gru_w'", "operation Greater", "two tensors")


def test_refuses_any_over_another_axis(tmp_path):
    def edit(layers):
        layers["any"]["config"]["axis"] = 1
    _refused(_edited(tmp_path, "explicit_mask_override", edit), "'gru_any'", "operation Any", "only axis=-1")


def test_refuses_a_mask_that_is_not_batch_by_time(tmp_path):
    def edit(layers):   # the Masking-style mask without its any(): (batch, time, features)
        inner = layers["any"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"]
        layers["gru_any"]["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"] = inner
    _refused(_edited(tmp_path, "explicit_mask_override", edit), "'gru_any'", "bool (batch, time) mask")


def test_refuses_a_non_bool_mask_tensor(tmp_path):
    def edit(layers):
        layers["gru_w"]["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"] = ["w", 0, 0]
    _refused(_edited(tmp_path, "explicit_mask_compare", edit), "'gru_w'", "unless it is a bool (batch, time) tensor")
