"""Custom layer kinds: the public API, plugin discovery, the built-in attention and mask layers,
padding invariance, and contract-breaking kinds caught at build time with the layer named."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnncompile
from rnncompile import plugins
from rnncompile.errors import LayerContractError, PluginError, SpecError, VerificationError
from rnncompile.layer import REGISTRY, passthrough, register
from rnncompile.lower import lower
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.backends.reference import ReferenceRunner
from rnncompile.schema import spec_schema
from rnncompile.spec import load_spec
from helpers import cli

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "examples" / "plugins"
PLUGIN_FILE = PLUGIN_DIR / "my_layers.py"
PLUGIN_SPEC = PLUGIN_DIR / "speaker_id.json"


@pytest.fixture(autouse=True)
def restore_registry():
    """Plugins loaded by one test must not leak into another (nor into others' tests)."""
    saved = dict(REGISTRY)
    loaded_flag = plugins._loaded_entry_points
    yield
    REGISTRY.clear()
    REGISTRY.update(saved)
    plugins._loaded_entry_points = loaded_flag
    sys.modules.pop("my_layers", None)


def both(model: rnncompile.Model, feeds: dict) -> tuple[dict, dict]:
    """Reference and onnxruntime outputs of one model on the same feeds."""
    ref = ReferenceRunner(model).run(dict(feeds))
    got = OnnxRuntimeRunner(lower(model).model_bytes, threads=1).run(dict(feeds))
    return ref, got


# ---------------------------------------------------------------------------------------------
# A custom layer defined here, in a test module, with the public API only.


@rnncompile.register
class Affine(rnncompile.Layer):
    """y = x * factor + offset (a weight), on the last axis; passes the mask on."""

    class_name = "TestAffine"
    description = "test kind: x * factor + offset"
    attributes = {"factor": {"type": "number", "default": 2.0}}

    def output_types(self, inputs):
        return [passthrough(inputs[0])]

    def weight_shapes(self, inputs):
        return {"offset": (inputs[0].shape[-1],)}

    def reference(self, inputs, weights):
        (x,) = inputs
        return [rnncompile.Tensor(x.data * self["factor"] + weights["offset"].astype(np.float64), x.mask)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        y = g.op("Add", g.op("Mul", x.name, g.const(np.float32(self["factor"]))),
                 g.const(weights["offset"], "float32", name="offset"))
        return [self.sym(y, x.mask)]


def features_spec(*layers, steps=None, features=3, **top):
    return {"layers": [{"class_name": "Input", "name": "x", "shape": [steps, features]}, *layers], **top}


def test_custom_layer_from_a_test_module_builds_verifies_and_runs(tmp_path):
    spec = features_spec({"class_name": "Masking", "mask_value": 0.0},
                         {"class_name": "TestAffine", "name": "affine", "factor": 3.0},
                         {"class_name": "LSTM", "units": 4, "return_sequences": True},
                         {"class_name": "GlobalAveragePooling1D"},
                         outputs=["affine", "global_average_pooling1d"])
    result = rnncompile.build(spec, tmp_path / "out")
    assert result.verified
    kinds = {l["name"]: l for l in result.manifest["layers"]}
    assert kinds["affine"]["class_name"] == "TestAffine" and kinds["affine"]["mask"] == [True]
    assert kinds["affine"]["parameters"] == 3
    # the built model computes the kind's semantics (not just "whatever the reference says")
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    out = rnncompile.open_session(tmp_path / "out").run({"x": x})
    offset = result.model.weights["affine/offset"]
    np.testing.assert_allclose(out["affine"], x * 3.0 + offset, rtol=1e-6, atol=1e-6)


def test_custom_layer_attributes_are_validated_by_its_schema():
    spec = features_spec({"class_name": "TestAffine", "factor": "big"})
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert "$.layers[1].factor" in str(e.value)
    with pytest.raises(SpecError) as e:
        load_spec(features_spec({"class_name": "TestAffine", "fator": 1.0}))
    assert "unknown field 'fator'" in str(e.value)


def test_register_checks_the_kind_when_it_is_defined():
    with pytest.raises(TypeError, match="must define lower"):
        @register
        class NoLowering(rnncompile.Layer):
            class_name = "TestNoLowering"

            def output_types(self, inputs):
                return inputs

            def reference(self, inputs, weights):
                return inputs
    with pytest.raises(TypeError, match="invalid JSON Schema"):
        @register
        class BadSchema(Affine):
            class_name = "TestBadSchema"
            attributes = {"factor": {"type": "nonsense"}}
    with pytest.raises(TypeError, match="does not fit its schema"):
        @register
        class BadDefault(Affine):
            class_name = "TestBadDefault"
            attributes = {"factor": {"type": "number", "default": "two"}}
    with pytest.raises(TypeError, match="reserved"):
        @register
        class Reserved(Affine):
            class_name = "TestReserved"
            attributes = {"inputs": {"type": "string"}}
    with pytest.raises(TypeError, match="built-in layer kind"):
        @register
        class Dense(Affine):
            class_name = "Dense"
    assert REGISTRY["Dense"].__module__ == "rnncompile.layers.dense"

    @register(replace=True)
    class MyDense(Affine):  # explicit replacement is allowed (the fixture restores Dense)
        class_name = "Dense"
    assert REGISTRY["Dense"] is MyDense


# ---------------------------------------------------------------------------------------------
# Plugins: --plugin FILE.py, --plugin MODULE, entry points, and the schema.


def test_cli_build_with_plugin_file(tmp_path):
    out = tmp_path / "out"
    code, text = cli("build", "--plugin", PLUGIN_FILE, PLUGIN_SPEC, "-o", out).combined
    assert code == 0, text
    assert "verified: yes" in text and (out / "model.onnx").is_file()
    man = json.loads((out / "manifest.json").read_text())
    kinds = {l["class_name"] for l in man["layers"]}
    assert {"RMSNorm", "StatsPooling", "SequenceMask"} <= kinds
    assert json.loads((out / "report.json").read_text())["verified"] is True


def test_cli_build_with_plugin_module_name_in_a_fresh_process(tmp_path):
    """`rnncompile build --plugin my_layers spec.json`, as a user types it, from the plugin's dir."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "rnncompile.cli", "build", "--plugin", "my_layers",
                          "speaker_id.json", "-o", str(tmp_path / "out"), "--threads", "1"],
                         cwd=PLUGIN_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verified: yes" in run.stdout and (tmp_path / "out" / "model.onnx").is_file()


def test_without_the_plugin_the_kind_is_unknown(tmp_path):
    code, text = cli("check", PLUGIN_SPEC).combined
    assert code == 2 and "unknown layer kind 'RMSNorm'" in text


def test_schema_includes_plugin_kinds():
    assert "RMSNorm" not in spec_schema()["$defs"]
    code, text = cli("schema", "--plugin", PLUGIN_FILE).combined
    assert code == 0
    schema = json.loads(text)
    assert {"RMSNorm", "StatsPooling", "AttentionPooling1D", "SequenceMask"} <= set(schema["$defs"])
    assert "RMSNorm" in schema["properties"]["layers"]["items"]["properties"]["class_name"]["enum"]
    assert schema["$defs"]["RMSNorm"]["properties"]["epsilon"]["default"] == 1e-6


def test_entry_point_discovery(monkeypatch):
    from importlib.metadata import EntryPoint

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    eps = [EntryPoint("my_layers", "my_layers", plugins.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(plugins.importlib.metadata, "entry_points",
                        lambda group=None: eps if group == plugins.ENTRY_POINT_GROUP else [])
    plugins._loaded_entry_points = False
    assert plugins.load_entry_points() == ["my_layers"]
    assert "RMSNorm" in REGISTRY and "StatsPooling" in REGISTRY
    assert load_spec(PLUGIN_SPEC).layers["norm"].class_name == "RMSNorm"

    eps[:] = [EntryPoint("broken", "no_such_module_xyz", plugins.ENTRY_POINT_GROUP)]
    plugins._loaded_entry_points = False
    with pytest.raises(PluginError, match="plugin entry point 'broken'"):
        plugins.load_entry_points()


# ---------------------------------------------------------------------------------------------
# AttentionPooling1D: semantics, padding invariance (exact), fully masked rows.

ATT_WEIGHTS_SEED = 3


def attention_spec(features=4, units=5, scores=True):
    return features_spec({"class_name": "Masking", "mask_value": 0.0},
                         {"class_name": "AttentionPooling1D", "name": "att", "units": units,
                          "return_attention_scores": scores},
                         features=features, outputs=["att", "att:1"] if scores else ["att"])


def test_attention_matches_keras_dense_formulation_and_masks_scores():
    """The layer equals Keras's Dense(units, tanh) -> Dense(1, use_bias=False) -> softmax over the
    valid steps -> weighted sum, with its weights in those Dense layers' layout."""
    model = load_spec(attention_spec())
    w = model.weights
    assert w["att/kernel"].shape == (4, 5) and w["att/bias"].shape == (5,)
    assert w["att/score_kernel"].shape == (5, 1)
    rng = np.random.default_rng(ATT_WEIGHTS_SEED)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    x[0, 4:] = 0.0      # right padding
    x[1, :2] = 0.0      # left padding
    x[2, [1, 3]] = 0.0  # gaps
    keep = np.any(x != 0, axis=-1)
    dense = features_spec({"class_name": "Dense", "name": "d1", "units": 5, "activation": "tanh"},
                          {"class_name": "Dense", "name": "d2", "units": 1, "use_bias": False},
                          features=4)
    dense_model = load_spec(dense, weights={"d1/kernel": w["att/kernel"], "d1/bias": w["att/bias"],
                                            "d2/kernel": w["att/score_kernel"]})
    (score,), _ = rnncompile.reference(dense_model, {"x": x})
    score = score[..., 0]
    expect_w = np.where(keep, np.exp(score - np.where(keep, score, -np.inf).max(1, keepdims=True)), 0.0)
    expect_w /= expect_w.sum(1, keepdims=True)
    expect = (expect_w[..., None] * x).sum(1)

    ref, got = both(model, {"x": x})
    np.testing.assert_allclose(ref["att_scores"], expect_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref["att"], expect, rtol=1e-12, atol=1e-12)
    assert np.all(ref["att_scores"][~keep] == 0) and np.all(got["att_scores"][~keep] == 0)
    np.testing.assert_allclose(got["att"], expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["att_scores"], expect_w, rtol=1e-5, atol=1e-6)


def test_attention_without_a_mask_is_a_plain_softmax():
    spec = features_spec({"class_name": "AttentionPooling1D", "name": "att", "units": 3,
                          "return_attention_scores": True}, outputs=["att", "att:1"])
    model = load_spec(spec)
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    ref, got = both(model, {"x": x})
    np.testing.assert_allclose(ref["att_scores"].sum(1), 1.0, rtol=1e-12)
    assert np.all(ref["att_scores"] > 0)
    np.testing.assert_allclose(got["att"], ref["att"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["att_scores"], ref["att_scores"], rtol=1e-5, atol=1e-6)


def _pad(x, left, right, value=0):
    widths = [(0, 0), (left, right)] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, widths, constant_values=value)


PADDINGS = [(0, 5), (4, 0), (2, 3), (17, 0), (0, 23)]


@pytest.mark.parametrize("which", ["masking_only", "lstm", "example_bigru"])
def test_attention_model_ignores_padding_exactly(which):
    """Adding padded steps on the right, the left or both sides changes no bit of the output,
    in the reference and in onnxruntime; the scores of the padded steps are exactly 0."""
    rng = np.random.default_rng(7)
    if which == "masking_only":
        model = load_spec(attention_spec())
        x = rng.standard_normal((4, 9, 4)).astype(np.float32)
        x[1, 6:] = 0.0   # a ragged row: already padded
        x[2, :3] = 0.0
        feed, pad_value = "x", 0.0
        out, scores = "att", "att_scores"
    else:
        if which == "lstm":
            spec = {"layers": [
                {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
                {"class_name": "Embedding", "input_dim": 40, "output_dim": 6, "mask_zero": True},
                {"class_name": "LSTM", "units": 8, "return_sequences": True},
                {"class_name": "AttentionPooling1D", "name": "attention", "units": 4,
                 "return_attention_scores": True},
                {"class_name": "Dense", "name": "classes", "units": 3, "inputs": "attention"}],
                "outputs": ["classes", "attention:1"]}
            model = load_spec(spec)
        else:
            model = rnncompile.load(ROOT / "examples" / "attention_classifier.json")
        vocab = model.layers["embedding"]["input_dim"]
        x = rng.integers(1, vocab, size=(4, 9)).astype(np.int32)
        x[1, 6:] = 0
        x[2, :3] = 0
        feed, pad_value = "tokens", 0
        out, scores = "classes", "attention_scores"
    runners = {"reference": ReferenceRunner(model),
               "onnxruntime": OnnxRuntimeRunner(lower(model).model_bytes, threads=1)}
    for name, runner in runners.items():
        base = runner.run({feed: x})
        assert np.all(np.isfinite(base[out]))
        for left, right in PADDINGS:
            padded = runner.run({feed: _pad(x, left, right, pad_value)})
            assert np.array_equal(padded[out], base[out]), (name, left, right,
                                                            np.abs(padded[out] - base[out]).max())
            s = padded[scores]
            assert np.array_equal(s[:, left:left + x.shape[1]], base[scores]), (name, left, right)
            assert not s[:, :left].any() and not s[:, left + x.shape[1]:].any()


def test_attention_fully_masked_row_is_zero_and_padding_values_never_leak():
    """A row with no valid step gives the zero vector and zero weights (no NaN); padded steps may
    hold anything, NaN and inf included, without changing a valid row."""
    spec = {"layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 3]},
        {"class_name": "Input", "name": "n", "shape": [1], "dtype": "int32"},
        {"class_name": "SequenceMask", "name": "valid", "inputs": ["x", "n"]},
        {"class_name": "AttentionPooling1D", "name": "att", "units": 4, "return_attention_scores": True}],
        "outputs": ["att", "att:1"]}
    model = load_spec(spec)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    n = np.array([[6], [0], [4]], np.int32)
    ref, got = both(model, {"x": x, "n": n})
    for res in (ref, got):
        assert np.all(res["att"][1] == 0) and np.all(res["att_scores"][1] == 0)
        assert np.all(np.isfinite(res["att"])) and np.all(np.isfinite(res["att_scores"]))
    dirty = x.copy()
    dirty[2, 4] = np.nan
    dirty[2, 5] = np.inf
    dirty[1] = -np.inf
    ref2, got2 = both(model, {"x": dirty, "n": n})
    assert np.array_equal(ref2["att"], ref["att"]) and np.array_equal(got2["att"], got["att"])
    assert np.array_equal(got2["att_scores"], got["att_scores"])
    # and a valid step does count: changing one moves the output
    moved = x.copy()
    moved[2, 3] += 1.0
    assert not np.array_equal(both(model, {"x": moved, "n": n})[1]["att"][2], got["att"][2])


def test_attention_example_verification_covers_fully_masked_rows(tmp_path):
    result = rnncompile.build(ROOT / "examples" / "attention_classifier.json", tmp_path / "att")
    assert result.verified
    assert any(c.pattern == "empty" for c in result.report.cases)
    assert result.manifest["outputs"][1]["name"] == "attention_scores"


def test_attention_shape_rule_errors():
    with pytest.raises(SpecError, match="AttentionPooling1D 'att' expects an RNN output sequence"):
        load_spec({"layers": [{"class_name": "Input", "name": "x", "shape": [4]},
                              {"class_name": "AttentionPooling1D", "name": "att", "units": 2}]})
    with pytest.raises(SpecError, match="needs a fixed size for the last axis"):
        load_spec({"layers": [{"class_name": "Input", "name": "x", "shape": [None, None]},
                              {"class_name": "AttentionPooling1D", "name": "att", "units": 2}]})


# ---------------------------------------------------------------------------------------------
# SequenceMask: a layer that computes a new mask.


def test_sequence_mask_computes_a_new_mask_in_reference_and_onnx():
    spec = {"layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 2]},
        {"class_name": "Input", "name": "n", "shape": [1], "dtype": "int64"},
        {"class_name": "Masking", "name": "m", "inputs": "x", "mask_value": 0.0},
        {"class_name": "SequenceMask", "name": "valid", "inputs": ["m", "n"]}]}
    model = load_spec(spec)
    assert model.layers["valid"].output_types_[0].masked
    x = np.random.default_rng(2).standard_normal((4, 5, 2)).astype(np.float32) + 5.0
    x[0, 1] = 0.0                                  # masked by Masking
    n = np.array([[5], [2], [0], [9]], np.int64)   # full, short, empty, beyond T
    expect = (np.arange(5)[None, :] < n) & np.any(x != 0, axis=-1)
    trace = {}
    rnncompile.reference(model, {"x": x, "n": n}, trace=trace)
    assert np.array_equal(trace["valid"][0].mask, expect)
    np.testing.assert_array_equal(trace["valid"][0].data, x)   # data passes through
    debug = lower(model, expose_layers=True)
    got = OnnxRuntimeRunner(debug.model_bytes, threads=1).run({"x": x, "n": n})
    value, mask = debug.layer_outputs["valid"][0]
    assert np.array_equal(got[mask], expect) and np.array_equal(got[value], x)


def test_sequence_mask_rule_errors():
    base = [{"class_name": "Input", "name": "x", "shape": [None, 2]}]
    with pytest.raises(SpecError, match="integer lengths"):
        load_spec({"layers": base + [{"class_name": "Input", "name": "n", "shape": [1]},
                                     {"class_name": "SequenceMask", "inputs": ["x", "n"]}]})
    with pytest.raises(SpecError, match="takes two inputs"):
        load_spec({"layers": base + [{"class_name": "SequenceMask", "inputs": ["x"]}]})


# ---------------------------------------------------------------------------------------------
# Contract-breaking kinds: caught at build time, the error names the layer.


@register
class WrongShapeRule(Affine):
    """Its shape rule says the features stay; its lowering doubles them."""

    class_name = "TestWrongShapeRule"

    def lower(self, g, inputs, weights):
        (x,) = inputs
        return [self.sym(g.op("Concat", x.name, x.name, axis=-1), x.mask)]


@register
class LowerDisagrees(Affine):
    """Its lowering adds 1e-3 that its reference does not."""

    class_name = "TestLowerDisagrees"

    def lower(self, g, inputs, weights):
        (y,) = super().lower(g, inputs, weights)
        return [self.sym(g.op("Add", y.name, g.const(np.float32(1e-3))), y.mask)]


@register
class LowerDropsMask(Affine):
    class_name = "TestLowerDropsMask"

    def lower(self, g, inputs, weights):
        (y,) = super().lower(g, inputs, weights)
        return [self.sym(y.name)]


@register
class ReferenceDropsMask(Affine):
    class_name = "TestReferenceDropsMask"

    def reference(self, inputs, weights):
        (y,) = super().reference(inputs, weights)
        return [rnncompile.Tensor(y.data)]


@register
class WrongMask(rnncompile.Layer):
    """Computes a new mask (steps whose first feature is positive); its lowering uses >= -1."""

    class_name = "TestWrongMask"
    attributes = {}

    def output_types(self, inputs):
        return [inputs[0].with_mask(True)]

    def reference(self, inputs, weights):
        (x,) = inputs
        return [rnncompile.Tensor(x.data, x.data[..., 0] > 0)]

    def lower(self, g, inputs, weights):
        (x,) = inputs
        first = g.take(x.name, 0, axis=2)
        return [self.sym(x.name, g.op("Not", g.op("Less", first, g.const(np.float32(-1)))))]


@register
class RuntimeShapeLie(Affine):
    """Tiles the features by a factor only known at run time: shape inference cannot see that its
    output has 2F features where its rule says F."""

    class_name = "TestRuntimeShapeLie"

    def lower(self, g, inputs, weights):
        (x,) = inputs
        f = g.dim(x.name, 2)
        two = g.op("Add", g.op("Div", f, f), g.op("Div", f, f))               # 2, computed
        reps = g.op("Concat", g.const(np.array([1, 1], np.int64)), two, axis=0)
        return [self.sym(g.op("Tile", x.name, reps), x.mask)]


def contract_spec(kind):
    """Masking -> Dense -> <kind> 'suspect' -> AttentionPooling1D -> Dense: the suspect sits in the
    middle, so only localization can name it."""
    return features_spec({"class_name": "Masking", "mask_value": 0.0},
                         {"class_name": "Dense", "name": "pre", "units": 3},
                         {"class_name": "TestAffine" if kind is None else kind, "name": "suspect"},
                         {"class_name": "AttentionPooling1D", "name": "att", "units": 3},
                         {"class_name": "Dense", "name": "head", "units": 2})


def test_contract_spec_with_a_correct_layer_builds(tmp_path):
    assert rnncompile.build(contract_spec(None), tmp_path / "ok").verified


def test_shape_rule_disagreeing_with_lowering_names_the_layer(tmp_path):
    with pytest.raises(LayerContractError) as e:
        rnncompile.build(contract_spec("TestWrongShapeRule"), tmp_path / "out")
    text = str(e.value)
    assert "layer 'suspect' (TestWrongShapeRule)" in text and "shape rule says (None, None, 3)" in text
    assert not (tmp_path / "out").exists()


def test_lowering_disagreeing_with_reference_names_the_layer(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(VerificationError) as e:
        rnncompile.build(contract_spec("TestLowerDisagrees"), out)
    first = e.value.problems[0]
    assert first.where == "layer 'suspect' (TestLowerDisagrees)", e.value
    assert "lowering disagrees with its reference" in first.message and "max abs err 1.000e-03" in first.message
    assert e.value.report is not None and not e.value.report.passed
    assert not out.exists()


def test_lowering_disagreeing_with_reference_via_cli(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(contract_spec("TestLowerDisagrees")))
    code, text = cli("build", spec, "-o", tmp_path / "out").combined
    assert code == 1
    assert "error: layer 'suspect' (TestLowerDisagrees): lowering disagrees with its reference" in text


def test_lowering_that_drops_the_mask_names_the_layer(tmp_path):
    with pytest.raises(LayerContractError, match=r"layer 'suspect' \(TestLowerDropsMask\).*dropped a mask"):
        rnncompile.build(contract_spec("TestLowerDropsMask"), tmp_path / "out")


def test_reference_that_drops_the_mask_names_the_layer(tmp_path):
    with pytest.raises(LayerContractError, match=r"layer 'suspect' \(TestReferenceDropsMask\).*dropped a mask"):
        rnncompile.build(contract_spec("TestReferenceDropsMask"), tmp_path / "out")


def test_lowering_computing_a_different_mask_names_the_layer(tmp_path):
    with pytest.raises(VerificationError) as e:
        rnncompile.build(contract_spec("TestWrongMask"), tmp_path / "out")
    first = e.value.problems[0]
    assert first.where == "layer 'suspect' (TestWrongMask)" and "mask differs" in first.message, e.value


def test_run_time_shape_disagreeing_with_rule_names_the_layer(tmp_path):
    with pytest.raises(VerificationError) as e:
        rnncompile.build(contract_spec("TestRuntimeShapeLie"), tmp_path / "out")
    first = e.value.problems[0]
    assert first.where == "layer 'suspect' (TestRuntimeShapeLie)", e.value
    assert "at run time" in first.message and "(None, None, 3)" in first.message


def test_localization_blames_nobody_in_correct_models():
    """The per-layer comparison must not accuse a correct layer (a false culprit would be worse
    than none): every layer of these models agrees with its reference on every case."""
    from rnncompile.build import io_description
    from rnncompile.backends import default_factory
    from rnncompile.verify import localize, verify

    plugins.load_plugin(str(PLUGIN_FILE))
    for source in (ROOT / "examples" / "attention_classifier.json", PLUGIN_SPEC,
                   ROOT / "examples" / "stateful_lstm.json"):
        model = rnncompile.load(source)
        low = lower(model)
        report = verify(model, OnnxRuntimeRunner(low.model_bytes, threads=1),
                        io_description(model, low))
        assert report.passed
        for case in report.cases:  # pretend every case failed: localize then checks them all
            for o in case.outputs:
                o.passed = False
        assert localize(model, report, default_factory(1)) is None, source


# ---------------------------------------------------------------------------------------------
# docs/custom_layers.md stays true: its code is the plugin's code, and its test snippet passes.

DOC = ROOT / "docs" / "custom_layers.md"


def _python_blocks(text):
    blocks, inside, cur = [], False, []
    for line in text.splitlines():
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(cur))
            inside, cur = (not inside and line.strip() == "```python"), []
            continue
        if inside:
            cur.append(line)
    return blocks


def _code_lines(text):
    out = []
    for line in text.splitlines():
        code = line.split("  #")[0].strip() if not line.strip().startswith("#") else ""
        if code and code != "...":
            out.append(code)
    return out


def test_docs_code_is_the_plugin_code_and_the_testing_snippet_passes(tmp_path, monkeypatch):
    blocks = _python_blocks(DOC.read_text())
    plugin_lines = set(_code_lines(PLUGIN_FILE.read_text()))
    layer_blocks = [b for b in blocks if "RMSNorm" in b or "StatsPooling" in b or "def " in b]
    walkthrough = [b for b in layer_blocks if "def test_" not in b and "class SequenceMask" not in b]
    assert len(walkthrough) >= 5
    for block in walkthrough:
        missing = [l for l in _code_lines(block) if l not in plugin_lines]
        assert not missing, missing
    mask_ops = set(_code_lines((ROOT / "rnncompile" / "layers" / "mask_ops.py").read_text()))
    seq = next(b for b in blocks if "class SequenceMask" in b)
    assert [l for l in _code_lines(seq) if l not in mask_ops] == []

    snippet = next(b for b in blocks if "def test_rmsnorm" in b)
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    namespace = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    namespace["test_rmsnorm"](tmp_path)
