"""The Keras importer under hostile and large inputs, and its structure:

* a damaged HDF5 file that makes libhdf5 crash or hang costs a clean ModelFileError, never the
  host process (the HDF5 data is read in a contained child process);
* sizes are checked from declared shapes before anything is read (fill-value bombs), text
  attributes by their decoded length, and the limits can be raised;
* weights are read once per Keras layer, and graph ordering is linear in the number of calls;
* a bug in the importer is an internal error, not "damaged model file";
* the Keras mapping lives on the layer kinds: the mask rule the importer used to restate agrees
  with each kind's `output_types`, and a plugin kind can import a Keras class.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from rnncompile.errors import ModelFileError, SpecError
from rnncompile.keras import KerasLimits, graph, import_keras, load_model_file, nodes
from rnncompile.layer import REGISTRY, TensorType, register
from rnncompile.layers.dense import Dense

HERE = Path(__file__).parent
ROOT = HERE.parent
MODELS = HERE / "keras_models"
sys.path.insert(0, str(ROOT / "benchmarks"))
import keras_import_scale as scale  # noqa: E402

# Byte edits (offset, new value) of tests/keras_models/lstm_seq_dense.h5 found by flipping bytes
# at random: libhdf5 2.0 (h5py 3.16) segfaults on the first two and loops forever on the third.
CRASHES = {"segfault_1": [(13225, 157)], "segfault_2": [(6529, 79), (8681, 4)],
           "hang": [(4912, 215), (9226, 128), (12454, 203)]}


def _flipped(tmp_path: Path, name: str) -> Path:
    data = bytearray((MODELS / "lstm_seq_dense.h5").read_bytes())
    for pos, val in CRASHES[name]:
        data[pos] = val
    p = tmp_path / f"{name}.h5"
    p.write_bytes(bytes(data))
    return p


def _host(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python that imported rnncompile: the host process of the import."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **(env or {})), timeout=timeout)


@pytest.mark.parametrize("name", sorted(CRASHES))
def test_damaged_h5_that_crashes_libhdf5_costs_a_clean_error(tmp_path, name):
    p = _flipped(tmp_path, name)
    code = ("from rnncompile.keras import load_model_file\n"
            "from rnncompile.errors import ModelFileError\n"
            f"try:\n    load_model_file({str(p)!r})\n"
            "except ModelFileError as e:\n    print('CLEAN', e)\n"
            "print('HOST ALIVE')\n")
    r = _host(code, {"RNNCOMPILE_KERAS_CPU_SECONDS": "3", "RNNCOMPILE_KERAS_TIMEOUT_SECONDS": "30"})
    assert r.returncode == 0, f"the host process died (exit {r.returncode}): {r.stderr[-2000:]}"
    assert "HOST ALIVE" in r.stdout and "CLEAN" in r.stdout, r.stdout + r.stderr
    assert str(p) in r.stdout     # (with libhdf5 2.0: "crashed ... (SIGSEGV)", "more than 3 s of CPU")


def test_damaged_weights_inside_a_keras_zip_cost_a_clean_error(tmp_path):
    """model.weights.h5 of tests/keras_models/lstm_seq_dense.keras with four bytes changed:
    libhdf5 segfaults on it."""
    src = MODELS / "lstm_seq_dense.keras"
    with zipfile.ZipFile(src) as z:
        bad = bytearray(z.read("model.weights.h5"))
    for pos, val in [(3685, 210), (3742, 240), (10673, 226), (16399, 118)]:
        bad[pos] = val
    p = tmp_path / "bad_weights.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, bytes(bad) if info.filename == "model.weights.h5" else zin.read(info))
    code = ("from rnncompile.keras import load_model_file\n"
            "from rnncompile.errors import ModelFileError\n"
            f"try:\n    load_model_file({str(p)!r})\n"
            "except ModelFileError as e:\n    print('CLEAN', e)\n"
            "print('HOST ALIVE')\n")
    r = _host(code)
    assert r.returncode == 0, f"the host process died (exit {r.returncode}): {r.stderr[-2000:]}"
    assert "CLEAN" in r.stdout and "bad_weights.keras[model.weights.h5]" in r.stdout, r.stdout


def test_non_utf8_names_in_hdf5_are_a_file_problem(tmp_path):
    """A name h5py cannot decode comes back as bytes; that is the file's problem, not a bug."""
    p = tmp_path / "names.h5"
    shutil.copy(MODELS / "lstm_seq_dense.h5", p)
    with h5py.File(p, "r+") as f:
        f["model_weights"].create_group(b"bad\xff\xfename")
    with pytest.raises(ModelFileError, match="not UTF-8"):
        import_keras(p)


def _replace_dataset(path: Path, name: str, **create) -> None:
    with h5py.File(path, "r+") as f:
        del f[name]
        f.create_dataset(name, **create)


def test_fill_value_bomb_is_refused_before_reading(tmp_path):
    """A tiny .h5 whose kernel declares 2^28 float32 values (1 GiB) held as a fill value."""
    p = tmp_path / "bomb.h5"
    shutil.copy(MODELS / "lstm_seq_dense.h5", p)
    _replace_dataset(p, "model_weights/head/head/kernel", shape=(1 << 14, 1 << 14), dtype="f4", fillvalue=1.0)
    assert p.stat().st_size < 64 << 10
    for contained in (True, False):
        with pytest.raises(ModelFileError) as e:
            import_keras(p, KerasLimits(contained=contained))
        assert "declares 268435456 values" in str(e.value) and "stores 0 bytes" in str(e.value)


def test_memory_blow_up_costs_a_clean_error(tmp_path):
    """A compressed kernel inflating to 400 MB (a 0.4 MB file), read under a 300 MB address-space
    limit: the reader process fails, the host gets a clean error."""
    p = tmp_path / "inflate.h5"
    shutil.copy(MODELS / "lstm_seq_dense.h5", p)
    with h5py.File(p, "r+") as f:
        del f["model_weights/head/head/kernel"]
        ds = f.create_dataset("model_weights/head/head/kernel", shape=(100, 1 << 20), dtype="f4",
                              chunks=(1, 1 << 20), compression="gzip")
        block = np.zeros((1, 1 << 20), np.float32)
        for i in range(100):
            ds[i:i + 1] = block
    assert p.stat().st_size < 2 << 20
    r = _host("from rnncompile.keras import load_model_file, KerasLimits\n"
              "from rnncompile.errors import ModelFileError\n"
              f"try:\n    load_model_file({str(p)!r}, KerasLimits(memory_bytes=300 << 20))\n"
              "except ModelFileError as e:\n    print('CLEAN', e)\n")
    assert r.returncode == 0 and "CLEAN" in r.stdout and "memory" in r.stdout, r.stdout + r.stderr


def test_total_declared_size_is_limited(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCOMPILE_KERAS_MAX_WEIGHT_BYTES", "64")
    with pytest.raises(ModelFileError, match="max_weight_bytes"):
        load_model_file(MODELS / "lstm_seq_dense.h5")
    monkeypatch.setenv("RNNCOMPILE_KERAS_MAX_WEIGHT_BYTES", "lots")
    with pytest.raises(ModelFileError, match="RNNCOMPILE_KERAS_MAX_WEIGHT_BYTES"):
        load_model_file(MODELS / "lstm_seq_dense.h5")


def test_text_attributes_are_limited_by_their_decoded_length(tmp_path, monkeypatch):
    """Keras stores model_config as a variable-length string: 16 bytes of storage, whatever its
    length. The limit applies to the text."""
    p = tmp_path / "long_config.h5"
    shutil.copy(MODELS / "lstm_seq_dense.h5", p)
    with h5py.File(p, "r+") as f:
        text = f.attrs["model_config"]
        f.attrs["model_config"] = text + " " * 5000
        assert f.attrs.get_id("model_config").get_storage_size() == 16
    monkeypatch.setenv("RNNCOMPILE_KERAS_MAX_CONFIG_BYTES", "4000")
    with pytest.raises(ModelFileError, match="model_config is 7591 characters, over the limit of 4000"):
        load_model_file(p)
    monkeypatch.setenv("RNNCOMPILE_KERAS_MAX_CONFIG_BYTES", "8000")
    load_model_file(p)


def test_contained_and_in_process_readers_agree():
    for f in ("bidi_lstm_concat_seq.keras", "keras2_functional_encdec.h5", "stateful_lstm.h5"):
        s1, w1 = import_keras(MODELS / f, KerasLimits(contained=True))
        s2, w2 = import_keras(MODELS / f, KerasLimits(contained=False))
        assert s1 == s2 and w1.keys() == w2.keys()
        for k in w1:
            np.testing.assert_array_equal(w1[k], w2[k])


# ------------------------------------------------------------------------------------------------
# Linear time, weights read once.


def test_weights_are_read_once_per_layer_however_often_it_is_called(tmp_path, monkeypatch):
    p = tmp_path / "calls.h5"
    scale.calls_chain(p, 200)                      # 100 Dense layers, each called twice
    lookups = []
    real = graph.read_layer_weights
    monkeypatch.setattr(graph, "read_layer_weights",
                        lambda store, n, *a: lookups.append(n.layer) or real(store, n, *a))
    spec, weights = import_keras(p)
    assert len(spec["layers"]) == 201 and len(lookups) == 100 == len(set(lookups))
    assert weights["dense_7/kernel"] is weights["dense_7.1/kernel"]   # one array, shared
    s2, w2 = import_keras(MODELS / "bidi_encdec_initial_state.keras")
    assert w2["shared_emb/embeddings"] is w2["shared_emb.1/embeddings"]


@pytest.mark.parametrize("maker", [scale.calls_chain, scale.dense_chain])
def test_graph_ordering_and_weight_lookup_are_linear(tmp_path, monkeypatch, maker):
    """Counted, not timed: the calls' inputs are looked at a bounded number of times per call
    (repeated passes over the calls did it once per call and pass: n^2 / 2 for this file, whose
    layers are listed against the order of the chain), and each layer's weights are found with
    one lookup."""
    n = 400
    p = tmp_path / "g.h5"
    maker(p, n)
    seen = {"refs": 0, "weights": 0}
    refs = nodes.data_refs
    monkeypatch.setattr(graph, "data_refs", lambda node: seen.__setitem__("refs", seen["refs"] + 1) or refs(node))
    from rnncompile.keras import reader
    real = reader.LegacyStore.layer_arrays
    monkeypatch.setattr(reader.LegacyStore, "layer_arrays",
                        lambda self, name: seen.__setitem__("weights", seen["weights"] + 1) or real(self, name))
    spec, _ = import_keras(p, KerasLimits(contained=False))
    assert len(spec["layers"]) == n + (maker is scale.calls_chain)
    assert seen["refs"] <= 3 * n, seen
    assert seen["weights"] <= n, seen
    if maker is scale.calls_chain:   # the passes would have ordered it the same way: the chain
        names = [l["name"] for l in spec["layers"]]
        assert names[1:3] == ["dense_0", "dense_1"] and names[-1] == f"dense_{n // 2 - 1}.1"


def test_weight_lookup_per_layer_does_not_scan_every_key(tmp_path):
    """Lowering and the reference ask the model for each layer's weights: the keys are grouped
    once, not scanned for every layer (n layers x 2n keys)."""
    class Counting(dict):
        scanned = 0

        def __iter__(self):
            for k in super().__iter__():
                Counting.scanned += 1
                yield k

        def items(self):
            for k in self:
                yield k, self[k]
    p = tmp_path / "d.h5"
    scale.dense_chain(p, 300)
    model = load_model_file(p)
    model.weights = Counting(model.weights)
    for _ in range(3):
        got = [model.layer_weights(l) for l in model.layers.values()]
    assert Counting.scanned <= 2 * len(model.weights), Counting.scanned
    assert got[5] == {"kernel": model.weights["dense_4/kernel"], "bias": model.weights["dense_4/bias"]}


def test_order_matches_repeated_passes():
    """The linear ordering gives exactly the order of the passes it replaces, on a graph mixing
    forward and backward references."""
    import random

    rng = random.Random(3)
    for trial in range(30):
        k = rng.randint(2, 40)
        chain = list(range(k))
        rng.shuffle(chain)                       # config order of the chain's layers
        calls = [nodes.Node("in", 0, "InputLayer", {}, {}, [], {}, -1)]
        prev = ("in", 0, 0)
        for i in range(k):
            calls.append(nodes.Node(f"l{i}", 0, "Dense", {}, {}, [prev], {}, chain[i]))
            prev = (f"l{i}", 0, 0)
        pending, emitted, expected = sorted(calls[1:], key=lambda n: (n.order, n.index)), {calls[0].key}, []
        while pending:                           # the old algorithm
            rest = []
            for n in pending:
                if all(r[:2] in emitted for r in nodes.data_refs(n)):
                    expected.append(n.key)
                    emitted.add(n.key)
                else:
                    rest.append(n)
            pending = rest
        conv = graph.Converter.__new__(graph.Converter)
        ordered, cyclic = conv._order(calls[:1], calls)
        assert [n.key for n in ordered] == expected and not cyclic


# ------------------------------------------------------------------------------------------------
# Errors keep their cause.


def test_a_bug_in_the_importer_is_not_a_damaged_file(monkeypatch):
    def broken(*a, **k):
        raise TypeError("a bug")
    monkeypatch.setattr(graph, "weight_plan", broken)
    with pytest.raises(TypeError, match="a bug"):
        import_keras(MODELS / "lstm_seq_dense.keras")


def test_cli_reports_an_importer_bug_as_internal_error(tmp_path):
    plugin = tmp_path / "bug.py"
    plugin.write_text("from rnncompile.keras import graph\n"
                      "def broken(*a, **k):\n    raise KeyError('a bug')\n"
                      "graph.weight_plan = broken\n")
    cmd = [sys.executable, "-m", "rnncompile.cli", "import", "--plugin", str(plugin),
           str(MODELS / "lstm_seq_dense.keras"), "-o", str(tmp_path / "spec.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 3 and "internal error: KeyError" in r.stderr and "damaged" not in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, RNNCOMPILE_DEBUG="1"))
    assert r.returncode != 0 and "Traceback" in r.stderr and "weight_plan" in r.stderr
    assert not (tmp_path / "spec.json").exists()


# ------------------------------------------------------------------------------------------------
# The Keras mapping on the kinds.

_RECURRENT_FLAGS = [dict(return_sequences=rs, return_state=st) for rs in (False, True) for st in (False, True)]


def _old_rule(kind: str, cfg: dict, n_states: int = 1) -> list[str]:
    """The mask rule the importer restated per Keras class before the kinds owned it: per
    output, "in" (the input's mask), "new" (a mask of its own) or None."""
    if kind == "Embedding":
        return ["new" if cfg["mask_zero"] else None]
    if kind == "Masking":
        return ["new"]
    if kind in ("Dense", "Dropout", "Activation"):
        return ["in"]
    if kind in ("GlobalAveragePooling1D", "GlobalMaxPooling1D", "Input"):
        return [None]
    if kind == "Bidirectional":
        inner = cfg["layer"]
        main = 2 if cfg["merge_mode"] is None else 1
        st = 2 * n_states if inner["return_state"] else 0
        return ["in" if inner["return_sequences"] else None] * main + [None] * st
    return ["in" if cfg["return_sequences"] else None] + [None] * (n_states if cfg["return_state"] else 0)


def _cases():
    seq = TensorType((None, 5, 3))
    yield "Embedding", {"input_dim": 9, "output_dim": 4, "mask_zero": True}, TensorType((None, 5), "int32")
    yield "Embedding", {"input_dim": 9, "output_dim": 4, "mask_zero": False}, TensorType((None, 5), "int32")
    yield "Masking", {}, seq
    yield "Dense", {"units": 2}, seq
    yield "Dropout", {"rate": 0.5}, seq
    yield "Activation", {"activation": "relu"}, seq
    yield "GlobalAveragePooling1D", {}, seq
    yield "GlobalMaxPooling1D", {}, seq
    for k in ("LSTM", "GRU", "SimpleRNN"):
        for flags in _RECURRENT_FLAGS:
            yield k, dict(units=4, **flags), seq
            for mode in ("concat", None):
                yield "Bidirectional", {"layer": dict(class_name=k, units=4, **flags), "merge_mode": mode}, seq


@pytest.mark.parametrize("kind,cfg,x", list(_cases()),
                         ids=lambda v: str(v)[:40] if not isinstance(v, TensorType) else "")
def test_keras_mask_rule_agrees_with_the_kinds_output_types(kind, cfg, x):
    cls = REGISTRY[kind]
    assert cls.keras_classes, f"{kind} imports no Keras class"
    layer = cls("l", graph.Converter._defaults(cls, cfg))
    inner = layer.inner if kind == "Bidirectional" else layer
    old = _old_rule(kind, layer.config, getattr(inner, "n_states", 1))
    for masked in (False, True):
        xt = x.with_mask(masked)
        types = layer.output_types([xt])
        assert len(types) == len(old) == len(layer.output_names())
        for t, rule in zip(types, old):
            expect = rule == "new" or (rule == "in" and masked)
            assert t.masked == expect, (kind, cfg, masked)
        assert (layer.keras_new_mask() is not None) == ("new" in old)


def test_every_built_in_keras_class_is_covered():
    """Every built-in kind with a Keras mapping is in the table above, and each Keras class maps
    to one kind."""
    mapped = {name for name, k in REGISTRY.items() if k.keras_classes and k.__module__.startswith("rnncompile.")}
    assert mapped == {c[0] for c in _cases()} | {"Input"} | set(_GOLDEN_PINNED) | set(_FIXTURE_PINNED)
    classes = [c for k in REGISTRY.values() for c in k.keras_classes]
    assert len(classes) == len(set(classes))


#: Kinds added after the importer's old mask table (issue 14): their mask rules are pinned by the
#: Keras goldens (tests/goldens/, Keras computes the masks there) instead of by that table.
_GOLDEN_PINNED = ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
                  "BatchNormalization", "LayerNormalization", "RepeatVector", "Flatten", "Reshape",
                  "Permute", "Conv1D", "MaxPooling1D", "AveragePooling1D", "LeakyReLU", "Attention",
                  "AdditiveAttention", "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dot", "PReLU",
                  "CategoryEncoding", "ReLU", "ELU", "Softmax")
#: Kinds pinned by model fixtures made with real Keras (TensorFlow backend: tools/make_text_goldens.py)
_FIXTURE_PINNED = {"TextVectorization": "text_*.keras"}


def test_golden_pinned_kinds_have_keras_goldens():
    root = Path(__file__).parent / "goldens"
    used = {l["class_name"] for p in root.glob("*/spec.json") for l in json.loads(p.read_text())["layers"]}
    assert set(_GOLDEN_PINNED) <= used, set(_GOLDEN_PINNED) - used
    for kind, pattern in _FIXTURE_PINNED.items():
        assert list(MODELS.glob(pattern)), f"{kind}: no fixture {pattern} in {MODELS}"



def test_a_plugin_kind_imports_its_keras_class(tmp_path):
    """A kind registered outside the package declares the Keras class it imports: the importer
    maps that class through it, weights and mask rule included."""
    @register
    class MyDense(Dense):
        class_name = "MyDense"
        keras_classes = ("MyDense",)
    try:
        src = MODELS / "lstm_seq_dense.keras"
        p = tmp_path / "plugin.keras"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w") as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "config.json":
                    cfg = json.loads(data)
                    head = next(l for l in cfg["config"]["layers"] if l["config"]["name"] == "head")
                    head["class_name"] = "MyDense"
                    data = json.dumps(cfg).encode()
                zout.writestr(info.filename, data)
        spec, weights = import_keras(p)
        head = next(l for l in spec["layers"] if l["name"] == "head")
        assert head["class_name"] == "MyDense" and {"head/kernel", "head/bias"} <= set(weights)
        base, wb = import_keras(src)
        np.testing.assert_array_equal(weights["head/kernel"], wb["head/kernel"])
        load_model_file(p)
    finally:
        REGISTRY.pop("MyDense", None)
    with pytest.raises(SpecError, match="layer class MyDense is not supported"):
        import_keras(p)



def test_the_example_plugin_imports_keras_rms_normalization(tmp_path, monkeypatch):
    """examples/plugins/my_layers.py maps Keras 3's RMSNormalization to its RMSNorm kind: a model
    with one (lstm -> rms -> head) imports through it, its `scale` weight as `gamma`, and the
    reference applies x / rms(x) * scale between the LSTM and the Dense head."""
    from rnncompile import plugins
    from rnncompile.reference import run_reference

    saved = dict(REGISTRY)
    monkeypatch.delitem(sys.modules, "my_layers", raising=False)
    plugins.load_plugin(str(ROOT / "examples" / "plugins" / "my_layers.py"))
    scale_w = np.linspace(0.5, 1.5, 5).astype(np.float32)

    def edit(cfg):
        layers = cfg["config"]["layers"]
        lstm_out = json.loads(json.dumps(layers[2]["inbound_nodes"][0]["args"][0]))
        rms = {"module": "keras.layers", "class_name": "RMSNormalization", "registered_name": None,
               "name": "rms", "config": {"name": "rms", "trainable": True, "axis": -1, "epsilon": 1e-5},
               "inbound_nodes": [{"args": [lstm_out], "kwargs": {}}]}
        layers[2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["rms", 0, 0]
        layers.insert(2, rms)

    def weights(f):
        f["layers/rms_normalization/vars/0"] = scale_w
        f["layers/rms_normalization/vars"].attrs["name"] = "rms"
    try:
        sys.path.insert(0, str(HERE))
        from test_keras_import import _rewrite_keras
        p = _rewrite_keras(MODELS / "lstm_seq_dense.keras", tmp_path / "rms.keras", edit, weights_edit=weights)
        spec, w = import_keras(p)
        rms = next(l for l in spec["layers"] if l["name"] == "rms")
        assert rms == {"class_name": "RMSNorm", "name": "rms", "inputs": "lstm", "epsilon": 1e-5}
        np.testing.assert_array_equal(w["rms/gamma"], scale_w)
        model = load_model_file(p)
        base = load_model_file(MODELS / "lstm_seq_dense.keras")
        x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
        trace: dict = {}
        run_reference(base, {"features": x}, trace=trace)
        h = trace["lstm"][0].data
        normed = h / np.sqrt((h ** 2).mean(-1, keepdims=True) + 1e-5) * scale_w
        wb = base.weights
        expect = np.tanh(normed @ wb["head/kernel"].astype(np.float64) + wb["head/bias"])
        got, _ = run_reference(model, {"features": x})
        np.testing.assert_allclose(got[0], expect, rtol=1e-9, atol=1e-9)
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)
        sys.modules.pop("my_layers", None)
