"""Issue 12, the classes other than output directories (tests/test_outdir.py) and the Keras file
reader: run-time inputs that crashed onnxruntime, bounded memory, validation where it belongs,
escaped output, and the artifact's answer for token ids outside the vocabulary."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from test_hostile import GOOD, _npy, _zip_with, cli, expect_error, spec_with_weights, weights, write_spec

from rnncompile import npz as npz_module
from rnncompile.build import build, open_session
from rnncompile.errors import RunError, SpecError
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec

SEQ = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                  {"class_name": "LSTM", "name": "l", "units": 2, "return_sequences": True},
                  {"class_name": "GRU", "name": "g", "units": 2}]}
ATTN = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                   {"class_name": "Masking", "name": "m"},
                   {"class_name": "GRU", "name": "g", "units": 2, "return_sequences": True},
                   {"class_name": "AttentionPooling1D", "name": "a", "units": 4}]}


@pytest.fixture(scope="module")
def built_seq(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq") / "out"
    build(SEQ, out)
    return out


# ---------------------------------------------------------------------------------------------
# Empty batch and T = 0: refused everywhere (onnxruntime's LSTM/GRU kernels crash on them; Keras 3
# has no consistent answer: measured in docs/security.md).


@pytest.mark.parametrize("shape,what", [((0, 4, 3), "a batch of 0 rows"), ((2, 0, 3), "a sequence of 0 time steps")])
def test_empty_batch_or_sequence_through_the_cli(tmp_path, built_seq, shape, what):
    """In a subprocess: on the old code onnxruntime killed the process (SIGSEGV/SIGABRT)."""
    f = tmp_path / "x.npy"
    np.save(f, np.zeros(shape, np.float32))
    r = subprocess.run([sys.executable, "-m", "rnncompile.cli", "run", str(built_seq), "-i", str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "input 'x'" in r.stderr and what in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 0, 3)])
def test_empty_batch_or_sequence_in_session_and_reference(built_seq, shape):
    session = open_session(built_seq)
    with pytest.raises(RunError, match="empty input"):
        session.run(np.zeros(shape, np.float32))
    with pytest.raises(RunError, match="empty input"):
        run_reference(load_spec(SEQ), {"x": np.zeros(shape)})


def test_zero_steps_with_attention_is_a_clean_error(tmp_path):
    out = tmp_path / "out"
    build(ATTN, out)
    with pytest.raises(RunError, match="a sequence of 0 time steps"):
        open_session(out).run(np.zeros((1, 0, 3), np.float32))


def test_session_states_are_copies(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3], "batch_size": 1},
                       {"class_name": "GRU", "name": "g", "units": 2, "stateful": True}]}
    build(spec, tmp_path / "out")
    s = open_session(tmp_path / "out")
    s.run(np.ones((1, 2, 3), np.float32))
    got = s.states
    before = {k: v.copy() for k, v in got.items()}
    for v in got.values():
        v[...] = 123.0
    assert all(np.array_equal(s.states[k], before[k]) for k in before)


# ---------------------------------------------------------------------------------------------
# Bounded memory: limits checked before reading, parsing or inflating; bounded messages.


def test_json_byte_limit_for_spec_and_inputs(tmp_path, monkeypatch):
    p = write_spec(tmp_path, GOOD)
    expect_error(["check", p, "--max-json-bytes", "100"], "larger than the limit of 100 bytes")
    monkeypatch.setenv("RNNCOMPILE_MAX_JSON_BYTES", "100")
    expect_error(["check", p], "larger than the limit of 100 bytes", "--max-json-bytes")
    monkeypatch.delenv("RNNCOMPILE_MAX_JSON_BYTES")
    rc, _, err = cli("check", p)
    assert rc == 0, err


@pytest.mark.parametrize("depth", [70, 100_000])
def test_deep_json_everywhere(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    p = write_spec(tmp_path, deep)
    expect_error(["check", p], "nested", "--max-json-depth")
    out = tmp_path / "out"
    build(GOOD, out)
    f = tmp_path / "in.json"
    f.write_text('{"tokens": ' + deep + "}")
    expect_error(["run", out, "-i", f], "in.json", "nested")
    (out / "manifest.json").write_text(deep)
    np.save(tmp_path / "x.npy", np.ones((1, 2), np.int32))
    expect_error(["run", out, "-i", tmp_path / "x.npy"], "damaged manifest.json", "nested")


def test_manifest_missing_what_running_needs(tmp_path):
    out = tmp_path / "out"
    build(GOOD, out)
    man = json.loads((out / "manifest.json").read_text())
    del man["inputs"]
    (out / "manifest.json").write_text(json.dumps(man))
    np.save(tmp_path / "x.npy", np.ones((1, 2), np.int32))
    expect_error(["run", out, "-i", tmp_path / "x.npy"], "damaged manifest.json", "inputs")


def _bomb(name="rnn/huge", mib=64) -> dict:
    return {name: np.zeros((mib << 18,), np.float32)}  # compresses ~1000x


def _compressed(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_npz_bomb_is_refused_from_declared_sizes(tmp_path):
    data = _compressed({**weights(), **_bomb()})
    assert len(data) < 1 << 20
    p = spec_with_weights(tmp_path, npz_bytes=data)
    expect_error(["check", p, "--max-npz-bytes", "16M"], "arrays would take", "limit 16777216")


def test_unexpected_members_are_never_inflated(tmp_path, monkeypatch):
    """Keys are checked before any array is read: the 64 MiB member is never decompressed."""
    read = []
    real = npz_module.NpzFile.read
    monkeypatch.setattr(npz_module.NpzFile, "read", lambda self, k: read.append(k) or real(self, k))
    p = spec_with_weights(tmp_path, npz_bytes=_compressed({**weights(), **_bomb()}))
    with pytest.raises(SpecError, match="rnn/huge.*unexpected weight"):
        load_spec(p)
    assert "rnn/huge" not in read
    out = tmp_path / "out"
    build(GOOD, out)
    f = tmp_path / "in.npz"
    f.write_bytes(_compressed({"tokens": np.ones((1, 2), np.int32), **_bomb("bogus")}))
    read.clear()
    expect_error(["run", out, "-i", f], "unknown input 'bogus'")
    assert read == []


def test_thousands_of_unexpected_keys_give_a_bounded_message(tmp_path):
    extra = {f"junk/k{i}": np.zeros(1, np.float32) for i in range(3000)}
    p = spec_with_weights(tmp_path, arrays={**weights(), **extra})
    err = expect_error(["check", p], "unexpected weight", "and 2990 more unexpected weights")
    assert len(err) < 5000, len(err)


def test_lying_npy_header_is_not_called_too_large(tmp_path):
    out = tmp_path / "out"
    build(GOOD, out)
    raw = bytearray(_npy(np.ones((1, 4), np.int32)))
    header = raw[10:].split(b"\n")[0].decode("latin1")
    raw[10:10 + len(header)] = header.replace("(1, 4)", "(1, 9)").ljust(len(header)).encode("latin1")
    f = tmp_path / "x.npy"
    f.write_bytes(bytes(raw))
    err = expect_error(["run", out, "-i", f], "x.npy", "damaged or lying .npy header")
    assert "too large" not in err and "out of memory" not in err


# ---------------------------------------------------------------------------------------------
# Validation where it belongs.


def test_finiteness_is_checked_after_the_cast_to_float32(tmp_path):
    k = np.zeros((4, 16), np.float64)
    k[0, 0] = 1e39  # finite in float64, +inf in float32
    p = spec_with_weights(tmp_path, arrays=weights(**{"rnn/recurrent_kernel": k}))
    expect_error(["check", p], "w.npz[rnn/recurrent_kernel]", "1 value(s) are NaN or infinite in float32")


@pytest.mark.parametrize("layer,field,value,where", [
    (0, "batch_size", 2.0, "$.layers[0].batch_size: expected integer, found float 2.0"),
    (0, "shape", [5.0], "$.layers[0].shape[0]"),
    (2, "units", 4.0, "$.layers[2].units: expected integer, found float 4.0"),
    (2, "units", True, "$.layers[2].units: expected integer, found bool True"),
])
def test_integral_floats_in_sizes_are_refused_clearly(tmp_path, layer, field, value, where):
    spec = json.loads(json.dumps(GOOD))
    spec["layers"][layer][field] = value
    err = expect_error(["check", write_spec(tmp_path, spec)], where)
    assert "fixed size" not in err


def test_duplicates_are_refused(tmp_path):
    text = json.dumps(GOOD).replace('"units": 4', '"units": 4, "units": 8')
    expect_error(["check", write_spec(tmp_path, text)], "key 'units' appears twice")
    members = {f"{k}.npy": _npy(v) for k, v in weights().items()}
    data = _zip_with(members)
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("rnn/bias.npy", _npy(np.ones(16, np.float32)))
    p = spec_with_weights(tmp_path, npz_bytes=buf.getvalue())
    expect_error(["check", p], "rnn/bias.npy", "appears twice in the zip")
    out = tmp_path / "out"
    build(GOOD, out)
    f = tmp_path / "in.json"
    f.write_text('{"tokens": [[1, 2]], "tokens": [[3, 4]]}')
    expect_error(["run", out, "-i", f], "key 'tokens' appears twice")


def test_true_is_not_a_token_id(tmp_path):
    out = tmp_path / "out"
    build(GOOD, out)
    f = tmp_path / "in.json"
    f.write_text('{"tokens": [[true, 2]]}')
    expect_error(["run", out, "-i", f], "in.json[tokens]", "expected numbers, found true/false")


def test_float_token_ids_in_the_reference():
    with pytest.raises(RunError, match="expected integer token ids, got float64"):
        run_reference(load_spec(GOOD), {"tokens": np.array([[1.0, 2.0]])})


def test_non_finite_numbers_in_a_spec(tmp_path):
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                       {"class_name": "Masking", "name": "m", "mask_value": float("nan")},
                       {"class_name": "LSTM", "units": 2}]}
    err = expect_error(["check", write_spec(tmp_path, json.dumps(spec))],
                       "$.layers[1].mask_value: expected a finite number, found nan")
    assert "lowering" not in err and "Warning" not in err


@pytest.mark.parametrize("length", [300, 5000])
def test_very_long_weights_file_name(tmp_path, length):
    spec = dict(GOOD, weights="w" * length + ".npz")
    rc, out, err = cli("check", write_spec(tmp_path, spec))
    assert rc == 2 and err.startswith("error: $.weights") and len(err) < 1000, err


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink"])
def test_weights_path_may_not_leave_the_spec_directory(tmp_path, kind):
    outside = tmp_path / "outside"
    outside.mkdir()
    np.savez(outside / "w.npz", **weights())
    specs = tmp_path / "specs"
    specs.mkdir()
    name = {"absolute": str(outside / "w.npz"), "dotdot": "../outside/w.npz", "symlink": "link.npz"}[kind]
    if kind == "symlink":
        (specs / "link.npz").symlink_to(outside / "w.npz")
    p = write_spec(specs, dict(GOOD, weights=name))
    expect_error(["check", p], "$.weights", "--allow-external-weights")
    rc, _, err = cli("check", p, "--allow-external-weights")
    assert rc == 0, err


def test_verify_refuses_a_build_dir_whose_weights_link_out(tmp_path):
    out = tmp_path / "out"
    build(GOOD, out)
    outside = tmp_path / "elsewhere.npz"
    (out / "weights.npz").rename(outside)
    (out / "weights.npz").symlink_to(outside)
    expect_error(["verify", out], "$.weights", "symbolic link")


def test_control_characters_are_escaped_in_every_message(tmp_path):
    evil = tmp_path / "x\x1b[2J\rverified: yes\n\x9b1m.json"
    rc, out, err = cli("check", evil)
    assert rc == 2
    assert "\x1b" not in err and "\r" not in err and "\x9b" not in err, repr(err)
    assert err.count("\n") == 1 and "\\x1b[2J" in err
    evil_out = tmp_path / "o\x1b]0;title\x07"
    evil_out.write_text("a file, so click's own check of -o names it")
    rc, out, err = cli("build", write_spec(tmp_path, GOOD), "-o", evil_out)
    assert rc == 2 and "is a file" in err and "\x1b" not in err and "\x07" not in err, repr(err)


# ---------------------------------------------------------------------------------------------
# The artifact: ids outside [0, input_dim) give NaN in model.onnx (never another row), and the
# CLI, Session and reference refuse them.


def test_out_of_range_ids_give_nan_in_the_artifact(tmp_path):
    import onnxruntime as ort

    spec = {"layers": [{"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
                       {"class_name": "Embedding", "name": "e", "input_dim": 5, "output_dim": 2},
                       {"class_name": "LSTM", "name": "l", "units": 3, "return_sequences": True}]}
    out = tmp_path / "out"
    result = build(spec, out)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array([[1, 4, 0], [1, -1, 0], [1, 5, 0], [-2**31, 2**31 - 1, 0]], np.int32)
    (y,) = sess.run(None, {"t": ids})
    assert np.isfinite(y[0]).all()
    assert np.isnan(y[1:]).all(), y  # the whole row: no step of it is an answer
    ops = [n.op_type for n in __import__("onnx").load(str(out / "model.onnx")).graph.node]
    assert not {"Loop", "Scan", "NonZero"} & set(ops)
    ref, _ = run_reference(result.model, {"t": ids[:1]})
    np.testing.assert_allclose(y[:1], ref[0], atol=1e-5)
    with pytest.raises(RunError, match="outside the vocabulary"):
        open_session(out).run(ids[1:2])
    with pytest.raises(RunError, match="outside"):
        run_reference(result.model, {"t": ids[1:2]})
