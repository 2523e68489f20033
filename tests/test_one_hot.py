"""CategoryEncoding(one_hot): ids outside [0, num_tokens) are refused by the reference and give
NaN rows in the artifact; bad inputs and Keras options are clean errors. Agreement with Keras:
the goldens `categoryencoding_*` and tests/keras_models/breadth_onehot.*"""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from rnncompile.build import build
from rnncompile.cli import main
from rnncompile.errors import RnnCompileError, RunError
from rnncompile.keras import load_model_file
from rnncompile.lower import lower
from rnncompile.onnx_trt_check import check_model
from rnncompile.reference import run_reference
from rnncompile.summary import summary_rows

ort = pytest.importorskip("onnxruntime")
MODELS = __import__("pathlib").Path(__file__).resolve().parent / "keras_models"


def _spec(shape, dtype="int32", n=5, op=False):
    layer = {"class_name": "OneHot", "name": "oh", "num_classes": n} if op else \
        {"class_name": "CategoryEncoding", "name": "oh", "num_tokens": n}
    return {"layers": [{"class_name": "Input", "name": "t", "shape": shape, "dtype": dtype}, layer,
                       {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True}],
            "outputs": ["g", "oh"]}


@pytest.mark.parametrize("shape,ids", [
    ([None], np.array([[1, 4, 0], [1, -1, 0], [1, 5, 0], [-2**31, 2**31 - 1, 0]])),
    ([None, 1], np.array([[1, 4, 0], [1, -1, 0], [1, 5, 0], [-2**31, 2**31 - 1, 0]])[..., None]),
])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_out_of_range_ids_nan_in_artifact_refused_by_reference(shape, ids, dtype, tmp_path):
    ids = ids.astype(dtype)
    result = build(_spec(shape, dtype), tmp_path / "out")
    _nan_rows_and_refusal(result, ids, tmp_path, (4, 3, 5))


def test_onehot_op_keeps_a_size_1_axis_nan_rows_and_refusal(tmp_path):
    ids = np.array([[1, 4, 0], [1, -1, 0], [1, 5, 0], [-2**31, 2**31 - 1, 0]], np.int32)
    spec = _spec([None], op=True)
    result = build(spec, tmp_path / "out")
    _nan_rows_and_refusal(result, ids, tmp_path, (4, 3, 5))
    spec["layers"][0]["shape"] = [None, 1]
    spec["layers"].insert(2, {"class_name": "Reshape", "name": "r", "target_shape": [-1, 5]})
    result = build(spec, tmp_path / "out1")
    ref, _ = run_reference(result.model, {"t": ids[:1, :, None]})
    assert ref[1].shape == (1, 3, 1, 5) and np.array_equal(ref[1][0, :, 0], np.eye(5)[[1, 4, 0]])


def _nan_rows_and_refusal(result, ids, tmp_path, shape):
    sess = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    g, oh = sess.run(None, {"t": ids})
    assert oh.shape == shape
    assert np.isfinite(g[0]).all() and np.isfinite(oh[0]).all()
    assert np.isnan(g[1:]).all() and np.isnan(oh[1:]).all()
    ref, _ = run_reference(result.model, {"t": ids[:1]})
    np.testing.assert_allclose(oh[:1], ref[1], atol=0)
    np.testing.assert_allclose(g[:1], ref[0], atol=1e-5)
    assert np.array_equal(ref[1][0], np.eye(5)[[1, 4, 0]])
    with pytest.raises(RunError, match=r"id -1 at index \(1, 1.*outside \[0, 5\)"):
        run_reference(result.model, {"t": ids})


@pytest.mark.parametrize("op", [False, True])
def test_lowers_for_tensorrt_without_findings(op):
    from rnncompile.spec import load_spec
    low = lower(load_spec(_spec([None], op=op)), "tensorrt")
    assert not check_model(low.model_bytes).findings


@pytest.mark.parametrize("inp,layer,needle", [
    ({"shape": [None, 2]}, {"num_tokens": 4}, "integer ids"),
    ({"shape": [None], "dtype": "int32"}, {"num_tokens": 0}, "num_tokens"),
    ({"shape": [None], "dtype": "int32"}, {"num_tokens": 4, "output_mode": "multi_hot"}, "output_mode"),
    ({"shape": [None, 2]}, {"class_name": "OneHot", "num_classes": 4}, "integer ids"),
    ({"shape": [None], "dtype": "int32"}, {"class_name": "OneHot", "num_classes": 0}, "num_classes"),
])
def test_bad_inputs_are_clean_errors(inp, layer, needle, tmp_path):
    spec = {"layers": [dict({"class_name": "Input", "name": "t"}, **inp),
                       dict({"class_name": "CategoryEncoding", "name": "oh"}, **layer)]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "layers[1]" in r.output and needle in r.output, r.output


def test_summary_says_it_drops_an_incoming_mask():
    from rnncompile.spec import load_spec
    spec = {"layers": [{"class_name": "Input", "name": "t", "shape": [None, 1], "dtype": "int32"},
                       {"class_name": "Input", "name": "n", "shape": [1], "dtype": "int32"},
                       {"class_name": "SequenceMask", "name": "sm", "inputs": ["t", "n"]},
                       {"class_name": "CategoryEncoding", "name": "oh", "num_tokens": 4}]}
    rows = {r["layer"]: r for r in summary_rows(load_spec(spec))}
    assert "drops the input mask" in rows["oh"]["lowering"] and rows["oh"]["mask"] == ""


@pytest.mark.parametrize("layer_name,option,value,needle", [
    ("onehot", "output_mode", "multi_hot", "only one_hot"), ("onehot", "output_mode", "count", "only one_hot"),
    ("onehot", "sparse", True, "dense outputs only"), ("one_hot", "axis", 1, "only axis=-1"),
    ("one_hot", "sparse", True, "dense outputs only")])
def test_keras_options_refused(layer_name, option, value, needle, tmp_path):
    src, dst = MODELS / "breadth_onehot.keras", tmp_path / "m.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                layer = next(l for l in cfg["config"]["layers"] if l["config"].get("name") == layer_name)
                layer["config"][option] = value
                data = json.dumps(cfg).encode()
            zout.writestr(info.filename, data)
    with pytest.raises(RnnCompileError) as e:
        load_model_file(dst)
    assert layer_name in str(e.value) and needle in str(e.value), str(e.value)
