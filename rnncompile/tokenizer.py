"""Keras `TextVectorization` (output_mode="int") in plain Python: the one host-side tokenizer.

It is the reference of the TextVectorization layer kind, the tokenizer a Session applies when a
build runs it on the host (`--tokenizer host`: TensorRT engines, C++ apps), and the oracle of the
in-graph lowering (rnncompile/onnx_text.py). Its rules are Keras 3's (layers/preprocessing/
text_vectorization.py, run on TensorFlow), checked against goldens made with Keras on hostile
text (tests/goldens/text/, tools/make_text_goldens.py):

  standardize  "lower": ASCII-only lowercasing (tf.strings.lower; "É" stays "É").
               "strip_punctuation": delete the 32 ASCII punctuation characters of Python's
               `string.punctuation` (Keras's regex replace); nothing else (no Unicode punctuation).
               "lower_and_strip_punctuation": both, lower first. None: untouched.
  split        "whitespace": split on runs of the six ASCII whitespace characters (space, \\t, \\n,
               \\r, \\v, \\f), leading and trailing ones dropped; Unicode spaces (NBSP, U+2003, ...)
               are not whitespace. "character": one token per Unicode code point (UTF-8).
               None: the whole (standardized) text is one token.
  ngrams       widths (1, 2) -> all unigrams of the text, then all bigrams ("a b"), in order; a text
               with fewer tokens than a width has no n-grams of that width. Keras's `ngrams=n` is
               (1, ..., n). Refused with split None (Keras's result then depends on the input's
               rank: a (batch,) input makes n-grams across the texts of the batch).
  lookup       id 0 for the mask token "" (a text that standardizes to "" with split None), id 1
               for out-of-vocabulary tokens ("[UNK]"), the vocabulary from id 2.
  length       `output_sequence_length` L: the first L ids, padded with 0 at the end. None: padded
               to the longest row of the batch, and to at least one step (Keras gives a batch of
               token-less texts zero steps, on which no recurrent layer runs).

A description of the tokenizer (`to_dict()`, in manifest.json's "preprocessing") is what other
runtimes implement (the C++ runtime: cpp/src/text.cpp, rnncompile/text.hpp).
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Iterable

import numpy as np

STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace", "character", None)
#: Keras's padding (mask) token and out-of-vocabulary token, ids 0 and 1.
MASK_TOKEN = ""
OOV_TOKEN = "[UNK]"
PUNCTUATION = string.punctuation          # the 32 characters Keras's regex deletes
WHITESPACE = " \t\n\r\x0b\x0c"             # what tf.strings.split splits on (ASCII isspace)

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", PUNCTUATION)
_LOWER_STRIP = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, PUNCTUATION)
_WS_TO_SPACE = str.maketrans({c: " " for c in WHITESPACE[1:]})
_TABLES = {"lower": _LOWER, "strip_punctuation": _STRIP, "lower_and_strip_punctuation": _LOWER_STRIP}


class VocabularyError(ValueError):
    """A vocabulary Keras would refuse; the message says why (the caller adds where)."""


def full_vocabulary(terms: Iterable[str], max_tokens: int | None = None) -> list[str]:
    """The id table of a Keras vocabulary: ["", "[UNK]", *terms], as Keras's `set_vocabulary`
    builds it. Terms may already start with "" and "[UNK]" (an adapted layer's saved vocabulary);
    "" anywhere else, a repeated term, no term at all or more than `max_tokens` ids is refused, as
    Keras does; trailing NULs of a term are dropped, as Keras does.
    A "[UNK]" that is not preceded by "" is an ordinary term (Keras gives it its own id)."""
    terms = list(terms)
    for i, t in enumerate(terms):
        if not isinstance(t, str):
            raise VocabularyError(f"term {i} is {type(t).__name__} {t!r}, expected a string")
    # Keras passes the vocabulary through a NumPy unicode array, which drops trailing NULs: "x\0"
    # becomes the term "x" (and "\0" the mask token "") before any check (goldens: nul_*).
    terms = [t.rstrip("\x00") for t in terms]
    if terms[:2] == [MASK_TOKEN, OOV_TOKEN]:
        terms = terms[2:]
    if not terms:
        raise VocabularyError("the vocabulary has no terms (besides \"\" and \"[UNK]\"); Keras refuses it")
    if MASK_TOKEN in terms:
        raise VocabularyError(f"the mask token \"\" is at position {terms.index(MASK_TOKEN)}: it may only "
                              "come first, followed by \"[UNK]\" (or be left out)")
    seen: set[str] = set()
    repeated = [t for t in terms if t in seen or seen.add(t)]
    if repeated:
        raise VocabularyError(f"repeated term(s) {', '.join(repr(t) for t in repeated[:5])}: every term needs "
                              "one id")
    table = [MASK_TOKEN, OOV_TOKEN, *terms]
    if max_tokens is not None and len(table) > max_tokens:
        raise VocabularyError(f"{len(table)} ids (with \"\" and \"[UNK]\") is more than max_tokens={max_tokens}")
    return table


def ngram_widths(ngrams) -> tuple[int, ...] | None:
    """Keras's `ngrams` argument -> the widths: n -> (1..n); a list/tuple -> itself; None -> None."""
    if ngrams is None:
        return None
    if isinstance(ngrams, int):
        return tuple(range(1, ngrams + 1))
    return tuple(ngrams)


@dataclass(frozen=True)
class TextVectorizer:
    """Keras TextVectorization(output_mode="int") with a fixed vocabulary (`vocabulary`: the id
    table from `full_vocabulary`, "" and "[UNK]" first)."""

    vocabulary: tuple[str, ...]
    standardize: str | None = "lower_and_strip_punctuation"
    split: str | None = "whitespace"
    ngrams: tuple[int, ...] | None = None
    output_sequence_length: int | None = None

    def __post_init__(self):
        if self.standardize not in STANDARDIZE:
            raise ValueError(f"standardize={self.standardize!r}; expected one of {STANDARDIZE}")
        if self.split not in SPLIT:
            raise ValueError(f"split={self.split!r}; expected one of {SPLIT}")
        if self.ngrams is not None and self.split is None:
            raise ValueError("ngrams with split=None: each text is one token; Keras pairs up the texts of a "
                             "batch of shape (batch,) and fails on some of shape (batch, 1)")
        if tuple(self.vocabulary[:2]) != (MASK_TOKEN, OOV_TOKEN):
            raise ValueError("vocabulary must start with \"\" and \"[UNK]\" (use full_vocabulary)")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.vocabulary) if i >= 1})

    # -- the steps --------------------------------------------------------------------------
    def standardized(self, text: str) -> str:
        table = _TABLES.get(self.standardize)
        return text if table is None else text.translate(table)

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text (after standardize, split and ngrams), before lookup."""
        s = self.standardized(text)
        if self.split == "whitespace":
            toks = [t for t in s.translate(_WS_TO_SPACE).split(" ") if t]
        elif self.split == "character":
            toks = list(s)
        else:
            toks = [s]
        if self.ngrams is not None:
            toks = [" ".join(toks[i:i + n]) for n in self.ngrams for i in range(len(toks) - n + 1)]
        return toks

    def ids(self, text: str) -> list[int]:
        """Token ids of one text, unpadded and untruncated (Keras's ragged output)."""
        get = self._ids.get
        return [0 if t == MASK_TOKEN else get(t, 1) for t in self.tokens(text)]

    def __call__(self, texts) -> np.ndarray:
        """int64 [batch, L] ids of a batch of texts (a sequence of str, or an array of shape
        [batch] or [batch, 1]); see the module doc for L."""
        rows = [self.ids(t) for t in _texts(texts)]
        length = self.output_sequence_length
        if length is None:
            length = max([1, *(len(r) for r in rows)])
        out = np.zeros((len(rows), length), np.int64)
        for b, r in enumerate(rows):
            r = r[:length]
            out[b, :len(r)] = r
        return out

    # -- the manifest description ------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"standardize": self.standardize, "split": self.split,
                "ngrams": list(self.ngrams) if self.ngrams is not None else None,
                "output_sequence_length": self.output_sequence_length}

    @classmethod
    def from_dict(cls, d: dict, vocabulary: list[str]) -> "TextVectorizer":
        return cls(tuple(vocabulary), d.get("standardize"), d.get("split"),
                   tuple(d["ngrams"]) if d.get("ngrams") is not None else None, d.get("output_sequence_length"))


def _texts(texts) -> list[str]:
    """A batch of texts as str: from a list, or an array of shape [batch] or [batch, 1] of str
    or UTF-8 bytes (invalid UTF-8 is refused by the caller's input check)."""
    arr = np.asarray(texts, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"expected a batch of texts of shape (batch,) or (batch, 1), got {arr.shape}")
    return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in arr.tolist()]


__all__ = ["MASK_TOKEN", "OOV_TOKEN", "PUNCTUATION", "SPLIT", "STANDARDIZE", "TextVectorizer", "VocabularyError",
           "WHITESPACE", "full_vocabulary", "ngram_widths"]
