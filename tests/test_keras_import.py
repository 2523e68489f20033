"""Keras model import: real Keras 3 models (and hand-written Keras 2 files) from
tests/keras_models, made by tools/make_keras_models.py, must give `model.predict`'s outputs, in
the NumPy reference and in onnxruntime on the lowered model. Keras is not needed here.

Plus the refusals: code (Lambda, custom classes), unsupported layers and options, and damaged or
unsafe files, each named by file and layer."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from rnncompile.errors import ModelFileError, RnnCompileError, SpecError
from rnncompile.keras import KerasLimits, import_keras, load_model_file, write_spec
from rnncompile.lower import lower
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec

ort = pytest.importorskip("onnxruntime")

HERE = Path(__file__).parent
MODELS = HERE / "keras_models"
MANIFEST = json.loads((MODELS / "manifest.json").read_text())["fixtures"]
CASES = [(name, f) for name, info in sorted(MANIFEST.items()) if info["calls"] for f in info["files"]]
TOL = dict(atol=1e-5, rtol=1e-5)


def _io(name):
    with np.load(MODELS / f"{name}.npz", allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _run_both(model, info, data):
    """Yield (call, expected outputs, reference outputs, onnxruntime outputs by name)."""
    sess = ort.InferenceSession(lower(model).model_bytes, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    ref_states, ort_states = None, {}
    for c in range(info["calls"]):
        feeds = {n: data[f"call{c}/in/{n}"].astype(model.input_type(n).dtype) for n in model.inputs}
        expected = [data[f"call{c}/out/{k}"] for k in range(info["outputs"])]
        ref, ref_states = run_reference(model, feeds, ref_states)
        batch = next(iter(feeds.values())).shape[0]
        ort_feeds = dict(feeds)
        for s in model.states:
            ort_feeds[s.input_name] = ort_states.get(s.input_name, np.zeros((batch, *s.shape), np.float32))
        got = dict(zip(out_names, sess.run(None, ort_feeds)))
        for s in model.states:
            ort_states[s.input_name] = got[s.output_name]
        yield c, expected, ref, got


# ------------------------------------------------------------------------------------------------
# The matrix: every fixture, every file format, equals Keras.


@pytest.mark.parametrize("name,file", CASES, ids=[f for _, f in CASES])
def test_matches_keras_predict(name, file):
    info = MANIFEST[name]
    model = load_model_file(MODELS / file)
    assert model.inputs == info["inputs"], "inputs keep the Keras names and order"
    assert len(model.outputs) == info["outputs"]
    data = _io(name)
    for c, expected, ref, got in _run_both(model, info, data):
        for k, (e, r) in enumerate(zip(expected, ref)):
            assert r.shape == e.shape, f"{file} call {c} output {k}"
            np.testing.assert_allclose(r, e, **TOL, err_msg=f"{file}: reference, call {c}, output {k}")
            o = got[model.output_names[k]]
            np.testing.assert_allclose(o, e, **TOL, err_msg=f"{file}: onnxruntime, call {c}, output {k}")


def test_matrix_covers_the_issue():
    """The fixtures cover every recurrent kind, merge mode, mask source and padding pattern."""
    specs = {f: import_keras(MODELS / f)[0] for _, f in CASES}
    layers = [l for s in specs.values() for l in s["layers"]]
    inner = [l["layer"] for l in layers if l["class_name"] == "Bidirectional"]
    kinds = {l["class_name"] for l in layers + inner}
    assert {"LSTM", "GRU", "SimpleRNN", "Bidirectional", "Embedding", "Masking", "Dense", "Dropout",
            "Activation", "GlobalAveragePooling1D", "GlobalMaxPooling1D"} <= kinds
    assert {l["merge_mode"] for l in layers if l["class_name"] == "Bidirectional"} == \
        {"concat", "sum", "ave", "mul", None}
    rec = [l for l in layers + inner if l["class_name"] in ("LSTM", "GRU", "SimpleRNN")]
    for flag in ("return_state", "go_backwards", "stateful", "return_sequences", "zero_output_for_mask"):
        assert any(l.get(flag) for l in rec), flag
    assert any(not l.get("use_bias", True) for l in rec)
    assert {l.get("reset_after") for l in rec if l["class_name"] == "GRU"} == {True, False}
    assert any("initial_state" in l for l in layers)
    assert any(l.get("ignore_mask") for l in layers)
    assert any(f.endswith(".h5") for _, f in CASES) and any(f.endswith(".keras") for _, f in CASES)
    # right-padded, left-padded, gapped and empty token rows are present in the inputs
    toks = _io("bidi_lstm_concat_seq")["call0/in/tokens"] != 0
    assert toks[0].all() and not toks[4].any()
    assert toks[1, 0] and not toks[1, -1]                     # right padding
    assert not toks[2, 0] and toks[2, -1]                     # left padding
    assert toks[3, 0] and not toks[3, 1] and toks[3, 2]       # a gap


def test_masks_matter_in_the_fixtures():
    """Dropping the mask changes the outputs beyond tolerance, so the matrix really tests masks."""
    spec, weights = import_keras(MODELS / "bidi_lstm_concat_seq.keras")
    for l in spec["layers"]:
        if l["class_name"] == "Embedding":
            l["mask_zero"] = False
    model = load_spec(spec, weights=weights)
    data = _io("bidi_lstm_concat_seq")
    out, _ = run_reference(model, {"tokens": data["call0/in/tokens"]})
    assert np.max(np.abs(out[0] - data["call0/out/0"])) > 1e-3


def test_gate_order_matters_in_the_fixtures():
    """Swapping two LSTM gate blocks (weights and the non-zero biases) breaks the match."""
    spec, weights = import_keras(MODELS / "lstm_seq_dense.keras")
    w = dict(weights)
    for key in ("lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"):
        i, f, c, o = np.split(w[key], 4, axis=-1)
        w[key] = np.concatenate([f, i, c, o], axis=-1)
    model = load_spec(spec, weights=w)
    data = _io("lstm_seq_dense")
    out, _ = run_reference(model, {"features": data["call0/in/features"]})
    assert np.max(np.abs(out[0] - data["call0/out/0"])) > 1e-3


# ------------------------------------------------------------------------------------------------
# What the importer writes.


def test_spec_uses_keras_names_and_types():
    spec, weights = import_keras(MODELS / "multi_io.keras")
    names = [l["name"] for l in spec["layers"]]
    assert names[:2] == ["context", "tokens"]                   # Keras input order
    assert {"init_h", "emb", "gru", "pool", "score"} <= set(names)
    assert spec["outputs"] == ["score", "gru:1", "init_h"]      # Keras output order
    by = {l["name"]: l for l in spec["layers"]}
    assert by["tokens"]["dtype"] == "int32" and by["context"]["dtype"] == "float32"
    assert by["gru"]["initial_state"] == ["init_h"]
    assert set(weights) == {"init_h/kernel", "init_h/bias", "emb/embeddings", "gru/kernel",
                            "gru/recurrent_kernel", "gru/bias", "score/kernel", "score/bias"}
    for l in spec["layers"]:  # inert Keras fields are gone
        assert not any(k.endswith(("_initializer", "_regularizer", "_constraint")) or k in
                       ("trainable", "dtype_policy", "seed") for k in l)
    json.dumps(spec)
    model = load_model_file(MODELS / "multi_io.keras")
    sess = ort.InferenceSession(lower(model).model_bytes, providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in sess.get_inputs()}
    assert types == {"context": "tensor(float)", "tokens": "tensor(int32)"}


def test_keras2_defaults():
    """Keras 2 files: hard_sigmoid is clip(0.2x+0.5), and a GRU config without reset_after is
    the old GRU (reset_after=False); Keras 3's hard_sigmoid stays Keras 3's."""
    spec, _ = import_keras(MODELS / "keras2_sequential_gru.h5")
    by = {l["class_name"]: l for l in spec["layers"]}
    assert by["GRU"]["reset_after"] is False
    assert by["GRU"]["recurrent_activation"] == "hard_sigmoid_keras2"
    assert by["Dense"]["activation"] == "hard_sigmoid_keras2"
    assert by["Input"]["dtype"] == "int32", "a float32 input read only by an Embedding holds token ids"
    spec2, _ = import_keras(MODELS / "keras2_functional_encdec.h5")
    dec = next(l for l in spec2["layers"] if l["name"] == "decoder")
    assert dec["layer"]["reset_after"] is True and dec["layer"]["recurrent_activation"] == "hard_sigmoid_keras2"
    assert dec["initial_state"] == ["encoder:1", "encoder:2"]
    spec3, _ = import_keras(MODELS / "gru_variants.keras")
    gru = next(l for l in spec3["layers"] if l["name"] == "gru_before")
    assert gru["recurrent_activation"] == "hard_sigmoid" and gru["reset_after"] is False


def _reference_error(spec, weights, name):
    model = load_spec(spec, weights=weights)
    data = _io(name)
    out, _ = run_reference(model, {n: data[f"call0/in/{n}"] for n in model.inputs})
    return max(float(np.max(np.abs(o - data[f"call0/out/{k}"]))) for k, o in enumerate(out))


@pytest.mark.parametrize("name,layer,ignored", [
    ("encdec_decoder_unmasked", "decoder", True),     # initial_state tensors: Keras drops the mask
    ("mask_dropped_after_rnn", "lstm_unmasked", True),
    ("encdec_explicit_mask", "decoder", False),       # mask= given explicitly
    ("initial_state_none", "gru", False),             # initial_state=None: one tensor, masked
    ("bidi_encdec_initial_state", "dec", False),
    ("bidi_mask_dropped", "bidi", True),
])
def test_ignore_mask_where_keras_drops_the_mask(name, layer, ignored):
    """Keras 3 passes no mask to a layer called with initial_state tensors and no mask=; the
    importer says so with ignore_mask. Flipping the flag breaks the match with Keras, so the
    fixtures really check it."""
    spec, weights = import_keras(MODELS / f"{name}.keras")
    by = {l["name"]: l for l in spec["layers"]}
    assert by[layer].get("ignore_mask", False) is ignored
    assert _reference_error(spec, weights, name) < 1e-5
    by[layer]["ignore_mask"] = not ignored
    assert _reference_error(spec, weights, name) > 1e-3


def test_shared_layer_becomes_a_copy_per_call():
    spec, weights = import_keras(MODELS / "bidi_encdec_initial_state.keras")
    names = [l["name"] for l in spec["layers"]]
    assert "shared_emb" in names and "shared_emb.1" in names
    np.testing.assert_array_equal(weights["shared_emb/embeddings"], weights["shared_emb.1/embeddings"])


@pytest.mark.parametrize("name", ["sequential_pooling", "bidi_encdec_initial_state", "multi_io"])
def test_weights_found_without_layer_name_attributes(tmp_path, name):
    """Older Keras 3 files do not name the groups of model.weights.h5: the importer then follows
    Keras's own path scheme (snake_case class names, numbered in layer order)."""
    def strip(f):
        def rm(_, obj):
            if "name" in obj.attrs:
                del obj.attrs["name"]
        f.visititems(rm)
    p = _rewrite_keras(MODELS / f"{name}.keras", tmp_path / f"{name}.keras", weights_edit=strip)
    with h5py.File(io.BytesIO(zipfile.ZipFile(p).read("model.weights.h5")), "r") as f:
        assert "name" not in f["layers"][next(iter(f["layers"]))]["vars"].attrs
    s1, w1 = import_keras(MODELS / f"{name}.keras")
    s2, w2 = import_keras(p)
    assert s1 == s2 and w1.keys() == w2.keys()
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])


def test_batch_axis_stays_dynamic_unless_stateful():
    spec, _ = import_keras(MODELS / "stateful_lstm.keras")
    assert spec["layers"][0]["batch_size"] == 2
    for _, f in CASES:
        if "stateful" not in f:
            assert all("batch_size" not in l for l in import_keras(MODELS / f)[0]["layers"]), f


def test_write_spec_round_trip(tmp_path):
    out = tmp_path / "sub" / "spec.json"
    written = write_spec(MODELS / "bidi_lstm_mul_last_state.keras", out)
    assert written == [out, out.with_suffix(".npz")] and all(p.is_file() for p in written)
    spec = json.loads(out.read_text())
    assert spec["weights"] == "spec.npz"
    # loads from its own directory, whatever the working directory
    model = load_spec(out)
    info = MANIFEST["bidi_lstm_mul_last_state"]
    data = _io("bidi_lstm_mul_last_state")
    for _, expected, ref, got in _run_both(model, info, data):
        for e, r in zip(expected, ref):
            np.testing.assert_allclose(r, e, **TOL)


def test_no_keras_tensorflow_or_torch_imported():
    code = ("import sys; from rnncompile.keras import load_model_file; "
            f"load_model_file({str(MODELS / 'bidi_lstm_concat_seq.keras')!r}); "
            f"load_model_file({str(MODELS / 'keras2_functional_encdec.h5')!r}); "
            "bad = [m for m in ('keras', 'tensorflow', 'torch', 'tf_keras', 'jax') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=HERE.parent, timeout=120)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------------
# Refusals: every message names the file, the layer and what is wrong.


def _rewrite_keras(src: Path, dst: Path, edit=None, extra: dict | None = None, weights_edit=None) -> Path:
    """Copy a .keras zip, editing config.json (a function on the parsed dict) or the weights."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json" and edit is not None:
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            if info.filename == "model.weights.h5" and weights_edit is not None:
                tmp = dst.with_suffix(".w.h5")
                tmp.write_bytes(data)
                with h5py.File(tmp, "r+") as f:
                    weights_edit(f)
                data = tmp.read_bytes()
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _layer(cfg, name):
    return next(l for l in cfg["config"]["layers"] if l.get("name", l["config"].get("name")) == name)


def _refused(path, *needles, kind=RnnCompileError):
    with pytest.raises(kind) as e:
        load_model_file(path)
    text = str(e.value)
    for n in (Path(path).name, *needles):
        assert n in text, f"{n!r} not in: {text}"
    return e.value


def test_refuses_lambda_layer():
    err = _refused(MODELS / "refuse_lambda.keras", "'double'", "Lambda", "never runs code", kind=SpecError)
    assert all("refuse_lambda.keras" in p.where for p in err.problems)


def test_refuses_custom_layer_class():
    _refused(MODELS / "refuse_custom.keras", "'scale'", "Scale", "custom", kind=SpecError)


def test_refuses_nested_model():
    _refused(MODELS / "refuse_nested.keras", "'inner'", "Sequential", "nested models", kind=SpecError)


def test_refuses_reused_stateful_layer():
    _refused(MODELS / "refuse_reused_stateful.keras", "'st'", "LSTM", "stateful", kind=SpecError)


def test_refuses_custom_module(tmp_path):
    def edit(cfg):
        l = _layer(cfg, "lstm")
        l["module"] = "my_project.layers"
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "custom_module.keras", edit)
    _refused(p, "'lstm'", "LSTM", "my_project.layers", kind=SpecError)


def test_refuses_custom_activation_function(tmp_path):
    def edit(cfg):
        _layer(cfg, "head")["config"]["activation"] = {
            "module": "builtins", "class_name": "function", "config": "tanh", "registered_name": "function"}
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "custom_act.keras", edit)
    _refused(p, "'head'", "Dense", "activation", kind=SpecError)


def test_refuses_unsupported_layer_class(tmp_path):
    def edit(cfg):
        l = _layer(cfg, "head")
        l["class_name"] = "ConvLSTM2D"
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "conv.keras", edit)
    _refused(p, "'head'", "ConvLSTM2D", "not supported", "supported layers", "LSTM", kind=SpecError)


@pytest.mark.parametrize("layer,option,value,needle", [
    ("lstm", "time_major", True, "time_major"),
    ("lstm", "activation", "mish", "'mish'"),
    ("lstm", "dtype", {"module": "keras", "class_name": "DTypePolicy",
                       "config": {"name": "mixed_float16"}}, "mixed_float16"),
    ("lstm", "some_new_flag", 3, "some_new_flag"),
    ("head", "lora_rank", 4, "lora_rank"),
])
def test_refuses_options_that_change_the_math(tmp_path, layer, option, value, needle):
    def edit(cfg):
        _layer(cfg, layer)["config"][option] = value
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "opt.keras", edit)
    cls = "LSTM" if layer == "lstm" else "Dense"
    _refused(p, f"'{layer}'", cls, needle, kind=SpecError)


def test_inert_options_are_dropped(tmp_path):
    def edit(cfg):
        c = _layer(cfg, "lstm")["config"]
        c.update(use_cudnn="auto", implementation=2, kernel_regularizer={"class_name": "L2"},
                 seed=3, recurrent_dropout=0.5, unroll=True, dropout=0.25)
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "inert.keras", edit)
    info, data = MANIFEST["lstm_seq_dense"], _io("lstm_seq_dense")
    for _, expected, ref, _ in _run_both(load_model_file(p), info, data):
        np.testing.assert_allclose(ref[0], expected[0], **TOL)


def test_refuses_channels_first_pooling(tmp_path):
    def edit(cfg):
        for l in cfg["config"]["layers"]:
            if l["class_name"] == "GlobalAveragePooling1D":
                l["config"]["data_format"] = "channels_first"
    p = _rewrite_keras(MODELS / "sequential_pooling.keras", tmp_path / "cf.keras", edit)
    _refused(p, "GlobalAveragePooling1D", "data_format", "channels_first", kind=SpecError)


def test_refuses_a_different_backward_layer(tmp_path):
    def edit(cfg):
        _layer(cfg, "bidi")["config"]["backward_layer"]["config"]["activation"] = "relu"
    p = _rewrite_keras(MODELS / "bidi_lstm_concat_seq.keras", tmp_path / "bwd.keras", edit)
    _refused(p, "'bidi'", "Bidirectional", "backward_layer", "activation", kind=SpecError)


def test_refuses_a_mask_from_elsewhere(tmp_path):
    """The decoder's explicit mask is rewired to the encoder's int32 tokens (not a bool mask, no
    op computes one from them): not expressible. (A mask computed from them, NotEqual(enc_tokens,
    0), is imported: tests/test_explicit_masks.py.)"""
    def edit(cfg):
        dec = _layer(cfg, "decoder")
        dec["inbound_nodes"][0]["kwargs"]["mask"]["config"]["keras_history"] = ["enc_tokens", 0, 0]
    p = _rewrite_keras(MODELS / "encdec_explicit_mask.keras", tmp_path / "mask.keras", edit)
    _refused(p, "'decoder'", "LSTM", "mask", "enc_tokens", kind=SpecError)


def test_refuses_training_true_with_dropout(tmp_path):
    def edit(cfg):
        _layer(cfg, "dec_drop")["inbound_nodes"][0]["kwargs"]["training"] = True
    p = _rewrite_keras(MODELS / "encdec_decoder_unmasked.keras", tmp_path / "train.keras", edit)
    _refused(p, "'dec_drop'", "Dropout", "training=True", kind=SpecError)


def test_refuses_ops_used_as_data(tmp_path):
    def edit(cfg):
        layers = cfg["config"]["layers"]
        ne = next(l for l in layers if l["class_name"] == "NotEqual")
        _layer(cfg, "bidi")["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = [ne["name"], 0, 0]
    p = _rewrite_keras(MODELS / "bidi_lstm_concat_seq.keras", tmp_path / "op.keras", edit)
    _refused(p, "'bidi'", "NotEqual", "ops", kind=SpecError)


def test_refuses_subclassed_model(tmp_path):
    def edit(cfg):
        cfg.clear()
        cfg.update({"module": "my_models", "class_name": "MyModel", "config": {"units": 3}})
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "sub.keras", edit)
    _refused(p, "my_models", kind=SpecError)


def test_refuses_missing_weights(tmp_path):
    def wedit(f):
        del f["layers/lstm/cell/vars/1"]
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "w.keras", weights_edit=wedit)
    _refused(p, "'lstm'", "cell/vars/1", kind=SpecError)


def test_refuses_external_link_in_weights(tmp_path):
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.zeros((3, 20), np.float32)

    def wedit(f):
        del f["layers/lstm/cell/vars/0"]
        f["layers/lstm/cell/vars/0"] = h5py.ExternalLink(str(outside), "secret")
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "ext.keras", weights_edit=wedit)
    _refused(p, "ExternalLink", kind=ModelFileError)


def test_refuses_damaged_zip(tmp_path):
    data = (MODELS / "lstm_seq_dense.keras").read_bytes()
    p = tmp_path / "truncated.keras"
    p.write_bytes(data[: len(data) // 2])
    _refused(p, "damaged", kind=ModelFileError)
    # a corrupted member (bad CRC) is refused too
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 10] ^= 0xFF
    p2 = tmp_path / "crc.keras"
    p2.write_bytes(bytes(raw))
    _refused(p2, kind=ModelFileError)


def test_refuses_path_traversal_member(tmp_path):
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "evil.keras",
                       extra={"../../etc/evil.sh": b"echo hi"})
    _refused(p, "../../etc/evil.sh", "traversal", kind=ModelFileError)
    p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "abs.keras",
                       extra={"/tmp/abs": b"x"})
    _refused(p, "absolute", kind=ModelFileError)


def test_refuses_oversized_member(tmp_path):
    """A config.json over the limit (16 MiB of spaces: a tiny zip) is refused before reading."""
    big = b"{" + b" " * (KerasLimits().max_config_bytes + 10) + b"}"
    src = MODELS / "lstm_seq_dense.keras"
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, big if info.filename == "config.json" else zin.read(info))
    assert p.stat().st_size < 1 << 20
    _refused(p, "config.json", "over the limit", kind=ModelFileError)


def test_refuses_oversized_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCOMPILE_KERAS_MAX_WEIGHTS_FILE_BYTES", "1000")
    _refused(MODELS / "lstm_seq_dense.keras", "model.weights.h5", "over the limit", kind=ModelFileError)


def test_refuses_missing_members_and_non_models(tmp_path):
    p = tmp_path / "nocfg.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("model.weights.h5", b"")
    _refused(p, "config.json", kind=ModelFileError)
    p = tmp_path / "junk.keras"
    p.write_bytes(b"not a model at all")
    _refused(p, "not a Keras model file", kind=ModelFileError)
    _refused(tmp_path / "missing.keras", "not found", kind=ModelFileError)
    d = tmp_path / "saved_model"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelFileError, match="SavedModel"):
        load_model_file(d)


def test_refuses_weights_only_h5(tmp_path):
    src = MODELS / "lstm_seq_dense.h5"
    p = tmp_path / "weights_only.h5"
    shutil.copy(src, p)
    with h5py.File(p, "r+") as f:
        del f.attrs["model_config"]
        f.attrs["layer_names"] = np.array([b"lstm"])
    _refused(p, "weights only", kind=ModelFileError)


def test_refuses_unsupported_layer_in_legacy_h5(tmp_path):
    p = tmp_path / "k2.h5"
    shutil.copy(MODELS / "keras2_sequential_gru.h5", p)
    with h5py.File(p, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"][1]["config"]["time_major"] = True
        cfg["config"].insert(2, {"class_name": "Lambda", "config": {"name": "lam", "function": ["4wEA", None, None]}})
        f.attrs["model_config"] = json.dumps(cfg).encode()
    err = _refused(p, "'gru_1'", "time_major", "'lam'", "Lambda", kind=SpecError)
    assert len(err.problems) >= 2, "every problem is reported, not only the first"


def test_spec_problems_name_the_keras_layer(tmp_path):
    """A problem found by the spec loader (here: mask_zero with a one-token vocabulary) is
    reported against the Keras layer, with the file."""
    def edit(cfg):
        _layer(cfg, "emb")["config"]["input_dim"] = 1
    p = _rewrite_keras(MODELS / "bidi_lstm_concat_seq.keras", tmp_path / "dim.keras", edit)
    err = _refused(p, "'emb'", "Embedding", "input_dim", kind=SpecError)
    assert all("dim.keras" in pr.where for pr in err.problems)


# ------------------------------------------------------------------------------------------------
# Damaged and malformed files: only rnncompile's own errors, never a traceback.

def _json_paths(o, pre=()):
    yield pre
    if isinstance(o, dict):
        for k, v in o.items():
            yield from _json_paths(v, pre + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _json_paths(v, pre + (i,))


_FUZZ_VALUES = [None, 0, -1, 1.5, True, "x", [], {}, [None], ["a", 0, 0], 10 ** 12,
                {"class_name": "__keras_tensor__", "config": {"keras_history": ["nope", 0, 0]}}]


@pytest.mark.parametrize("seed", range(4))
def test_malformed_configs_give_clean_errors(tmp_path, seed):
    import copy
    import random

    rng = random.Random(seed)
    files = sorted(p for p in MODELS.glob("*.keras") if not p.name.startswith("refuse"))
    for i in range(40):
        src = rng.choice(files)
        with zipfile.ZipFile(src) as z:
            cfg = json.loads(z.read("config.json"))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(list(_json_paths(cfg))[1:])
            parent = cfg
            for k in path[:-1]:
                parent = parent[k]
            if isinstance(parent, dict) and rng.random() < 0.2:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(_FUZZ_VALUES))
        p = _rewrite_keras(src, tmp_path / f"m{i}.keras", lambda c: (c.clear(), c.update(cfg)))
        try:
            load_model_file(p)
        except RnnCompileError as e:
            assert str(p) in str(e)


@pytest.mark.parametrize("seed", range(3))
def test_damaged_weights_give_clean_errors(tmp_path, seed):
    import random

    rng = random.Random(seed)
    src = MODELS / "bidi_lstm_concat_seq.keras"
    with zipfile.ZipFile(src) as z:
        weights = z.read("model.weights.h5")
    for i in range(40):
        w = bytearray(weights)
        for _ in range(rng.randint(1, 8)):
            w[rng.randrange(len(w))] = rng.randrange(256)
        if rng.random() < 0.3:
            w = w[: rng.randrange(len(w))]
        p = tmp_path / f"w{i}.keras"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info.filename, bytes(w) if info.filename == "model.weights.h5" else zin.read(info))
        try:
            load_model_file(p)
        except RnnCompileError as e:
            assert str(p) in str(e)


def test_mask_after_a_merge_must_come_from_the_merges_inputs(tmp_path):
    """Keras records the mask it computed for a merge layer as an ops chain passed as the next
    layer's mask=; the importer accepts it (the fixture imports), but a mask taken from a tensor
    that is not among the merge's inputs is refused, naming the layer."""
    def edit(cfg):
        call = _layer(cfg, "lstm")["inbound_nodes"][0]
        assert call["kwargs"]["mask"]["config"]["keras_history"][0] == "any"
        call["kwargs"]["mask"]["config"]["keras_history"] = ["add", 0, 0]   # not an input of 'cat'
    p = _rewrite_keras(MODELS / "breadth_merges_norm.keras", tmp_path / "m.keras", edit)
    _refused(p, "'lstm'", "mask", "not supported", kind=SpecError)
