#!/usr/bin/env python3
"""Latency of the in-graph TextVectorization (rnncompile/onnx_text.py) on one onnxruntime thread
against the Python tokenizer (rnncompile/tokenizer.py's TextVectorizer), per batch of reviews.

    python tools/text_bench.py [--batch 32] [--runs 200] [--vocab 20000] [--json out.json]

Reviews are drawn (seeded) from a small English-like word list with realistic punctuation and case:
sentences with a capital first word, commas, full stops, "!", "?", "...", apostrophes ("don't"),
quotes, parentheses and the odd ":)" or "-". Short reviews have about 20 words, long ones about 250.
Each configuration is checked for exact equality before it is timed; times are the best of --runs
runs (after a warm-up run; the best, as the least disturbed by other work on a shared machine),
in milliseconds per batch.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import onnxruntime as ort

from rnncompile.onnx_graph import GraphBuilder
from rnncompile.onnx_text import REQUIRED_OPSET, lower_text_vectorization
from rnncompile.tokenizer import TextVectorizer, full_vocabulary

WORDS = ("the a and of to is was it this that movie film story plot acting actor actress scene "
         "great good bad awful boring brilliant funny sad long short really very quite not "
         "i you he she we they loved hated liked enjoyed watched saw think thought felt "
         "ending beginning music director characters character time times worth money").split()
CONTRACTIONS = ["don't", "can't", "it's", "i'm", "wasn't", "didn't", "isn't", "they're"]


def review(rng: random.Random, words: int) -> str:
    out, start = [], True
    for _ in range(words):
        w = rng.choice(CONTRACTIONS) if rng.random() < 0.05 else rng.choice(WORDS)
        if start:
            w = w.capitalize()
            start = False
        r = rng.random()
        if r < 0.07:
            w += ","
        elif r < 0.14:
            w += rng.choice([".", ".", ".", "!", "?", "..."])
            start = True
        elif r < 0.15:
            w = f"({w})"
        elif r < 0.16:
            w = f'"{w}"'
        elif r < 0.165:
            w += " :)"
        elif r < 0.17:
            w += " -"
        out.append(w)
    return " ".join(out)


def session(v: TextVectorizer) -> ort.InferenceSession:
    g = GraphBuilder("text", opset=REQUIRED_OPSET)
    x = g.add_input("text", "string", ["batch"])
    g.add_output(lower_text_vectorization(g, x, v, 1), "ids", "int64", ["batch", "steps"])
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(g.to_model().SerializeToString(), so, providers=["CPUExecutionProvider"])


def best_ms(f, runs: int) -> float:
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=20000)
    ap.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    args = ap.parse_args(argv)
    rng = random.Random(0)
    vocab = tuple(full_vocabulary(dict.fromkeys([*WORDS, *CONTRACTIONS, *(f"w{i}" for i in range(args.vocab))])))
    rows = []
    print(f"{'standardize':<28} {'split':<10} {'ngrams':<7} {'words':>5} {'onnx ms':>8} {'python ms':>9}")
    for words in (20, 250):
        texts = [review(rng, words) for _ in range(args.batch)]
        feed = {"text": np.array(texts, dtype=object)}
        for st, sp, ng in [("lower_and_strip_punctuation", "whitespace", None), ("lower", "whitespace", None),
                           ("strip_punctuation", "whitespace", None), (None, "whitespace", None),
                           ("lower_and_strip_punctuation", "whitespace", (1, 2)),
                           ("lower_and_strip_punctuation", None, None)]:
            v = TextVectorizer(vocab, st, sp, ng, None)
            s = session(v)
            if not np.array_equal(s.run(None, feed)[0], v(texts)):
                raise SystemExit(f"MISMATCH: {st} {sp} {ng} {words} words")
            onnx_ms = best_ms(lambda: s.run(None, feed), args.runs)
            py_ms = best_ms(lambda: v(texts), args.runs)
            rows.append({"standardize": st, "split": sp, "ngrams": ng, "words": words, "batch": args.batch,
                         "onnx_ms": round(onnx_ms, 3), "python_ms": round(py_ms, 3)})
            print(f"{st!s:<28} {sp!s:<10} {ng!s:<7} {words:>5} {onnx_ms:>8.3f} {py_ms:>9.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"onnxruntime": ort.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
