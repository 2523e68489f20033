"""rnncompile.tokenizer (the host-side TextVectorization) against Keras itself: every case of
tests/goldens/text/goldens.json (made by tools/make_text_goldens.py with Keras 3 on TensorFlow;
neither is needed here), plus Hypothesis properties on random Unicode text.

Documented differences from Keras, asserted here so they stay deliberate:
- a batch whose every row has zero tokens: Keras gives shape (batch, 0), rnncompile pads it to
  one step of id 0 (no recurrent layer runs on zero steps);
- split=None with a (batch,) input: Keras's output is 1-D (the batch axis becomes the sequence, and
  ngrams/output_sequence_length act across texts); rnncompile treats (batch,) and (batch, 1) alike,
  as Keras treats (batch, 1);
- split=None with ngrams: refused by rnncompile (Keras: see the previous point for (batch,), and
  a call-time failure on (batch, 1) for some options).
"""
from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np
import pytest

from rnncompile.tokenizer import (MASK_TOKEN, OOV_TOKEN, PUNCTUATION, WHITESPACE, TextVectorizer,
                                  VocabularyError, full_vocabulary, ngram_widths)

GOLDENS = Path(__file__).resolve().parent / "goldens" / "text" / "goldens.json"
DATA = json.loads(GOLDENS.read_text(encoding="ascii"))
CORPUS: list[str] = DATA["corpus"]
TABLE = tuple(full_vocabulary(DATA["vocabulary"]))


def dense(result: dict) -> np.ndarray:
    """The Keras array back from its packed form (rows without their trailing zeros)."""
    out = np.zeros(result["shape"], np.int64)
    if out.ndim == 1:
        out[:len(result["ids"])] = result["ids"]
    else:
        for b, row in enumerate(result["ids"]):
            out[b, :len(row)] = row
    return out


def vectorizer(options: dict, table=TABLE) -> TextVectorizer:
    return TextVectorizer(table, options["standardize"], options["split"], ngram_widths(options["ngrams"]),
                          options["output_sequence_length"])


def expected_ids(case: dict) -> np.ndarray:
    """Keras's (batch, 1)-input result as rnncompile gives it: a zero-step batch padded to one."""
    y = dense(case)
    assert y.ndim == 2
    if y.shape[1] == 0:
        assert case["options"]["output_sequence_length"] is None
        y = np.zeros((y.shape[0], 1), np.int64)
    return y


def input_forms(texts: list[str]):
    """The same batch as every input form a Session accepts: list, object arrays of str and of UTF-8
    bytes, shape (batch,) and (batch, 1)."""
    obj = np.array(texts + [None], dtype=object)[:-1]            # keeps "\x00" and "" exact
    enc = np.array([t.encode("utf-8") for t in texts] + [None], dtype=object)[:-1]
    yield "list", texts
    yield "object(batch,)", obj
    yield "object(batch,1)", obj.reshape(-1, 1)
    yield "bytes(batch,)", enc
    yield "bytes(batch,1)", enc.reshape(-1, 1)
    if not any(t.endswith("\x00") for t in texts):              # NumPy's "U" drops trailing NULs
        yield "unicode(batch,1)", np.array(texts, dtype=str).reshape(-1, 1)


# ------------------------------------------------------------------------------------------------
# The goldens

def test_goldens_complete():
    assert DATA["versions"]["keras"].startswith("3.") and DATA["versions"]["tensorflow"]
    assert len(DATA["cases"]) == 4 * 3 * 5 * 4
    names = [c["name"] for c in DATA["cases"] + DATA["emptyish_cases"] + DATA["vocabulary_cases"]]
    assert len(names) == len(set(names))
    assert set(string.punctuation) <= set("".join(CORPUS))
    assert TABLE.index("[UNK]", 2) > 2                            # "[UNK]" also an ordinary term


@pytest.mark.parametrize("case", DATA["cases"] + DATA["emptyish_cases"], ids=lambda c: c["name"])
def test_keras_case(case):
    options = case["options"]
    texts = DATA["emptyish"] if case["name"].startswith("emptyish_") else CORPUS
    if case["name"].startswith("single_tokens_"):
        texts = ["a", "the", "b"]
    if options["split"] is None:
        # Keras's (batch,) form is 1-D: the batch axis is the sequence (recorded, not followed)
        assert len(case["rank1"]["shape"]) == 1
    else:
        assert "rank1" not in case, "Keras's (batch,) and (batch, 1) results differ"
    if options["split"] is None and options["ngrams"] is not None:
        with pytest.raises(ValueError, match="ngrams with split=None"):
            vectorizer(options)
        return
    assert "error" not in case, case["error"]
    tv = vectorizer(options)
    want = expected_ids(case)
    for form, batch in input_forms(texts):
        got = tv(batch)
        assert got.dtype == np.int64
        if not np.array_equal(got, want):
            bad = [b for b in range(len(texts)) if got.shape != want.shape or not np.array_equal(got[b], want[b])]
            b = bad[0]
            pytest.fail(f"{form}: shape {got.shape} vs Keras {want.shape}; row {b} {texts[b]!r}: tokens "
                        f"{tv.tokens(texts[b])[:12]!r}\n ours  {got[b][:20].tolist()}\n keras {want[b][:20].tolist()}")


def test_keras_refusals_are_the_split_none_ngrams_ones():
    refused = [c for c in DATA["cases"] if "error" in c]
    assert refused and all(c["options"]["split"] is None and c["options"]["ngrams"] is not None for c in refused)


def test_zero_step_batches_recorded():
    zero = [c for c in DATA["cases"] + DATA["emptyish_cases"] if "error" not in c and c["shape"][-1] == 0]
    assert zero, "no case shows Keras's (batch, 0) output"
    tv = TextVectorizer(TABLE)
    assert tv(["", " ", "!!!"]).shape == (3, 1)


@pytest.mark.parametrize("case", DATA["vocabulary_cases"], ids=lambda c: c["name"])
def test_keras_vocabulary_case(case):
    if "error" in case:
        with pytest.raises(VocabularyError):
            full_vocabulary(case["terms"], case["max_tokens"])
        return
    table = full_vocabulary(case["terms"], case["max_tokens"])
    assert table == case["vocabulary"]
    tv = TextVectorizer(tuple(table))
    want = dense(case)
    for form, batch in input_forms(case["texts"]):
        assert np.array_equal(tv(batch), want), form


# ------------------------------------------------------------------------------------------------
# Properties on random text (Hypothesis)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

# Text biased to the interesting characters: ASCII letters/punctuation/whitespace, the Unicode
# spaces and separators Keras does not split on, non-ASCII letters with case, NUL, emoji.
SPECIAL = (string.ascii_letters + PUNCTUATION + WHITESPACE + "\x00\x1c\x1d\x1e\x1f\x85\xa0\u2003\u3000\u2028"
           "\u00c9\u00e9\u00c4\u00df\u0130\u03a3\u03c3\u01c5\ufb01\u0301\u200d\U0001f600\U0001f3fd")
TEXT = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8")), max_size=40)
OPTIONS = st.fixed_dictionaries({
    "standardize": st.sampled_from(["lower_and_strip_punctuation", "lower", "strip_punctuation", None]),
    "split": st.sampled_from(["whitespace", "character", None]),
    "ngrams": st.sampled_from([None, 1, 2, 3, [2], [1, 3], [3, 1]]),
    "output_sequence_length": st.sampled_from([None, 1, 2, 7]),
}).filter(lambda o: not (o["split"] is None and o["ngrams"] is not None))
SMALL_TABLE = tuple(full_vocabulary(["the", "cat", "a", "b", " ", "\u00e9", "a b", "[UNK]", "x\x00y", "\U0001f600"]))


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=5), options=OPTIONS)
def test_ids_in_range_and_length_rule(texts, options):
    tv = vectorizer(options, SMALL_TABLE)
    out = tv(texts)
    assert out.dtype == np.int64 and out.ndim == 2 and out.shape[0] == len(texts)
    assert ((out >= 0) & (out < len(SMALL_TABLE))).all()
    rows = [tv.ids(t) for t in texts]
    length = options["output_sequence_length"] or max([1, *map(len, rows)])
    assert out.shape[1] == length
    for b, r in enumerate(rows):                                  # first L ids, then zeros
        r = r[:length]
        assert out[b, :len(r)].tolist() == r and not out[b, len(r):].any()
    # the tokens map through the table: in-vocabulary -> their id, else [UNK]
    for t in texts:
        assert tv.ids(t) == [SMALL_TABLE.index(k, 1) if k in SMALL_TABLE[1:] else (0 if k == "" else 1)
                             for k in tv.tokens(t)]


@settings(max_examples=300, deadline=None)
@given(text=TEXT, options=OPTIONS)
def test_token_invariants(text, options):
    tv = vectorizer(options, SMALL_TABLE)
    s = tv.standardized(text)
    assert tv.standardized(s) == s                                # idempotent
    assert len(s) <= len(text)
    changed = [(a, b) for a, b in zip(text, s)] if len(s) == len(text) else []
    assert all(a == b or a in string.ascii_uppercase for a, b in changed)   # only ASCII case changes
    if options["standardize"] in ("lower", "lower_and_strip_punctuation"):
        assert not set(s) & set(string.ascii_uppercase)
        assert set(s) - set(text) <= set(string.ascii_lowercase)
    if options["standardize"] in ("strip_punctuation", "lower_and_strip_punctuation"):
        assert not set(s) & set(PUNCTUATION)
    unigrams = TextVectorizer(SMALL_TABLE, options["standardize"], options["split"]).tokens(text)
    if options["split"] == "whitespace":
        assert "" not in unigrams and not any(set(u) & set(WHITESPACE) for u in unigrams)
        assert unigrams == [u for u in re.split("[ \t\n\r\x0b\x0c]+", s) if u]
    elif options["split"] == "character":
        assert unigrams == list(s)
    else:
        assert unigrams == [s]
    widths = ngram_widths(options["ngrams"]) or (1,)
    tokens = tv.tokens(text)
    assert len(tokens) == sum(max(0, len(unigrams) - n + 1) for n in widths)
    i = 0
    for n in widths:                                              # widths in order, each in text order
        for j in range(max(0, len(unigrams) - n + 1)):
            assert tokens[i] == " ".join(unigrams[j:j + n])
            i += 1


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=4), options=OPTIONS)
def test_input_forms_agree(texts, options):
    tv = vectorizer(options, SMALL_TABLE)
    outs = [(form, tv(batch)) for form, batch in input_forms(texts)]
    for form, out in outs[1:]:
        assert np.array_equal(out, outs[0][1]), form


@settings(max_examples=200, deadline=None)
@given(text=TEXT, options=OPTIONS, length=st.integers(1, 9))
def test_truncation_is_a_prefix(text, options, length):
    untruncated = vectorizer(dict(options, output_sequence_length=None), SMALL_TABLE)([text])[0]
    out = vectorizer(dict(options, output_sequence_length=length), SMALL_TABLE)([text])[0]
    n = min(length, len(untruncated))
    assert out[:n].tolist() == untruncated[:n].tolist() and not out[n:].any()


def test_reserved_tokens_and_table():
    assert TABLE[:2] == (MASK_TOKEN, OOV_TOKEN)
    assert full_vocabulary(["", "[UNK]", "a"]) == full_vocabulary(["a"]) == ["", "[UNK]", "a"]
    assert full_vocabulary(["a\x00\x00", "b"]) == ["", "[UNK]", "a", "b"]
    with pytest.raises(VocabularyError):
        full_vocabulary(["a", 3])
    with pytest.raises(ValueError):
        TextVectorizer(("a", "b"))
    with pytest.raises(ValueError):
        TextVectorizer(TABLE, standardize="lower_case")
    with pytest.raises(ValueError):
        TextVectorizer(TABLE).__call__(np.array([["a", "b"]], dtype=object))


# ------------------------------------------------------------------------------------------------
# The Keras model fixtures (tools/make_text_models.py): the vocabulary read where the README says
# it lives gives Keras's ids for the fixtures' texts.

MODELS = Path(__file__).resolve().parent / "keras_models"
MODEL_IDS = json.loads((GOLDENS.parent / "models.json").read_text(encoding="ascii"))["models"]


def keras_asset_vocabulary(data: bytes) -> list[str]:
    """vocabulary.txt as Keras 3.15 reads it back (IndexLookup.load_assets): text-mode read, then
    str.splitlines() (which also splits on \\v, \\f, \\x1c-\\x1e, \\x85, U+2028/9), trailing "" lines dropped."""
    lines = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    return lines


@pytest.mark.parametrize("name", sorted(MODEL_IDS))
def test_keras_fixture_vocabulary_layout(name):
    import zipfile

    import h5py

    want = MODEL_IDS[name]
    with zipfile.ZipFile(MODELS / f"{name}.keras") as z:
        config = json.loads(z.read("config.json"))
        assets = sorted(n for n in z.namelist() if n.startswith("assets/"))
        layer = next(x for x in config["config"]["layers"] if x["class_name"] == "TextVectorization")
        cfg = layer["config"]
        assert layer["name"] == cfg["name"] == want["layer"]
        if cfg["vocabulary"] is not None:                       # given in the constructor
            assert assets == []
            table = full_vocabulary(cfg["vocabulary"], cfg["max_tokens"])
        else:                                                   # adapted: an asset, named by class
            assert assets == ["assets/layers/text_vectorization/_lookup_layer/vocabulary.txt",
                              "assets/layers/text_vectorization/vocabulary.txt"]
            raw = z.read("assets/layers/text_vectorization/vocabulary.txt")
            assert raw == z.read(assets[0]) and not raw.endswith(b"\n")
            table = full_vocabulary(keras_asset_vocabulary(raw), cfg["max_tokens"])
    assert table == want["vocabulary"] and len(table) == cfg["vocabulary_size"]
    assert cfg["output_mode"] == "int" and cfg["encoding"] == "utf-8" and not cfg["ragged"]
    tv = TextVectorizer(tuple(table), cfg["standardize"], cfg["split"], ngram_widths(cfg["ngrams"]),
                        cfg["output_sequence_length"])
    texts = np.load(MODELS / f"{name}.npz", allow_pickle=False)["call0/in/text"]
    assert texts.shape == (len(want["texts"]), 1) and texts[:, 0].tolist() == want["texts"]
    assert np.array_equal(tv(texts), np.array(want["ids"], np.int64))
    # legacy .h5: the config (same keys) in the model_config attribute, no weights for the layer;
    # an adapted vocabulary is nowhere in the file
    with h5py.File(MODELS / f"{name}.h5", "r") as f:
        h5cfg = next(x for x in json.loads(f.attrs["model_config"])["config"]["layers"]
                     if x["class_name"] == "TextVectorization")["config"]
        assert h5cfg == cfg
        assert len(f["model_weights"][cfg["name"]].attrs["weight_names"]) == 0
        assert list(f["model_weights"][cfg["name"]]) == []
