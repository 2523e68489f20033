"""Build the Keras import test fixtures: small real Keras models with random weights (random
biases too: Keras initializes biases to zero, which would hide gate-order mistakes), saved as
`.keras` (and some as legacy `.h5`), plus an `.npz` of inputs and `model.predict` outputs.

This is the only place in the project that imports Keras. Run it from the repository root:

    KERAS_BACKEND=torch python tools/make_keras_models.py [--out tests/keras_models]

It writes, per fixture NAME:
  NAME.keras, optionally NAME.h5   the model
  NAME.npz                          `call<c>/in/<input name>` and `call<c>/out/<k>` (k-th output,
                                    in model order); stateful models have several calls with the
                                    states carried from one call to the next
and `manifest.json` describing every fixture. Two Keras 2 style `.h5` files are written by hand
(h5py) in the layout of Keras 2.0 and tf.keras 2.15, with expected outputs from Keras 3 twins
that use Keras 2's hard_sigmoid; refusal fixtures (Lambda, a custom layer) have no `.npz`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

VOCAB = 20
T = 6

# ------------------------------------------------------------------------------------------------
# Inputs: every mask pattern in one batch.


def token_batch(rng, empty_row: bool = True, t: int = T) -> np.ndarray:
    """Rows: full, right-padded, left-padded, gapped, and empty (or another gapped one)."""
    x = rng.integers(1, VOCAB, size=(5, t)).astype(np.int32)
    x[1, t // 2:] = 0                                     # right padding
    x[2, :2] = 0                                          # left padding
    x[3, [i for i in (1, 3, 4) if i < t - 1]] = 0         # gaps
    if empty_row:
        x[4, :] = 0                                       # fully masked
    else:
        x[4, sorted({0, min(3, t - 2), t - 1})] = 0       # gaps, padded at both ends
    return x


def feature_batch(rng, features: int = 3, empty_row: bool = True, t: int = T) -> np.ndarray:
    """Float sequences whose masked steps are all zeros (for Masking(0.0)), same patterns."""
    tok = token_batch(rng, empty_row, t)
    x = rng.normal(size=(5, t, features)).astype(np.float32)
    return np.where((tok != 0)[..., None], x, 0.0).astype(np.float32)


def randomize(model: keras.Model, seed: int) -> None:
    """Random weights everywhere, non-zero biases included."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        name = w.path if hasattr(w, "path") else w.name
        scale = 1.0 if "embeddings" in name else (0.5 if "bias" in name else 0.6)
        low = 0.5 if "moving_variance" in name else -scale   # a variance is positive
        w.assign(rng.uniform(low, scale, size=shape).astype("float32"))


def as_list(y) -> list[np.ndarray]:
    if isinstance(y, dict):
        return [np.asarray(y[k]) for k in sorted(y)]
    if isinstance(y, (list, tuple)):
        return [np.asarray(v) for v in y]
    return [np.asarray(y)]


def predict(model, feeds: list[np.ndarray]) -> list[np.ndarray]:
    x = feeds[0] if len(feeds) == 1 else feeds
    return as_list(model.predict(x, verbose=0, batch_size=len(feeds[0])))


# ------------------------------------------------------------------------------------------------
# The matrix.

FIXTURES: dict[str, dict] = {}


def fixture(name: str, h5: bool = False, note: str = ""):
    def deco(fn):
        FIXTURES[name] = {"build": fn, "h5": h5, "note": note or (fn.__doc__ or "").strip()}
        return fn
    return deco


def mask_of(tokens):
    return ops.not_equal(tokens, 0)


@fixture("lstm_seq_dense", h5=True)
def _(rng):
    """Float input, LSTM return_sequences, Dense on the sequence; no mask."""
    x = keras.Input((None, 3), name="features")
    h = layers.LSTM(5, return_sequences=True, name="lstm")(x)
    y = layers.Dense(2, activation="tanh", name="head")(h)
    return keras.Model(x, y, name="lstm_seq_dense"), [rng.normal(size=(4, T, 3)).astype("float32")]


@fixture("lstm_flags_state")
def _(rng):
    """LSTM without bias, go_backwards, return_sequences and return_state (3 outputs)."""
    x = keras.Input((None, 3), name="x")
    out = layers.LSTM(4, use_bias=False, go_backwards=True, return_sequences=True,
                      return_state=True, name="back")(x)
    return keras.Model(x, out, name="lstm_flags_state"), [rng.normal(size=(3, T, 3)).astype("float32")]


@fixture("gru_variants", h5=True)
def _(rng):
    """GRU reset_after=False with hard_sigmoid (Keras 3's) and softsign; GRU reset_after=True
    with relu; SimpleRNN with elu; stacked, unmasked."""
    x = keras.Input((None, 3), name="x")
    h = layers.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid", activation="softsign",
                   return_sequences=True, name="gru_before")(x)
    h = layers.GRU(4, activation="relu", return_sequences=True, name="gru_after")(h)
    y = layers.SimpleRNN(3, activation="elu", name="srnn")(h)
    return keras.Model(x, y, name="gru_variants"), [rng.normal(size=(3, T, 3)).astype("float32")]


@fixture("masking_simplernn")
def _(rng):
    """Masking layer (right/left/gapped/empty rows) -> SimpleRNN relu zero_output_for_mask ->
    SimpleRNN go_backwards with return_state."""
    x = keras.Input((None, 3), name="x")
    h = layers.Masking(0.0, name="mask")(x)
    h = layers.SimpleRNN(4, activation="relu", return_sequences=True, zero_output_for_mask=True,
                         name="s1")(h)
    out = layers.SimpleRNN(3, go_backwards=True, return_sequences=True, return_state=True, name="s2")(h)
    return keras.Model(x, out, name="masking_simplernn"), [feature_batch(rng)]


@fixture("masking_dense_lstm_gru", h5=True)
def _(rng):
    """Masking -> Dense (keeps the mask) -> LSTM seq -> GRU last, non-zero mask_value."""
    x = keras.Input((None, 3), name="x")
    feats = feature_batch(rng)
    feats = np.where(np.all(feats == 0.0, axis=-1, keepdims=True), -1.0, feats).astype("float32")
    h = layers.Masking(-1.0, name="mask")(x)
    h = layers.Dense(4, activation="relu", name="proj")(h)
    h = layers.LSTM(4, return_sequences=True, name="lstm")(h)
    y = layers.GRU(3, name="gru")(h)
    return keras.Model(x, y, name="masking_dense_lstm_gru"), [feats]


def _bidi(rng, mode, cell, return_sequences, return_state, name, h5=False):
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = layers.Embedding(VOCAB, 4, mask_zero=True, name="emb")(tok)
    rnn = {"LSTM": layers.LSTM, "GRU": layers.GRU, "SimpleRNN": layers.SimpleRNN}[cell]
    out = layers.Bidirectional(rnn(3, return_sequences=return_sequences, return_state=return_state),
                               merge_mode=mode, name="bidi")(e)
    return keras.Model(tok, out, name=name), [token_batch(rng)]


@fixture("bidi_lstm_concat_seq", h5=True)
def _(rng):
    """Embedding mask_zero -> Bidirectional(LSTM) concat, sequences, all mask patterns."""
    return _bidi(rng, "concat", "LSTM", True, False, "bidi_lstm_concat_seq")


@fixture("bidi_gru_sum_last")
def _(rng):
    """Bidirectional(GRU) sum, last output."""
    return _bidi(rng, "sum", "GRU", False, False, "bidi_gru_sum_last")


@fixture("bidi_simplernn_ave_seq")
def _(rng):
    """Bidirectional(SimpleRNN) ave, sequences."""
    return _bidi(rng, "ave", "SimpleRNN", True, False, "bidi_simplernn_ave_seq")


@fixture("bidi_lstm_mul_last_state", h5=True)
def _(rng):
    """Bidirectional(LSTM) mul, last output and the four states."""
    return _bidi(rng, "mul", "LSTM", False, True, "bidi_lstm_mul_last_state")


@fixture("bidi_gru_none_seq_state")
def _(rng):
    """Bidirectional(GRU) merge_mode None (two sequences) with states."""
    return _bidi(rng, None, "GRU", True, True, "bidi_gru_none_seq_state")


@fixture("encdec_explicit_mask", h5=True)
def _(rng):
    """Encoder-decoder: Embedding mask -> LSTM states -> decoder LSTM with initial_state and
    mask passed explicitly -> TimeDistributed(Dense softmax). Two inputs."""
    enc_in = keras.Input((None,), dtype="int32", name="enc_tokens")
    dec_in = keras.Input((None,), dtype="int32", name="dec_tokens")
    ee = layers.Embedding(VOCAB, 4, mask_zero=True, name="enc_emb")(enc_in)
    _, h, c = layers.LSTM(5, return_state=True, name="encoder")(ee)
    de = layers.Embedding(VOCAB, 4, mask_zero=True, name="dec_emb")(dec_in)
    d = layers.LSTM(5, return_sequences=True, name="decoder")(de, initial_state=[h, c],
                                                              mask=mask_of(dec_in))
    y = layers.TimeDistributed(layers.Dense(VOCAB, activation="softmax"), name="proj")(d)
    return keras.Model([enc_in, dec_in], y, name="encdec_explicit_mask"), \
        [token_batch(rng), token_batch(rng, empty_row=False, t=5)]


@fixture("encdec_decoder_unmasked")
def _(rng):
    """Encoder-decoder written the usual way: the decoder LSTM gets initial_state, so Keras 3
    does not pass it the decoder Embedding's mask (it runs over the padding)."""
    enc_in = keras.Input((None,), dtype="int32", name="enc_tokens")
    dec_in = keras.Input((None,), dtype="int32", name="dec_tokens")
    ee = layers.Embedding(VOCAB, 4, mask_zero=True, name="enc_emb")(enc_in)
    _, h = layers.GRU(5, return_state=True, name="encoder")(ee)
    de = layers.Embedding(VOCAB, 4, mask_zero=True, name="dec_emb")(dec_in)
    de = layers.Dropout(0.2, name="dec_drop")(de)
    d = layers.GRU(5, return_sequences=True, name="decoder")(de, initial_state=h)
    y = layers.Dense(VOCAB, name="logits")(d)
    return keras.Model([enc_in, dec_in], [y, h], name="encdec_decoder_unmasked"), \
        [token_batch(rng), token_batch(rng, empty_row=False, t=5)]


@fixture("initial_state_none")
def _(rng):
    """A call with initial_state=None: the saved config records no mask for the GRU, yet Keras
    fills it in at run time (the call has one tensor argument), so the GRU is masked."""
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = layers.Embedding(VOCAB, 4, mask_zero=True, name="emb")(tok)
    h = layers.LSTM(4, return_sequences=True, name="lstm")(e)
    h = layers.GRU(4, return_sequences=True, name="gru")(h, initial_state=None)
    y = layers.Bidirectional(layers.SimpleRNN(3), merge_mode="concat", name="bidi")(h)
    return keras.Model(tok, y, name="initial_state_none"), [token_batch(rng)]


@fixture("mask_dropped_after_rnn")
def _(rng):
    """An LSTM called with initial_state tensors runs unmasked (Keras 3), on the output of a
    masked LSTM; the mask still reaches the Bidirectional after it."""
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = layers.Embedding(VOCAB, 4, mask_zero=True, name="emb")(tok)
    seq, h, c = layers.LSTM(4, return_sequences=True, return_state=True, name="lstm")(e)
    seq = layers.LSTM(4, return_sequences=True, name="lstm_unmasked")(seq, initial_state=[h, c])
    y = layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), merge_mode="mul", name="bidi")(seq)
    return keras.Model(tok, y, name="mask_dropped_after_rnn"), [token_batch(rng)]


@fixture("bidi_mask_dropped")
def _(rng):
    """Bidirectional(GRU) called with initial_state tensors and no mask=: Keras 3 runs both
    directions unmasked over the Masking layer's padding."""
    x = keras.Input((None, 3), name="x")
    ctx = keras.Input((2,), name="ctx")
    h = layers.Masking(name="mask")(x)
    hf = layers.Dense(3, activation="tanh", name="h_fwd")(ctx)
    hb = layers.Dense(3, activation="tanh", name="h_bwd")(ctx)
    y = layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="concat", name="bidi")(
        h, initial_state=[hf, hb])
    y = layers.GlobalAveragePooling1D(name="pool")(y)
    return keras.Model([x, ctx], y, name="bidi_mask_dropped"), \
        [feature_batch(rng, empty_row=False), rng.normal(size=(5, 2)).astype("float32")]


@fixture("scan_cells")
def _(rng):
    """Cell activations with no native ONNX RNN form (rnncompile's Scan lowering): SimpleRNN
    gelu, GRU selu / softplus, LSTM swish, behind a Masking mask."""
    x = keras.Input((None, 3), name="x")
    h = layers.Masking(name="mask")(x)
    h = layers.SimpleRNN(4, activation="gelu", return_sequences=True, name="srnn_gelu")(h)
    h = layers.GRU(4, activation="selu", recurrent_activation="softplus", return_sequences=True,
                   name="gru_selu")(h)
    y = layers.LSTM(3, activation="swish", name="lstm_swish")(h)
    return keras.Model(x, y, name="scan_cells"), [feature_batch(rng)]


@fixture("bidi_encdec_initial_state")
def _(rng):
    """Bidirectional encoder states -> Bidirectional decoder initial_state (forward then
    backward), decoder mask passed explicitly."""
    enc_in = keras.Input((None,), dtype="int32", name="src")
    dec_in = keras.Input((None,), dtype="int32", name="tgt")
    emb = layers.Embedding(VOCAB, 4, mask_zero=True, name="shared_emb")
    ee = emb(enc_in)
    _, hf, cf, hb, cb = layers.Bidirectional(layers.LSTM(3, return_state=True), name="enc")(ee)
    de = emb(dec_in)  # the same Embedding layer, called twice
    d = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="sum", name="dec")(
        de, initial_state=[hf, cf, hb, cb], mask=mask_of(dec_in))
    y = layers.Dense(2, name="out")(d)
    return keras.Model([enc_in, dec_in], y, name="bidi_encdec_initial_state"), \
        [token_batch(rng, empty_row=False), token_batch(rng, t=4)]


@fixture("multi_io")
def _(rng):
    """Two inputs (float features first, then tokens) and outputs in a non-trivial order: a
    Dense state feeds a GRU's initial_state over masked tokens."""
    feats = keras.Input((6,), name="context")
    tok = keras.Input((None,), dtype="int32", name="tokens")
    h0 = layers.Dense(4, activation="tanh", name="init_h")(feats)
    e = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(tok)
    seq, last = layers.GRU(4, return_sequences=True, return_state=True, name="gru")(
        e, initial_state=[h0], mask=mask_of(tok))
    pooled = layers.GlobalAveragePooling1D(name="pool")(seq)
    score = layers.Dense(1, activation="sigmoid", name="score")(pooled)
    return keras.Model([feats, tok], [score, last, h0], name="multi_io"), \
        [rng.normal(size=(5, 6)).astype("float32"), token_batch(rng, empty_row=False)]


@fixture("sequential_pooling", h5=True)
def _(rng):
    """Sequential: Embedding mask -> Dropout -> GRU seq -> Dense relu (3-D) -> Activation ->
    GlobalAveragePooling1D (masked mean) -> Dense softmax."""
    m = keras.Sequential([
        keras.Input((None,), dtype="int32", name="ids"),
        layers.Embedding(VOCAB, 4, mask_zero=True),
        layers.Dropout(0.3),
        layers.GRU(5, return_sequences=True),
        layers.Dense(4, activation="relu"),
        layers.Activation("tanh"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(3, activation="softmax"),
    ], name="sequential_pooling")
    return m, [token_batch(rng, empty_row=False)]


@fixture("sequential_maxpool_masking")
def _(rng):
    """Sequential: Masking -> LSTM seq -> GlobalMaxPooling1D (Keras 3 ignores the mask there)
    -> Dense."""
    m = keras.Sequential([
        keras.Input((None, 3), name="x"),
        layers.Masking(),
        layers.LSTM(4, return_sequences=True),
        layers.GlobalMaxPooling1D(),
        layers.Dense(2),
    ], name="sequential_maxpool_masking")
    return m, [feature_batch(rng)]


@fixture("rnn_cells")
def _(rng):
    """Generic RNN layers over LSTMCell and GRUCell, masked by an Embedding."""
    tok = keras.Input((None,), dtype="int32", name="tokens")
    e = layers.Embedding(VOCAB, 4, mask_zero=True, name="emb")(tok)
    h = layers.RNN(layers.LSTMCell(4), return_sequences=True, name="rnn_lstm")(e)
    y = layers.RNN(layers.GRUCell(3, reset_after=False), name="rnn_gru")(h)
    return keras.Model(tok, y, name="rnn_cells"), [token_batch(rng)]


@fixture("activations")
def _(rng):
    """Dense and activation layers: gelu, swish, selu, softplus, ReLU(max 6), LeakyReLU(0.2), ELU,
    Softmax on a sequence; LSTM with relu / hard_sigmoid."""
    x = keras.Input((None, 3), name="x")
    h = layers.Dense(5, activation="gelu", name="d_gelu")(x)
    h = layers.Dense(5, activation="swish", name="d_swish")(h)
    h = layers.Dense(5, activation="selu", name="d_selu")(h)
    h = layers.Dense(5, activation="softplus", name="d_softplus")(h)
    h = layers.ReLU(max_value=6.0, name="relu6")(h)
    h = layers.LeakyReLU(negative_slope=0.2, name="leaky")(h)
    h = layers.ELU(name="elu")(h)
    h = layers.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True,
                    name="lstm")(h)
    y = layers.Softmax(name="softmax")(h)
    return keras.Model(x, y, name="activations"), [rng.normal(size=(3, T, 3)).astype("float32") * 2]


@fixture("stateful_lstm", h5=True)
def _(rng):
    """Stateful LSTM (fixed batch 2): the state carries from one predict call to the next."""
    x = keras.Input(batch_shape=(2, None, 3), name="x")
    h = layers.LSTM(4, stateful=True, return_sequences=True, name="lstm")(x)
    y = layers.Dense(2, name="out")(h)
    return keras.Model(x, y, name="stateful_lstm"), \
        [[rng.normal(size=(2, 4, 3)).astype("float32")], [rng.normal(size=(2, 5, 3)).astype("float32")]]


# ------------------------------------------------------------------------------------------------
# Keras 2 style .h5 files, written by hand in the Keras 2 layout.

@keras.saving.register_keras_serializable(package="fixture")
@fixture("breadth_merges_norm", h5=True)
def _(rng):
    """Issue 14: two masked Embeddings merged (Concatenate, Multiply, Maximum, Add, time-axis
    Concatenate), BatchNormalization and LayerNormalization around LSTM/GRU/SimpleRNN."""
    a = keras.Input((None,), dtype="int32", name="a")
    b = keras.Input((None,), dtype="int32", name="b")
    ea = layers.Embedding(VOCAB, 3, mask_zero=True, name="ea")(a)
    eb = layers.Embedding(VOCAB, 3, mask_zero=True, name="eb")(b)
    cat = layers.Concatenate(name="cat")([ea, eb])
    h = layers.LSTM(4, return_sequences=True, name="lstm")(layers.BatchNormalization(name="bn")(cat))
    ln = layers.LayerNormalization(name="ln")(h)
    s = layers.Add(name="add")([layers.Multiply(name="mul")([ea, eb]), layers.Maximum(name="max")([ea, eb])])
    g = layers.GRU(3, name="gru")(s)
    t = layers.SimpleRNN(2, name="srnn")(layers.Concatenate(axis=1, name="tcat")([ea, eb]))
    tok = token_batch(rng)
    return keras.Model([a, b], [ln, g, t], name="breadth_merges_norm"), [tok, tok[::-1].copy()]


@fixture("breadth_shapes", h5=True)
def _(rng):
    """Issue 14: LSTM encoder -> RepeatVector -> GRU -> Permute -> Flatten -> Reshape -> Dense."""
    a = keras.Input((None,), dtype="int32", name="tokens")
    h = layers.LSTM(4, name="enc")(layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(a))
    h = layers.GRU(3, return_sequences=True, name="dec")(layers.RepeatVector(5, name="rep")(h))
    h = layers.Flatten(name="flat")(layers.Permute((2, 1), name="perm")(h))
    y = layers.Dense(2, name="head")(layers.Reshape((3, 5), name="resh")(h))
    return keras.Model(a, y, name="breadth_shapes"), [token_batch(rng)]


@fixture("breadth_attention", h5=True)
def _(rng):
    """Issue 14: masked encoder/decoder GRUs, Attention (concat scores, scale, causal, scores
    returned) and AdditiveAttention, Conv1D + MaxPooling1D front end, LeakyReLU(0.1)."""
    a = keras.Input((None,), dtype="int32", name="enc_tokens")
    b = keras.Input((None,), dtype="int32", name="dec_tokens")
    enc = layers.GRU(4, return_sequences=True, name="enc")(layers.Embedding(VOCAB, 3, mask_zero=True, name="ea")(a))
    dec = layers.GRU(4, return_sequences=True, name="dec")(layers.Embedding(VOCAB, 3, mask_zero=True, name="eb")(b))
    att, scores = layers.Attention(use_scale=True, score_mode="concat", name="att")(
        [dec, enc], use_causal_mask=True, return_attention_scores=True)
    add = layers.AdditiveAttention(name="add_att")([dec, enc])
    h = layers.LSTM(3, name="post")(layers.Concatenate(name="cat")([att, add]))
    c = layers.Conv1D(3, 3, padding="same", name="conv")(enc)
    c = layers.LeakyReLU(negative_slope=0.1, name="leaky")(layers.MaxPooling1D(2, name="pool")(c))
    tok = token_batch(rng)
    return keras.Model([a, b], [h, scores, c], name="breadth_attention"), [tok, tok[[1, 2, 3, 4, 0]].copy()]


@fixture("breadth_onehot", h5=True)
def _(rng):
    """Issue 14: CategoryEncoding(one_hot) on (batch, time) token ids, then an LSTM and a Dense;
    keras.ops.one_hot (an op node of the functional graph) on (batch, time, 1) ids, then a GRU."""
    a = keras.Input((None,), dtype="int32", name="tokens")
    h = layers.CategoryEncoding(VOCAB, output_mode="one_hot", name="onehot")(a)
    y = layers.Dense(2, name="head")(layers.LSTM(3, name="lstm")(h))
    b = keras.Input((None, 1), dtype="int32", name="ids")
    o = keras.layers.Reshape((-1, 7), name="resh")(keras.ops.one_hot(b, 7))
    g = layers.GRU(3, return_sequences=True, name="gru")(o)
    tok = token_batch(rng)
    return keras.Model([a, b], [y, g], name="breadth_onehot"), [tok, (tok[::-1] % 7)[..., None].copy()]


@fixture("breadth_td_crnn", h5=True)
def _(rng):
    """Issue 14: TimeDistributed Conv2D -> MaxPooling2D -> Flatten over a sequence of frames,
    then an LSTM and TimeDistributed(Dense)."""
    img = keras.Input((5, 8, 6, 1), name="frames")
    h = layers.TimeDistributed(layers.Conv2D(3, (3, 3), padding="same", activation="relu"), name="conv")(img)
    h = layers.TimeDistributed(layers.MaxPooling2D((2, 2)), name="pool")(h)
    h = layers.TimeDistributed(layers.Flatten(), name="flat")(h)
    y = layers.TimeDistributed(layers.Dense(2), name="head")(layers.LSTM(3, return_sequences=True, name="lstm")(h))
    return keras.Model(img, y, name="breadth_td_crnn"), [rng.normal(size=(3, 5, 8, 6, 1)).astype("float32")]


@fixture("breadth_bool_mask", h5=True)
def _(rng):
    """Issue 14: a bool model input passed as mask= to an LSTM (its output sequence carries that
    mask on to a GRU), and to a GRU whose Embedding(mask_zero) mask it replaces."""
    x = keras.Input((None, 3), name="x")
    m = keras.Input((None,), dtype="bool", name="valid")
    t = keras.Input((None,), dtype="int32", name="tokens")
    h = layers.LSTM(4, return_sequences=True, name="lstm")(x, mask=m)
    g = layers.GRU(3, name="gru")(h)
    e = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(t)
    g2 = layers.GRU(2, return_sequences=True, name="gru2")(e, mask=m)
    tok = token_batch(rng)
    valid = token_batch(rng)[[2, 3, 4, 0, 1]] != 0
    return (keras.Model([x, m, t], [h, g, g2], name="breadth_bool_mask"),
            [rng.normal(size=(5, tok.shape[1], 3)).astype("float32"), valid, tok])


@fixture("breadth_crnn", h5=True)
def _(rng):
    """Issue 14: CRNN front end, Conv2D -> MaxPooling2D -> AveragePooling2D -> Permute -> Reshape
    -> Bidirectional GRU -> Dense."""
    img = keras.Input((8, 10, 1), name="image")
    h = layers.Conv2D(3, (3, 3), padding="same", activation="relu", name="conv")(img)
    h = layers.MaxPooling2D((2, 2), name="pool")(h)
    h = layers.AveragePooling2D((3, 3), strides=1, padding="same", name="avg")(h)
    h = layers.Reshape((5, 12), name="resh")(layers.Permute((2, 1, 3), name="perm")(h))
    y = layers.Dense(2, name="head")(layers.Bidirectional(layers.GRU(3), name="bigru")(h))
    return keras.Model(img, y, name="breadth_crnn"), [rng.normal(size=(3, 8, 10, 1)).astype("float32")]


@fixture("explicit_mask_compare", h5=True)
def _(rng):
    """Explicit masks computed by Keras ops from other model inputs: ops.not_equal(ids, 0) on an
    LSTM over floats (its output sequence carries that mask on to a GRU), ops.greater(w, 0.0) and
    ops.less(0.5, w) (operands swapped) on a float [batch, time] input, ops.cast(ids, "bool")
    on a SimpleRNN, ops.greater_equal(ids, 1) on a Bidirectional; every padding pattern."""
    x = keras.Input((None, 3), name="x")
    ids = keras.Input((None,), dtype="int32", name="ids")
    w = keras.Input((None,), name="w")
    h = layers.LSTM(4, return_sequences=True, name="lstm")(x, mask=ops.not_equal(ids, 0))
    g = layers.GRU(3, name="gru_after")(h)
    g2 = layers.GRU(2, return_sequences=True, name="gru_w")(x, mask=ops.greater(w, 0.0))
    g3 = layers.GRU(2, name="gru_w_swapped")(x, mask=ops.less(0.5, w))
    s = layers.SimpleRNN(3, return_sequences=True, name="srnn")(x, mask=ops.cast(ids, "bool"))
    b = layers.Bidirectional(layers.GRU(2), name="bigru")(x, mask=ops.greater_equal(ids, 1))
    tok = token_batch(rng)
    valid = token_batch(rng)[[3, 4, 0, 1, 2]] != 0
    wv = np.where(valid, rng.uniform(0.1, 1.0, valid.shape), -rng.uniform(0.0, 1.0, valid.shape))
    return (keras.Model([x, ids, w], [h, g, g2, g3, s, b], name="explicit_mask_compare"),
            [rng.normal(size=(5, tok.shape[1], 3)).astype("float32"), tok, wv.astype("float32")])


@fixture("explicit_mask_logical", h5=True)
def _(rng):
    """Explicit masks combined by ops.logical_and / logical_or / logical_not / logical_xor of bool
    model inputs and a comparison; every padding pattern in each operand."""
    x = keras.Input((None, 3), name="x")
    a = keras.Input((None,), dtype="bool", name="a")
    b = keras.Input((None,), dtype="bool", name="b")
    t = keras.Input((None,), dtype="int32", name="t")
    g = layers.GRU(3, return_sequences=True, name="gru_and")(x, mask=ops.logical_and(a, b))
    m = ops.logical_or(ops.logical_not(a), ops.not_equal(t, 0))
    h = layers.LSTM(2, return_sequences=True, name="lstm_or_not")(x, mask=m)
    k = layers.GRU(2, name="gru_xor")(x, mask=ops.logical_xor(a, b))
    av = token_batch(rng) != 0
    bv = token_batch(rng)[[1, 2, 3, 4, 0]] != 0
    return (keras.Model([x, a, b, t], [g, h, k], name="explicit_mask_logical"),
            [rng.normal(size=(5, av.shape[1], 3)).astype("float32"), av, bv, token_batch(rng)])


@fixture("explicit_mask_override", h5=True)
def _(rng):
    """An explicit computed mask wins over the mask the input carries: Embedding(mask_zero) of
    `t` with mask=ops.not_equal(t2, 0) (the LSTM's output then carries t2's mask to a GRU); a
    Masking-style ops.any(ops.not_equal(x, 0), axis=-1) and an ops.all(...) on an unmasked float
    input; a mask computed from a layer's output (ops.any(ops.greater(Dense(x), 0), -1))."""
    t = keras.Input((None,), dtype="int32", name="t")
    t2 = keras.Input((None,), dtype="int32", name="t2")
    x = keras.Input((None, 3), name="x")
    e = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(t)
    h = layers.LSTM(3, return_sequences=True, name="lstm")(e, mask=ops.not_equal(t2, 0))
    g = layers.GRU(2, return_sequences=True, name="gru_after")(h)
    a = layers.GRU(2, return_sequences=True, name="gru_any")(x, mask=ops.any(ops.not_equal(x, 0.0), axis=-1))
    al = layers.GRU(2, name="gru_all")(x, mask=ops.all(ops.not_equal(x, 0.0), axis=-1))
    d = layers.Dense(2, name="dense")(x)
    dl = layers.LSTM(2, return_sequences=True, name="lstm_dense_mask")(
        x, mask=ops.any(ops.greater(d, 0.0), axis=-1))
    feats = feature_batch(rng)
    feats[0, 2, 1] = 0.0     # one zero feature on a valid step: any() keeps it, all() drops it
    return (keras.Model([t, t2, x], [h, g, a, al, dl], name="explicit_mask_override"),
            [token_batch(rng), token_batch(rng)[[4, 3, 2, 1, 0]], feats])


@fixture("explicit_mask_attention", h5=True)
def _(rng):
    """Computed explicit masks given to Attention (mask=[query_mask, value_mask]) and to
    GlobalAveragePooling1D; no fully masked row (Keras pools it to NaN)."""
    q = keras.Input((None, 3), name="q")
    v = keras.Input((None, 3), name="v")
    tq = keras.Input((None,), dtype="int32", name="tq")
    tv = keras.Input((None,), dtype="int32", name="tv")
    att = layers.Attention(name="att")([q, v], mask=[ops.not_equal(tq, 0), ops.not_equal(tv, 0)])
    seq = layers.GRU(2, return_sequences=True, name="gru_after")(att)
    pool = layers.GlobalAveragePooling1D(name="gap")(v, mask=ops.not_equal(tv, 0))
    tqv, tvv = token_batch(rng, empty_row=False), token_batch(rng, empty_row=False, t=T + 2)
    return (keras.Model([q, v, tq, tv], [att, seq, pool], name="explicit_mask_attention"),
            [rng.normal(size=(5, T, 3)).astype("float32"), rng.normal(size=(5, T + 2, 3)).astype("float32"),
             tqv, tvv])


def keras2_hard_sigmoid(x):
    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


def _k2_init(cls, **cfg):
    return {"class_name": cls, "config": cfg}


def _write_keras2_h5(path: Path, model_config: dict, layer_weights: list[tuple[str, list[tuple[str, np.ndarray]]]],
                     version: str) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version.encode()
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(model_config).encode()
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = version.encode()
        mw.attrs["backend"] = b"tensorflow"
        mw.attrs["layer_names"] = np.array([n.encode() for n, _ in layer_weights])
        for lname, ws in layer_weights:
            g = mw.create_group(lname)
            g.attrs["weight_names"] = np.array([n.encode() for n, _ in ws])
            for n, a in ws:
                g.create_dataset(n, data=np.asarray(a, np.float32))


def keras2_sequential_gru(out: Path, rng) -> dict:
    """Keras 2.0.8 Sequential (config is a list of layers, batch_input_shape on the Embedding,
    float32 input dtype, no reset_after field: the old GRU, reset before the matmul),
    recurrent_activation hard_sigmoid with Keras 2's definition, Dense hard_sigmoid."""
    twin = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        layers.Embedding(VOCAB, 4, mask_zero=True),
        layers.GRU(4, reset_after=False, recurrent_activation=keras2_hard_sigmoid),
        layers.Dense(2, activation=keras2_hard_sigmoid),
    ])
    randomize(twin, 2008)
    emb, gru, dense = twin.layers
    glorot = _k2_init("VarianceScaling", scale=1.0, mode="fan_avg", distribution="uniform", seed=None)
    config = {"class_name": "Sequential", "config": [
        _k2_init("Embedding", name="embedding_1", trainable=True, batch_input_shape=[None, None],
                 dtype="float32", input_dim=VOCAB, output_dim=4,
                 embeddings_initializer=_k2_init("RandomUniform", minval=-0.05, maxval=0.05, seed=None),
                 embeddings_regularizer=None, activity_regularizer=None, embeddings_constraint=None,
                 mask_zero=True, input_length=None),
        _k2_init("GRU", name="gru_1", trainable=True, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, units=4, activation="tanh",
                 recurrent_activation="hard_sigmoid", use_bias=True, kernel_initializer=glorot,
                 recurrent_initializer=_k2_init("Orthogonal", gain=1.0, seed=None),
                 bias_initializer=_k2_init("Zeros"), kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, implementation=1),
        _k2_init("Dense", name="dense_1", trainable=True, units=2, activation="hard_sigmoid",
                 use_bias=True, kernel_initializer=glorot, bias_initializer=_k2_init("Zeros"),
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None),
    ]}
    g = [np.asarray(v) for v in gru.weights]
    d = [np.asarray(v) for v in dense.weights]
    weights = [
        ("embedding_1", [("embedding_1/embeddings:0", np.asarray(emb.weights[0]))]),
        ("gru_1", [("gru_1/kernel:0", g[0]), ("gru_1/recurrent_kernel:0", g[1]), ("gru_1/bias:0", g[2])]),
        ("dense_1", [("dense_1/kernel:0", d[0]), ("dense_1/bias:0", d[1])]),
    ]
    name = "keras2_sequential_gru"
    _write_keras2_h5(out / f"{name}.h5", config, weights, "2.0.8")
    tokens = token_batch(rng, empty_row=False)
    save_io(out / f"{name}.npz", [([tokens], predict(twin, [tokens]))])
    return {"files": [f"{name}.h5"], "calls": 1, "note": keras2_sequential_gru.__doc__.strip()}


def keras2_functional_encdec(out: Path, rng) -> dict:
    """tf.keras 2.15 Functional (list-form inbound nodes; the decoder's initial states are extra
    inbound tensors and, as in Keras 2, it uses its Embedding's mask): Embedding mask ->
    Bidirectional(GRU reset_after, hard_sigmoid) states -> Bidirectional decoder -> Dense."""
    enc_in = keras.Input((None,), dtype="int32", name="enc_tokens")
    dec_in = keras.Input((None,), dtype="int32", name="dec_tokens")
    ee = layers.Embedding(VOCAB, 4, mask_zero=True, name="enc_emb")(enc_in)
    _, hf, hb = layers.Bidirectional(layers.GRU(3, return_state=True, recurrent_activation=keras2_hard_sigmoid),
                                     name="encoder")(ee)
    de = layers.Embedding(VOCAB, 4, mask_zero=True, name="dec_emb")(dec_in)
    d = layers.Bidirectional(layers.GRU(3, return_sequences=True, recurrent_activation=keras2_hard_sigmoid),
                             name="decoder")(de, initial_state=[hf, hb], mask=mask_of(dec_in))
    y = layers.Dense(VOCAB, activation="softmax", name="proj")(d)
    twin = keras.Model([enc_in, dec_in], y)
    randomize(twin, 2015)

    def init(cls, **cfg):
        return {"module": "keras.initializers", "class_name": cls, "config": cfg, "registered_name": None}

    def gru_cfg(name, return_sequences, return_state, go_backwards):
        return {"module": "keras.layers", "class_name": "GRU", "registered_name": None, "config": {
            "name": name, "trainable": True, "dtype": "float32", "return_sequences": return_sequences,
            "return_state": return_state, "go_backwards": go_backwards, "stateful": False,
            "unroll": False, "time_major": False, "units": 3, "activation": "tanh",
            "recurrent_activation": "hard_sigmoid", "use_bias": True,
            "kernel_initializer": init("GlorotUniform", seed=None),
            "recurrent_initializer": init("Orthogonal", gain=1.0, seed=None),
            "bias_initializer": init("Zeros"), "kernel_regularizer": None, "recurrent_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
            "recurrent_dropout": 0.0, "implementation": 2, "reset_after": True}}

    def emb_cfg(name):
        return {"name": name, "trainable": True, "dtype": "float32", "batch_input_shape": [None, None],
                "input_dim": VOCAB, "output_dim": 4,
                "embeddings_initializer": init("RandomUniform", minval=-0.05, maxval=0.05, seed=None),
                "embeddings_regularizer": None, "activity_regularizer": None,
                "embeddings_constraint": None, "mask_zero": True, "input_length": None}

    def layer(cls, name, cfg, inbound):
        return {"module": "keras.layers", "class_name": cls, "config": cfg, "registered_name": None,
                "name": name, "inbound_nodes": inbound}

    def inp(name):
        return layer("InputLayer", name, {"batch_input_shape": [None, None], "dtype": "int32",
                                          "sparse": False, "ragged": False, "name": name}, [])

    config = {"class_name": "Functional", "config": {"name": "model", "trainable": True, "layers": [
        inp("enc_tokens"),
        inp("dec_tokens"),
        layer("Embedding", "enc_emb", emb_cfg("enc_emb"), [[["enc_tokens", 0, 0, {}]]]),
        layer("Embedding", "dec_emb", emb_cfg("dec_emb"), [[["dec_tokens", 0, 0, {}]]]),
        layer("Bidirectional", "encoder", {"name": "encoder", "trainable": True, "dtype": "float32",
                                           "layer": gru_cfg("gru", False, True, False),
                                           "merge_mode": "concat"},
              [[["enc_emb", 0, 0, {}]]]),
        layer("Bidirectional", "decoder", {"name": "decoder", "trainable": True, "dtype": "float32",
                                           "layer": gru_cfg("gru_1", True, False, False),
                                           "merge_mode": "concat"},
              [[["dec_emb", 0, 0, {}], ["encoder", 0, 1, {}], ["encoder", 0, 2, {}]]]),
        layer("Dense", "proj", {"name": "proj", "trainable": True, "dtype": "float32", "units": VOCAB,
                                "activation": "softmax", "use_bias": True,
                                "kernel_initializer": init("GlorotUniform", seed=None),
                                "bias_initializer": init("Zeros"), "kernel_regularizer": None,
                                "bias_regularizer": None, "activity_regularizer": None,
                                "kernel_constraint": None, "bias_constraint": None},
              [[["decoder", 0, 0, {}]]]),
    ], "input_layers": [["enc_tokens", 0, 0], ["dec_tokens", 0, 0]],
        "output_layers": [["proj", 0, 0]]}, "keras_version": "2.15.0", "backend": "tensorflow"}

    def bidi_weights(lname, layer_obj, cell):
        ws = []
        for d, sub in (("forward", layer_obj.forward_layer), ("backward", layer_obj.backward_layer)):
            k, r, b = [np.asarray(v) for v in sub.weights]
            ws += [(f"{lname}/{d}_gru/{cell}/kernel:0", k), (f"{lname}/{d}_gru/{cell}/recurrent_kernel:0", r),
                   (f"{lname}/{d}_gru/{cell}/bias:0", b)]
        return ws
    L = {l.name: l for l in twin.layers}
    weights = [
        ("enc_tokens", []), ("dec_tokens", []),
        ("enc_emb", [("enc_emb/embeddings:0", np.asarray(L["enc_emb"].weights[0]))]),
        ("dec_emb", [("dec_emb/embeddings:0", np.asarray(L["dec_emb"].weights[0]))]),
        ("encoder", bidi_weights("encoder", L["encoder"], "gru_cell")),
        ("decoder", bidi_weights("decoder", L["decoder"], "gru_cell_1")),
        ("proj", [("proj/kernel:0", np.asarray(L["proj"].weights[0])),
                  ("proj/bias:0", np.asarray(L["proj"].weights[1]))]),
    ]
    name = "keras2_functional_encdec"
    _write_keras2_h5(out / f"{name}.h5", config, weights, "2.15.0")
    feeds = [token_batch(rng, empty_row=False), token_batch(rng, empty_row=False, t=5)]
    save_io(out / f"{name}.npz", [(feeds, predict(twin, feeds))])
    return {"files": [f"{name}.h5"], "calls": 1, "note": keras2_functional_encdec.__doc__.strip()}


# ------------------------------------------------------------------------------------------------
# Models that must be refused (no expected outputs).

@keras.saving.register_keras_serializable(package="fixture")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kw):
        super().__init__(**kw)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def refusal_models(out: Path) -> dict:
    made = {}
    x = keras.Input((None, 3), name="x")
    h = layers.Lambda(lambda t: t * 2.0, name="double")(x)
    m = keras.Model(x, layers.LSTM(3, name="lstm")(h), name="lambda_layer")
    m.save(out / "refuse_lambda.keras")
    made["refuse_lambda"] = {"files": ["refuse_lambda.keras"], "calls": 0,
                             "refused": "double", "note": "Lambda layer: code in the config"}
    x = keras.Input((None, 3), name="x")
    h = Scale(name="scale")(x)
    m = keras.Model(x, layers.GRU(3, name="gru")(h), name="custom_layer")
    m.save(out / "refuse_custom.keras")
    made["refuse_custom"] = {"files": ["refuse_custom.keras"], "calls": 0,
                             "refused": "scale", "note": "a registered custom layer class"}
    inner = keras.Sequential([keras.Input((None, 3)), layers.LSTM(3, return_sequences=True)], name="inner")
    x = keras.Input((None, 3), name="x")
    keras.Model(x, layers.Dense(2, name="d")(inner(x)), name="nested").save(out / "refuse_nested.keras")
    made["refuse_nested"] = {"files": ["refuse_nested.keras"], "calls": 0,
                             "refused": "inner", "note": "a model used as a layer"}
    x = keras.Input(batch_shape=(2, None, 3), name="x")
    st = layers.LSTM(3, stateful=True, return_sequences=True, name="st")
    keras.Model(x, st(st(x)), name="reuse_stateful").save(out / "refuse_reused_stateful.keras")
    made["refuse_reused_stateful"] = {"files": ["refuse_reused_stateful.keras"], "calls": 0,
                                      "refused": "st", "note": "a stateful layer called twice"}
    return made


# ------------------------------------------------------------------------------------------------


def save_io(path: Path, calls: list[tuple[list[np.ndarray], list[np.ndarray]]], input_names=None) -> None:
    arrays = {}
    for c, (ins, outs) in enumerate(calls):
        for name, a in zip(input_names or [f"{i}" for i in range(len(ins))], ins):
            arrays[f"call{c}/in/{name}"] = a
        for k, a in enumerate(outs):
            arrays[f"call{c}/out/{k}"] = np.asarray(a, np.float32)
    np.savez_compressed(path, **arrays)


def input_names(model) -> list[str]:
    cfg = model.get_config()
    if isinstance(model, keras.Sequential):
        return [cfg["layers"][0]["config"]["name"]]
    spec = cfg["input_layers"]
    spec = [spec] if isinstance(spec[0], str) else spec
    return [s[0] for s in spec]


def build_all(out: Path, only: list[str] | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for i, (name, fx) in enumerate(FIXTURES.items()):
        if only and name not in only:
            continue
        rng = np.random.default_rng(1000 + i)
        keras.utils.clear_session()
        model, feeds = fx["build"](rng)
        randomize(model, 7 + i)
        stateful = isinstance(feeds[0], list)
        calls = feeds if stateful else [feeds]
        if stateful:
            for layer in model.layers:
                if hasattr(layer, "reset_state") and getattr(layer, "stateful", False):
                    layer.reset_state()
        results = [(c, predict(model, c)) for c in calls]
        files = [f"{name}.keras"]
        model.save(out / f"{name}.keras")
        names = input_names(model)
        if fx["h5"]:
            model.save(out / f"{name}.h5")
            files.append(f"{name}.h5")
        save_io(out / f"{name}.npz", results, names)
        manifest[name] = {"files": files, "calls": len(calls), "inputs": names,
                          "outputs": len(results[0][1]), "note": fx["note"]}
        print(f"{name}: {', '.join(files)}", file=sys.stderr)
    if not only:
        rng = np.random.default_rng(99)
        for fn in (keras2_sequential_gru, keras2_functional_encdec):
            keras.utils.clear_session()
            info = fn(out, rng)
            name = fn.__name__
            # input names of hand-written files: as the importer will name them
            info["inputs"] = {"keras2_sequential_gru": ["embedding_1_input"],
                              "keras2_functional_encdec": ["enc_tokens", "dec_tokens"]}[name]
            d = np.load(out / f"{name}.npz")
            arrays = {k: d[k] for k in d.files}
            renamed = {}
            for k, v in arrays.items():
                c, kind, idx = k.split("/")
                renamed[f"{c}/{kind}/{info['inputs'][int(idx)]}" if kind == "in" else k] = v
            np.savez_compressed(out / f"{name}.npz", **renamed)
            info["outputs"] = sum(1 for k in renamed if k.startswith("call0/out/"))
            manifest[name] = info
            print(f"{name}: {', '.join(info['files'])}", file=sys.stderr)
        keras.utils.clear_session()
        manifest.update(refusal_models(out))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/keras_models")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args(argv)
    out = Path(args.out)
    manifest = build_all(out, args.only)
    if args.only and (out / "manifest.json").exists():   # update the listed fixtures only
        manifest = dict(json.loads((out / "manifest.json").read_text())["fixtures"], **manifest)
    meta = {"keras_version": keras.__version__, "backend": keras.backend.backend(),
            "fixtures": manifest}
    (out / "manifest.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"{len(manifest)} fixtures, {total / 1024:.0f} KiB in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
