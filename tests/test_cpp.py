"""The C++ runtime (cpp/), driven from pytest so that CI builds and checks it.

tools/cpp_sdk.py finds or makes onnxruntime's SDK and nlohmann-json (under CI=true it also installs
CMake and g++ when missing); the library, example app and ctest cases are built with CMake into a
temporary folder, once normally and once under AddressSanitizer + UndefinedBehaviorSanitizer. The
example app is run on builds of every example spec and must give the Python session's outputs
within 1e-6, stateful carry and reset included. Without a toolchain or SDK the tests skip with the
reason; under CI=true they fail instead.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnncompile
from rnncompile.io import ModelIO
from rnncompile.qa.bench import make_feeds

ROOT = Path(__file__).resolve().parent.parent
CPP = ROOT / "cpp"
IN_CI = os.environ.get("CI", "").lower() == "true"
SPECS = {p.stem: p for p in sorted((ROOT / "examples").glob("*.json"))}
PLUGIN_SPECS = {"speaker_id": (ROOT / "examples" / "plugins" / "speaker_id.json",
                               ROOT / "examples" / "plugins" / "my_layers.py")}
TOLERANCE = 1e-6


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true, so the C++ runtime must be built and tested: {reason}")
    pytest.skip(reason)


def run(cmd, timeout=900, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def sdk():
    """The CMake arguments that find onnxruntime and nlohmann-json here (tools/cpp_sdk.py)."""
    r = run([sys.executable, ROOT / "tools" / "cpp_sdk.py", *(["--install-missing"] if IN_CI else [])])
    try:
        info = json.loads(r.stdout)
    except json.JSONDecodeError:
        info = {"missing": (r.stdout + r.stderr).strip()[-600:]}
    if r.returncode != 0 or "cmake_args" not in info:
        unavailable(f"no C++ toolchain or onnxruntime SDK: {info.get('missing')}")
    return info


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`rnncompile build` of every example spec, one folder per spec name."""
    out = tmp_path_factory.mktemp("cpp_models")
    for name, spec in SPECS.items():
        rnncompile.build(spec, out / name, threads=1)
    write_text_models(out)
    rnncompile.build(BOOL_MASK_SPEC, out / "bool_mask", threads=1)
    for name, (spec, plugin) in PLUGIN_SPECS.items():  # in a fresh process: plugins register globally
        r = run([sys.executable, "-m", "rnncompile.cli", "build", "--plugin", plugin, spec, "-o", out / name,
                 "--threads", "1"], timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    return out


#: A model with a bool mask input (SetMask: Keras `mask=`), built next to the examples.
BOOL_MASK_SPEC = {"name": "bool_mask", "layers": [
    {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
    {"class_name": "Input", "name": "valid", "shape": [None], "dtype": "bool"},
    {"class_name": "Embedding", "name": "embed", "inputs": "tokens", "input_dim": 9, "output_dim": 3},
    {"class_name": "SetMask", "name": "masked", "inputs": ["embed", "valid"]},
    {"class_name": "Bidirectional", "name": "bi", "layer": {"class_name": "GRU", "units": 3, "return_sequences": True}},
    {"class_name": "LSTM", "name": "last", "units": 2}], "outputs": ["bi", "last"]}

TEXT_HOST_VOCABULARY = ["", "[UNK]", "the", "cat", "sat", "on", "mat", "the cat", "cat sat", "café", "😀"]
TEXT_HOST_OPTIONS = {"standardize": "lower_and_strip_punctuation", "split": "whitespace", "ngrams": [1, 2],
                     "output_sequence_length": None}


def write_text_models(out: Path) -> None:
    """Two hand-made text models for the C++ text cases (cpp/tests/test_text.cpp), until `rnncompile
    build` writes TextVectorization models: text_host (a host tokenizer in the manifest's
    "preprocessing"; model.onnx returns its int64 ids input as "token_ids") and text_in_graph
    (model.onnx takes strings, "review" [batch, 1] and "title" [batch], and maps them with ai.onnx.ml
    LabelEncoder)."""
    import hashlib

    import onnx
    from onnx import TensorProto, helper

    def save(folder: Path, graph, manifest: dict, files: dict[str, bytes] | None = None):
        folder.mkdir()
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, folder / "model.onnx")
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for name, data in (files or {}).items():
            (folder / name).write_bytes(data)

    vocab = json.dumps(TEXT_HOST_VOCABULARY).encode()
    graph = helper.make_graph(
        [helper.make_node("Identity", ["ids"], ["token_ids"])], "text_host",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "time"])],
        [helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "time"])])
    save(out / "text_host", graph, {
        "name": "text_host",
        "inputs": [{"name": "ids", "dtype": "int64", "shape": ["batch", "time"],
                    "token_range": len(TEXT_HOST_VOCABULARY)}],
        "outputs": [{"name": "token_ids", "dtype": "int64", "shape": ["batch", "time"]}],
        "preprocessing": [{"kind": "TextVectorization", "layer": "text_vectorization",
                           "input": {"name": "review", "dtype": "string", "shape": ["batch", 1]},
                           "output": "ids", **TEXT_HOST_OPTIONS, "vocabulary": "vocabulary.json",
                           "vocabulary_sha256": hashlib.sha256(vocab).hexdigest()}]},
        {"vocabulary.json": vocab})

    keys = ["the", "cat", "a\0b", "café"]
    encode = [helper.make_node("LabelEncoder", [name], [label], domain="ai.onnx.ml", keys_strings=keys,
                               values_int64s=[2, 3, 4, 5], default_int64=1)
              for name, label in (("review", "label"), ("title", "title_label"))]
    graph = helper.make_graph(
        encode, "text_in_graph",
        [helper.make_tensor_value_info("review", TensorProto.STRING, ["batch", 1]),
         helper.make_tensor_value_info("title", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch", 1]),
         helper.make_tensor_value_info("title_label", TensorProto.INT64, ["batch"])])
    save(out / "text_in_graph", graph, {
        "name": "text_in_graph",
        "inputs": [{"name": "review", "dtype": "string", "shape": ["batch", 1]},
                   {"name": "title", "dtype": "string", "shape": ["batch"]}],
        "outputs": [{"name": "label", "dtype": "int64", "shape": ["batch", 1]},
                    {"name": "title_label", "dtype": "int64", "shape": ["batch"]}]})


def cmake_build(sdk, models, build_dir: Path, *extra: str) -> Path:
    configure = run(["cmake", "-S", CPP, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                     f"-DRNNCOMPILE_TEST_MODELS={models}", *sdk["cmake_args"], *extra])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = run(["cmake", "--build", build_dir, "-j", str(min(2, os.cpu_count() or 1))], timeout=1200)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return build_dir


@pytest.fixture(scope="module")
def build(sdk, models, tmp_path_factory):
    return cmake_build(sdk, models, tmp_path_factory.mktemp("cpp_build"))


def ctest(build_dir: Path, env=None):
    r = run(["ctest", "--test-dir", build_dir, "--output-on-failure", "-j", "2"], env=env)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    return r.stdout


def test_ctest_passes(build):
    out = ctest(build)
    # The model cases ran too (registered only when RNNCOMPILE_TEST_MODELS is set).
    assert "runtime.stateful_carry" in out and "runtime.hostile_tokens" in out and "example.bad_input" in out
    assert "text.cases" in out and "text.text_host" in out and "text.text_in_graph" in out


def hostile_texts() -> list[str]:
    """The hostile corpus of cpp/tests/data/tokenizer_cases.json (tools/make_tokenizer_cases.py)."""
    return json.loads((CPP / "tests" / "data" / "tokenizer_cases.json").read_text())["texts"]


def test_tokenizer_cases_file_is_current():
    r = run([sys.executable, ROOT / "tools" / "make_tokenizer_cases.py", "--check"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_text_host_app_equals_python_tokenizer(build, models, tmp_path):
    """The app's host tokenizer on the hostile corpus (JSON strings, and --text-file lines) gives
    rnncompile.tokenizer's ids exactly (text_host returns its ids input)."""
    from rnncompile.tokenizer import TextVectorizer

    tv = TextVectorizer.from_dict(TEXT_HOST_OPTIONS, TEXT_HOST_VOCABULARY)
    texts = hostile_texts()
    got = app(build, models / "text_host", {"review": texts}, tmp_path)
    assert np.array_equal(np.asarray(got["token_ids"], np.int64), tv(texts))
    lines = [t for t in texts if "\n" not in t and "\r" not in t]
    (tmp_path / "texts.txt").write_bytes("".join(t + "\n" for t in lines).encode())
    r = run([build / "rnncompile_run", models / "text_host", "--text-file", tmp_path / "texts.txt", "--threads", "1"])
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.asarray(json.loads(r.stdout)["token_ids"], np.int64), tv(lines))
    (tmp_path / "bad.txt").write_bytes(b"fine\nnot \xff utf-8\n")
    r = run([build / "rnncompile_run", models / "text_host", "--text-file", tmp_path / "bad.txt"])
    assert r.returncode == 2 and "bad.txt: text input 'review': row 1: invalid UTF-8 at byte 4" in r.stderr


TEXT_SPECS = [name for name, spec in SPECS.items() if "TextVectorization" in spec.read_text()]


@pytest.mark.parametrize("name", TEXT_SPECS)
def test_text_model_app_equals_python(build, models, tmp_path, name):
    """Every example spec with a TextVectorization layer, built by `rnncompile build`: the app given the
    hostile corpus as texts equals Python. Host tokenizer: Python's tokenizer, then the Python session
    on its ids. In-graph: the Python session on the strings."""
    from rnncompile.tokenizer import TextVectorizer

    out = models / name
    manifest = json.loads((out / "manifest.json").read_text())
    pre = manifest.get("preprocessing") or []
    string_inputs = [i for i in manifest["inputs"] if i["dtype"] == "string"]
    fed = {e["output"] for e in pre} | {i["name"] for i in string_inputs}
    fed |= {s["input"] for s in manifest.get("states", [])}
    others = [i["name"] for i in manifest["inputs"] if i["name"] not in fed]
    if others:
        pytest.skip(f"{name}: inputs besides texts ({', '.join(others)}); this test feeds texts only")
    texts = hostile_texts()

    def rows(shape):
        return [[t] for t in texts] if len(shape) == 2 else texts

    session = rnncompile.open_session(out, threads=1)
    feeds = {e["input"]["name"]: rows(e["input"]["shape"]) for e in pre}
    feeds.update({i["name"]: rows(i["shape"]) for i in string_inputs})
    python_feeds = {i["name"]: np.asarray(rows(i["shape"]), dtype=object) for i in string_inputs}
    for e in pre:
        vocab = json.loads((out / e["vocabulary"]).read_text())
        python_feeds[e["output"]] = TextVectorizer.from_dict(e, vocab)(texts)
    want = session.run(python_feeds)
    got = app(build, out, feeds, tmp_path)
    assert_close(got, want, name)


def app(build: Path, out_dir: Path, inputs, tmp_path: Path, *flags: str):
    src = tmp_path / "inputs.json"
    src.write_text(json.dumps(inputs))
    dst = tmp_path / "outputs.json"
    r = run([build / "rnncompile_run", out_dir, src, "-o", dst, "--threads", "1", *flags], timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(dst.read_text())


def feeds_for(manifest: dict, batch: int, steps: int, pattern: str, seed: int) -> dict[str, np.ndarray]:
    io = ModelIO.from_dict(manifest)
    return {k: v for k, v in make_feeds(io, batch, steps, pattern, seed).items() if k not in io.state_inputs}


def assert_close(cpp: dict, python: dict, where: str):
    assert set(cpp) == set(python), where
    for name, want in python.items():
        got = np.asarray(cpp[name], dtype=np.float64)
        assert got.shape == want.shape, f"{where} {name}"
        assert np.max(np.abs(got - want.astype(np.float64))) <= TOLERANCE, f"{where} {name}"


@pytest.mark.parametrize("name", [*SPECS, *PLUGIN_SPECS])
def test_example_app_equals_python_session(build, models, tmp_path, name):
    manifest = json.loads((models / name / "manifest.json").read_text())
    masked = any(i.get("pad_value") is not None for i in manifest["inputs"])
    calls = [feeds_for(manifest, batch, steps, pattern, seed)
             for seed, (batch, steps, pattern) in enumerate([(3, 7, "gaps" if masked else "none"), (1, 1, "none")])]
    for k, feeds in enumerate(calls):
        session = rnncompile.open_session(models / name, threads=1)
        want = session.run(feeds)
        got = app(build, models / name, {n: v.tolist() for n, v in feeds.items()}, tmp_path)
        assert_close(got, want, f"{name} call {k}")


def test_bool_mask_input_app_equals_python_session(build, models, tmp_path):
    """A bool graph input (the SetMask model): the app reads true/false (or 1/0) JSON into a bool
    tensor and gives the Python session's outputs on every padding pattern; other values are refused
    as Python refuses them."""
    out = models / "bool_mask"
    manifest = json.loads((out / "manifest.json").read_text())
    assert {i["name"]: i["dtype"] for i in manifest["inputs"]} == {"tokens": "int32", "valid": "bool"}
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 9, size=(4, 6)).astype(np.int32)
    valid = np.ones((4, 6), bool)
    valid[0, 4:] = False          # right padding
    valid[1, :2] = False          # left padding
    valid[2, [1, 3]] = False      # gaps
    valid[3] = False              # an empty row
    session = rnncompile.open_session(out, threads=1)
    want = session.run({"tokens": tokens, "valid": valid})
    got = app(build, out, {"tokens": tokens.tolist(), "valid": valid.tolist()}, tmp_path)
    assert_close(got, want, "bool_mask true/false")
    got = app(build, out, {"tokens": tokens.tolist(), "valid": valid.astype(int).tolist()}, tmp_path)
    assert_close(got, want, "bool_mask 1/0")
    assert not np.allclose(want["last"], session.run({"tokens": tokens, "valid": np.ones_like(valid)})["last"])
    for bad, message in ((np.where(valid, 2, 0).tolist(), "input 'valid': expected a bool mask (True/False or 1/0)"),
                         ([[True, 1, 0, 0, 0, 0]] * 4, "expected all true/false (a bool mask) or all numbers")):
        (tmp_path / "bad.json").write_text(json.dumps({"tokens": tokens.tolist(), "valid": bad}))
        r = run([build / "rnncompile_run", out, tmp_path / "bad.json"], timeout=60)
        assert r.returncode == 2 and message in r.stderr, r.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"tokens": valid.tolist(), "valid": valid.tolist()}))
    r = run([build / "rnncompile_run", out, tmp_path / "bad.json"], timeout=60)
    assert r.returncode == 2 and "input 'tokens': expected integer token ids, got bool" in r.stderr, r.stderr


def test_stateful_three_chunks_with_reset(build, models, tmp_path):
    out = models / "stateful_lstm"
    manifest = json.loads((out / "manifest.json").read_text())
    chunks = [feeds_for(manifest, 2, steps, "none", seed) for seed, steps in enumerate((5, 3, 6))]
    payload = [{n: v.tolist() for n, v in c.items()} for c in chunks]
    session = rnncompile.open_session(out, threads=1)
    carried = [session.run(c) for c in chunks]
    got = app(build, out, payload, tmp_path)
    for k, (g, w) in enumerate(zip(got, carried)):
        assert_close(g, w, f"carried chunk {k}")
    fresh = []
    for c in chunks:
        session.reset_states()
        fresh.append(session.run(c))
    got = app(build, out, payload, tmp_path, "--reset-between")
    for k, (g, w) in enumerate(zip(got, fresh)):
        assert_close(g, w, f"reset chunk {k}")
    # The carry is real: without a reset the later chunks differ.
    assert np.max(np.abs(carried[2]["logits"] - fresh[2]["logits"])) > 1e-3


@pytest.mark.parametrize("case, message", [
    ("missing_manifest", "not an rnncompile build directory"),
    ("corrupt_manifest", "damaged manifest.json"),
    ("wrong_name", "unknown input 'words'; the model's inputs are: tokens"),
    ("float_ids", "input 'tokens': expected integer token ids, got float64"),
    ("ragged", "not a rectangular array"),
])
def test_example_app_refuses_clearly(build, models, tmp_path, case, message):
    out = models / "lstm_classifier"
    inputs = {"tokens": [[1, 2, 3]]}
    if case == "missing_manifest":
        out = tmp_path / "empty"
        out.mkdir()
    elif case == "corrupt_manifest":
        out = tmp_path / "corrupt"
        out.mkdir()
        (out / "model.onnx").write_bytes((models / "lstm_classifier" / "model.onnx").read_bytes())
        (out / "manifest.json").write_text('{"inputs": [{"name": ')
    elif case == "wrong_name":
        inputs = {"words": [[1, 2, 3]]}
    elif case == "float_ids":
        inputs = {"tokens": [[1.5, 2, 3]]}
    elif case == "ragged":
        inputs = {"tokens": [[1, 2, 3], [4]]}
    (tmp_path / "in.json").write_text(json.dumps(inputs))
    r = run([build / "rnncompile_run", out, tmp_path / "in.json", "-o", tmp_path / "out.json"], timeout=60)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and r.stderr.startswith("error: ")
    assert not (tmp_path / "out.json").exists()


def test_installed_package_is_found_by_a_consumer(build, models, tmp_path):
    """`cmake --install`, then a separate project with find_package(rnncompile_runtime) building the
    example of docs/cpp.md as it stands there."""
    prefix = tmp_path / "prefix"
    r = run(["cmake", "--install", build, "--prefix", prefix])
    assert r.returncode == 0, r.stdout + r.stderr
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    (consumer / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(consumer CXX)\n"
        "find_package(rnncompile_runtime 0.1 REQUIRED)\n"
        "add_executable(consumer main.cpp)\ntarget_link_libraries(consumer PRIVATE rnncompile::runtime)\n")
    doc = (ROOT / "docs" / "cpp.md").read_text()
    (consumer / "main.cpp").write_text(doc.split("```cpp\n", 1)[1].split("```", 1)[0])
    r = run(["cmake", "-S", consumer, "-B", consumer / "b", f"-DCMAKE_PREFIX_PATH={prefix}"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["cmake", "--build", consumer / "b"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([consumer / "b" / "consumer", models / "sentiment", models / "stateful_lstm"])
    assert r.returncode == 0, r.stdout + r.stderr
    probs, shape = r.stdout.splitlines()
    assert all(0 < float(p) < 1 for p in probs.split()) and shape == "(2, 10)"
    r = run([consumer / "b" / "consumer", models / "sentiment", tmp_path])  # no manifest: a clear error
    assert r.returncode == 2 and "error: " in r.stderr and "manifest.json" in r.stderr


def test_sanitizers_clean(sdk, models, tmp_path_factory):
    """Every ctest case once more, built with -fsanitize=address,undefined (any report fails)."""
    build_dir = cmake_build(sdk, models, tmp_path_factory.mktemp("cpp_asan"), "-DRNNCOMPILE_SANITIZE=ON",
                            "-DRNNCOMPILE_BUILD_BENCHMARKS=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo")
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:halt_on_error=1:detect_leaks=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    out = ctest(build_dir, env=env)
    assert "100% tests passed" in out
