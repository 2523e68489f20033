"""Keras model fixtures with a TextVectorization layer, for the Keras importer tests: text in,
prediction out. Dev-only (TextVectorization needs TensorFlow); run from the repository root with
the TF venv:

    TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow /work/tfenv/venv/bin/python tools/make_text_models.py

Writes to tests/keras_models/ (never imports rnncompile):
  text_sentiment_vocab.keras / .h5 / .npz     vocabulary given in the constructor, output_sequence_length=8
  text_sentiment_adapted.keras / .h5 / .npz   adapt()ed (max_tokens=30, ngrams=2, no output length)
Model: Input(shape=(1,), dtype="string") -> TextVectorization -> Embedding(vocab, 4, mask_zero=True)
-> Bidirectional(LSTM(3)) -> Dense(1, sigmoid), seeded random weights (biases too).
NAME.npz: `call0/in/<input name>` (NumPy unicode array of hostile texts, shape (batch, 1)) and
`call0/out/0` (model.predict). Also tests/goldens/text/models.json: per model the TextVectorization
layer's name, vocabulary (get_vocabulary()) and Keras's ids for the same texts. Where the vocabulary
lives in each file: tests/goldens/README.md, section TextVectorization.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

VOCABULARY = ["the", "movie", "was", "great", "bad", "not", "good", "i", "loved", "it", "hated", "[UNK]",
              "don't", "\u00e9t\u00e9", "\U0001f600", "very", "plot", "acting"]

ADAPT_CORPUS = [
    "The movie was great!", "I loved it.", "Not good, not good at all.", "Bad acting; bad plot.",
    "I hated it", "great great great", "the plot was very good", "\u00c9t\u00e9 \U0001f600 the movie",
    "It was NOT bad", "loved the acting",
]

# Hostile inputs (no trailing NULs: a NumPy unicode array cannot hold them).
TEXTS = [
    "The movie was GREAT!", "i LOVED it... not.", "", "   ", "\u00c9t\u00e9 \u00e9t\u00e9 \U0001f600\U0001f600",
    "don't e-mail [UNK] [unk]", "tab\tnew\nline\rcr\x0bvt\x0cff", "nbsp\u00a0joined em\u2003space",
    "fs\x1cgs\x1dus\x1fend", "nul\x00inside", "!!!", "unknown words only here",
    " ".join(["the movie was very good"] * 3), "\U0001f468\u200d\U0001f469\u200d\U0001f467 \u0130 \u03a3 \ufb01",
]


def randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for w in model.weights:
        scale = 1.0 if "embeddings" in w.path else (0.5 if "bias" in w.path else 0.6)
        w.assign(rng.uniform(-scale, scale, size=tuple(w.shape)).astype("float32"))


def sentiment(vectorize: layers.TextVectorization, vocab_size: int, name: str) -> keras.Model:
    text = keras.Input(shape=(1,), dtype="string", name="text")
    x = vectorize(text)
    x = layers.Embedding(vocab_size, 4, mask_zero=True, name="embedding")(x)
    x = layers.Bidirectional(layers.LSTM(3, name="lstm"), name="bidirectional")(x)
    y = layers.Dense(1, activation="sigmoid", name="dense")(x)
    return keras.Model(text, y, name=name)


def save(model: keras.Model, out: Path, name: str, seed: int) -> dict:
    randomize(model, seed)
    texts = np.array(TEXTS, dtype=str).reshape(-1, 1)
    assert [t for t in texts[:, 0]] == TEXTS
    y = np.asarray(model.predict(tf.constant(texts.tolist()), verbose=0))   # predict refuses "U" arrays
    assert np.isfinite(y).all() and y.shape == (len(TEXTS), 1)
    model.save(out / f"{name}.keras")
    try:
        model.save(out / f"{name}.h5")
    except Exception as e:  # noqa: BLE001 -- recorded, not fatal
        print(f"{name}.h5: Keras cannot save it: {type(e).__name__}: {e}")
    np.savez_compressed(out / f"{name}.npz", **{f"call0/in/{model.inputs[0].name}": texts, "call0/out/0": y})
    # the saved files give the same predictions
    again = keras.saving.load_model(out / f"{name}.keras")
    assert np.array_equal(np.asarray(again.predict(tf.constant(texts.tolist()), verbose=0)), y), name
    layer = model.layers[1]
    ids = np.asarray(layer(tf.constant(texts.tolist())))
    print(f"{name}: vocabulary {layer.get_vocabulary()[:4]}... ({layer.vocabulary_size()} ids), ids {ids.shape}")
    return {"layer": layer.name, "texts": TEXTS, "vocabulary": [str(t) for t in layer.get_vocabulary()],
            "ids": ids.tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/keras_models")
    ap.add_argument("--ids", default="tests/goldens/text/models.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(15)

    record = {"generator": "tools/make_text_models.py",
              "versions": {"keras": keras.__version__, "tensorflow": tf.__version__}, "models": {}}
    tv = layers.TextVectorization(vocabulary=VOCABULARY, output_sequence_length=8, name="text_vectorization")
    record["models"]["text_sentiment_vocab"] = save(
        sentiment(tv, len(VOCABULARY) + 2, "text_sentiment_vocab"), out, "text_sentiment_vocab", 1501)

    # named "vectorize": the asset folder is named after the class, not the layer
    tv = layers.TextVectorization(max_tokens=30, ngrams=2, output_sequence_length=None, name="vectorize")
    tv.adapt(tf.constant(ADAPT_CORPUS))
    record["models"]["text_sentiment_adapted"] = save(
        sentiment(tv, tv.vocabulary_size(), "text_sentiment_adapted"), out, "text_sentiment_adapted", 1502)
    # Keras's own ids for the fixtures' texts (what the importer's tokenizer must give)
    ids_path = Path(args.ids)
    ids_path.parent.mkdir(parents=True, exist_ok=True)
    ids_path.write_text(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n", encoding="ascii")
    return 0


if __name__ == "__main__":
    sys.exit(main())
