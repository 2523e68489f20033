#!/usr/bin/env python3
"""Latency of the in-graph TextVectorization (rnncompile/onnx_text.py) on one onnxruntime thread
against the Python tokenizer (rnncompile/tokenizer.py's TextVectorizer), per batch of reviews.

    python tools/text_bench.py [--batch 32] [--runs 200] [--vocab 20000] [--json out.json]
                               [--cpp build/cpp/rnncompile_text_bench]

Part 2 puts the tokenizer beside the model it feeds: the seed model from raw text
(examples/sentiment_text.json: TextVectorization(output_sequence_length=200) -> Embedding(5000, 64,
mask_zero) -> Bidirectional(LSTM(64)) -> Dense) built in both forms, on the same reviews (words of its
vocabulary, so that the ids are real), batch 32, one thread each: the Python tokenizer, the C++
tokenizer (`rnncompile_text_bench --build OUT --texts FILE`, when --cpp names the binary), the
in-graph tokenizer alone, the numeric model alone (ids in), and the whole in-graph model (text in),
with each tokenizer's share of a request.

Part 3 runs an adversarial batch through the in-graph tokenizer (texts holding thousands of tabs,
newlines, commas, '#', '$', '\\r'): time and peak memory, which stay linear in the text's length.

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
    ap.add_argument("--cpp", default="build/cpp/rnncompile_text_bench",
                    help="the C++ tokenizer benchmark binary (cpp/, RNNCOMPILE_BUILD_BENCHMARKS)")
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
    seed = seed_model_rows(args, rng)
    adversarial = adversarial_rows()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"onnxruntime": ort.__version__, "rows": rows, "seed_model": seed,
                       "adversarial": adversarial}, f, indent=1)
    return 0


def adversarial_rows() -> list[dict]:
    """Part 3: a batch whose texts hold different separators many times (n tabs in one, n newlines,
    commas, '#', '$' and '\\r' in others), in the graph: seconds (best of 3) and this process's peak
    resident memory after the run, which must grow linearly in n (docs/text.md)."""
    import resource

    v = TextVectorizer(tuple(full_vocabulary(["a", "b", "cd"])), "lower_and_strip_punctuation", "whitespace",
                       None, 8)
    s = session(v)
    out = []
    print("\nadversarial batch in the graph (docs/text.md): n, seconds, peak RSS MB")
    for n in (3000, 20000):
        texts = np.array(["a\t" * n, "b\n" * n, "c," * n + " d" * n, "e#" * n, "f$" * n + "\r" * n],
                         dtype=object)
        if not np.array_equal(s.run(None, {"text": texts})[0], v(list(texts))):
            raise SystemExit("MISMATCH: adversarial batch")
        seconds = best_ms(lambda: s.run(None, {"text": texts}), 3) / 1e3
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        out.append({"n": n, "seconds": round(seconds, 4), "peak_rss_mb": rss})
        print(f"{n:>6} {seconds:>8.3f} {rss:>6}")
    return out


def ort_session(path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def seed_model_rows(args, rng: random.Random) -> list[dict]:
    """Part 2 (module doc): the tokenizers beside the seed model they feed."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    import rnncompile
    from rnncompile.build import load_model
    from rnncompile.targets import get_target

    root = Path(__file__).resolve().parent.parent
    spec = root / "examples" / "sentiment_text.json"
    tmp = Path(tempfile.mkdtemp(prefix="text-bench-"))
    graph_dir, host_dir = tmp / "graph", tmp / "host"
    rnncompile.build(spec, graph_dir, threads=1)
    rnncompile.build(spec, host_dir, threads=1, target=get_target(None, None, "host"))
    v = load_model(spec).layers["vectorize"].vectorizer
    words = list(v.vocabulary[2:])
    tok_only = session(v)
    full, numeric = ort_session(graph_dir / "model.onnx"), ort_session(host_dir / "model.onnx")
    cpp = args.cpp if args.cpp and os.path.isfile(args.cpp) else None
    out = []
    print(f"\nseed model from raw text (examples/sentiment_text.json), batch {args.batch}, 1 thread, ms per batch")
    print(f"{'words':>5} {'python':>8} {'c++':>8} {'in-graph':>9} {'model(ids)':>10} {'model(text)':>11}  "
          f"tokenizer share: python, c++, in-graph")
    for n in (20, 250):
        texts = []
        for _ in range(args.batch):   # review() punctuation and case over the model's own vocabulary
            t = review(rng, n).split(" ")
            texts.append(" ".join(rng.choice(words) if w.isalpha() and rng.random() < 0.8 else w for w in t))
        feed = {"review": np.array(texts, dtype=object).reshape(-1, 1)}
        ids = v(texts)
        if not np.array_equal(tok_only.run(None, {"text": np.array(texts, dtype=object)})[0], ids):
            raise SystemExit("MISMATCH: in-graph tokenizer of the seed model")
        py_ms = best_ms(lambda: v(texts), args.runs)
        graph_ms = best_ms(lambda: tok_only.run(None, {"text": np.array(texts, dtype=object)}), args.runs)
        num_ms = best_ms(lambda: numeric.run(None, {"vectorize": ids}), args.runs)
        full_ms = best_ms(lambda: full.run(None, feed), args.runs)
        cpp_ms = None
        if cpp:
            f = tmp / f"texts{n}.txt"
            f.write_text("\n".join(texts * 4) + "\n", encoding="utf-8")
            r = subprocess.run(["taskset", "-c", "0", cpp, "--build", str(host_dir), "--texts", str(f),
                                "--batch", str(args.batch), "--seconds", "0.5"], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"C++ bench failed: {r.stderr}")
            cpp_ms = json.loads(r.stdout)["ms_per_batch"]
        row = {"words": n, "batch": args.batch, "python_ms": round(py_ms, 3),
               "cpp_ms": round(cpp_ms, 4) if cpp_ms is not None else None, "in_graph_ms": round(graph_ms, 3),
               "model_ids_ms": round(num_ms, 3), "model_text_ms": round(full_ms, 3)}
        out.append(row)
        share = [f"{t / (t + num_ms):.0%}" if t is not None else "-" for t in (py_ms, cpp_ms, graph_ms)]
        print(f"{n:>5} {py_ms:>8.3f} {(f'{cpp_ms:.4f}' if cpp_ms is not None else '-'):>8} {graph_ms:>9.3f} "
              f"{num_ms:>10.3f} {full_ms:>11.3f}  {', '.join(share)}")
    if not cpp:
        print("c++: not measured (build cpp/ with -DRNNCOMPILE_BUILD_BENCHMARKS=ON and pass --cpp PATH)")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
