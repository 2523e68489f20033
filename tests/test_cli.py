"""The command line: artifacts, exit codes, error reporting, determinism, run/verify/summary."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rnncompile.schema import spec_schema
from helpers import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def write(tmp_path, spec, name="spec.json"):
    p = tmp_path / name
    p.write_text(json.dumps(spec))
    return p


SMALL = {"name": "small", "layers": [
    {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
    {"class_name": "Embedding", "input_dim": 30, "output_dim": 4, "mask_zero": True},
    {"class_name": "LSTM", "units": 5},
    {"class_name": "Dense", "units": 2}]}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_builds_verifies_and_runs(example, tmp_path):
    out = tmp_path / "out"
    code, text = cli("build", example, "-o", out).combined
    assert code == 0, text
    assert "verified: yes" in text
    assert sorted(p.name for p in out.iterdir()) == [".rnncompile-build", "manifest.json", "model.onnx",
                                                     "report.json", "spec.json", "weights.npz"]
    report = json.loads((out / "report.json").read_text())
    assert report["verified"] and report["tolerance"] == {"atol": 1e-5, "rtol": 1e-5}
    for name, s in report["summary"].items():
        assert s["passed"] and s["max_abs_error"] <= 1e-5, name
    man = json.loads((out / "manifest.json").read_text())
    assert man["opset"] >= 17
    assert man["compile_seconds"] >= 0  # the time itself is measured by benchmarks, not asserted
    assert hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest() == man["model_sha256"]
    spec = json.loads(example.read_text())
    assert [i["name"] for i in man["inputs"] if i["name"] not in {s["input"] for s in man["states"]}] == \
        [l["name"] for l in spec["layers"] if l["class_name"] == "Input"]
    for l in man["layers"]:
        if l["class_name"] in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
            # the native op, or SimpleRNN's exact Scan form on onnxruntime; never the fallback loop
            assert l["lowering"].startswith(("native ONNX", "ONNX Scan of Gemm")), l
    # run it on inputs of the right kind
    feeds = {}
    for i in man["inputs"]:
        if any(s["input"] == i["name"] for s in man["states"]):
            continue
        shape = [2 if d == "batch" else (6 if not isinstance(d, int) else d) for d in i["shape"]]
        feeds[i["name"]] = (np.ones(shape, np.int32) if i["dtype"].startswith("int")
                            else np.full(shape, "A good movie!") if i["dtype"] == "string"
                            else np.zeros(shape, np.float32))
    np.savez(tmp_path / "in.npz", **feeds)
    code, text = cli("run", out, "--input", tmp_path / "in.npz", "--save", tmp_path / "o.npz").combined
    assert code == 0, text
    with np.load(tmp_path / "o.npz") as f:
        assert sorted(f.files) == sorted(o["name"] for o in man["outputs"]
                                         if not any(s["output"] == o["name"] for s in man["states"]))
    code, text = cli("verify", out).combined
    assert code == 0 and "verified: yes" in text, text


def test_same_spec_gives_byte_identical_model(tmp_path):
    spec = write(tmp_path, SMALL)
    cli("build", spec, "-o", tmp_path / "a")
    cli("build", spec, "-o", tmp_path / "b")
    assert (tmp_path / "a/model.onnx").read_bytes() == (tmp_path / "b/model.onnx").read_bytes()
    assert json.loads((tmp_path / "a/manifest.json").read_text())["spec_sha256"] == \
        json.loads((tmp_path / "b/manifest.json").read_text())["spec_sha256"]


def test_every_error_listed_with_json_path_exit_2_nothing_written(tmp_path):
    bad = {"layers": [
        {"class_name": "Input", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "input_dim": 0, "output_dim": 4, "colour": "red"},
        {"class_name": "LSTM", "units": "8", "activation": "tanhh"},
        {"class_name": "Conv9D"}]}
    out = tmp_path / "out"
    code, text = cli("build", write(tmp_path, bad), "-o", out).combined
    assert code == 2
    for where in ("$.layers[1].colour", "$.layers[1].input_dim", "$.layers[2].units",
                  "$.layers[2].activation", "$.layers[3].class_name"):
        assert f"error: {where}:" in text, (where, text)
    assert "expected a value >= 1, found 0" in text and "Traceback" not in text
    assert not out.exists()


@pytest.mark.parametrize("spec,where,what", [
    ({"layers": [{"class_name": "Input", "shape": [None, 3]}, {"class_name": "LSTM", "units": 2},
                 {"class_name": "LSTM", "units": 2}]}, "$.layers[2]", "expects a sequence of 2-D"),
    ({"layers": [{"class_name": "Input", "shape": [None], "dtype": "int32"}, {"class_name": "LSTM", "units": 2}]},
     "$.layers[1]", "expects a sequence"),
    ({"layers": [{"class_name": "Input", "shape": [None, 3]}, {"class_name": "Dense", "units": 2, "inputs": "nope"}]},
     "$.layers[1].inputs", "unknown layer 'nope'"),
    ({"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                 {"class_name": "LSTM", "units": 2, "initial_state": ["x"]}]},
     "$.layers[1].initial_state", "takes 2 initial state(s)"),
    ({"layers": [{"class_name": "Input", "shape": [None, 3]}, {"class_name": "LSTM", "units": 2}],
      "outputs": ["lstm:1"]}, "$.outputs[0]", "does not exist"),
    ({"layers": [{"class_name": "Input", "shape": [None, 3]},
                 {"class_name": "Bidirectional", "layer": {"class_name": "Dense", "units": 2}}]},
     "$.layers[1].layer.class_name", "expected one of"),
])
def test_semantic_errors_name_the_place(tmp_path, spec, where, what):
    code, text = cli("check", write(tmp_path, spec)).combined
    assert code == 2, text
    assert f"error: {where}:" in text and what in text, text


def test_invalid_json_and_missing_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"layers": [')
    code, text = cli("check", p).combined
    assert code == 2 and f"{p}:1:" in text and "invalid JSON" in text
    code, text = cli("check", tmp_path / "nope.json").combined
    assert code == 2 and "not found" in text


def test_weights_file_checked(tmp_path):
    from rnncompile.spec import load_spec
    model = load_spec(SMALL)
    w = dict(model.weights)
    w["lstm/kernel"] = w["lstm/kernel"][:, :8]
    w["lstm/bias"] = np.full_like(w["lstm/bias"], np.nan)
    w["extra/kernel"] = np.zeros(3, np.float32)
    del w["dense/bias"]
    np.savez(tmp_path / "w.npz", **w)
    code, text = cli("check", write(tmp_path, dict(SMALL, weights="w.npz"))).combined
    assert code == 2
    assert "[lstm/kernel]: expected shape (4, 20), found (4, 8)" in text
    assert "[lstm/bias]: 20 value(s) are NaN or infinite" in text
    assert "[extra/kernel]: unexpected weight" in text
    assert "[dense/bias]: missing weight" in text


def test_weights_file_roundtrip_equals_seeded(tmp_path):
    out = tmp_path / "out"
    assert cli("build", write(tmp_path, SMALL), "-o", out)[0] == 0
    # the published spec.json + weights.npz rebuild the same model
    assert cli("build", out / "spec.json", "-o", tmp_path / "again")[0] == 0
    assert (out / "model.onnx").read_bytes() == (tmp_path / "again/model.onnx").read_bytes()


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    code, text = cli("build", write(tmp_path, SMALL), "-o", out).combined
    assert code == 2 and "refusing to overwrite" in text
    assert (out / "precious.txt").read_text() == "keep"


def test_run_reports_bad_inputs(tmp_path):
    out = tmp_path / "out"
    cli("build", write(tmp_path, SMALL), "-o", out)
    (tmp_path / "oob.json").write_text(json.dumps({"tokens": [[1, 2, 99]]}))
    code, text = cli("run", out, "--input", tmp_path / "oob.json").combined
    assert code == 2 and "input 'tokens'" in text and "token id 99" in text and "[0, 30)" in text
    (tmp_path / "shape.json").write_text(json.dumps({"tokens": [1, 2]}))
    code, text = cli("run", out, "--input", tmp_path / "shape.json").combined
    assert code == 2 and "expected 2-D" in text
    (tmp_path / "ok.json").write_text(json.dumps({"tokens": [[1, 2, 0]]}))
    code, text = cli("run", out, "--input", tmp_path / "ok.json").combined
    assert code == 0 and "dense float32 [1, 2]" in text


def test_verify_detects_tampering(tmp_path):
    out = tmp_path / "out"
    cli("build", write(tmp_path, SMALL), "-o", out)
    data = bytearray((out / "model.onnx").read_bytes())
    data[-1] ^= 1
    (out / "model.onnx").write_bytes(bytes(data))
    code, text = cli("verify", out).combined
    assert code == 1 and "sha256" in text


def test_summary_shows_shapes_masks_and_lowering(tmp_path):
    code, text = cli("summary", ROOT / "examples/sentiment.json").combined
    assert code == 0
    assert "bidirectional (Bidirectional)" in text and "(None, 128)" in text
    assert "native ONNX bidirectional LSTM" in text
    line = next(l for l in text.splitlines() if l.startswith("embedding"))
    assert "yes" in line  # Embedding(mask_zero) creates a mask


def test_committed_schema_is_current():
    committed = json.loads((ROOT / "schemas/spec.schema.json").read_text())
    # built-in kinds only: test modules register kinds of their own
    assert committed == spec_schema(builtin_only=True), "run: rnncompile schema > schemas/spec.schema.json"


def test_summary_says_why_a_layer_is_not_native(tmp_path):
    spec = {"layers": [{"class_name": "Input", "shape": [None, 3]},
                       {"class_name": "GRU", "units": 2, "activation": "gelu"},
                       {"class_name": "LSTM", "units": 2, "inputs": "input", "activation": "relu"}]}
    code, text = cli("summary", write(tmp_path, spec)).combined
    assert code == 0, text
    gru = next(l for l in text.splitlines() if l.startswith("gru"))
    lstm = next(l for l in text.splitlines() if l.startswith("lstm"))
    assert "ONNX Scan loop, not native: activation 'gelu'" in gru
    assert "native ONNX LSTM" in lstm


def test_ill_conditioned_model_fails_with_the_diagnosis(tmp_path):
    # an unbounded gate amplifies float32 rounding: no float32 artifact can match float64;
    # the build fails (exit 1, nothing written) and says why instead of blaming a lowering
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                       {"class_name": "GRU", "units": 16, "recurrent_activation": "linear",
                        "return_sequences": True}]}
    out = tmp_path / "out"
    code, text = cli("build", write(tmp_path, spec), "-o", out).combined
    assert code == 1 and not out.exists()
    assert "ill-conditioned in float32" in text and "amplifies float32 rounding" in text
    assert "lowering disagrees" not in text


def test_build_and_run_a_keras_file_equals_keras(tmp_path):
    # the main Keras job end to end through the CLI: build model.keras, run it, compare with
    # the outputs Keras's model.predict gave (committed beside the fixture)
    fixture = ROOT / "tests/keras_models/bidi_lstm_concat_seq"
    out = tmp_path / "out"
    code, text = cli("build", fixture.with_suffix(".keras"), "-o", out).combined
    assert code == 0 and "verified: yes" in text, text
    with np.load(fixture.with_suffix(".npz")) as f:
        ins = {k.split("/")[-1]: f[k] for k in f.files if k.startswith("call0/in/")}
        want = [f[f"call0/out/{i}"] for i in range(sum(k.startswith("call0/out/") for k in f.files))]
    np.savez(tmp_path / "in.npz", **ins)
    code, text = cli("run", out, "--input", tmp_path / "in.npz", "--save", tmp_path / "got.npz").combined
    assert code == 0, text
    man = json.loads((out / "manifest.json").read_text())
    with np.load(tmp_path / "got.npz") as got:
        for spec, w in zip(man["outputs"], want):
            np.testing.assert_allclose(got[spec["name"]], w, atol=1e-5, rtol=1e-5)
    # import writes an editable spec + weights that build to the same model
    code, text = cli("import", fixture.with_suffix(".keras"), "-o", tmp_path / "spec.json").combined
    assert code == 0, text
    assert cli("build", tmp_path / "spec.json", "-o", tmp_path / "again")[0] == 0
    assert (tmp_path / "again/model.onnx").read_bytes() == (out / "model.onnx").read_bytes()


def test_readme_custom_layer_is_the_plugin_file():
    readme = (ROOT / "README.md").read_text()
    block = next(b.split("```")[0] for b in readme.split("```python\n")[1:] if "class RMSNorm" in b)
    plugin = (ROOT / "examples/plugins/my_layers.py").read_text()
    start = block.index("@rnncompile.register")
    assert block[start:].strip() in plugin
    for line in block[:start].strip().splitlines():
        assert line in plugin  # the imports too
