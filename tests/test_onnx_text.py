"""TextVectorization in the ONNX graph (rnncompile/onnx_text.py): exact against TextVectorizer
(rnncompile/tokenizer.py, itself checked against Keras) on onnxruntime, for every option the
in-graph form takes, on hostile text; and GraphBuilder's opset parameter (every example and a
golden of every layer kind still verifies at opset 20)."""
from __future__ import annotations

import functools
import itertools
import json
import string
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rnncompile.onnx_graph import ML_DOMAIN, OPSET, GraphBuilder, finish
from rnncompile.onnx_text import REQUIRED_OPSET, in_graph_blocker, lower_text_vectorization
from rnncompile.tokenizer import STANDARDIZE, TextVectorizer, full_vocabulary

ROOT = Path(__file__).resolve().parent.parent

LONG = " ".join(f"Word{i % 13}, (and) so-on." for i in range(60))
CORPUS = [
    "Hello, World!", "hello world", "HELLO   WORLD", "  leading and trailing  ",
    "don't stop-believing... (really)?!", "'quoted' \"double\" [br] {cb} <ang>",
    string.punctuation, "a" + string.punctuation + "b", f"x {string.punctuation} y",
    "word,word.word;word:word", "..a..b..", "!!!", "! ? .",
    "École ÉCOLE école Σίσυφος ΣΊΣΥΦΟΣ İstanbul ǅ straße STRASSE",
    "tab\tsep\tWORDS", "new\nline\r\nCRLF", "v\x0bf\x0cmix \t\n\r\x0b\x0c end",
    "\t\n\r\x0b\x0c", "   ", "", "a    b", " a ", "a\t \tb", "c \n \n d", " \t ",
    "nbsp\u00a0inside em\u2003space ideo\u3000space nel\u0085x fs\x1cgs\x1drs\x1eus\x1f",
    "emoji 😀 and 😀😀, flags 🇫🇷!", "nul\x00inside NUL\x00", "\x00",
    LONG, LONG.upper(), "[UNK] is a token", "[unk]", "oov-word zzzz qqqq",
    "the the the the the the the the the",
]
OPTIONS = [o for o in itertools.product(STANDARDIZE, ("whitespace", None), (None, (2,), (1, 2), (1, 3), (1, 2, 3)),
                                        (None, 1, 7))
           if o[1] is not None or o[2] is None]   # ngrams need a split (tokenizer.py refuses them with None)


def _vocabulary() -> tuple[str, ...]:
    """Every other token the options make of the corpus (the rest stays out of vocabulary), and
    "[UNK]" as an ordinary term (Keras gives it its own id)."""
    tokens = set()
    for st, sp, ng, _ in OPTIONS:
        v = TextVectorizer(("", "[UNK]"), st, sp, ng)
        for t in CORPUS:
            tokens.update(v.tokens(t))
    terms = [t for t in sorted(tokens - {"", "[UNK]"}) if not t.endswith("\x00")][::2]   # Keras drops trailing NULs
    return tuple(full_vocabulary(["[UNK]", *terms]))


VOCAB = _vocabulary()


@functools.lru_cache(maxsize=None)
def _session(v: TextVectorizer, rank: int, opset: int = REQUIRED_OPSET) -> ort.InferenceSession:
    g = GraphBuilder("text", opset=opset)
    x = g.add_input("text", "string", ["batch"] if rank == 1 else ["batch", 1])
    g.add_output(lower_text_vectorization(g, x, v, rank), "ids", "int64", ["batch", "steps"])
    model = g.to_model()
    onnx.checker.check_model(model, full_check=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _check(v: TextVectorizer, texts: list[str], rank: int):
    feed = np.array(texts, dtype=object).reshape(-1, *([1] if rank == 2 else []))
    got = _session(v, rank).run(None, {"text": feed})[0]
    want = v(texts)
    assert got.dtype == np.int64 and got.shape == want.shape, (got.shape, want.shape)
    bad = [i for i in range(len(texts)) if not np.array_equal(got[i], want[i])]
    assert not bad, f"rows {bad[:5]}: {[texts[i] for i in bad[:3]]!r}\ngot  {got[bad[0]]}\nwant {want[bad[0]]}"


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("standardize,split,ngrams,length", OPTIONS, ids=lambda o: str(o))
def test_in_graph_tokenizer_is_exact(standardize, split, ngrams, length, rank):
    v = TextVectorizer(VOCAB, standardize, split, ngrams, length)
    assert in_graph_blocker(v) is None
    _check(v, CORPUS, rank)                   # the whole corpus as one batch
    _check(v, ["", "   ", "\t\n"], rank)     # a batch of token-less rows: one step (or L)
    _check(v, [CORPUS[4]], rank)              # a batch of one
    _check(v, [LONG, "short one"], rank)      # truncation, and padding of the shorter row
    _check(v, ["", ""], rank)                 # only empty texts
    _check(v, ["a#b~c", "x|y", "plain"], rank)  # rare punctuation only
    _check(v, ["!!!", "...", ",,"], rank)     # punctuation only
    _check(v, ["a\t \tb"], rank)             # a piece of spaces between two others
    _check(v, ["c \n \n d", "x\ty"], rank)    # ... in a batch where no piece has two words


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("standardize,ngrams,length", [("lower_and_strip_punctuation", None, None),
                                                       ("lower", (1, 2), 3), (None, (2,), None)])
@pytest.mark.parametrize("split", ["whitespace", None])
def test_an_empty_batch(standardize, split, ngrams, length, rank):
    if split is None and ngrams is not None:
        pytest.skip("ngrams need a split (tokenizer.py refuses them with split None)")
    _check(TextVectorizer(VOCAB, standardize, split, ngrams, length), [], rank)


@pytest.mark.parametrize("standardize", ["strip_punctuation", "lower"])
def test_each_punctuation_character_alone(standardize):
    """A batch holding one punctuation character (the rare ones are looked for by one regex)."""
    v = TextVectorizer(VOCAB, standardize, "whitespace", (1, 2))
    for c in string.punctuation:
        _check(v, [f"a{c}b {c}", "plain words"], 1)


def test_lowercasing_leaves_every_non_ascii_code_point_alone():
    """StringNormalizer(LOWER, locale "C") on onnxruntime lowers A-Z only, as Keras's
    tf.strings.lower: every Unicode scalar value, 64 to a text, each text in the vocabulary
    exactly as TextVectorizer standardizes it."""
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = ["".join(map(chr, points[i:i + 64])) for i in range(0, len(points), 64)]
    v0 = TextVectorizer(("", "[UNK]"), "lower", None)
    v = TextVectorizer(tuple(full_vocabulary(dict.fromkeys(v0.standardized(t) for t in texts))), "lower", None)
    got = _session(v, 1).run(None, {"text": np.array(texts, dtype=object)})[0]
    assert np.array_equal(got, v(texts))
    assert (got[:, 0] >= 2).all()   # each text found: standardized exactly as the oracle


def test_character_split_is_refused_with_the_alternative():
    v = TextVectorizer(VOCAB, split="character")
    why = in_graph_blocker(v)
    assert why and 'split="character"' in why and "--tokenizer host" in why
    with pytest.raises(ValueError, match="character"):
        lower_text_vectorization(GraphBuilder("t", opset=REQUIRED_OPSET), "x", v, 1)


def test_needs_opset_20():
    with pytest.raises(ValueError, match="opset 20"):
        lower_text_vectorization(GraphBuilder("t"), "x", TextVectorizer(VOCAB), 1)


def test_ml_domain_is_imported_only_when_used():
    v = TextVectorizer(VOCAB)
    g = GraphBuilder("t", opset=REQUIRED_OPSET)
    x = g.add_input("text", "string", ["batch"])
    g.add_output(lower_text_vectorization(g, x, v, 1), "ids", "int64", ["batch", "steps"])
    model = g.to_model()
    assert {o.domain: o.version for o in model.opset_import} == {"": 20, ML_DOMAIN: 3}
    assert model.ir_version == 9
    _, shapes = finish(model)       # the lowering pass's checks: checker, strict shape inference
    assert shapes["ids"] == ["batch", "steps"]
    plain = GraphBuilder("p")
    a = plain.add_input("a", "float32", ["batch"])
    plain.add_output(plain.op("Relu", a), "y", "float32", ["batch"])
    model = plain.to_model()
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and model.ir_version == 8


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_opset_dependent_forms_check(opset):
    """Split and the reductions whose axes moved to an input at 18 take the right form."""
    g = GraphBuilder("t", opset=opset)
    x = g.add_input("x", "float32", ["batch", 4])
    a, b = g.op("Split", x, axis=1, n_out=2)
    ys = [g.reduce(op, g.op("Add", a, b), [1]) for op in ("ReduceMax", "ReduceMin", "ReduceMean",
                                                          "ReduceProd", "ReduceSum")]
    g.add_output(g.op("Concat", *[g.unsqueeze(y, [1]) for y in ys], axis=1), "y", "float32", ["batch", 5])
    model = g.to_model()
    onnx.checker.check_model(model, full_check=True)
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xv = np.arange(8, dtype=np.float32).reshape(2, 4)
    z = xv[:, :2] + xv[:, 2:]
    want = np.stack([z.max(1), z.min(1), z.mean(1), z.prod(1), z.sum(1)], 1)
    np.testing.assert_allclose(s.run(None, {"x": xv})[0], want, rtol=1e-6)


def _opset20_cases() -> list[Path]:
    """Every example, and goldens that together use every layer kind (and option set) the goldens
    hold: one per distinct set of class names."""
    cases = sorted((ROOT / "examples").glob("*.json"))
    seen: set[frozenset] = set()
    for spec in sorted((ROOT / "tests" / "goldens").glob("*/spec.json")):
        kinds = frozenset(layer["class_name"] for layer in json.loads(spec.read_text())["layers"])
        if kinds not in seen:
            seen.add(kinds)
            cases.append(spec.parent)
    return cases


@pytest.mark.parametrize("case", _opset20_cases(), ids=lambda p: p.name)
def test_models_lowered_at_opset_20_verify(case, monkeypatch):
    """The op forms every layer kind emits are right at opset 20 (the opset a model with an
    in-graph tokenizer is built at): the graph says opset 20 and matches the reference."""
    import rnncompile.lower as lower_mod
    from rnncompile.backends import default_factory
    from rnncompile.build import io_description
    from rnncompile.qa.goldens import read_golden
    from rnncompile.spec import load_spec
    from rnncompile.verify import verify

    monkeypatch.setattr(lower_mod, "GraphBuilder", lambda *a, **k: GraphBuilder(*a, **{**k, "opset": 20}))
    model = load_spec(case) if case.suffix == ".json" else read_golden(case)[0]
    low = lower_mod.lower(model)
    assert low.io["opset"] == 20
    report = verify(model, default_factory(1)(low.model_bytes), io_description(model, low))
    assert report.passed


@pytest.mark.parametrize("standardize,split,ngrams", [("lower_and_strip_punctuation", "whitespace", None),
                                                      ("strip_punctuation", "whitespace", (1, 2)),
                                                      (None, "whitespace", (2, 3)),
                                                      ("lower_and_strip_punctuation", None, None)])
def test_random_batches_of_hostile_characters(standardize, split, ngrams):
    """Seeded random texts over an alphabet dense in what the lowering treats specially (every
    whitespace and punctuation character, case, non-ASCII), in random batch sizes."""
    rng = np.random.default_rng(0)
    alphabet = list(" \t\n\r\x0b\x0c" + string.punctuation + "aAbBzZ\u00a0É😀\x00") + ["a", "b", " "] * 10
    v = TextVectorizer(VOCAB, standardize, split, ngrams)
    small = TextVectorizer(tuple(full_vocabulary(["a", "b", "a b", "b a", "ab", "ba"])), standardize, split, ngrams)
    sparse = list("a \t\n,.#")   # short texts of few words: batches where no piece has two words
    for i in range(150):
        chars = sparse if i % 2 else alphabet
        batch = ["".join(rng.choice(chars, size=rng.integers(0, 12 if i % 2 else 30)))
                 for _ in range(rng.integers(1, 5))]
        _check(v, batch, 1)
        _check(small, batch, 2)


@pytest.mark.parametrize("level", ["none", "basic", "extended"])
def test_exact_at_every_optimization_level(level):
    """The backends' optimization option (rnncompile.backends.onnxruntime) does not change ids."""
    from rnncompile.backends.onnxruntime import session_options

    v = TextVectorizer(VOCAB, ngrams=(1, 2), output_sequence_length=7)
    g = GraphBuilder("text", opset=REQUIRED_OPSET)
    x = g.add_input("text", "string", ["batch"])
    g.add_output(lower_text_vectorization(g, x, v, 1), "ids", "int64", ["batch", 7])
    s = ort.InferenceSession(g.to_model().SerializeToString(), session_options(1, level, quiet=True),
                             providers=["CPUExecutionProvider"])
    assert np.array_equal(s.run(None, {"text": np.array(CORPUS, dtype=object)})[0], v(CORPUS))


def _golden_cases():
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "goldens" / "text" / "goldens.json").read_text(encoding="ascii"))
    out = []
    for case in data["cases"] + data["emptyish_cases"]:
        o = case["options"]
        if "error" in case or o["split"] == "character" or (o["split"] is None and o["ngrams"] is not None):
            continue
        texts = data["emptyish"] if case["name"].startswith("emptyish_") else data["corpus"]
        if case["name"].startswith("single_tokens_"):
            texts = ["a", "the", "b"]
        out.append(pytest.param(case, texts, data["vocabulary"], id=case["name"]))
    return out


@pytest.mark.parametrize("case,texts,vocabulary", _golden_cases())
def test_in_graph_ids_equal_keras_goldens(case, texts, vocabulary):
    """The in-graph form against Keras itself (not only against tokenizer.py): every golden case
    whose options lower in the graph, Keras's ids exactly (a zero-step batch padded to one step)."""
    o = case["options"]
    v = TextVectorizer(tuple(full_vocabulary(vocabulary)), o["standardize"], o["split"],
                       tuple(range(1, o["ngrams"] + 1)) if isinstance(o["ngrams"], int) else
                       (tuple(o["ngrams"]) if o["ngrams"] is not None else None), o["output_sequence_length"])
    want = np.zeros(case["shape"], np.int64)
    for b, row in enumerate(case["ids"]):
        want[b, :len(row)] = row
    if want.shape[1] == 0:
        want = np.zeros((want.shape[0], 1), np.int64)
    got = _session(v, 2).run(None, {"text": np.array(texts, dtype=object).reshape(-1, 1)})[0]
    np.testing.assert_array_equal(got, want)


def test_memory_stays_linear_when_rows_hold_different_separators():
    """One text of many tabs, another of many newlines, others of many rare punctuation
    characters: split in turn per token, the pieces would be [B, K, m] (20,000 x 20,000 strings
    here, tens of GB); replaced in the texts, each step is [B, m]. Exact, and fast enough to run."""
    n = 20000
    v = TextVectorizer(tuple(full_vocabulary(["a", "b", "cd"])), "lower_and_strip_punctuation", "whitespace", None, 8)
    texts = ["a\t" * n, "b\n" * n, "c," * n + " d" * n, "e#" * n, "f$" * n + "\r" * n + "\x0b\x0c" * n]
    _check(v, texts, 1)
