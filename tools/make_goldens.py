#!/usr/bin/env python
"""Regenerate the Keras golden test data in tests/goldens/.

    KERAS_BACKEND=torch python tools/make_goldens.py            # all cases
    KERAS_BACKEND=torch python tools/make_goldens.py lstm_last  # only cases whose name contains a word

Every case is written as a spec in the project's format (docs/spec.md); the Keras model is built
from that spec by the small builder below (so layer names and fields are the spec's), its weights
are set to seeded random values, and it is run on seeded inputs. Output is deterministic: the
per-case seed is derived from the case name and the .npz files are written with fixed timestamps.
See tests/goldens/README.md for the format.

Only this script imports Keras/torch; it never imports the rnncompile package.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import zipfile
import zlib
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

import keras  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "goldens"

torch.set_num_threads(1)

# ---------------------------------------------------------------------------------------------
# The Keras classes the goldens use: one row each. `mask`: the mask the layer passes on (for
# models built with explicit masks), from its config, its input tensor and its input mask;
# `weights`: (our key, Keras variable) pairs of a layer object, under a key prefix; `feeds`: what
# an Input consumed by the layer is fed ("tokens": ids in [0, input_dim), 0 masked with
# mask_zero; "masked": floats, mask_value at padded steps). Classes without a row pass no mask
# on and hold no weights.
# ---------------------------------------------------------------------------------------------


def _keep_mask(cfg, x, mask_in):
    return mask_in


def _mask_if_sequences(cfg, x, mask_in):
    return mask_in if cfg.get("return_sequences") else None


def _attrs(*names, optional=("bias",)):
    def pairs(prefix, layer):
        return [(f"{prefix}/{n}", getattr(layer, n)) for n in names
                if n not in optional or getattr(layer, "use_bias", True)]
    return pairs


def _cell(prefix, rnn_layer):
    return _attrs("kernel", "recurrent_kernel", "bias")(prefix, rnn_layer.cell)


_RNN = dict(mask=_mask_if_sequences, weights=_cell)


def _present(*names):
    """(key, variable) pairs of the named variables a layer has (no gamma with scale=False)."""
    return lambda prefix, layer: [(f"{prefix}/{n}", getattr(layer, n)) for n in names
                                  if getattr(layer, n, None) is not None]

KERAS_CLASSES = {
    "Embedding": dict(mask=lambda cfg, x, m: keras.ops.not_equal(x, 0) if cfg.get("mask_zero") else None,
                      weights=_attrs("embeddings"),
                      feeds=lambda cfg: ("tokens_masked" if cfg.get("mask_zero") else "tokens", cfg["input_dim"])),
    "Masking": dict(mask=lambda cfg, x, m: keras.ops.any(keras.ops.not_equal(x, cfg.get("mask_value", 0.0)), axis=-1),
                    feeds=lambda cfg: ("masked", cfg.get("mask_value", 0.0))),
    "Dense": dict(mask=_keep_mask, weights=_attrs("kernel", "bias")),
    "Dropout": dict(mask=_keep_mask),
    "Activation": dict(mask=_keep_mask),
    "SimpleRNN": _RNN,
    "LSTM": _RNN,
    "GRU": _RNN,
    "Bidirectional": dict(mask=lambda cfg, x, m: _mask_if_sequences(cfg["layer"], x, m),
                          weights=lambda prefix, layer: _cell(f"{prefix}/forward", layer.forward_layer)
                          + _cell(f"{prefix}/backward", layer.backward_layer)),
    # around the recurrent core (issue 14): Keras computes these masks itself in the goldens
    # (built from plain calls); the rows give the weights, and the mask rule where it is kept
    "BatchNormalization": dict(mask=_keep_mask, weights=_present("gamma", "beta", "moving_mean",
                                                                 "moving_variance")),
    "LayerNormalization": dict(mask=_keep_mask, weights=_present("gamma", "beta")),
    "Conv1D": dict(weights=_present("kernel", "bias")),
    "Conv2D": dict(weights=_present("kernel", "bias")),
    "PReLU": dict(mask=_keep_mask, weights=_present("alpha")),
    "Attention": dict(weights=_present("scale", "concat_score_weight")),
    "AdditiveAttention": dict(weights=_present("scale")),
    "CategoryEncoding": dict(feeds=lambda cfg: ("tokens", cfg["num_tokens"])),
    # activation layers with options (A14): keep the mask; an input read first by a ReLU gets floats
    # on a 0.1 grid (up to about +-9) with exact ties (RELU_TIES) at the start of row 0
    "ReLU": dict(mask=_keep_mask, feeds=lambda cfg: ("grid", RELU_TIES)),
    "ELU": dict(mask=_keep_mask),
    # explicit masks computed by keras.ops (issue 14): an Input read by a comparison is fed values
    # that compare True on valid steps and False on padded ones; a bool Input is a mask pattern
    "Compare": dict(feeds=lambda cfg: ("compared", cfg)),
    "LogicalOp": dict(feeds=lambda cfg: ("bool_masked", None)),
    "SetMask": dict(feeds=lambda cfg: ("bool_masked", None)),
    # the wrapped layer's weights, under the wrapper's name; Keras keeps the [batch, time] mask
    "TimeDistributed": dict(mask=_keep_mask, weights=lambda prefix, layer: _present("kernel", "bias")(
        prefix, layer.layer)),
}


def keras_class(name: str) -> dict:
    """The class's row (module doc above); a class without one passes no mask on, holds no
    weights and is fed floats."""
    return KERAS_CLASSES.get(name, {})

# ---------------------------------------------------------------------------------------------
# Input data
# ---------------------------------------------------------------------------------------------

# Mask patterns, one per batch row, for masked cases (1 = valid step). The names are those of the
# padding vocabulary of rnncompile/inputs.py (this script does not import rnncompile: the oracle
# stays independent), with fixed amounts: 2 steps of right or left padding, gaps at t % 3 == 1,
# and `combined` = left padding, a hole and right padding in one row.
PATTERNS_ALL = ("none", "right", "left", "gaps", "empty", "combined")
PATTERNS_NO_EMPTY = ("none", "right", "left", "gaps", "combined", "right")


def mask_row(pattern: str, T: int) -> np.ndarray:
    t = np.arange(T)
    if pattern == "none":
        m = np.ones(T, bool)
    elif pattern == "right":  # right-padded: last 2 steps masked
        m = t < T - 2
    elif pattern == "left":  # left-padded: first 2 steps masked
        m = t >= 2
    elif pattern == "gaps":  # valid at both ends, holes in the middle
        m = (t % 3) != 1
        m[-1] = True
    elif pattern == "empty":  # fully masked
        m = np.zeros(T, bool)
    elif pattern == "combined":  # left pad, a hole, right pad
        m = np.ones(T, bool)
        m[[0, 2, T - 1]] = False
    else:
        raise ValueError(pattern)
    return m


def mask_matrix(patterns, T, chunk=0) -> np.ndarray:
    """Row b gets patterns[(b + chunk) % len]: successive chunks rotate the patterns."""
    B = len(patterns)
    return np.stack([mask_row(patterns[(b + chunk) % B], T) for b in range(B)])


# ---------------------------------------------------------------------------------------------
# Spec -> Keras
# ---------------------------------------------------------------------------------------------

#: Weights that must be positive (a variance): drawn from [0.5, 1.5) instead of [-0.5, 0.5).
POSITIVE_WEIGHTS = ("moving_variance",)
#: Spec attributes that are call arguments of the Keras layer (Attention's)
CALL_KW = ("use_causal_mask", "return_attention_scores")
_NON_KW = ("class_name", "name", "inputs", "initial_state", "layer", "ignore_mask") + CALL_KW


def make_layer(cfg: dict, name: str | None):
    cls = cfg["class_name"]
    kw = {k: v for k, v in cfg.items() if k not in _NON_KW}
    if name is not None:
        kw["name"] = name
    if cls in ("Bidirectional", "TimeDistributed"):
        return getattr(keras.layers, cls)(make_layer(cfg["layer"], None), **kw)
    return getattr(keras.layers, cls)(**kw)


#: Spec kinds that are keras.ops calls, not Keras layers (explicit masks computed in a model).
OP_KINDS = {
    "Compare": lambda cfg, x: getattr(keras.ops, cfg["op"])(x, cfg["value"]),
    "LogicalOp": lambda cfg, x: (keras.ops.logical_not(x) if cfg["op"] == "not"
                                 else getattr(keras.ops, f"logical_{cfg['op']}")(*x)),
    "ReduceBool": lambda cfg, x: getattr(keras.ops, cfg["op"])(x, axis=-1),
}


def parse_ref(ref: str):
    if ":" in ref:
        name, k = ref.rsplit(":", 1)
        return name, int(k)
    return ref, 0


def build_keras(spec: dict, explicit_mask: bool = False) -> keras.Model:
    """Build the Keras functional model of a spec.

    Keras 3.15 drops the input mask of a layer called with more than one tensor argument (an RNN
    or Bidirectional called with `initial_state=`): see README.md. With explicit_mask=True the
    mask is recomputed with keras.ops from the Embedding/Masking input and passed as `mask=` to
    such layers, which is what Keras does with a mask that reaches the layer.
    """
    outs: dict[str, list] = {}
    masks: dict[str, object] = {}  # name -> explicit mask tensor of its first output (or None)
    inputs = []
    prev = prev_name = None
    explicit_from: set[str] = set()   # SetMask layers: their consumers get mask= explicitly

    def get(ref):
        name, k = parse_ref(ref)
        return outs[name][k]

    def get_mask(ref):
        name, k = parse_ref(ref)
        return masks.get(name) if k == 0 else None

    for cfg in spec["layers"]:
        name, cls = cfg["name"], cfg["class_name"]
        mask_out = None
        if cls == "Input":
            kw = {"shape": tuple(cfg["shape"]), "dtype": cfg.get("dtype", "float32"), "name": name}
            if "batch_size" in cfg:
                kw["batch_size"] = cfg["batch_size"]
            t = keras.Input(**kw)
            inputs.append(t)
            res = [t]
        elif cls in OP_KINDS:
            src = cfg["inputs"]
            res = [OP_KINDS[cls](cfg, [get(r) for r in src] if isinstance(src, list) else get(src))]
        elif cls == "SetMask":   # [x, m]: the next layer is called as layer(x, mask=m)
            x_ref, m_ref = cfg["inputs"]
            res, mask_out = [get(x_ref)], get(m_ref)
            explicit_from.add(name)
        else:
            layer = make_layer(cfg, name)
            if "inputs" in cfg:
                src = cfg["inputs"]
                x = [get(r) for r in src] if isinstance(src, list) else get(src)
                mask_in = None if isinstance(src, list) else get_mask(src)
            else:
                x, mask_in = prev, masks.get(prev_name)
            kw = {k: cfg[k] for k in CALL_KW if k in cfg}
            src_name = parse_ref(cfg["inputs"])[0] if isinstance(cfg.get("inputs"), str) else prev_name
            if src_name in explicit_from:
                kw["mask"] = mask_in
            if "initial_state" in cfg:
                kw["initial_state"] = [get(r) for r in cfg["initial_state"]]
                if explicit_mask and mask_in is not None:
                    kw["mask"] = mask_in
            y = layer(x, **kw)
            res = list(y) if isinstance(y, (list, tuple)) else [y]
            # track the mask as an explicit tensor, for explicit_mask
            rule = keras_class(cls).get("mask")
            mask_out = rule(cfg, x, mask_in) if rule else None
        outs[name] = res
        masks[name] = mask_out
        prev, prev_name = res[0], name
    return keras.Model(inputs, [get(r) for r in spec["outputs"]], name=spec["name"])


def weight_vars(model: keras.Model):
    """(our key, keras variable) pairs, in layer order."""
    pairs = []
    for layer in model.layers:
        cls = type(layer).__name__
        weights = keras_class(cls).get("weights")
        if weights:
            pairs += weights(layer.name, layer)
        else:
            assert not layer.weights, (cls, layer.weights)
    n_vars = len(model.weights) - sum(
        len(l.non_trainable_weights) for l in model.layers if getattr(l, "stateful", False)
    )
    assert len(pairs) == n_vars, (pairs, model.weights)   # BatchNormalization's stats: non-trainable
    return pairs


# ---------------------------------------------------------------------------------------------
# Deterministic .npz writer
# ---------------------------------------------------------------------------------------------


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.array(arr, order="C"), allow_pickle=False)  # keeps 0-d
            zi = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, buf.getvalue(), compresslevel=9)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

CASES: dict[str, dict] = {}


def case(name, layers, outputs, *, desc, T=6, chunks=1, patterns=PATTERNS_ALL, batch=None,
         initial_state_mask=False):
    """initial_state_mask: the case has a masked RNN/Bidirectional called with initial_state. Two
    cases are made: `name` built with the mask passed explicitly (the mask is honoured) and
    `name` with "_mask"/"_masking" -> "_mask_dropped"/"_masking_dropped" built the plain functional
    way, where Keras 3.15 silently drops that layer's mask."""
    variants = [(name, None)]
    if initial_state_mask:
        dropped = re.sub(r"_mask(ing)?(?=_|$)", r"_mask\1_dropped", name, count=1)
        assert dropped != name, name
        variants = [(name, True), (dropped, False)]
    for nm, explicit in variants:
        assert nm not in CASES, nm
        spec_layers = layers
        if explicit is False:
            # rnncompile says what plain Keras does: the layer called with initial_state runs unmasked
            spec_layers = [dict(l, ignore_mask=True) if l.get("initial_state") else l for l in layers]
        spec = {"name": nm, "weights": "weights.npz", "layers": spec_layers, "outputs": outputs}
        d = desc
        if explicit is True:
            d += (" [Keras model built with the mask passed explicitly (mask=) to the layer(s) "
                  "called with initial_state: the mask is honoured]")
        elif explicit is False:
            d += (" [plain functional Keras: Keras 3.15 DROPS the mask of the layer(s) called "
                  "with initial_state, which then run unmasked]")
        CASES[nm] = dict(spec=spec, desc=d, T=T, chunks=chunks, patterns=patterns, batch=batch,
                         explicit_mask=bool(explicit), mask_dropped=explicit is False,
                         seed_name=name)


def Inp(name, shape, dtype=None, batch_size=None):
    d = {"class_name": "Input", "name": name, "shape": list(shape)}
    if dtype:
        d["dtype"] = dtype
    if batch_size:
        d["batch_size"] = batch_size
    return d


def L(cls, name, **kw):
    return {"class_name": cls, "name": name, **kw}


VOCAB = 10
#: exact float32 values fed first (row 0) to an input read by a ReLU: ties with the thresholds and
#: max_values of the relu_* cases, their float32 neighbours, 0 and -0
RELU_TIES = (0.3, 0.0, -0.0, 0.5, 6.0, 0.2, -0.3, 0.29999998, 0.30000004, 6.0000005, 1.0, -6.0)
KINDS = {  # prefix -> (class_name, extra fields, units)
    "simplernn": ("SimpleRNN", {}, 4),
    "lstm": ("LSTM", {}, 4),
    "gru": ("GRU", {}, 4),
    "gru_reset_before": ("GRU", {"reset_after": False}, 3),
}


def rnn(kind, name="rnn", **kw):
    cls, extra, units = KINDS[kind]
    return L(cls, name, units=units, **extra, **kw)


def state_refs(kind, name="rnn"):
    n = 3 if KINDS[kind][0] == "LSTM" else 2
    return [f"{name}:{k}" for k in range(n)]


def n_states(kind):
    return 2 if KINDS[kind][0] == "LSTM" else 1


def emb_front(mask_zero=True, dim=3):
    return [
        Inp("tokens", [None], "int32"),
        L("Embedding", "emb", input_dim=VOCAB, output_dim=dim, mask_zero=mask_zero),
    ]


def masking_front(mask_value, feat=3):
    return [Inp("x", [None, feat]), L("Masking", "masking", mask_value=mask_value)]


def float_front(feat=3):
    return [Inp("x", [None, feat])]


def define_cases():
    # --- single recurrent layers, no mask ------------------------------------------------------
    for k in KINDS:
        F = 3 if k != "gru" else 2
        case(f"{k}_last", float_front(F) + [rnn(k)], ["rnn"], desc=f"{k}, return_sequences=False")
        case(f"{k}_seq", float_front(F) + [rnn(k, return_sequences=True)], ["rnn"], T=7,
             desc=f"{k}, return_sequences=True")
        case(f"{k}_seq_state", float_front(F) + [rnn(k, return_sequences=True, return_state=True)],
             state_refs(k), desc=f"{k}, return_sequences + return_state")
        case(f"{k}_last_state", float_front(F) + [rnn(k, return_state=True)], state_refs(k), T=5,
             desc=f"{k}, return_sequences=False + return_state")
        case(f"{k}_backwards_seq_state",
             float_front(F) + [rnn(k, return_sequences=True, return_state=True, go_backwards=True)],
             state_refs(k), desc=f"{k}, go_backwards, return_sequences + return_state")
        case(f"{k}_backwards_last", float_front(F) + [rnn(k, go_backwards=True)], ["rnn"],
             desc=f"{k}, go_backwards, return_sequences=False")
        case(f"{k}_nobias_seq", float_front(F) + [rnn(k, use_bias=False, return_sequences=True)],
             ["rnn"], desc=f"{k}, use_bias=False")
        case(f"{k}_inference_noops_seq",
             float_front(F) + [rnn(k, return_sequences=True, dropout=0.5, recurrent_dropout=0.3,
                                   zero_output_for_mask=True)],
             ["rnn"], desc=f"{k}: dropout, recurrent_dropout, zero_output_for_mask without a mask")
        if KINDS[k][0] == "SimpleRNN":
            acts = [dict(activation=a) for a in ("relu", "linear", "elu", "softsign")]
        else:
            acts = [dict(activation="relu", recurrent_activation="hard_sigmoid"),
                    dict(activation="linear", recurrent_activation="relu"),
                    dict(activation="elu", recurrent_activation="sigmoid"),
                    dict(activation="softsign", recurrent_activation="hard_sigmoid")]
        for a in acts:
            tag = "_".join(
                ["act", a["activation"]]
                + (["rec", a["recurrent_activation"]] if "recurrent_activation" in a else [])
            )
            case(f"{k}_{tag}_seq", float_front(F) + [rnn(k, return_sequences=True, **a)], ["rnn"],
                 desc=f"{k} with {a}")

    # --- activations no native ONNX operator computes (rnncompile's Scan fallback) -------------
    for k in KINDS:
        a = (dict(activation="gelu") if KINDS[k][0] == "SimpleRNN"
             else dict(activation="gelu", recurrent_activation="softplus"))
        case(f"{k}_scan_gelu_emb_mask_backwards_seq_state",
             emb_front() + [rnn(k, return_sequences=True, return_state=True, go_backwards=True, **a)],
             state_refs(k), desc=f"{k} with {a} (Scan fallback), masked, go_backwards")
    case("bidi_gru_scan_selu_emb_mask_seq",
         emb_front() + [L("Bidirectional", "bidi", merge_mode="concat",
                          layer={"class_name": "GRU", "units": 3, "return_sequences": True,
                                 "activation": "selu", "recurrent_activation": "relu6"})],
         ["bidi"], desc="Bidirectional GRU with selu/relu6 (two Scan loops), masked")

    # --- single recurrent layers with masks ----------------------------------------------------
    for k in KINDS:
        case(f"{k}_emb_mask_seq", emb_front() + [rnn(k, return_sequences=True)], ["rnn"],
             desc=f"{k} after Embedding(mask_zero), return_sequences")
        case(f"{k}_emb_mask_last_state", emb_front() + [rnn(k, return_state=True)], state_refs(k),
             desc=f"{k} after Embedding(mask_zero), return_sequences=False + return_state")
        case(f"{k}_masking_seq_state",
             masking_front(-1.0) + [rnn(k, return_sequences=True, return_state=True)],
             state_refs(k), T=7,
             desc=f"{k} after Masking(-1.0), return_sequences + return_state; row 0 has a step "
                  "where only some features equal mask_value (valid)")
        case(f"{k}_masking_last", masking_front(0.0) + [rnn(k)], ["rnn"],
             desc=f"{k} after Masking(0.0), return_sequences=False")
        case(f"{k}_emb_mask_backwards_seq_state",
             emb_front() + [rnn(k, return_sequences=True, return_state=True, go_backwards=True)],
             state_refs(k), desc=f"{k} after Embedding(mask_zero), go_backwards, rs + return_state")
        case(f"{k}_masking_backwards_last", masking_front(2.5) + [rnn(k, go_backwards=True)],
             ["rnn"], desc=f"{k} after Masking(2.5), go_backwards, return_sequences=False")
        case(f"{k}_emb_mask_zero_output_seq_state",
             emb_front() + [rnn(k, return_sequences=True, return_state=True,
                                zero_output_for_mask=True)],
             state_refs(k), desc=f"{k}, Embedding mask, zero_output_for_mask, rs + return_state")
        case(f"{k}_masking_zero_output_last", masking_front(0.0) + [rnn(k, zero_output_for_mask=True)],
             ["rnn"], desc=f"{k}, Masking, zero_output_for_mask, return_sequences=False")
        case(f"{k}_emb_mask_zero_output_backwards_seq",
             emb_front() + [rnn(k, return_sequences=True, go_backwards=True,
                                zero_output_for_mask=True)],
             ["rnn"], desc=f"{k}, Embedding mask, zero_output_for_mask, go_backwards, rs")
        case(f"{k}_masking_zero_output_backwards_last",
             masking_front(0.0) + [rnn(k, go_backwards=True, zero_output_for_mask=True)], ["rnn"],
             desc=f"{k}, Masking, zero_output_for_mask, go_backwards, rs=False: 0 exactly for "
                  "rows whose last processed step (time 0) is masked")

    # --- non-zero initial_state ----------------------------------------------------------------
    for k in KINDS:
        H = KINDS[k][2]
        st_in = [Inp("h0", [H])] + ([Inp("c0", [H])] if n_states(k) == 2 else [])
        st_refs = [s["name"] for s in st_in]
        case(f"{k}_initial_state_seq_state",
             float_front() + st_in + [rnn(k, inputs="x", initial_state=st_refs,
                                          return_sequences=True, return_state=True)],
             state_refs(k), desc=f"{k} with initial_state from Input layers, no mask")
        case(f"{k}_initial_state_emb_mask_seq_state",
             emb_front() + st_in + [rnn(k, inputs="emb", initial_state=st_refs,
                                        return_sequences=True, return_state=True)],
             state_refs(k),
             desc=f"{k} with initial_state and Embedding mask: pins the output at masked steps "
                  "before the first valid step and the states of a fully masked row",
             initial_state_mask=True)
        case(f"{k}_initial_state_emb_mask_last",
             emb_front() + st_in + [rnn(k, inputs="emb", initial_state=st_refs)], ["rnn"],
             desc=f"{k} with initial_state and mask, return_sequences=False (fully masked row)",
             initial_state_mask=True)
    case("lstm_initial_state_masking_backwards_seq_state",
         masking_front(0.0) + [Inp("h0", [4]), Inp("c0", [4])]
         + [rnn("lstm", inputs="masking", initial_state=["h0", "c0"], return_sequences=True,
                return_state=True, go_backwards=True)],
         state_refs("lstm"), desc="LSTM, initial_state, Masking, go_backwards",
         initial_state_mask=True)
    case("gru_initial_state_emb_mask_zero_output_seq_state",
         emb_front() + [Inp("h0", [4])]
         + [rnn("gru", inputs="emb", initial_state=["h0"], return_sequences=True,
                return_state=True, zero_output_for_mask=True)],
         state_refs("gru"), desc="GRU, initial_state, Embedding mask, zero_output_for_mask",
         initial_state_mask=True)

    # --- Bidirectional ---------------------------------------------------------------------------
    modes = {"concat": "concat", "sum": "sum", "ave": "ave", "mul": "mul", "none": None}

    def bidi(inner, name="bidi", **kw):
        return L("Bidirectional", name, layer=inner, **kw)

    def bidi_state_refs(inner_cls, merge_none, name="bidi"):
        n = (2 if merge_none else 1) + 2 * (2 if inner_cls == "LSTM" else 1)
        return [f"{name}:{i}" for i in range(n)]

    for tag, mode in modes.items():
        none = mode is None
        seq_outs = ["bidi:0", "bidi:1"] if none else ["bidi"]
        case(f"bidi_lstm_{tag}_seq",
             float_front() + [bidi({"class_name": "LSTM", "units": 3, "return_sequences": True},
                                   merge_mode=mode)],
             seq_outs, desc=f"Bidirectional(LSTM, return_sequences), merge_mode={mode}")
        case(f"bidi_gru_{tag}_last",
             float_front() + [bidi({"class_name": "GRU", "units": 3}, merge_mode=mode)],
             seq_outs, desc=f"Bidirectional(GRU), return_sequences=False, merge_mode={mode}")
        case(f"bidi_lstm_{tag}_emb_mask_seq_state",
             emb_front() + [bidi({"class_name": "LSTM", "units": 3, "return_sequences": True,
                                  "return_state": True}, merge_mode=mode)],
             bidi_state_refs("LSTM", none),
             desc=f"Bidirectional(LSTM, rs, return_state) after Embedding mask, merge_mode={mode}")
        case(f"bidi_gru_{tag}_masking_last_state",
             masking_front(0.0) + [bidi({"class_name": "GRU", "units": 3, "return_state": True},
                                        merge_mode=mode)],
             bidi_state_refs("GRU", none),
             desc=f"Bidirectional(GRU, return_state) after Masking, rs=False, merge_mode={mode}")
    case("bidi_gru_reset_before_sum_emb_mask_seq",
         emb_front() + [bidi({"class_name": "GRU", "units": 3, "reset_after": False,
                              "return_sequences": True}, merge_mode="sum")],
         ["bidi"], desc="Bidirectional(GRU reset_after=False), sum, Embedding mask")
    case("bidi_simplernn_concat_masking_seq_state",
         masking_front(0.0) + [bidi({"class_name": "SimpleRNN", "units": 3, "return_sequences": True,
                                     "return_state": True, "activation": "relu"})],
         bidi_state_refs("SimpleRNN", False), desc="Bidirectional(SimpleRNN relu), Masking")
    case("bidi_lstm_concat_emb_mask_last",
         emb_front() + [bidi({"class_name": "LSTM", "units": 3})], ["bidi"],
         desc="Bidirectional(LSTM), rs=False, Embedding mask")
    case("bidi_lstm_concat_nobias_act_seq",
         float_front() + [bidi({"class_name": "LSTM", "units": 3, "use_bias": False,
                                "activation": "softsign", "recurrent_activation": "hard_sigmoid",
                                "return_sequences": True})],
         ["bidi"], desc="Bidirectional(LSTM no bias, softsign/hard_sigmoid)")
    # Bidirectional initial_state
    case("bidi_lstm_initial_state_seq_state",
         float_front() + [Inp(n, [3]) for n in ("hf", "cf", "hb", "cb")]
         + [bidi({"class_name": "LSTM", "units": 3, "return_sequences": True, "return_state": True},
                 inputs="x", initial_state=["hf", "cf", "hb", "cb"])],
         bidi_state_refs("LSTM", False), desc="Bidirectional(LSTM) with initial_state, no mask")
    case("bidi_lstm_initial_state_emb_mask_last_state",
         emb_front() + [Inp(n, [3]) for n in ("hf", "cf", "hb", "cb")]
         + [bidi({"class_name": "LSTM", "units": 3, "return_state": True}, merge_mode="ave",
                 inputs="emb", initial_state=["hf", "cf", "hb", "cb"])],
         bidi_state_refs("LSTM", False),
         desc="Bidirectional(LSTM) with initial_state and Embedding mask, rs=False, ave",
         initial_state_mask=True)
    case("bidi_gru_initial_state_emb_mask_seq",
         emb_front() + [Inp("hf", [3]), Inp("hb", [3])]
         + [bidi({"class_name": "GRU", "units": 3, "return_sequences": True}, merge_mode=None,
                 inputs="emb", initial_state=["hf", "hb"])],
         ["bidi:0", "bidi:1"], desc="Bidirectional(GRU) with initial_state, mask, merge_mode=None",
         initial_state_mask=True)

    # --- encoder-decoder -------------------------------------------------------------------------
    case("seq2seq_lstm_emb_mask",
         [Inp("enc_tokens", [None], "int32"), Inp("dec_tokens", [None], "int32"),
          L("Embedding", "enc_emb", input_dim=VOCAB, output_dim=3, mask_zero=True,
            inputs="enc_tokens"),
          L("LSTM", "encoder", units=4, return_state=True),
          L("Embedding", "dec_emb", input_dim=VOCAB, output_dim=3, mask_zero=True,
            inputs="dec_tokens"),
          L("LSTM", "decoder", units=4, return_sequences=True,
            initial_state=["encoder:1", "encoder:2"]),
          L("Dense", "out", units=VOCAB, activation="softmax")],
         ["out", "encoder:1", "encoder:2"],
         desc="encoder LSTM return_state -> decoder LSTM initial_state -> Dense softmax; both "
              "token inputs masked (decoder rows use a rotated pattern set)",
         initial_state_mask=True)
    case("seq2seq_gru_masking",
         [Inp("enc_x", [None, 2]), Inp("dec_x", [None, 3]),
          L("Masking", "enc_mask", mask_value=0.0, inputs="enc_x"),
          L("GRU", "encoder", units=3, return_state=True, go_backwards=True),
          L("Masking", "dec_mask", mask_value=0.0, inputs="dec_x"),
          L("GRU", "decoder", units=3, return_sequences=True, initial_state=["encoder:1"]),
          L("Dense", "out", units=2)],
         ["out"], desc="encoder GRU (go_backwards, return_state) -> decoder GRU initial_state, "
                       "Masking on both inputs",
         initial_state_mask=True)

    # --- stateful --------------------------------------------------------------------------------
    case("lstm_stateful_seq",
         [Inp("x", [6, 3], batch_size=4), L("LSTM", "rnn", units=4, stateful=True,
                                            return_sequences=True)],
         ["rnn"], chunks=3, desc="stateful LSTM, 3 chunks, no mask")
    case("gru_stateful_last_state",
         [Inp("x", [5, 2], batch_size=4), L("GRU", "rnn", units=3, stateful=True,
                                            return_state=True)],
         ["rnn:0", "rnn:1"], T=5, chunks=3, desc="stateful GRU, rs=False, return_state, 3 chunks")
    case("simplernn_stateful_seq",
         [Inp("x", [6, 3], batch_size=4), L("SimpleRNN", "rnn", units=3, stateful=True,
                                            return_sequences=True)],
         ["rnn"], chunks=3, desc="stateful SimpleRNN, 3 chunks")
    case("lstm_stateful_emb_mask_seq_state",
         [Inp("tokens", [6], "int32", batch_size=6),
          L("Embedding", "emb", input_dim=VOCAB, output_dim=3, mask_zero=True),
          L("LSTM", "rnn", units=4, stateful=True, return_sequences=True, return_state=True)],
         ["rnn:0", "rnn:1", "rnn:2"], chunks=3,
         desc="stateful LSTM with Embedding mask, 3 chunks (mask patterns rotate per chunk)")
    case("gru_stateful_masking_seq",
         [Inp("x", [6, 3], batch_size=6), L("Masking", "masking", mask_value=0.0),
          L("GRU", "rnn", units=3, stateful=True, return_sequences=True),
          L("Dense", "d", units=2)],
         ["d"], chunks=3, desc="stateful GRU with Masking -> Dense, 3 chunks")

    # --- Dense / Activation / Dropout / pooling --------------------------------------------------
    case("dense_2d_softmax", [Inp("x", [4]), L("Dense", "d", units=3, activation="softmax")],
         ["d"], desc="Dense on a 2-D input, softmax")
    case("dense_2d_stack",
         [Inp("x", [3]), L("Dense", "d1", units=5, activation="relu", use_bias=False),
          L("Dropout", "drop", rate=0.5), L("Dense", "d2", units=2, activation="tanh"),
          L("Activation", "act", activation="sigmoid")],
         ["act", "d1"], desc="Dense(relu, no bias) -> Dropout -> Dense(tanh) -> Activation(sigmoid)")
    case("dense_3d_after_lstm_emb_mask",
         emb_front() + [rnn("lstm", return_sequences=True), L("Dense", "d", units=3,
                                                               activation="softmax")],
         ["d"], desc="Dense softmax on the 3-D output of a masked LSTM (masked steps carry)")
    case("masking_dense_gru_seq",
         masking_front(0.0) + [L("Dense", "d", units=4, activation="elu"),
                               rnn("gru", return_sequences=True)],
         ["rnn"], desc="Masking -> Dense(3-D) -> GRU: the mask passes through Dense")
    case("lstm_dropout_activation_seq",
         float_front() + [rnn("lstm", return_sequences=True), L("Dropout", "drop", rate=0.3),
                          L("Activation", "act", activation="softmax")],
         ["act"], desc="LSTM -> Dropout -> Activation(softmax) on 3-D")
    case("gap_after_lstm_emb_mask",
         emb_front() + [rnn("lstm", return_sequences=True), L("GlobalAveragePooling1D", "pool"),
                        L("Dense", "d", units=2)],
         ["pool", "d"], patterns=PATTERNS_NO_EMPTY,
         desc="GlobalAveragePooling1D after a masked LSTM (mask honoured). No fully masked row: "
              "Keras gives NaN there (0/0)")
    case("gap_after_gru_masking_zero_output",
         masking_front(0.0) + [rnn("gru", return_sequences=True, zero_output_for_mask=True),
                               L("GlobalAveragePooling1D", "pool")],
         ["pool"], patterns=PATTERNS_NO_EMPTY, desc="GlobalAveragePooling1D after a masked GRU "
                                                    "with zero_output_for_mask")
    case("gmp_after_gru_emb_mask",
         emb_front() + [rnn("gru", return_sequences=True), L("GlobalMaxPooling1D", "pool"),
                        L("Dense", "d", units=2)],
         ["pool", "d", "rnn"],
         desc="GlobalMaxPooling1D after a masked GRU: Keras IGNORES the mask here (masked steps, "
              "which hold carried outputs, take part in the max); has a fully masked row")
    case("gmp_after_simplernn_masking_zero_output",
         masking_front(0.0) + [rnn("simplernn", return_sequences=True, zero_output_for_mask=True),
                               L("GlobalMaxPooling1D", "pool")],
         ["pool", "rnn"], desc="GlobalMaxPooling1D (mask ignored) after zero_output_for_mask: zeros at "
                        "masked steps take part in the max")
    case("gap_gmp_unmasked",
         float_front() + [rnn("simplernn", return_sequences=True), L("GlobalAveragePooling1D", "gap"),
                          L("GlobalMaxPooling1D", "gmp", inputs="rnn")],
         ["gap", "gmp"], desc="both poolings after an unmasked SimpleRNN")
    case("embedding_int64_lstm",
         [Inp("tokens", [None], "int64"),
          L("Embedding", "emb", input_dim=VOCAB, output_dim=3),
          L("LSTM", "rnn", units=3)],
         ["rnn"], desc="int64 token input, Embedding without mask_zero (token 0 is a real token)")
    case("lstm_backwards_seq_then_gru_emb_mask",
         emb_front() + [rnn("lstm", return_sequences=True, go_backwards=True),
                        rnn("gru", name="rnn2", return_sequences=True)],
         ["rnn2", "rnn"],
         desc="LSTM(go_backwards, rs) -> GRU(rs) with an Embedding mask: the LSTM's output is in "
              "processing (reversed) order but the mask it passes on is NOT reversed")
    case("lstm_unroll_emb_mask_seq",
         [Inp("tokens", [6], "int32"),
          L("Embedding", "emb", input_dim=VOCAB, output_dim=3, mask_zero=True),
          rnn("lstm", return_sequences=True, unroll=True)],
         ["rnn"], desc="LSTM unroll=True (fixed T) with mask")

    breadth_cases()

    # --- the guide's example shapes --------------------------------------------------------------
    case("guide_embedding_lstm_dense",
         [Inp("tokens", [None], "int32"), L("Embedding", "emb", input_dim=VOCAB, output_dim=4),
          L("LSTM", "lstm", units=5), L("Dense", "dense", units=3, activation="softmax")],
         ["dense"], desc="Embedding -> LSTM -> Dense")
    case("guide_embedding_gru_simplernn_dense",
         [Inp("tokens", [None], "int32"), L("Embedding", "emb", input_dim=VOCAB, output_dim=4),
          L("GRU", "gru", units=4, return_sequences=True), L("SimpleRNN", "simple_rnn", units=3),
          L("Dense", "dense", units=2)],
         ["dense"], desc="Embedding -> GRU(return_sequences) -> SimpleRNN -> Dense")
    case("guide_bidi_lstm_stack_dense",
         [Inp("x", [5, 3]),
          L("Bidirectional", "bidi1", layer={"class_name": "LSTM", "units": 3,
                                             "return_sequences": True}),
          L("Bidirectional", "bidi2", layer={"class_name": "LSTM", "units": 3}),
          L("Dense", "dense", units=2)],
         ["dense"], T=5, desc="Input(5, feat) -> Bidirectional(LSTM rs) -> Bidirectional(LSTM) "
                              "-> Dense")
    case("guide_emb_mask_bidi_lstm_sigmoid",
         [Inp("tokens", [None], "int32"),
          L("Embedding", "emb", input_dim=VOCAB, output_dim=4, mask_zero=True),
          L("Bidirectional", "bidi", merge_mode="concat", layer={"class_name": "LSTM", "units": 4}),
          L("Dense", "dense", units=1, activation="sigmoid")],
         ["dense"], desc="Embedding(mask_zero) -> Bidirectional(LSTM) -> Dense(sigmoid)")


def breadth_cases():
    """The layers around the recurrent core (issue 14): merges, normalization, shape layers."""
    two_emb = [Inp("tokens", [None], "int32"),
               L("Embedding", "emb", input_dim=VOCAB, output_dim=3, mask_zero=True),
               Inp("tokens2", [None], "int32"),
               L("Embedding", "emb2", input_dim=VOCAB, output_dim=3, mask_zero=True)]
    emb_x = emb_front() + [Inp("x", [None, 3])]
    for cls in ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        low = cls.lower()
        case(f"{low}_two_emb_masks_gru", two_emb + [L(cls, "merge", inputs=["emb", "emb2"]),
                                                    rnn("gru", return_sequences=True)],
             ["rnn", "merge"], desc=f"{cls} of two Embedding(mask_zero) sequences (patterns of "
                                    f"the second rotated by 3), then a GRU that uses the merged mask")
        case(f"{low}_emb_mask_and_unmasked_lstm", emb_x + [L(cls, "merge", inputs=["emb", "x"]),
                                                           rnn("lstm", return_sequences=True)],
             ["rnn", "merge"], desc=f"{cls} of a masked and an unmasked sequence, then an LSTM")
    case("multiply_three_two_masked", two_emb + [Inp("x", [None, 3]),
                                                 L("Multiply", "merge", inputs=["emb", "x", "emb2"])],
         ["merge"], desc="Multiply of three inputs, the middle one unmasked")
    case("maximum_three_masked", two_emb + [Inp("tokens3", [None], "int32"),
                                            L("Embedding", "emb3", input_dim=VOCAB, output_dim=3,
                                              mask_zero=True),
                                            L("Maximum", "merge", inputs=["emb", "emb2", "emb3"]),
                                            rnn("simplernn", return_sequences=True)],
         ["rnn", "merge"], desc="Maximum of three masked inputs")
    case("concatenate_time_axis_emb_mask_unmasked", emb_x + [
        L("Concatenate", "merge", inputs=["emb", "x"], axis=1), rnn("gru", return_sequences=True)],
        ["rnn", "merge"], desc="Concatenate along time of a masked and an unmasked sequence: the "
                               "masks are joined along time (the unmasked one all valid)")
    case("concatenate_time_axis_two_masks", two_emb + [
        L("Concatenate", "merge", inputs=["emb", "emb2"], axis=1), rnn("lstm")],
        ["rnn"], desc="Concatenate along time of two masked sequences, LSTM last output")
    case("concatenate_2d_after_two_lstms", emb_x + [
        rnn("lstm", inputs="emb"), rnn("gru", name="rnn2", inputs="x"),
        L("Concatenate", "merge", inputs=["rnn", "rnn2"]), L("Dense", "d", units=2)],
        ["d"], desc="Concatenate of two RNN last outputs (2-D), then Dense")
    case("batchnorm_after_lstm_emb_mask", emb_front() + [
        rnn("lstm", return_sequences=True), L("BatchNormalization", "bn"),
        rnn("gru", name="rnn2", return_sequences=True)],
        ["rnn2", "bn"], desc="BatchNormalization (inference; keeps the mask) between two RNNs")
    case("batchnorm_time_axis_noscale", [Inp("x", [6, 3]),
         L("BatchNormalization", "bn", axis=1, scale=False, epsilon=0.01), rnn("simplernn")],
         ["rnn", "bn"], desc="BatchNormalization on axis 1 (time, fixed T), scale=False")
    case("layernorm_emb_mask_gru", emb_front() + [
        L("LayerNormalization", "ln"), rnn("gru", return_sequences=True)],
        ["rnn", "ln"], desc="LayerNormalization (keeps the mask) before a GRU")
    case("layernorm_two_axes_nocenter", [Inp("x", [6, 3]),
         L("LayerNormalization", "ln", axis=[1, 2], center=False, epsilon=0.1)],
         ["ln"], desc="LayerNormalization over axes [1, 2], center=False")
    case("explicit_mask_not_equal_ids_lstm", [Inp("x", [None, 3]), Inp("ids", [None], "int32"),
         L("Compare", "ne", inputs="ids", op="not_equal", value=0), L("SetMask", "s", inputs=["x", "ne"]),
         rnn("lstm", return_sequences=True), rnn("gru", name="rnn2", inputs="rnn")],
         ["rnn", "rnn2"], desc="mask=ops.not_equal(ids, 0) of another Input on an LSTM over floats; its "
                               "output sequence carries that mask on to a GRU")
    case("explicit_mask_greater_float_gru", [Inp("x", [None, 3]), Inp("w", [None]),
         L("Compare", "gt", inputs="w", op="greater", value=0.25), L("SetMask", "s", inputs=["x", "gt"]),
         rnn("gru", return_sequences=True)],
         ["rnn"], desc="mask=ops.greater(w, 0.25) of a float (batch, time) Input on a GRU")
    case("explicit_mask_less_equal_ids_simplernn", [Inp("x", [None, 3]), Inp("ids", [None], "int32"),
         L("Compare", "le", inputs="ids", op="less_equal", value=4), L("SetMask", "s", inputs=["x", "le"]),
         rnn("simplernn")],
         ["rnn"], desc="mask=ops.less_equal(ids, 4) on a SimpleRNN (last output)")
    case("explicit_mask_logical_gru", [Inp("x", [None, 3]), Inp("a", [None], "bool"), Inp("b", [None], "bool"),
         L("LogicalOp", "na", inputs="a", op="not"), L("LogicalOp", "x1", inputs=["na", "b"], op="xor"),
         L("LogicalOp", "m", inputs=["x1", "a"], op="or"), L("LogicalOp", "m2", inputs=["m", "b"], op="and"),
         L("SetMask", "s", inputs=["x", "m2"]), rnn("gru", return_sequences=True)],
         ["rnn"], desc="mask=logical_and(logical_or(logical_xor(logical_not(a), b), a), b) of bool Inputs")
    case("explicit_mask_any_all_not_equal", [Inp("x", [None, 3]),
         L("Compare", "nz", inputs="x", op="not_equal", value=0.0),
         L("ReduceBool", "any", inputs="nz", op="any"), L("ReduceBool", "all", inputs="nz", op="all"),
         L("SetMask", "s", inputs=["x", "any"]), rnn("lstm", return_sequences=True),
         L("SetMask", "s2", inputs=["x", "all"]), rnn("gru", name="rnn2")],
         ["rnn", "rnn2"], desc="mask=ops.any / ops.all(ops.not_equal(x, 0), axis=-1) of the layer's own "
                               "unmasked float input (Masking's form, without a Masking layer)")
    case("explicit_mask_overrides_embedding_mask", emb_front() + [Inp("t2", [None], "int32"),
         L("Compare", "ne", inputs="t2", op="not_equal", value=0), L("SetMask", "s", inputs=["emb", "ne"]),
         rnn("gru", return_sequences=True), rnn("lstm", name="rnn2", inputs="rnn")],
         ["rnn", "rnn2"], desc="mask=ops.not_equal(t2, 0) replaces the Embedding(mask_zero) mask of "
                               "tokens (the explicit mask wins) and travels on to the LSTM")
    case("categoryencoding_onehot_lstm", [Inp("tokens", [None], "int32"),
         L("CategoryEncoding", "oh", num_tokens=VOCAB, output_mode="one_hot"), rnn("lstm", return_sequences=True)],
         ["rnn", "oh"], desc="CategoryEncoding(one_hot) appends a num_tokens axis to (batch, time) ids, then an LSTM")
    case("categoryencoding_onehot_last_axis_1_gru", [Inp("tokens", [6, 1], "int64"),
         L("CategoryEncoding", "oh", num_tokens=5, output_mode="one_hot"), rnn("gru", return_sequences=True)],
         ["rnn", "oh"], desc="CategoryEncoding(one_hot) replaces a last axis of size 1 by num_tokens (int64 ids)")
    case("timedistributed_crnn_gru", [Inp("frames", [6, 8, 6, 1]),
         L("TimeDistributed", "conv", layer={"class_name": "Conv2D", "filters": 3, "kernel_size": [3, 3],
                                             "padding": "same", "activation": "relu"}),
         L("TimeDistributed", "pool", layer={"class_name": "MaxPooling2D", "pool_size": [2, 2]}),
         L("TimeDistributed", "avg", layer={"class_name": "AveragePooling2D", "pool_size": [2, 1],
                                            "strides": [1, 1]}),
         L("TimeDistributed", "flat", layer={"class_name": "Flatten"}), rnn("gru", return_sequences=True)],
         ["rnn", "flat"], desc="TimeDistributed Conv2D -> MaxPooling2D -> AveragePooling2D -> Flatten per "
                               "frame, then a GRU (CRNN front end)")
    case("timedistributed_keeps_emb_mask_lstm", emb_front() + [
         L("TimeDistributed", "td", layer={"class_name": "Flatten"}), rnn("lstm", return_sequences=True)],
         ["rnn"], desc="TimeDistributed(Flatten) keeps the Embedding mask (Keras 3), which the LSTM then uses")
    case("repeatvector_seq2seq", float_front() + [
        rnn("lstm"), L("RepeatVector", "rep", n=4), rnn("gru", name="rnn2", return_sequences=True),
        L("Dense", "d", units=2)],
        ["d"], desc="LSTM encoder -> RepeatVector(4) -> GRU decoder -> Dense")
    case("flatten_after_lstm_emb_mask", [Inp("tokens", [6], "int32"),
         L("Embedding", "emb", input_dim=VOCAB, output_dim=3, mask_zero=True),
         rnn("lstm", return_sequences=True), L("Flatten", "flat"), L("Dense", "d", units=2)],
         ["d"], desc="Flatten (drops the mask) of a masked LSTM sequence, then Dense")
    case("reshape_then_gru", [Inp("x", [12]), L("Reshape", "resh", target_shape=[-1, 3]),
         rnn("gru", return_sequences=True)],
         ["rnn"], T=4, desc="Reshape a flat vector to (4, 3), then a GRU")
    case("permute_then_lstm", [Inp("x", [6, 4]), L("Permute", "perm", dims=[2, 1]), rnn("lstm")],
         ["rnn"], desc="Permute (2, 1) turns (6, 4) into (4, 6) for the LSTM")
    case("reshape_emb_mask_dropped", [Inp("tokens", [6], "int32"),
         L("Embedding", "emb", input_dim=VOCAB, output_dim=4, mask_zero=True),
         L("Reshape", "resh", target_shape=[3, 8]), rnn("simplernn", return_sequences=True)],
         ["rnn"], desc="Reshape drops the Embedding mask: the SimpleRNN runs every step")
    att_front = two_emb + [rnn("gru", name="enc", inputs="emb", return_sequences=True),
                           rnn("gru", name="dec", inputs="emb2", return_sequences=True)]
    for tag, cls, kw in [("dot", "Attention", {}), ("dot_scale", "Attention", dict(use_scale=True)),
                         ("concat_scale", "Attention", dict(score_mode="concat", use_scale=True)),
                         ("concat", "Attention", dict(score_mode="concat")),
                         ("additive", "AdditiveAttention", {}),
                         ("additive_noscale", "AdditiveAttention", dict(use_scale=False))]:
        case(f"attention_{tag}_enc_dec_masks", att_front + [
            L(cls, "att", inputs=["dec", "enc"], **kw), rnn("lstm", name="post", return_sequences=True)],
            ["post", "att"], desc=f"{cls} {kw} of a masked decoder (query) over a masked encoder "
                                  f"(value): value mask on the scores, query mask on the output "
                                  f"and passed on; a fully masked value row weighs all steps equally")
    case("attention_causal_scores_self_masked", emb_front(dim=3) + [
        L("Attention", "att", inputs=["emb", "emb"], use_causal_mask=True, return_attention_scores=True),
        rnn("gru", name="post", inputs="att", return_sequences=True)],
        ["post", "att", "att:1"], desc="causal self-attention with return_attention_scores over a "
                                       "masked sequence (rows whose allowed steps are all masked "
                                       "weigh every step equally)")
    case("additive_attention_causal_masked", att_front + [
        L("AdditiveAttention", "att", inputs=["dec", "enc"], use_causal_mask=True)],
        ["att"], desc="AdditiveAttention with use_causal_mask, both masked")
    case("attention_query_value_key_unmasked", float_front(3) + [
        Inp("v", [None, 2]), Inp("k", [None, 3]), L("Attention", "att", inputs=["x", "v", "k"])],
        ["att"], desc="Attention with a separate key, no masks")
    case("crnn_conv2d_maxpool2d_gru", [Inp("img", [8, 6, 1]),
         L("Conv2D", "conv", filters=4, kernel_size=[3, 3], padding="same", activation="relu"),
         L("MaxPooling2D", "pool", pool_size=[2, 2]), L("Permute", "perm", dims=[2, 1, 3]),
         L("Reshape", "resh", target_shape=[3, 16]), rnn("gru", return_sequences=True)],
         ["rnn", "pool"], desc="CRNN front end: Conv2D same relu -> MaxPooling2D -> Permute -> "
                               "Reshape to (width, features) -> GRU")
    case("conv2d_strided_groups_avgpool2d", [Inp("img", [7, 6, 2]),
         L("Conv2D", "conv", filters=4, kernel_size=[3, 2], strides=[2, 1], groups=2),
         L("Conv2D", "conv2", filters=2, kernel_size=[2, 2], dilation_rate=[1, 2], padding="same",
           use_bias=False),
         L("AveragePooling2D", "pool", pool_size=[3, 3], strides=[1, 2], padding="same"),
         L("MaxPooling2D", "pool2", inputs="conv", pool_size=[2, 2], strides=[1, 1], padding="same"),
         L("Flatten", "flat", inputs="pool"), L("Dense", "d", units=2)],
         ["d", "pool2"], desc="Conv2D strides/groups, dilated same Conv2D, Average/MaxPooling2D "
                              "same with strides")
    case("dot_scores_and_cosine", att_front + [
        L("Dot", "scores", inputs=["dec", "enc"], axes=2),
        rnn("lstm", name="rnn_last", inputs="enc"), rnn("lstm", name="rnn_last2", inputs="dec"),
        L("Dot", "cos", inputs=["rnn_last", "rnn_last2"], axes=1, normalize=True),
        L("Dot", "over_time", inputs=["enc", "dec"], axes=[1, 1])],
        ["scores", "cos", "over_time"], desc="Dot: attention-style scores (axes 2), cosine of two "
                                             "vectors (normalize), contraction over time (axes [1, 1]); "
                                             "Dot drops the masks")
    conv_variants = {
        "valid": dict(kernel_size=3),
        "same_stride2_relu": dict(kernel_size=3, padding="same", strides=2, activation="relu"),
        "causal_dilated_groups": dict(kernel_size=2, padding="causal", dilation_rate=2, groups=2),
        "same_even_kernel_nobias": dict(kernel_size=4, padding="same", use_bias=False),
    }
    for tag, kw in conv_variants.items():
        case(f"conv1d_{tag}_emb_mask_lstm", emb_front(dim=4) + [L("Conv1D", "conv", filters=4, **kw),
                                                               rnn("lstm", return_sequences=True)],
             ["rnn", "conv"], T=7, desc=f"Conv1D {kw} on an Embedding(mask_zero) sequence: Keras "
                                         f"drops the mask at Conv1D (the LSTM runs every step)")
    case("conv1d_maxpool_gru", float_front(3) + [
        L("Conv1D", "conv", filters=4, kernel_size=3, padding="same", activation="tanh"),
        L("MaxPooling1D", "pool", pool_size=2), rnn("gru", return_sequences=True)],
        ["rnn", "pool"], T=7, desc="CNN-RNN front end: Conv1D same -> MaxPooling1D(2) -> GRU")
    case("pool1d_same_strides", float_front(3) + [
        L("MaxPooling1D", "mp", pool_size=3, strides=2, padding="same"),
        L("AveragePooling1D", "ap", inputs="x", pool_size=3, strides=1, padding="same"),
        L("AveragePooling1D", "ap2", inputs="x", pool_size=2)],
        ["mp", "ap", "ap2"], T=7, desc="MaxPooling1D same with strides; AveragePooling1D same (even "
                                       "padding: the average of a window's real steps) and valid")
    case("prelu_shared_time_emb_mask", emb_front() + [
        L("PReLU", "prelu", shared_axes=[1]), rnn("gru", return_sequences=True),
        L("Dense", "d", units=3), L("PReLU", "prelu2", shared_axes=[1])],
        ["prelu2", "prelu"], desc="PReLU with alpha shared over time (variable T), keeps the mask")
    case("prelu_per_element", [Inp("x", [6, 3]), L("PReLU", "prelu"), rnn("lstm")],
         ["rnn", "prelu"], desc="PReLU with one alpha per (time, feature) on a fixed-T input")
    case("leaky_relu_slopes_emb_mask", emb_front() + [
        L("LeakyReLU", "leaky", negative_slope=0.05), rnn("gru", return_sequences=True),
        L("LeakyReLU", "leaky2")],
        ["leaky2", "leaky"], desc="LeakyReLU negative_slope 0.05 and the default 0.3; keeps the mask")

    # --- activation layers with their options (A14) ----------------------------------------------
    relus, k = [], 0
    for mx in (None, 6.0, 0.5, 0.0):
        for slope in (0.0, 0.2):
            for thr in (0.0, 0.3):
                relus.append(L("ReLU", f"relu{k}", inputs="x", max_value=mx, negative_slope=slope,
                               threshold=thr))
                k += 1
    relus.append(L("ReLU", f"relu{k}", inputs="x", max_value=0.2, negative_slope=0.1, threshold=0.3))
    case("relu_options_grid", [Inp("x", [None, 3])] + relus, [r["name"] for r in relus],
         desc="ReLU: every combination of max_value (None, 6, 0.5, 0), negative_slope (0, 0.2) and "
              "threshold (0, 0.3), and max_value 0.2 under threshold 0.3; inputs on a 0.1 grid "
              "with exact ties (x == threshold, x == max_value, 0, -0) at the start of row 0")
    case("relu_threshold_slope_max_emb_mask_gru", emb_front() + [
        L("ReLU", "relu", max_value=0.25, negative_slope=0.3, threshold=0.1),
        rnn("gru", return_sequences=True), L("ReLU", "relu2", negative_slope=0.5)],
        ["relu2", "relu"], desc="ReLU with all three options keeps the Embedding mask (the GRU skips "
                                "masked steps), then ReLU(negative_slope=0.5) (Keras's leaky_relu path)")
    case("elu_alphas", [Inp("x", [None, 3])] + [
        L("ELU", f"elu{i}", inputs="x", alpha=a) for i, a in enumerate((1.0, 0.5, 2.5, -0.7, 0.0))],
        [f"elu{i}" for i in range(5)], desc="ELU alpha 1 (default), 0.5, 2.5, -0.7 (Keras computes a "
                                            "negative alpha as written), 0")
    case("elu_alpha_emb_mask_lstm", emb_front() + [
        L("ELU", "elu", alpha=0.4), rnn("lstm", return_sequences=True)],
        ["rnn", "elu"], desc="ELU(alpha=0.4) keeps the Embedding mask")
    case("softmax_axes", [Inp("x", [None, 3]), Inp("img", [4, 5, 3])] + [
        L("Softmax", "sm_last", inputs="x"), L("Softmax", "sm_time", inputs="x", axis=1),
        L("Softmax", "sm_both", inputs="x", axis=[1, 2]), L("Softmax", "sm_list1", inputs="x", axis=[-2]),
        L("Softmax", "sm_img_rows", inputs="img", axis=1),
        L("Softmax", "sm_img_two", inputs="img", axis=[1, 3]),
        L("Softmax", "sm_img_three", inputs="img", axis=[-1, 1, 2]),
        rnn("lstm", inputs="x", return_sequences=True), L("Softmax", "sm_over_time", axis=1)],
        ["sm_last", "sm_time", "sm_both", "sm_list1", "sm_img_rows", "sm_img_two", "sm_img_three",
         "sm_over_time"],
        desc="Softmax over the last axis (default), time (variable T), [time, features], a one-axis "
             "list, and over one, two and three axes of a (4, 5, 3) input; over time of an LSTM's "
             "sequence")


# ---------------------------------------------------------------------------------------------
# Generating one case
# ---------------------------------------------------------------------------------------------


def consumers(spec, name):
    """(layer, how) for every use of layer `name`; how is 'input' or 'state'."""
    res = []
    layers = spec["layers"]
    for i, cfg in enumerate(layers):
        src = cfg.get("inputs")
        refs = [] if src is None else (src if isinstance(src, list) else [src])
        if src is None and i > 0 and layers[i - 1]["name"] == name and cfg["class_name"] != "Input":
            refs = [name]
        if any(parse_ref(r)[0] == name for r in refs):
            res.append((cfg, "input"))
        if any(parse_ref(r)[0] == name for r in cfg.get("initial_state", [])):
            res.append((cfg, "state"))
    return res


def input_kind(spec, inp):
    uses = consumers(spec, inp["name"])
    assert len(uses) == 1 or all(c["class_name"] not in ("Embedding", "Masking") and h == "input"
                                 for c, h in uses), (inp["name"], uses)   # several float readers
    cfg, how = uses[0]
    if how == "state":
        return ("state", None)
    feeds = keras_class(cfg["class_name"]).get("feeds")
    return feeds(cfg) if feeds else ("float", None)


def make_inputs(spec, info, rng, chunk):
    ins = [l for l in spec["layers"] if l["class_name"] == "Input"]
    kinds = [input_kind(spec, l) for l in ins]
    masked = any(k[0] in ("tokens_masked", "masked", "compared", "bool_masked") for k in kinds)
    B = info["batch"] or next((l["batch_size"] for l in ins if "batch_size" in l), None)
    B = B or (len(info["patterns"]) if masked else 4)
    T = info["T"]
    out = {}
    n_masked = 0
    for l, (kind, arg) in zip(ins, kinds):
        shape = l["shape"]
        dtype = np.dtype(l.get("dtype", "float32"))
        if kind == "state":
            out[l["name"]] = rng.uniform(-0.9, 0.9, (B, shape[0])).astype(dtype)
            continue
        if kind != "float" or len(shape) == 2:  # a sequence input: [T or null, (F)] (not images)
            assert shape[0] in (None, T), (l, T)
        if kind == "bool_masked" and dtype != np.bool_:
            kind = "float"   # the sequence a SetMask puts the mask on
        if kind in ("compared", "bool_masked"):
            m = mask_matrix(info["patterns"][:B], T, chunk + 3 * n_masked)
            n_masked += 1
            out[l["name"]] = m if kind == "bool_masked" else compared_values(arg, m, dtype, shape, rng)
            continue
        if kind in ("tokens", "tokens_masked"):
            if kind == "tokens":
                out[l["name"]] = rng.integers(0, arg, (B, T, *shape[1:])).astype(dtype)
            else:
                # a second masked input (decoder) gets the patterns rotated by 3
                m = mask_matrix(info["patterns"][:B], T, chunk + 3 * n_masked)
                n_masked += 1
                out[l["name"]] = (rng.integers(1, arg, (B, T)) * m).astype(dtype)
        else:
            if len(shape) >= 3:  # images (height, width, channels), or sequences of them
                out[l["name"]] = rng.normal(0, 1, (B, *shape)).astype(dtype)
                continue
            F = shape[-1]
            if len(shape) == 1:  # 2-D Dense input
                out[l["name"]] = rng.normal(0, 1, (B, F)).astype(dtype)
                continue
            x = rng.normal(0, 1, (B, T, F)).astype(dtype)
            if kind == "grid":
                x = np.round(rng.normal(0, 3, (B, T, F)), 1).astype(dtype)
                x[0].flat[:len(arg)] = np.asarray(arg, dtype)
            if kind == "masked":
                m = mask_matrix(info["patterns"][:B], T, chunk + 3 * n_masked)
                n_masked += 1
                x[~m] = arg
                # a valid step where only some features equal mask_value
                for b in range(B):
                    if m[b].all() and F > 1:
                        x[b, 1, 0] = arg
                        break
            out[l["name"]] = x
    return out


def compared_values(cfg, m, dtype, shape, rng):
    """Values of shape (B, T, *shape[1:]) that compare True (cfg: a Compare layer) on the steps
    where m is True and False on the others (every feature of a padded step; on valid steps of
    an input with features, one feature of one row compares False, for any() vs all())."""
    op, v = cfg["op"], cfg["value"]
    full = (*m.shape, *shape[1:])
    if np.issubdtype(dtype, np.integer):
        up, down = rng.integers(1, VOCAB, full), -rng.integers(1, VOCAB, full)
    else:
        up, down = rng.uniform(0.1, 1.0, full), -rng.uniform(0.1, 1.0, full)
    true_, false_ = {"not_equal": (v + up, np.full(full, v)), "equal": (np.full(full, v), v + up),
                     "greater": (v + up, v + down + (0 if np.issubdtype(dtype, np.integer) else 0.05)),
                     "greater_equal": (v + up - 1 if np.issubdtype(dtype, np.integer) else v + up, v + down),
                     "less": (v + down, v - down - (0 if np.issubdtype(dtype, np.integer) else 0.05)),
                     "less_equal": (v + down + 1 if np.issubdtype(dtype, np.integer) else v + down,
                                    v - down)}[op]
    mm = m.reshape(*m.shape, *[1] * (len(full) - 2))
    x = np.where(mm, true_, false_)
    if len(full) > 2:
        b, t = np.argwhere(m)[0]
        x[b, t, 0] = false_[b, t, 0]
    return x.astype(dtype)


def to_np(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def generate(name, info):
    spec = info["spec"]
    # both variants of an initial_state_mask case share the seed: same weights and inputs
    rng = np.random.default_rng(zlib.crc32(info["seed_name"].encode()))
    model = build_keras(spec, info["explicit_mask"])
    weights = {}
    for key, var in weight_vars(model):
        low = 0.5 if key.endswith(POSITIVE_WEIGHTS) else -0.5
        val = rng.uniform(low, low + 1.0, tuple(var.shape)).astype(var.dtype)
        var.assign(val)
        weights[key] = to_np(var.value).astype(np.float32)
        assert np.array_equal(weights[key], val)
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()
    io_arrays = {}
    for c in range(info["chunks"]):
        ins = make_inputs(spec, info, rng, c)
        res = model([ins[t.name] for t in model.inputs], training=False)
        res = list(res) if isinstance(res, (list, tuple)) else [res]
        assert len(res) == len(spec["outputs"])
        for n, a in ins.items():
            io_arrays[f"chunk{c}/in/{n}"] = a
        for i, r in enumerate(res):
            io_arrays[f"chunk{c}/out/{i}"] = to_np(r)
    # check the spec's input order is the model's
    assert [t.name for t in model.inputs] == [
        l["name"] for l in spec["layers"] if l["class_name"] == "Input"]
    return spec, weights, io_arrays, model


def write_case(name, spec, weights, io_arrays):
    d = OUT_DIR / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps(spec, indent=1) + "\n")
    write_npz(d / "weights.npz", weights)
    write_npz(d / "io.npz", io_arrays)



# ---------------------------------------------------------------------------------------------
# Facts recorded in tests/goldens/README.md, re-checked on every full run
# ---------------------------------------------------------------------------------------------


def check_facts(generated: dict[str, tuple[dict, dict]]) -> list[tuple[str, bool]]:
    """The facts, on the cases just generated: {name: (spec, io arrays)} (the io.npz keys)."""

    def g(name, chunk=0):
        spec, io_arrays = generated[name]
        ins = {l["name"]: io_arrays[f"chunk{chunk}/in/{l['name']}"]
               for l in spec["layers"] if l["class_name"] == "Input"}
        return ins, [io_arrays[f"chunk{chunk}/out/{i}"] for i in range(len(spec["outputs"]))]

    res = []

    def fact(label, ok):
        res.append((label, bool(ok)))

    # Rows of the masked batch: 0 none, 1 right-padded, 2 left-padded, 3 gaps, 4 empty, 5 combined.
    for k, H in (("simplernn", 4), ("lstm", 4), ("gru", 4), ("gru_reset_before", 3)):
        ins, outs = g(f"{k}_initial_state_emb_mask_seq_state")
        seq, h = outs[0], outs[1]
        fact(f"F1 {k}: initial_state + honoured mask: output 0 before the first valid step "
             "(h0 != 0)", np.all(seq[2, :2] == 0) and np.all(seq[5, 0] == 0)
             and np.all(ins["h0"][[2, 5]] != 0))
        fact(f"F1 {k}: fully masked row returns the initial state(s)",
             np.array_equal(h[4], ins["h0"][4])
             and (len(outs) < 3 or np.array_equal(outs[2][4], ins["c0"][4])))
        fact(f"F1 {k}: fully masked row, return_sequences: all-zero sequence", np.all(seq[4] == 0))
        ins, outs = g(f"{k}_initial_state_emb_mask_last")
        fact(f"F2 {k}: initial_state + mask, rs=False: fully masked row outputs 0, not h0",
             np.all(outs[0][4] == 0) and np.all(ins["h0"][4] != 0))
        ins, outs = g(f"{k}_initial_state_emb_mask_dropped_seq_state")
        fact(f"F3 {k}: plain functional initial_state drops the mask: the fully masked row "
             "evolves and ends away from h0",
             not np.allclose(outs[0][4, 0], outs[0][4, -1])
             and not np.allclose(outs[1][4], ins["h0"][4]))
    _, outs = g("seq2seq_lstm_emb_mask_dropped")
    _, outs2 = g("seq2seq_lstm_emb_mask")
    fact("F3 seq2seq: decoder output differs with/without the mask; encoder states identical",
         not np.allclose(outs[0], outs2[0]) and np.array_equal(outs[1], outs2[1]))

    ins, outs = g("gmp_after_gru_emb_mask")
    pool, seq = outs[0], outs[2]
    valid = ins["tokens"] != 0
    masked_max = np.where(valid[..., None], seq, -np.inf).max(1)
    fact("F4 GlobalMaxPooling1D ignores the mask: max over all steps",
         np.array_equal(pool, seq.max(1)) and not np.allclose(pool[valid.any(1)],
                                                              masked_max[valid.any(1)]))

    for c in (1, 2):
        ins, outs = g("lstm_stateful_emb_mask_seq_state", c)
        _, prev = g("lstm_stateful_emb_mask_seq_state", c - 1)
        tok = ins["tokens"]
        rows = [b for b in range(tok.shape[0])
                if tok[b, 0] == 0 and tok[b].any() and np.all(prev[1][b] != 0)]
        fact(f"F5 stateful LSTM chunk{c}: masked steps at the start of a chunk output 0, not the "
             "carried h", rows and all(np.all(outs[0][b, 0] == 0) for b in rows))

    ins, outs = g("lstm_backwards_seq_then_gru_emb_mask")
    r2 = outs[0]  # row 1 right-padded: tokens valid at t < T-2
    fact("F6 the mask passed on by a go_backwards return_sequences RNN is not reversed",
         np.all(ins["tokens"][1, -2:] == 0) and np.array_equal(r2[1, -1], r2[1, -3])
         and np.any(r2[1, 0] != 0))

    ins, outs = g("bidi_lstm_concat_emb_mask_seq_state")
    fact("F7 Bidirectional rs=True: merged output 0 at masked steps (zero_output_for_mask forced)",
         np.all(outs[0][4] == 0) and np.all(outs[0][1, -2:] == 0))
    ins, outs = g("bidi_lstm_concat_emb_mask_last")
    fact("F7 Bidirectional rs=False: right-padded row gives a non-zero forward half",
         np.all(outs[0][1, :3] != 0))

    for k in KINDS:
        ins, outs = g(f"{k}_masking_zero_output_backwards_last")
        fact(f"F8 {k}: zero_output_for_mask + go_backwards + rs=False: 0 iff time 0 is masked",
             np.all(outs[0][[2, 4, 5]] == 0) and np.all(outs[0][[0, 1, 3]] != 0))
        ins, outs = g(f"{k}_masking_zero_output_last")
        fact(f"F8 {k}: zero_output_for_mask + rs=False: 0 iff the last step is masked",
             np.all(outs[0][[1, 4, 5]] == 0) and np.all(outs[0][[0, 2, 3]] != 0))

    # direct probes
    cfg = keras.layers.LSTM(3).get_config()
    fact("F9 LSTM.get_config() has zero_output_for_mask (False by default)",
         cfg.get("zero_output_for_mask", "absent") is False)
    inp = keras.Input((None,), dtype="int32")
    e = keras.layers.Embedding(4, 2, mask_zero=True)(inp)
    m = keras.Model(inp, keras.layers.GlobalAveragePooling1D()(e))
    y = to_np(m(np.array([[1, 2, 0], [0, 0, 0]], "int32")))
    fact("F10 GlobalAveragePooling1D gives NaN for a fully masked row",
         np.all(np.isfinite(y[0])) and np.all(np.isnan(y[1])))
    try:
        keras.layers.Bidirectional(keras.layers.LSTM(3, go_backwards=True))
        rejected = False
    except ValueError:
        rejected = True
    fact("F11 Bidirectional(layer with go_backwards=True) raises ValueError", rejected)
    inp = keras.Input((4,), dtype="int32")
    e = keras.layers.Embedding(4, 2, mask_zero=True)(inp)
    try:
        m = keras.Model(inp, keras.layers.SimpleRNN(2, unroll=True, go_backwards=True)(e))
        m(np.array([[1, 2, 0, 0]], "int32"))
        crashed = False
    except Exception:
        crashed = True
    fact("F12 torch backend: unroll=True + go_backwards=True + mask raises", crashed)

    # F13: Keras's Softmax applies a [batch, time] mask to the input's LAST two axes
    inp = keras.Input((None,), dtype="int32")
    e = keras.layers.Embedding(6, 4, mask_zero=True)(inp)
    m = keras.Model(inp, keras.layers.Softmax()(e))
    try:
        m(np.array([[1, 2, 3, 0], [0, 4, 5, 1], [1, 1, 0, 0]], "int32"))
        raised = False
    except ValueError:
        raised = True
    y = to_np(m(np.array([[1, 2, 3, 0]], "int32")))       # batch 1, time 4 == features 4
    fact("F13 Softmax on a masked (batch, time, features) sequence raises ValueError; with batch 1 "
         "and time == features the mask of step t zeroes feature t of EVERY step",
         raised and np.all(y[0, :, 3] == 0) and np.all(y[0, 3, :3] != 0))
    x = np.array([0.3, 0.2, 0.4, 6.0, 7.0], "float32")
    y = to_np(keras.layers.ReLU(threshold=0.3, max_value=6.0, negative_slope=0.5)(x))
    fact("F14 ReLU: x == float32(threshold) gives 0; the slope acts on threshold - x; max clips",
         y[0] == 0 and np.isclose(y[1], -0.05) and y[2] == np.float32(0.4) and y[3] == 6 and y[4] == 6)
    return res


def main(argv):
    define_cases()
    words = argv[1:]
    selected = {n: c for n, c in CASES.items() if not words or any(w in n for w in words)}
    if not words:
        # full run: remove stale case directories
        for p in OUT_DIR.glob("*/spec.json"):
            if p.parent.name not in CASES:
                shutil.rmtree(p.parent)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    manifest_path = OUT_DIR / "manifest.json"
    manifest = {
        "generator": "tools/make_goldens.py",
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "torch": torch.__version__.split("+")[0],
        "cases": {},
    }
    if words and manifest_path.exists():
        manifest["cases"] = json.loads(manifest_path.read_text())["cases"]
    generated = {}
    for name, info in selected.items():
        spec, weights, io_arrays, _ = generate(name, info)
        write_case(name, spec, weights, io_arrays)
        generated[name] = (spec, io_arrays)
        manifest["cases"][name] = {"description": info["desc"], "chunks": info["chunks"],
                                   "keras_drops_mask_with_initial_state": info["mask_dropped"]}
        print(f"{name}: ok", flush=True)
        keras.backend.clear_session()
    manifest["cases"] = dict(sorted(manifest["cases"].items()))
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    if not words:
        failed = 0
        for label, ok in check_facts(generated):
            print(("PASS " if ok else "FAIL ") + label)
            failed += not ok
        if failed:
            sys.exit(f"{failed} recorded Keras facts no longer hold: update tests/goldens/README.md")


if __name__ == "__main__":
    if keras.backend.backend() != "torch":
        sys.exit("run with KERAS_BACKEND=torch")
    main(sys.argv)
