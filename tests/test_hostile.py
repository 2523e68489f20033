"""Hostile input: broken specs, damaged or unsafe files, impossible sizes, bad run-time inputs.

Every case goes through the CLI (click's CliRunner, in process) and asserts:
  * the error message names where (JSON path, file, layer or input) and what was expected,
  * the exit code (2 for bad input),
  * no traceback and no "internal error" in the output,
  * nothing was written: no -o directory, no leftover temporary directory, no --save file.
"""
from __future__ import annotations

import io
import json
import pickle
import re
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import cli


GOOD = {"name": "m", "layers": [
    {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
    {"class_name": "Embedding", "name": "emb", "input_dim": 10, "output_dim": 3, "mask_zero": True},
    {"class_name": "LSTM", "name": "rnn", "units": 4}]}
GOOD_WEIGHTS = {"emb/embeddings": (10, 3), "rnn/kernel": (3, 16), "rnn/recurrent_kernel": (4, 16),
                "rnn/bias": (16,)}


def expect_error(args, *fragments, code=2):
    """Run the CLI; assert the exit code, that stderr holds every fragment (str or regex), and
    return stderr."""
    rc, out, err = cli(*args)
    assert rc == code, (rc, out, err)
    assert err.startswith("error: "), err
    for f in fragments:
        if isinstance(f, re.Pattern):
            assert f.search(err), (f.pattern, err)
        else:
            assert f in err, (f, err)
    return err


def build_fails(tmp_path, spec_path, *fragments, code=2):
    out = tmp_path / "out"
    err = expect_error(["build", spec_path, "-o", out], *fragments, code=code)
    assert not out.exists(), "a failed build wrote its output directory"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".out.")]
    assert not leftovers, leftovers
    return err


def write_spec(tmp_path, spec, name="spec.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(spec) if not isinstance(spec, str) else spec)
    return p


def weights(**overrides):
    rng = np.random.default_rng(0)
    w = {k: rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for k, s in GOOD_WEIGHTS.items()}
    w.update(overrides)
    return {k: v for k, v in w.items() if v is not None}


def spec_with_weights(tmp_path, npz_bytes: bytes | None = None, arrays: dict | None = None,
                      name="w.npz") -> Path:
    spec = dict(GOOD, weights=name)
    if arrays is not None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        npz_bytes = buf.getvalue()
    if npz_bytes is not None:
        (tmp_path / name).write_bytes(npz_bytes)
    return write_spec(tmp_path, spec)


def good_npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **weights())
    return buf.getvalue()


def test_the_good_spec_and_weights_build(tmp_path):
    """The baseline every hostile case below damages."""
    p = spec_with_weights(tmp_path, arrays=weights())
    rc, out, err = cli("build", p, "-o", tmp_path / "out")
    assert rc == 0, err
    assert "verified: yes" in out


# ---------------------------------------------------------------------------------------------
# Broken specs.


def test_invalid_json(tmp_path):
    p = write_spec(tmp_path, '{"layers": [\n  {"class_name": "Input",, }\n]}')
    build_fails(tmp_path, p, f"{p}:2:", "invalid JSON")


def test_truncated_json(tmp_path):
    p = write_spec(tmp_path, json.dumps(GOOD)[:40])
    build_fails(tmp_path, p, str(p), "invalid JSON")


def test_spec_is_not_an_object(tmp_path):
    build_fails(tmp_path, write_spec(tmp_path, "[1, 2, 3]"), "$: expected a JSON object, found list")


def test_spec_is_not_utf8(tmp_path):
    p = tmp_path / "spec.json"
    p.write_bytes(b"\xff\xfe{\x00")
    build_fails(tmp_path, p, str(p), "cannot read spec", "utf-8")


def test_spec_file_missing(tmp_path):
    build_fails(tmp_path, tmp_path / "nope.json", "nope.json", "not found")


def test_wrong_types(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][0]["shape"] = "x"
    spec["layers"][2]["units"] = "4"
    spec["layers"][2]["return_sequences"] = "yes"
    err = build_fails(tmp_path, write_spec(tmp_path, spec),
                      "$.layers[0].shape: expected array, found str 'x'",
                      "$.layers[2].units: expected integer, found str '4'",
                      "$.layers[2].return_sequences: expected boolean, found str 'yes'")
    assert err.count("error: ") >= 3  # every problem, not just the first
    build_fails(tmp_path, write_spec(tmp_path, dict(GOOD, name=3, seed="0")),
                "$.name: expected string, found int 3", "$.seed: expected integer, found str '0'")


def test_layers_wrong_type(tmp_path):
    build_fails(tmp_path, write_spec(tmp_path, {"layers": "LSTM"}), "$.layers: expected array")
    build_fails(tmp_path, write_spec(tmp_path, {"layers": [[1], 2]}), "$.layers[0]: expected object",
                "$.layers[1]: expected object")
    build_fails(tmp_path, write_spec(tmp_path, {"layers": []}), "$.layers: expected at least 1 item")
    build_fails(tmp_path, write_spec(tmp_path, {"name": "m"}), "$.layers", "required field missing")


def test_unknown_layer_kind(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["class_name"] = "Lstm"
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].class_name: unknown layer kind 'Lstm'",
                "expected one of:", "LSTM")


@pytest.mark.parametrize("kind", [["LSTM"], {"a": 1}, 3, None])
def test_layer_kind_of_the_wrong_type(tmp_path, kind):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["class_name"] = kind
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].class_name:", "expected one of:")


def test_missing_class_name(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    del spec["layers"][2]["class_name"]
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].class_name: required field missing")


def test_unknown_fields(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["unitz"] = 3
    spec["layers"][1]["layer"] = {}
    build_fails(tmp_path, write_spec(tmp_path, spec),
                "$.layers[2].unitz: unknown field 'unitz' for LSTM; expected one of:",
                "$.layers[1].layer: unknown field 'layer' for Embedding")
    build_fails(tmp_path, write_spec(tmp_path, dict(GOOD, optimizer="adam")),
                "$.optimizer: unknown field 'optimizer' for the spec; expected one of: layers")


def test_unknown_field_inside_bidirectional(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2] = {"class_name": "Bidirectional", "layer": {"class_name": "LSTM", "units": 2, "foo": 1}}
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].layer.foo: unknown field 'foo'")


def test_units_zero(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["units"] = 0
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].units: expected a value >= 1, found 0")


@pytest.mark.parametrize("layer,field,value,expected", [
    (0, "shape", [-1], "$.layers[0].shape[0]"),
    (0, "shape", [0], "$.layers[0].shape[0]"),
    (1, "input_dim", -5, "$.layers[1].input_dim: expected a value >= 1, found -5"),
    (1, "output_dim", 0, "$.layers[1].output_dim: expected a value >= 1, found 0"),
    (2, "units", -3, "$.layers[2].units: expected a value >= 1, found -3"),
    (2, "units", 1.5, "$.layers[2].units: expected integer, found float 1.5"),
    (2, "dropout", 2, "$.layers[2].dropout: expected a value <= 1, found 2"),
])
def test_negative_and_impossible_sizes(tmp_path, layer, field, value, expected):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][layer][field] = value
    build_fails(tmp_path, write_spec(tmp_path, spec), expected)


def test_impossible_shapes_between_layers(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                       {"class_name": "LSTM", "name": "a", "units": 4},          # 2-D out
                       {"class_name": "GRU", "name": "b", "units": 4}]}          # needs 3-D
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2]: GRU 'b' expects a sequence",
                "got shape (None, 4)")


def test_float_features_into_embedding(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None]},
                       {"class_name": "Embedding", "name": "e", "input_dim": 5, "output_dim": 2}]}
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[1]: Embedding 'e' expects integer token ids")


def test_bad_references(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                       {"class_name": "LSTM", "name": "a", "units": 2, "inputs": "nope"},
                       {"class_name": "LSTM", "name": "b", "units": 2, "inputs": "x",
                        "initial_state": ["x:abc"]}],
            "outputs": ["a:7"]}
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[1].inputs: unknown layer 'nope'",
                "$.layers[2].initial_state[0]: expected a reference `layer` or `layer:k`, found 'x:abc'")


def test_output_index_out_of_range(tmp_path):
    spec = dict(GOOD, outputs=["rnn:3"])
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.outputs[0]: rnn:3 does not exist")


def test_duplicate_layer_names(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["name"] = "emb"
    build_fails(tmp_path, write_spec(tmp_path, spec), "$.layers[2].name: duplicate layer name 'emb'")


# ---------------------------------------------------------------------------------------------
# Sizes that would exhaust memory: refused from the spec alone, before anything is allocated.


def _fast_refusal(tmp_path, spec, *fragments):
    t0 = time.perf_counter()
    err = build_fails(tmp_path, write_spec(tmp_path, spec), *fragments)
    assert time.perf_counter() - t0 < 10, "the refusal must come before any allocation"
    return err


def test_huge_units_beyond_the_schema(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][2]["units"] = 10 ** 12
    _fast_refusal(tmp_path, spec, "$.layers[2].units: expected a value <= 65536")


def test_huge_parameter_count(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 8]},
                       {"class_name": "LSTM", "units": 65536, "return_sequences": True},
                       {"class_name": "LSTM", "units": 65536}]}
    _fast_refusal(tmp_path, spec, "$.layers: the model has", "parameters; the limit is 268435456")


def test_huge_embedding_table(tmp_path):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][1].update(input_dim=1 << 24, output_dim=1 << 16)
    _fast_refusal(tmp_path, spec, "parameters; the limit is")


@pytest.mark.parametrize("shape", [[1 << 20, 1 << 20], [1 << 20, 200]])
def test_huge_fixed_input_is_refused_before_allocating(tmp_path, shape):
    """Few parameters, but verification would allocate batch x 2^40 (or 2^27) float64 values."""
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": shape},
                       {"class_name": "SimpleRNN", "units": 1}]}
    _fast_refusal(tmp_path, spec, "$.layers[0]: Input 'x' output", "values per sample; the limit is")


def test_huge_layer_output_is_refused_before_allocating(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [100000, 1]},
                       {"class_name": "Dense", "name": "wide", "units": 65536}]}
    _fast_refusal(tmp_path, spec, "$.layers[1]: Dense 'wide' output (None, 100000, 65536)",
                  "values per sample")


def test_huge_sizes_are_refused_under_a_1_gib_address_space_limit(tmp_path):
    """Refused before allocating, shown the hard way: in a process that cannot map more than
    1 GiB, each huge model is a clean exit 2 (an attempted allocation would be a MemoryError,
    exit 3). The good spec builds under the same limit."""
    import subprocess
    import sys

    resource = pytest.importorskip("resource")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    specs = {
        "params": {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 8]},
                              {"class_name": "LSTM", "units": 20000}]},
        "fixed_input": {"layers": [{"class_name": "Input", "name": "x", "shape": [1 << 20, 200]},
                                   {"class_name": "SimpleRNN", "units": 1}]},
    }
    code = ("import sys; from rnncompile.cli import main; "
            "sys.argv = ['rnncompile'] + sys.argv[1:]; main()")
    for name, spec in specs.items():
        p = write_spec(tmp_path, spec, f"{name}.json")
        r = subprocess.run([sys.executable, "-c", code, "check", str(p)], capture_output=True,
                           text=True, preexec_fn=limit, timeout=120)
        assert r.returncode == 2, (name, r.returncode, r.stderr)
        assert "limit is" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------
# Weights files.


def test_mismatched_weight_shape(tmp_path):
    p = spec_with_weights(tmp_path, arrays=weights(**{"rnn/kernel": np.zeros((4, 16), np.float32)}))
    build_fails(tmp_path, p, "w.npz[rnn/kernel]: expected shape (3, 16), found (4, 16)")


def test_vocabulary_and_embedding_size_disagree(tmp_path):
    """input_dim says 10 ids, the embedding table has 12 rows."""
    p = spec_with_weights(tmp_path, arrays=weights(**{"emb/embeddings": np.zeros((12, 3), np.float32)}))
    build_fails(tmp_path, p, "w.npz[emb/embeddings]: expected shape (10, 3), found (12, 3)")


def test_missing_and_extra_weight_keys(tmp_path):
    w = weights(**{"rnn/bias": None, "rnn/gamma": np.zeros(3, np.float32)})
    p = spec_with_weights(tmp_path, arrays=w)
    build_fails(tmp_path, p, "w.npz[rnn/bias]: missing weight, expected shape (16,)",
                "w.npz[rnn/gamma]: unexpected weight: no layer has it (expected keys:")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_in_weights(tmp_path, bad):
    k = np.zeros((4, 16), np.float32)
    k[1, 2] = bad
    k[3, 3] = bad
    p = spec_with_weights(tmp_path, arrays=weights(**{"rnn/recurrent_kernel": k}))
    build_fails(tmp_path, p, "w.npz[rnn/recurrent_kernel]: 2 value(s) are NaN or infinite")


def test_integer_weights(tmp_path):
    p = spec_with_weights(tmp_path, arrays=weights(**{"rnn/bias": np.zeros(16, np.int64)}))
    build_fails(tmp_path, p, "w.npz[rnn/bias]: expected float weights, found int64")


def test_weights_file_missing(tmp_path):
    p = spec_with_weights(tmp_path)  # names w.npz, never written
    build_fails(tmp_path, p, "$.weights", "w.npz", "weights file not found")


def test_truncated_npz(tmp_path):
    data = good_npz_bytes()
    p = spec_with_weights(tmp_path, npz_bytes=data[: len(data) // 2])
    build_fails(tmp_path, p, "$.weights", "w.npz", "not a valid .npz (zip) file")


def test_npz_with_a_truncated_member(tmp_path):
    """The zip directory is intact but one array's data is cut short."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in weights().items():
            member = io.BytesIO()
            np.save(member, v)
            raw = member.getvalue()
            zf.writestr(k + ".npy", raw[:-8] if k == "rnn/kernel" else raw)
    p = spec_with_weights(tmp_path, npz_bytes=buf.getvalue())
    build_fails(tmp_path, p, "w.npz[rnn/kernel.npy])", "array header claims 192 bytes but the member holds 184")


def test_npz_that_is_not_a_zip(tmp_path):
    p = spec_with_weights(tmp_path, npz_bytes=json.dumps({"rnn/kernel": [1, 2]}).encode())
    build_fails(tmp_path, p, "w.npz", "not a valid .npz (zip) file")


def test_pickle_file_renamed_npz(tmp_path):
    p = spec_with_weights(tmp_path, npz_bytes=pickle.dumps({"rnn/kernel": np.zeros((3, 16))}))
    build_fails(tmp_path, p, "w.npz", "not a valid .npz (zip) file")


def test_pickled_object_array_in_npz_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    w = weights()
    w["rnn/kernel"] = np.array([Evil()], dtype=object)
    p = spec_with_weights(tmp_path, arrays=w)
    build_fails(tmp_path, p, "w.npz[rnn/kernel.npy]", "holds object data",
                "Python objects are never unpickled")
    assert not marker.exists()


def _zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _npy(arr) -> bytes:
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def test_zip_member_with_path_traversal(tmp_path):
    """A member named ../../x.npy is never extracted: it is only a (wrong) key, named as such."""
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    members["../../evil.npy"] = _npy(np.zeros(3, np.float32))
    members["/abs/evil2.npy"] = _npy(np.zeros(3, np.float32))
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    p = spec_with_weights(sub, npz_bytes=_zip_with(members))
    out = sub / "out"
    expect_error(["build", p, "-o", out], "w.npz[../../evil]: unexpected weight",
                 "w.npz[/abs/evil2]: unexpected weight")
    assert not out.exists()
    assert not (tmp_path / "evil.npy").exists() and not (tmp_path / "evil").exists()


def test_zip_member_that_is_not_an_array(tmp_path):
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    members["notes.txt"] = b"hello"
    p = spec_with_weights(tmp_path, npz_bytes=_zip_with(members))
    build_fails(tmp_path, p, "w.npz[notes.txt]): member is not a .npy array")


def _patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size that the zip's central directory declares for `member`."""
    data = bytearray(data)
    sig = b"PK\x01\x02"
    pos = 0
    while True:
        pos = data.index(sig, pos)
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        name = bytes(data[pos + 46: pos + 46 + name_len]).decode()
        if name == member:
            struct.pack_into("<I", data, pos + 24, size)
            return bytes(data)
        pos += 4


def test_zip_member_with_absurd_declared_size(tmp_path):
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    data = _patch_declared_size(_zip_with(members), "rnn/kernel.npy", 0xFFFFFFF0)
    data = _patch_declared_size(data, "rnn/bias.npy", 0xFFFFFFF0)
    p = spec_with_weights(tmp_path, npz_bytes=data)
    build_fails(tmp_path, p, "w.npz", re.compile(r"arrays would take \d+ bytes uncompressed \(limit \d+\)"))


def test_npy_header_with_absurd_shape(tmp_path):
    """A tiny member whose .npy header claims 2^50 float64 values: refused from the header."""
    raw = bytearray(_npy(np.zeros(16, np.float32)))
    header = raw[10:10 + struct.unpack_from("<H", raw, 8)[0]].decode("latin1")
    new = header.replace("(16,)", f"({1 << 50},)").replace("'<f4'", "'<f8'")
    new = new.rstrip("\n").rstrip()
    new = new + " " * (len(header) - len(new) - 1) + "\n"
    raw[10:10 + len(header)] = new.encode("latin1")
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    members["rnn/bias.npy"] = bytes(raw)
    p = spec_with_weights(tmp_path, npz_bytes=_zip_with(members))
    build_fails(tmp_path, p, "w.npz[rnn/bias.npy]", "array header claims")


def test_npy_member_with_garbage_header(tmp_path):
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    members["rnn/bias.npy"] = b"\x93NUMPY\x01\x00\x10\x00{'descr': 12345}"
    p = spec_with_weights(tmp_path, npz_bytes=_zip_with(members))
    build_fails(tmp_path, p, "w.npz[rnn/bias.npy]", "damaged array")


# ---------------------------------------------------------------------------------------------
# Damaged Keras model files (the reader is rnncompile.keras; tests/test_keras_import.py
# has the format-specific cases).


@pytest.mark.parametrize("name,data,what", [
    ("bad.keras", b"garbage, not a model", "not a Keras model file"),
    ("bad.h5", b"garbage, not a model", "not a Keras model file"),
    ("trunc.keras", b"PK\x03\x04" + b"\x00" * 30, "damaged zip"),
    ("empty.h5", b"", "not a Keras model file"),
])
def test_damaged_keras_model_files(tmp_path, name, data, what):
    pytest.importorskip("rnncompile.keras")
    p = tmp_path / name
    p.write_bytes(data)
    build_fails(tmp_path, p, name, what)


def test_missing_keras_model_file(tmp_path):
    pytest.importorskip("rnncompile.keras")
    build_fails(tmp_path, tmp_path / "nope.keras", "nope.keras", "not found")


# ---------------------------------------------------------------------------------------------
# Run-time inputs.


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("built")
    p = d / "spec.json"
    p.write_text(json.dumps(GOOD))
    rc, out, err = cli("build", p, "-o", d / "out")
    assert rc == 0, err
    return d / "out"


def run_fails(tmp_path, built, feeds, *fragments, suffix=".npy"):
    f = tmp_path / f"in{suffix}"
    if isinstance(feeds, bytes):
        f.write_bytes(feeds)
    elif suffix == ".npy":
        np.save(f, feeds, allow_pickle=True)
    elif suffix == ".npz":
        np.savez(f, **feeds)
    else:
        f.write_text(json.dumps(feeds))
    save = tmp_path / "outputs.npz"
    expect_error(["run", built, "-i", f, "--save", save], *fragments)
    assert not save.exists() and not (tmp_path / "outputs.npz.tmp").exists()


def test_run_accepts_good_ids(tmp_path, built):
    f = tmp_path / "ok.npy"
    np.save(f, np.array([[1, 2, 0]], np.int32))
    rc, out, err = cli("run", built, "-i", f)
    assert rc == 0, err
    assert "rnn float32 [1, 4]" in out


@pytest.mark.parametrize("ids,what", [
    ([[1, 10, 0]], "token id 10 at index (0, 1) is outside the vocabulary [0, 10)"),
    ([[1, -1, 0]], "token id -1 at index (0, 1) is outside the vocabulary [0, 10)"),
    ([[3, 99999]], "token id 99999 at index (0, 1) is outside the vocabulary [0, 10)"),
])
def test_token_ids_out_of_range(tmp_path, built, ids, what):
    run_fails(tmp_path, built, np.array(ids, np.int32), "input 'tokens'", what)


def test_token_ids_that_overflow_the_input_dtype(tmp_path, built):
    """2^32 + 1 must not wrap around to the valid id 1 when cast to int32."""
    run_fails(tmp_path, built, np.array([[1, 2 ** 32 + 1]], np.int64), "input 'tokens'",
              "value 4294967297 does not fit the input's int32")


@pytest.mark.parametrize("arr,what", [
    (np.array([[[1, 2, 0]]], np.int32), "expected 2-D (batch, time), got shape (1, 1, 3)"),
    (np.array([1, 2, 0], np.int32), "expected 2-D (batch, time), got shape (3,)"),
    (np.array([[1.5, 2.0]]), "expected integer token ids, got float64"),
    (np.array([[np.nan, 2.0]]), "expected integer token ids, got float64"),
    (np.array([["a", "b"]]), "expected integer token ids"),
])
def test_wrong_input_shape_or_dtype(tmp_path, built, arr, what):
    run_fails(tmp_path, built, arr, "input 'tokens'", what)


def test_pickled_object_array_as_run_input(tmp_path, built):
    run_fails(tmp_path, built, np.array([{"a": 1}], dtype=object), "in.npy", "holds object data",
              "never unpickled")


def test_run_input_json_cases(tmp_path, built):
    run_fails(tmp_path, built, {"tokens": [["a", "b"]]}, "input 'tokens'", "expected integer token ids, got object",
              suffix=".json")   # strings are read (a text input takes them), then refused for an id input
    run_fails(tmp_path, built, {"tokens": [[1, 2], [3]]}, "in.json[tokens]", "not a rectangular array",
              suffix=".json")
    run_fails(tmp_path, built, [1, 2], "in.json", "expected an object", suffix=".json")
    run_fails(tmp_path, built, b"{not json", "in.json", "invalid JSON", suffix=".json")


def test_run_input_names(tmp_path, built):
    run_fails(tmp_path, built, {"tokenz": np.ones((1, 2), np.int32)}, "input 'tokenz'",
              "unknown input 'tokenz'; the model's inputs are: tokens", suffix=".npz")


def test_run_input_file_damaged_or_unknown(tmp_path, built):
    run_fails(tmp_path, built, b"PK\x03\x04broken", "in.npz", "not a valid .npz", suffix=".npz")
    run_fails(tmp_path, built, b"1,2,3", "in.csv", "expected a .npz, .npy, .json or .txt", suffix=".csv")
    expect_error(["run", built, "-i", tmp_path / "absent.npy"], "absent.npy", "input file not found")


def test_run_on_a_directory_that_is_not_a_build(tmp_path):
    expect_error(["run", tmp_path, "-i", tmp_path / "x.npy"], str(tmp_path),
                 "not an rnncompile build directory (no manifest.json)")
    (tmp_path / "manifest.json").write_text("{broken")
    f = tmp_path / "x.npy"
    np.save(f, np.ones((1, 2), np.int32))
    expect_error(["run", tmp_path, "-i", f], "manifest.json", "damaged manifest.json")


def test_float_input_of_the_wrong_width(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                       {"class_name": "GRU", "units": 2}]}
    p = write_spec(tmp_path, spec)
    rc, _, err = cli("build", p, "-o", tmp_path / "out")
    assert rc == 0, err
    run_fails(tmp_path, tmp_path / "out", np.zeros((2, 5, 4), np.float32), "input 'x'",
              "axis 2 must be 3, got shape (2, 5, 4)")
    run_fails(tmp_path, tmp_path / "out", np.zeros((2, 5, 3), np.complex64), "input 'x'",
              "expected numbers, got complex64")
