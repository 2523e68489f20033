"""Keras goldens for TextVectorization(output_mode="int"): what Keras 3 on TensorFlow returns for a
hostile corpus under every option combination, so tests/test_tokenizer.py can check
rnncompile.tokenizer in the default test run (no TensorFlow, no Keras).

Dev-only: Keras's TextVectorization needs TensorFlow, so run it with the separate TF venv, from
the repository root:

    TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow /work/tfenv/venv/bin/python tools/make_text_goldens.py

It never imports rnncompile (the oracle stays independent). Output: tests/goldens/text/goldens.json
(deterministic, ASCII-only JSON; format in tests/goldens/README.md, section TextVectorization).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import string
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# ------------------------------------------------------------------------------------------------
# The corpus: every text is hostile in at least one way (the comment says which).

LONG = " ".join(["the cat sat"] * 15) + " END"                       # 46 tokens: truncates at 7/40
LONG_OOV = " ".join(f"w{i}" for i in range(44)) + " the cat"        # 46 tokens, mostly OOV

CORPUS: list[str] = [
    "The cat sat on the mat.",                                       # plain sentence, final period
    "the cat sat",                                                   # in-vocabulary n-grams
    "THE CAT",                                                       # upper case
    "MiXeD CaSe The cAt",                                            # mixed case
    "Don't e-mail the U.S.A. (a) ... a.b,c",                         # punctuation in/around words
    "don't",
    "dont email usa",
    string.punctuation,                                              # all 32 ASCII punctuation, one run
    " ".join(string.punctuation),                                    # each punctuation char a token
    "a" + "".join(p + chr(ord("b") + i % 25) for i, p in enumerate(string.punctuation)),  # inside words
    "trailing punct! ?leading mid.dle",
    "!!!",                                                           # only punctuation
    "...",
    "\u00c9 \u00e9cole \u00c9COLE \u00c4pfel \u00e4pfel Stra\u00dfe STRASSE",        # É, Ä, ß
    "\u0130stanbul istanbul \u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2 \u03c3 \u03c2 \u03a3",  # İ, Σ/σ/ς
    "\u01c5 \u01c4 \u01c6 \ufb01le \ufb01",                          # titlecase ǅ, ligature ﬁ
    "\u00dcn\u00efc\u00f6d\u00e9 \u00dcN\u00cfC\u00d6D\u00c9",
    "\uff21 fullwidth \uff21\uff22\uff23 \uff41\uff42\uff43",         # fullwidth letters
    "tab\tsep\tarated",
    "new\nline\r\nwin\rold\x0bvt\x0cff",                            # \n \r\n \r \v \f
    "  runs   of    spaces  ",
    "nbsp\u00a0joined the\u2003em cat\u3000ideo",                    # Unicode spaces: not split on
    "nel\u0085sep \u2028line sep\u2029para",                         # U+0085, U+2028, U+2029
    "fs\x1cgs\x1drs\x1eus\x1fend",                                   # str.split splits these; Keras not
    "zero\u200bwidth joiner\u200dx",
    "emoji \U0001f600 \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 "
    "\U0001f1eb\U0001f1f7 the\U0001f600cat",                         # modifiers, ZWJ, flags
    "combining e\u0301 cafe\u0301 caf\u00e9",                       # combining acute vs precomposed
    "nul\x00inside the\x00 cat",                                     # NUL inside
    "\x00",                                                          # NUL alone
    "",                                                              # empty
    " ",                                                             # one space
    "\t\n\r\x0b\x0c   ",                                             # all ASCII whitespace
    "\u00a0",                                                        # NBSP alone: a token for Keras
    LONG,
    LONG_OOV,
    "[UNK] [unk] [UNK]the cat [Unk]",                                # literal OOV-token lookalikes
    "zzz qqq unknownword",                                           # all OOV
    "\u00e9",
    "\U0001f600",
    "the cat",
    "a",
    "\u65e5\u672c\u8a9e \u30c6\u30ad\u30b9\u30c8",                   # CJK, no spaces inside words
]

# A vocabulary that hits under every standardize/split/ngrams: words as they look after each
# standardize, n-gram terms, single characters (é, an emoji, space), "[UNK]" as an ordinary term in
# the middle, terms with punctuation and with Unicode spaces.
VOCABULARY: list[str] = [
    "the", "cat", "sat", "on", "mat", "mat.", "The", "THE", "CAT", "cAt", "mixed", "case",
    "don't", "dont", "Don't", "e-mail", "email", "emailthe", "usa", "U.S.A.", "u.s.a.", "(a)",
    "a", "b", "c", "abc", "a.b,c", "...", "!!!", "!",
    "[UNK]",                                                         # an ordinary term here
    "[unk]", "unk", "UNK",
    "the cat", "cat sat", "sat on", "on the", "the mat", "the cat sat", "cat sat on", "sat the cat",
    "t", "h", "e", "T", "H", "E", "th", "t h", "h e", "t h e", "c a t", " ", ".", "'", "-",
    "\u00e9", "\u00c9", "\u00e9cole", "\u00c9cole", "\u00c9COLE", "\u00e9COLE", "stra\u00dfe", "Stra\u00dfe",
    "strasse", "\u00df", "\u03c3", "\u03a3", "\u01c6", "\u01c5", "\ufb01", "\ufb01le", "i\u0307",
    "\U0001f600", "\U0001f44d", "\U0001f3fd", "the\U0001f600cat", "cafe\u0301", "caf\u00e9", "cafe",
    "\u00a0", "nbsp\u00a0joined", "the\u2003em", "nul\x00inside",
    "fs\x1cgs\x1drs\x1eus\x1fend", "nel\u0085sep", "tab", "sep", "arated", "line", "win", "end", "END",
    "\u65e5\u672c\u8a9e", "\u65e5", "ideo", "w3",
]

STANDARDIZE = ["lower_and_strip_punctuation", "lower", "strip_punctuation", None]
SPLIT = ["whitespace", "character", None]
NGRAMS = [None, 2, 3, [2], [1, 3]]
LENGTHS = [None, 1, 7, 40]

# Batches whose every row has zero tokens under some options (Keras returns shape (batch, 0)).
EMPTYISH = ["", " ", "\t\n\r\x0b\x0c   ", "!!!", "..."]


# ------------------------------------------------------------------------------------------------

def vectorize(texts: list[str], rank: int, **options):
    """Keras's output for `texts` as a (batch,) or (batch, 1) string tensor, or its refusal."""
    try:
        layer = keras.layers.TextVectorization(output_mode="int", **options)
        x = tf.constant(texts if rank == 1 else [[t] for t in texts], dtype=tf.string)
        y = layer(x)
    except Exception as e:  # noqa: BLE001 -- a refusal is data here
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0][:400]}
    y = np.asarray(y)
    assert y.dtype == np.int64, y.dtype
    return {"shape": list(y.shape), "ids": packed(y)}


def packed(y: np.ndarray):
    """A dense id array with each row's trailing zeros dropped (lossless given the shape)."""
    if y.ndim == 1:
        return np.trim_zeros(y, "b").tolist()
    return [np.trim_zeros(r, "b").tolist() for r in y]


def keras_vocabulary(terms, max_tokens=None):
    try:
        layer = keras.layers.TextVectorization(vocabulary=terms, max_tokens=max_tokens)
        return {"vocabulary": [str(t) for t in layer.get_vocabulary()]}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0][:400]}


def grid_case(standardize, split, ngrams, length, texts, name_prefix=""):
    options = {"standardize": standardize, "split": split, "ngrams": ngrams,
               "output_sequence_length": length}
    kw = dict(options, ngrams=tuple(ngrams) if isinstance(ngrams, list) else ngrams)
    r2 = vectorize(texts, 2, vocabulary=VOCABULARY, **kw)
    r1 = vectorize(texts, 1, vocabulary=VOCABULARY, **kw)
    name = name_prefix + "_".join(str(v).replace(" ", "") for v in options.values())
    case = {"name": name, "options": options, **r2}
    if r1 != r2:
        case["rank1"] = r1          # the (batch,) form gave something else (split=None: see README)
    return case


def vocabulary_cases() -> list[dict]:
    texts = ["the cat sat", "[UNK] a b", "zzz", "", "x\x00 x nul\x00inside b", "\x00"]
    specs = [
        ("adapted_form", ["", "[UNK]", "the", "cat", "a"], None),
        ("unk_first_without_mask", ["[UNK]", "the", "cat", "a"], None),
        ("unk_in_middle", ["the", "[UNK]", "cat"], None),
        ("mask_first_without_unk", ["", "the", "cat"], None),
        ("mask_in_middle", ["the", "", "cat"], None),
        ("mask_last", ["the", "cat", ""], None),
        ("unk_then_mask", ["[UNK]", "", "the"], None),
        ("adapted_form_mask_again", ["", "[UNK]", "the", ""], None),
        ("adapted_form_unk_again", ["", "[UNK]", "the", "[UNK]"], None),
        ("duplicates", ["the", "cat", "the"], None),
        ("duplicate_case_differs", ["the", "The"], None),
        ("max_tokens_too_small", ["the", "cat", "a"], 4),
        ("max_tokens_exact", ["the", "cat", "a"], 5),
        ("max_tokens_larger", ["the", "cat", "a"], 9),
        ("max_tokens_adapted_form_exact", ["", "[UNK]", "the", "cat"], 4),
        ("max_tokens_adapted_form_too_small", ["", "[UNK]", "the", "cat"], 3),
        ("empty", [], None),
        ("only_reserved", ["", "[UNK]"], None),
        # NUL: Keras converts the vocabulary through a NumPy unicode array, which drops trailing NULs
        ("nul_inside", ["nul\x00inside", "b"], None),
        ("nul_trailing", ["x\x00", "b"], None),
        ("nul_alone", ["b", "\x00"], None),
        ("nul_trailing_duplicate", ["x\x00", "x"], None),
    ]
    cases = []
    for name, terms, max_tokens in specs:
        case = {"name": name, "terms": terms, "max_tokens": max_tokens, **keras_vocabulary(terms, max_tokens)}
        if "error" not in case:
            r = vectorize(texts, 2, vocabulary=terms, max_tokens=max_tokens)
            case.update(texts=texts, shape=r["shape"], ids=r["ids"])
        cases.append(case)
    return cases


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/goldens/text/goldens.json")
    args = ap.parse_args(argv)
    keras.utils.set_random_seed(0)
    assert len(set(VOCABULARY)) == len(VOCABULARY) and "" not in VOCABULARY, "vocabulary not unique"
    assert len(set(string.punctuation)) == 32
    cases = []
    for standardize, split, ngrams, length in itertools.product(STANDARDIZE, SPLIT, NGRAMS, LENGTHS):
        cases.append(grid_case(standardize, split, ngrams, length, CORPUS))
    # all-empty batches: Keras's (batch, 0)
    empty_cases = []
    for standardize, split, length in itertools.product(STANDARDIZE, SPLIT, [None, 3]):
        empty_cases.append(grid_case(standardize, split, None, length, EMPTYISH, "emptyish_"))
    empty_cases.append(grid_case("lower_and_strip_punctuation", "whitespace", [2], None, ["a", "the", "b"],
                                 "single_tokens_bigrams_"))
    data = {
        "generator": "tools/make_text_goldens.py",
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "corpus": CORPUS,
        "vocabulary": VOCABULARY,
        "emptyish": EMPTYISH,
        "cases": cases,
        "emptyish_cases": empty_cases,
        "vocabulary_cases": vocabulary_cases(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=True, indent=None, separators=(",", ":"), sort_keys=False)
    out.write_text(pretty(data) + "\n", encoding="ascii")
    errors = sum("error" in c for c in cases)
    rank1 = sum("rank1" in c for c in cases)
    print(f"wrote {out}: {len(cases)} grid cases ({errors} refused, {rank1} with a different (batch,) "
          f"result), {len(empty_cases)} empty-batch cases, {len(data['vocabulary_cases'])} vocabulary cases, "
          f"{len(text)} bytes compact / {out.stat().st_size} written")
    return 0


def pretty(data: dict) -> str:
    """JSON with one line per case and per corpus text (diffable, still compact)."""
    def dump(v):
        return json.dumps(v, ensure_ascii=True, separators=(",", ":"))
    lines = ["{"]
    items = list(data.items())
    for k, (key, value) in enumerate(items):
        end = "," if k < len(items) - 1 else ""
        if isinstance(value, list) and key != "vocabulary":
            lines.append(f"{dump(key)}:[")
            lines.extend("  " + dump(v) + ("," if i < len(value) - 1 else "") for i, v in enumerate(value))
            lines.append("]" + end)
        else:
            lines.append(f"{dump(key)}:{dump(value)}{end}")
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
