"""Keras TextVectorization(output_mode="int") lowered to standard ONNX ops, exact on onnxruntime.

`lower_text_vectorization(g, text, v, rank)` turns a string input into the int64 ids [batch, L]
that `TextVectorizer` (rnncompile/tokenizer.py, the oracle) computes, with opset-20 string ops and
ai.onnx.ml's LabelEncoder, no regex replace and no custom op (docs/text.md):

  lower       StringNormalizer(LOWER, locale "C"): ASCII-only on onnxruntime, as Keras (non-ASCII
              letters stay as they are; tests/test_onnx_text.py checks every code point).
  strip       deleting a character c is splitting on c (StringSplit(delimiter=c)) and
              concatenating the pieces: pairwise, halving the width, in a Loop of ceil(log2 P)
              iterations. The 21 rare characters only when a RegexFullMatch finds one in the
              batch: the text split on each in turn (the pieces' axis flattened, the empty pieces
              dropped), joined once. Then the 11 frequent ones, each split on and joined again
              (the join skipped when no text held it), commas and full stops last.
  whitespace  StringSplit(delimiter=c) on \\t \\n \\r \\v \\f in turn (empty pieces dropped after each),
              then StringSplit without delimiter (onnxruntime: runs of ' ', ends dropped).
  ngrams      shifted token columns joined with " " (StringConcat), all unigrams, then all
              bigrams, ..., the empty ones (past a row's end) dropped.
  lookup      LabelEncoder: the vocabulary's ids, "" -> 0 (a genuine empty token only arises
              with split None; padding is "" too), anything else -> 1 ("[UNK]").
  length      padded with 0 and cut to output_sequence_length, or to the longest row (at least 1).

"Dropping the empty strings" (`_compact`) is a stable partition along the last axis: TopK of
the positions, non-empty ones first, then GatherElements, cut to the longest row's count; an If
skips it after a split on a delimiter that split nothing.
split="character" has no exact standard-op form (nothing splits a string into code points):
`in_graph_blocker` says so, and the build runs the tokenizer on the host instead.
"""
from __future__ import annotations

import re

import numpy as np

from .onnx_graph import ML_DOMAIN, GraphBuilder
from .tokenizer import MASK_TOKEN, PUNCTUATION, WHITESPACE, TextVectorizer

#: StringSplit and StringConcat are opset 20 (Equal on strings: 19).
REQUIRED_OPSET = 20
#: Operator domains besides the default one (LabelEncoder).
DOMAINS = (ML_DOMAIN,)

_I64 = np.int64
#: The order the punctuation characters are deleted in (any order gives the same text): the
#: rare ones first, while the pieces are few and long, so a text with many commas and full stops
#: is split on them last, in short pieces.
_PUNCTUATION_ORDER = "#$%&*+/<=>@[\\]^_`{|}~;:-()\"'?!.,"
#: The first _RARE of them are rare in text: one RegexFullMatch tells whether a batch holds any.
_RARE = _PUNCTUATION_ORDER.index(";")
assert sorted(_PUNCTUATION_ORDER) == sorted(PUNCTUATION)


def in_graph_blocker(v: TextVectorizer) -> str | None:
    """Why `v` cannot be lowered exactly with standard ONNX ops on onnxruntime, or None."""
    if v.split == "character":
        return ('split="character" has no exact form in standard ONNX ops (none splits a string into '
                'Unicode code points): use --tokenizer host (the tokenizer runs on the host, the graph '
                'takes the int64 ids)')
    return None


def lower_text_vectorization(g: GraphBuilder, text: str, v: TextVectorizer, rank: int) -> str:
    """Nodes turning the string tensor `text` ([batch] if rank == 1, [batch, 1] if rank == 2) into
    int64 ids [batch, L] equal to `v(texts)`. The graph's opset must be >= REQUIRED_OPSET."""
    blocker = in_graph_blocker(v)
    if blocker is not None:
        raise ValueError(blocker)
    if g.opset < REQUIRED_OPSET:
        raise ValueError(f"TextVectorization in the graph needs opset {REQUIRED_OPSET}, the graph is "
                         f"opset {g.opset}")
    if rank not in (1, 2):
        raise ValueError(f"text input of rank {rank}; expected 1 ([batch]) or 2 ([batch, 1])")
    x = text if rank == 1 else g.op("Reshape", text, g.const(np.array([-1], _I64)))        # [B]
    if v.standardize in ("lower", "lower_and_strip_punctuation"):
        # one "" more: onnxruntime's StringNormalizer refuses an empty batch
        padded = g.op("Concat", x, g.const(np.array([MASK_TOKEN], object)), axis=0)
        lowered = g.op("StringNormalizer", padded, case_change_action="LOWER", locale="C")
        x = g.op("Slice", lowered, g.const(np.array([0], _I64)), g.const(np.array([-1], _I64)))
    if v.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        x = _delete_chars(g, x, _PUNCTUATION_ORDER)
    if v.split == "whitespace":
        tokens = _split_whitespace(g, x)                                                    # [B, K]
    else:
        tokens = g.unsqueeze(x, [1])                                                         # [B, 1]
    if v.ngrams is not None:
        tokens = _ngrams(g, tokens, v.ngrams, compact=v.split is not None)
    ids = _lookup(g, tokens, v)                                                              # [B, W]
    return _fit_length(g, ids, v.output_sequence_length)


# -- the steps -------------------------------------------------------------------------------
def _delete_chars(g: GraphBuilder, x: str, chars: str) -> str:
    """x [B] with every character of `chars` deleted, in the order of `chars`. The first _RARE
    only when some text holds one of them (RegexFullMatch, an If); each character by splitting
    the texts on it and joining the pieces again (`_replace_chars`)."""
    rare, common = chars[:_RARE], chars[_RARE:]
    if rare:
        clean = g.op("RegexFullMatch", x, pattern="(?s)[^" + re.escape(rare) + "]*")        # [B]
        some = g.op("Greater", g.reduce("ReduceMax", g.op("Concat", g.const(np.array([0], _I64)),
                                                          g.cast(g.op("Not", clean), "int64"), axis=0), [0]),
                    g.const(_I64(0)))
        then = g.subgraph("rare")
        then.add_output(_replace_chars(then, x, rare, ""), then.fresh("text"), "string", [None])
        x = g.op("If", some, then_branch=then.to_graph(), else_branch=_identity_branch(g, "no_rare", x))
    return _replace_chars(g, x, common, "")


def _replace_chars(g: GraphBuilder, x: str, chars: str, by: str) -> str:
    """x [B] with every character of `chars` replaced by `by` ("" deletes it), one after the
    other: the texts split on the character ([B, m]) and the pieces joined again, each but the
    last followed by `by` (a trailing `by` = " " too: harmless before the whitespace split). The
    join is skipped (an If) when no text held the character. Each step is [B] -> [B, m] -> [B],
    so memory stays linear in the text's length, whatever the batch holds."""
    for c in chars:
        y, _ = g.op("StringSplit", x, n_out=2, delimiter=c)                                  # [B, m]
        one = g.op("Equal", g.squeeze(g.dim(y, 1), [0]), g.const(_I64(1)))
        then = g.subgraph("join")
        pieces = y if not by else then.op("StringConcat", y, then.const(np.array(by, object)))
        then.add_output(_concat_last_axis(then, pieces), then.fresh("text"), "string", [None])
        same = g.subgraph("unsplit")                         # no text held c: its one column
        same.add_output(same.squeeze(y, [1]), same.fresh("text"), "string", [None])
        x = g.op("If", one, then_branch=same.to_graph(), else_branch=then.to_graph())
    return x


def _identity_branch(g: GraphBuilder, name: str, x: str):
    """An If branch that gives x unchanged."""
    branch = g.subgraph(name)
    branch.add_output(x, branch.fresh("out"), "string", [None])
    return branch.to_graph()


def _split_whitespace(g: GraphBuilder, x: str) -> str:
    """Tokens [B, K] of x [B], split on runs of the six ASCII whitespace characters, left-aligned,
    padded with "": the five others than ' ' replaced by ' ' first (splitting the tokens on each in
    turn instead would hold [B, K, m] pieces: quadratic in a batch where one text has many tabs
    and another many newlines), then onnxruntime's split on runs of ' '."""
    x = _replace_chars(g, x, WHITESPACE[1:], " ")
    return _split_pieces(g, g.unsqueeze(x, [1]), None)


def _split_pieces(g: GraphBuilder, pieces: str, delimiter: str | None) -> str:
    """[B, P] pieces (left-aligned, "" padded), each split on `delimiter` (None: onnxruntime's runs
    of ' '), as [B, P'] left-aligned pieces, "" padded. With a delimiter, when no piece holds it
    (the usual case for most punctuation characters) the split is [B, P, 1] and its pieces are the
    input's: the compaction is skipped (an If). Without one, a piece of spaces only gives "" even
    then (a hole in its row), so the compaction always runs."""
    y, _ = g.op("StringSplit", pieces, n_out=2, delimiter=delimiter)                         # [B, P, m]
    flat = g.op("Flatten", y, axis=1)                                                        # [B, P * m]
    if delimiter is None:
        return _compact(g, flat)
    split = g.op("Greater", g.squeeze(g.dim(y, 2), [0]), g.const(_I64(1)))
    then = g.subgraph("compact")
    then.add_output(_compact(then, flat), then.fresh("pieces"), "string", [None, None])
    same = g.subgraph("same")
    same.add_output(flat, same.fresh("pieces"), "string", [None, None])
    return g.op("If", split, then_branch=then.to_graph(), else_branch=same.to_graph())


def _compact(g: GraphBuilder, x: str) -> str:
    """x [B, N] with its "" entries dropped: the others left-aligned in order, the rows padded
    with "" to the longest row's count."""
    keep = g.op("Not", g.op("Equal", x, g.const(np.array(MASK_TOKEN, object))))
    n = g.dim(x, 1)                                                                          # [1]
    pos = g.op("Range", g.const(_I64(0)), g.squeeze(n, [0]), g.const(_I64(1)))               # [N]
    key = g.op("Where", keep, pos, g.op("Add", pos, n))
    count = g.reduce("ReduceSum", g.cast(keep, "int64"), [1])                               # [B]
    width = g.reduce("ReduceMax", g.op("Concat", g.const(np.array([0], _I64)), count, axis=0), [0], keepdims=1)
    _, order = g.op("TopK", key, width, axis=1, largest=0, sorted=1, n_out=2)
    return g.op("GatherElements", x, order, axis=1)


def _concat_last_axis(g: GraphBuilder, pieces: str) -> str:
    """The strings of each row of pieces [B, P] concatenated, [B]: neighbours concatenated in
    pairs, halving the width, until one column is left (a Loop of ceil(log2 P) iterations), so each
    character is copied log2 P times rather than P times."""
    one = np.array([1], _I64)
    body = g.subgraph("concat_pairs")
    body.add_input(body.fresh("i"), "int64", [])
    body.add_input(body.fresh("cond"), "bool", [])
    acc = body.add_input(body.fresh("acc"), "string", [None, None])
    pad = body.op("Concat", acc, _empty_column(body, acc), axis=1)           # (Pad takes no strings)
    even = body.op("Slice", pad, body.const(np.array([0], _I64)), body.const(np.array([-1], _I64)),
                   body.const(one), body.const(np.array([2], _I64)))
    odd = body.op("Slice", pad, body.const(one), body.const(np.array([np.iinfo(_I64).max], _I64)),
                  body.const(one), body.const(np.array([2], _I64)))
    pairs = body.op("StringConcat", even, odd)
    more = body.squeeze(body.op("Greater", body.dim(pairs, 1), body.const(one)), [0])
    body.add_output(more, body.fresh("cond_out"), "bool", [])
    body.add_output(pairs, body.fresh("acc_out"), "string", [None, None])
    # one "" column more: P + 1 >= 1 columns, so one column is left at the end even when P is 0
    start = g.op("Concat", pieces, _empty_column(g, pieces), axis=1)
    more = g.squeeze(g.op("Greater", g.dim(start, 1), g.const(one)), [0])
    return g.take(g.op("Loop", None, more, start, body=body.to_graph()), 0, 1)


def _empty_column(g: GraphBuilder, x: str) -> str:
    """A [B, 1] column of "" for x [B, ...]."""
    shape = g.op("Concat", g.dim(x, 0), g.const(np.array([1], _I64)), axis=0)
    return g.op("Expand", g.const(np.array([[MASK_TOKEN]], object)), shape)


def _ngrams(g: GraphBuilder, tokens: str, widths, compact: bool) -> str:
    """The n-grams of tokens [B, K] (left-aligned, "" padded): all of the first width, then all of
    the next, ..., joined with " ", left-aligned. `compact` False: K is 1 (split None), no row
    is padded and the result needs no compaction."""
    parts = []
    for n in widths:
        cols = [g.op("Slice", tokens, g.const(np.array([j], _I64)),
                     g.const(np.array([j - (n - 1) if j < n - 1 else np.iinfo(_I64).max], _I64)),
                     g.const(np.array([1], _I64))) for j in range(n)]
        gram = cols[0]
        for col in cols[1:]:
            gram = g.op("StringConcat", g.op("StringConcat", gram, g.const(np.array(" ", object))), col)
        if n > 1 and compact:
            # a gram reaching past its row's last token ends with a padding "": not a gram
            gram = g.op("Where", g.op("Equal", cols[-1], g.const(np.array(MASK_TOKEN, object))),
                        g.const(np.array(MASK_TOKEN, object)), gram)
        parts.append(gram)
    out = parts[0] if len(parts) == 1 else g.op("Concat", *parts, axis=1)
    return _compact(g, out) if compact and len(parts) > 1 else out


def _lookup(g: GraphBuilder, tokens: str, v: TextVectorizer) -> str:
    """int64 ids of tokens: LabelEncoder over the vocabulary ("" -> 0, unknown -> 1)."""
    ids = {t: i for i, t in enumerate(v.vocabulary) if i >= 1}   # as TextVectorizer: a later repeat wins
    ids[MASK_TOKEN] = 0
    return g.op("LabelEncoder", tokens, domain=ML_DOMAIN, keys_strings=list(ids),
                values_int64s=list(ids.values()), default_int64=1)


def _fit_length(g: GraphBuilder, ids: str, length: int | None) -> str:
    """ids [B, W] padded with 0 and cut to `length` steps (None: max(W, 1))."""
    pad = 1 if length is None else length
    padded = g.op("Pad", ids, g.const(np.array([0, 0, 0, pad], _I64)))
    end = (g.op("Max", g.dim(ids, 1), g.const(np.array([1], _I64))) if length is None
           else g.const(np.array([length], _I64)))
    return g.op("Slice", padded, g.const(np.array([0], _I64)), end, g.const(np.array([1], _I64)))
