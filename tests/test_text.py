"""Text in (issue 15): the TextVectorization layer kind, string inputs, the host-side tokenizer
described in the manifest, and `rnncompile run` on a text file. The tokenizer's rules themselves
are checked against Keras in tests/test_tokenizer.py; the in-graph form in tests/test_onnx_text.py."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import rnncompile
from rnncompile.build import load_model, open_session, verify_dir
from rnncompile.errors import RunError, SpecError, TargetError
from rnncompile.lower import host_layers, lower
from rnncompile.reference import run_reference
from rnncompile.spec import load_spec
from rnncompile.targets import get_target
from rnncompile.tokenizer import TextVectorizer, full_vocabulary

from helpers import cli

VOCAB = ["the", "movie", "was", "great", "bad", "not", "good", "plot", "école", "e-mail"]


def spec(**tv) -> dict:
    tv = {"class_name": "TextVectorization", "name": "vectorize", "vocabulary": VOCAB,
          "output_sequence_length": 6, **tv}
    shape = [1] if tv.pop("_rank2", True) else []
    return {"name": "text_model", "layers": [
        {"class_name": "Input", "name": "review", "shape": shape, "dtype": "string"},
        tv,
        {"class_name": "Embedding", "input_dim": 16, "output_dim": 4, "mask_zero": True},
        {"class_name": "LSTM", "units": 3},
        {"class_name": "Dense", "units": 1, "activation": "sigmoid"}]}


TEXTS = ["The movie was GREAT!", "not good... not bad", "", " \t\n", "école, e-mail & ÉCOLE 😀",
         "the the the the the the the the plot"]


def test_reference_tokenizes_as_the_tokenizer():
    model = load_spec(spec())
    trace: dict = {}
    run_reference(model, {"review": np.array(TEXTS, dtype=object).reshape(-1, 1)}, {}, trace=trace)
    want = TextVectorizer(tuple(full_vocabulary(VOCAB)), output_sequence_length=6)(TEXTS)
    np.testing.assert_array_equal(trace["vectorize"][0].data, want)
    assert want[2].tolist() == [0] * 6 and want[5].tolist() == [2] * 6   # empty row; truncated row


@pytest.mark.parametrize("change,where,needle", [
    ({"vocabulary": ["a", "b", "a"]}, "$.layers[1].vocabulary", "repeated term"),
    ({"vocabulary": ["a", "", "b"]}, "$.layers[1].vocabulary", "mask token"),
    ({"max_tokens": 5}, "$.layers[1].vocabulary", "more than max_tokens=5"),
    ({"output_mode": "multi_hot"}, "$.layers[1].output_mode", "int"),
    ({"split": None, "ngrams": 2}, "$.layers[1].ngrams", "split"),
    ({"split": None, "_rank2": False}, "$.layers[1]", "(batch, 1)"),
    ({"ngrams": 0}, "$.layers[1].ngrams", ""),
    ({"output_sequence_length": 0}, "$.layers[1].output_sequence_length", ""),
])
def test_bad_options_are_refused_naming_the_field(change, where, needle):
    with pytest.raises(SpecError) as e:
        load_spec(spec(**change))
    text = str(e.value)
    assert where in text and needle in text, text


def test_text_input_shape_rules():
    bad = spec()
    bad["layers"][0]["shape"] = [2]
    with pytest.raises(SpecError, match=r"\$\.layers\[0\]\.shape.*shape \[\] or \[1\]"):
        load_spec(bad)
    bad["layers"][0].update(shape=[], dtype="float32")
    with pytest.raises(SpecError, match="at least one axis"):
        load_spec(bad)


def test_vocabulary_file_is_read_into_the_spec(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    s = spec()
    del s["layers"][1]["vocabulary"]
    s["layers"][1]["vocabulary_file"] = "vocab.txt"
    (tmp_path / "spec.json").write_text(json.dumps(s))
    model = load_spec(tmp_path / "spec.json")
    assert model.layers["vectorize"]["vocabulary"] == VOCAB
    assert model.spec["layers"][1]["vocabulary"] == VOCAB and "vocabulary_file" not in model.spec["layers"][1]
    assert model.digest == load_spec(spec()).digest          # the same model as the inline vocabulary
    (tmp_path / "vocab.json").write_text(json.dumps(VOCAB))
    s["layers"][1]["vocabulary_file"] = "vocab.json"
    (tmp_path / "spec.json").write_text(json.dumps(s))
    assert load_spec(tmp_path / "spec.json").digest == model.digest


@pytest.mark.parametrize("content,needle", [
    (None, "cannot read vocabulary file"), (b"\xff\xfe", "not UTF-8"), (b"a\nb\na\n", "repeated term"),
])
def test_bad_vocabulary_file_names_the_file(tmp_path, content, needle):
    if content is not None:
        (tmp_path / "v.txt").write_bytes(content)
    s = spec()
    del s["layers"][1]["vocabulary"]
    s["layers"][1]["vocabulary_file"] = "v.txt"
    (tmp_path / "spec.json").write_text(json.dumps(s))
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "spec.json")
    assert "$.layers[1]" in str(e.value) and needle in str(e.value)


@pytest.fixture(scope="module")
def host_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "out"
    rnncompile.build(spec(), out, target=get_target(None, None, "host"))
    return out


def test_host_build_describes_the_tokenizer(host_build):
    man = json.loads((host_build / "manifest.json").read_text())
    assert man["tokenizer"] == "host"
    assert [i["name"] for i in man["inputs"]] == ["vectorize"] and man["inputs"][0]["dtype"] == "int64"
    (p,) = man["preprocessing"]
    assert p["input"] == {"name": "review", "dtype": "string", "shape": ["batch", 1]} and p["output"] == "vectorize"
    vocab = (host_build / p["vocabulary"]).read_bytes()
    assert hashlib.sha256(vocab).hexdigest() == p["vocabulary_sha256"]
    assert json.loads(vocab) == ["", "[UNK]", *VOCAB]
    assert {k: p[k] for k in ("standardize", "split", "ngrams", "output_sequence_length")} == {
        "standardize": "lower_and_strip_punctuation", "split": "whitespace", "ngrams": None,
        "output_sequence_length": 6}


def test_host_session_takes_text_in_every_form(host_build):
    session = open_session(host_build)
    assert session.input_names == ["review"]
    model = load_spec(host_build / "spec.json")
    want, _ = run_reference(model, {"review": np.array(TEXTS, dtype=object).reshape(-1, 1)}, {})
    for feed in (np.array(TEXTS, dtype=object).reshape(-1, 1), np.array(TEXTS), TEXTS,
                 np.array([t.encode() for t in TEXTS])):
        got = session.run({"review": feed} if not isinstance(feed, list) else np.array(feed, dtype=object))
        np.testing.assert_allclose(got["dense"], want[0], atol=1e-5, rtol=1e-5)
    assert verify_dir(host_build).passed


@pytest.mark.parametrize("feed,needle", [
    (np.array([b"ok", b"\xff bad"]), "row 1 is not valid UTF-8"),
    (np.array(["ok", "\ud800"], dtype=object), "row 1 has no UTF-8 form"),
    (np.array([1.0, 2.0]), "expected text"),
    (np.array([["a", "b"]], dtype=object), "axis 1 must be 1"),
])
def test_bad_text_is_refused_naming_the_input(host_build, feed, needle):
    with pytest.raises(RunError) as e:
        open_session(host_build).run({"review": feed})
    assert "input 'review'" in str(e.value) and needle in str(e.value), str(e.value)


def test_damaged_vocabulary_file_is_refused(tmp_path, host_build):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(host_build, out)
    vocab = out / "vectorize.vocabulary.json"
    vocab.write_text(json.dumps(["", "[UNK]", "movie", "the"]))
    with pytest.raises(RunError, match="sha256 differs"):
        open_session(out)
    vocab.unlink()
    with pytest.raises(RunError, match="vocabulary file is missing"):
        open_session(out)


def test_cli_run_classifies_a_text_file(tmp_path, host_build):
    texts = tmp_path / "reviews.txt"
    texts.write_text("The movie was great!\r\nnot good\n\n\tbad plot\n", encoding="utf-8")
    code, out = cli("run", host_build, "-i", texts).combined
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("dense") and len(lines) == 5
    assert lines[1].endswith("The movie was great!") and lines[4].endswith("\\x09bad plot")   # tab escaped
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\n")
    code, out = cli("run", host_build, "-i", tmp_path / "bad.txt").combined
    assert code == 2 and "not UTF-8" in out


def test_tensorrt_runs_the_tokenizer_on_the_host():
    model = load_spec(spec())
    assert host_layers(model, "tensorrt") == ["vectorize"]
    lowered = lower(model, "tensorrt")
    assert [i["name"] for i in lowered.io["inputs"]] == ["vectorize"]
    assert "tensorrt runs no ONNX string op" in model.layers["vectorize"].lowering("tensorrt")
    with pytest.raises(TargetError, match="--tokenizer host"):
        lower(model, get_target("tensorrt", None, "graph"))


def test_unknown_tokenizer_place_is_refused():
    with pytest.raises(SpecError, match="--tokenizer"):
        get_target(None, None, "gpu")


def test_load_model_reads_text_specs(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec()))
    assert load_model(p).input_type("review").dtype == "string"


def test_triton_export_of_a_host_tokenizer_build_is_refused(tmp_path, host_build):
    code, out = cli("triton", host_build, tmp_path / "repo", "--name", "m").combined
    assert code == 2 and "--tokenizer graph" in out and not (tmp_path / "repo" / "m").exists()


# -- Keras import (fixtures made with Keras on TensorFlow: tools/make_text_models.py) -------------

MODELS = __import__("pathlib").Path(__file__).parent / "keras_models"


@pytest.mark.parametrize("name", ["text_sentiment_vocab.keras", "text_sentiment_adapted.keras",
                                  "text_sentiment_vocab.h5"])
@pytest.mark.parametrize("tokenizer", ["host", "auto"])
def test_keras_text_models_give_keras_predictions(tmp_path, name, tokenizer):
    out = tmp_path / "out"
    rnncompile.build(MODELS / name, out, target=get_target(None, None, tokenizer))
    with np.load(MODELS / (name.rsplit(".", 1)[0] + ".npz"), allow_pickle=False) as d:
        texts, want = d["call0/in/text"], d["call0/out/0"]
    session = open_session(out)
    got = session.run(texts)
    np.testing.assert_allclose(next(iter(got.values())), want, atol=1e-5, rtol=1e-4)
    man = json.loads((out / "manifest.json").read_text())
    assert man["tokenizer"] == ("host" if tokenizer == "host" else "graph")


def test_adapted_vocabulary_is_not_in_h5_files():
    with pytest.raises(SpecError, match=r"only in \.keras files"):
        load_model(MODELS / "text_sentiment_adapted.h5")


def test_sentiment_example_classifies_raw_text_identically_in_graph_and_on_host(tmp_path):
    """The seed model from raw text (issue 15's "done when"): built in both forms from the CLI,
    `rnncompile run` on examples/reviews.txt prints the same lines."""
    root = MODELS.parent.parent
    lines = {}
    for form in ("graph", "host"):
        out = tmp_path / form
        code, text = cli("build", root / "examples/sentiment_text.json", "-o", out, "--tokenizer", form).combined
        assert code == 0 and "verified: yes" in text, text
        assert json.loads((out / "manifest.json").read_text())["tokenizer"] == form
        code, lines[form] = cli("run", out, "-i", root / "examples/reviews.txt").combined
        assert code == 0, lines[form]
    assert lines["graph"] == lines["host"]
    assert len(lines["graph"].strip().splitlines()) == 1 + len((root / "examples/reviews.txt").read_text().splitlines())


def test_character_split_is_refused_in_the_graph_and_runs_on_the_host(tmp_path):
    s = spec(split="character", vocabulary=list("abcdeé"))
    with pytest.raises(TargetError, match="split.*character.*--tokenizer host"):
        lower(load_spec(s), get_target(None, None, "graph"))
    out = tmp_path / "out"
    rnncompile.build(s, out)   # auto: on the host, verified
    man = json.loads((out / "manifest.json").read_text())
    assert man["tokenizer"] == "host" and man["preprocessing"][0]["split"] == "character"


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_typed_graph_with_the_tokenizer_in_it(tmp_path, precision):
    """fp16/bf16 graphs with the in-graph tokenizer (If/Loop bodies reading outer constants)."""
    out = tmp_path / "out"
    result = rnncompile.build(spec(), out, target=get_target(None, precision, "graph"))
    assert result.verified and result.manifest["tokenizer"] == "graph"
    got = open_session(out).run(np.array(TEXTS, dtype=object))
    assert np.isfinite(got["dense"]).all()


@pytest.mark.parametrize("tokenizer", ["host", "graph"])
def test_a_broken_lowering_after_the_tokenizer_is_localized(monkeypatch, tokenizer):
    """localize() feeds the debug graph the host tokenizer's ids (from the reference trace) and
    names the layer whose lowering is wrong, in both forms."""
    from rnncompile.backends import default_factory
    from rnncompile.build import io_description
    from rnncompile.layer import Sym
    from rnncompile.layers.dense import Dense
    from rnncompile.verify import localize, verify

    orig = Dense.lower

    def off_by_a_tenth(self, g, inputs, weights):
        (out,) = orig(self, g, inputs, weights)
        return [Sym(g.op("Add", out.name, g.const(np.float32(0.1))), out.type, out.mask)]

    monkeypatch.setattr(Dense, "lower", off_by_a_tenth)
    t = get_target(None, None, tokenizer)
    model = load_spec(spec())
    low = lower(model, t)
    report = verify(model, default_factory(1)(low.model_bytes), io_description(model, low))
    assert not report.passed
    problem = localize(model, report, default_factory(1), t)
    assert problem is not None and problem.where == "layer 'dense' (Dense)", problem


@pytest.mark.parametrize("consumer,field", [({"class_name": "Embedding", "input_dim": 10, "output_dim": 4},
                                             "input_dim"),
                                            ({"class_name": "CategoryEncoding", "num_tokens": 5}, "num_tokens")])
def test_a_vocabulary_larger_than_its_consumer_is_refused_at_load(consumer, field):
    s = spec()
    s["layers"][2:] = [consumer]
    with pytest.raises(SpecError) as e:
        load_spec(s)
    assert f"$.layers[2].{field}" in str(e.value) and "gives ids up to 11 (12 ids)" in str(e.value), str(e.value)


@pytest.mark.parametrize("damage,needle", [
    (lambda p: p.pop("input"), "$.preprocessing[0].input: damaged manifest.json: required field missing"),
    (lambda p: p.update(input={"name": "review", "dtype": "float32", "shape": ["batch"]}),
     "input.dtype: damaged manifest.json: expected 'string'"),
    (lambda p: p.update(vocabulary="../elsewhere.json"), "expected the name of a file in the build directory"),
])
def test_damaged_preprocessing_entry_is_a_clear_error(tmp_path, host_build, damage, needle):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(host_build, out)
    man = json.loads((out / "manifest.json").read_text())
    damage(man["preprocessing"][0])
    (out / "manifest.json").write_text(json.dumps(man))
    code, text = cli("run", out, "-i", MODELS.parent.parent / "examples/reviews.txt").combined
    assert code == 2 and needle in text and "Traceback" not in text, text


def test_vocabulary_file_of_non_strings_is_refused(tmp_path, host_build):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(host_build, out)
    data = json.dumps(["", "[UNK]", 3]).encode()
    (out / "vectorize.vocabulary.json").write_bytes(data)
    man = json.loads((out / "manifest.json").read_text())
    man["preprocessing"][0]["vocabulary_sha256"] = hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(RunError, match="expected a JSON array of strings"):
        open_session(out)
