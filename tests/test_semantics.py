"""Pins the reference to the Keras facts in docs/semantics.md (each test names its fact), and
onnxruntime on the lowered model to the reference."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnncompile.reference import run_reference
from rnncompile.spec import load_spec

from helpers import MIXED, ort_vs_reference, token_spec, tokens

KINDS = ["SimpleRNN", "LSTM", "GRU"]


def _ref(spec, feeds):
    model = load_spec(spec)
    outs, _ = run_reference(model, feeds)
    return dict(zip(model.output_names, outs)), model


@pytest.mark.parametrize("kind", KINDS)
def test_masked_step_keeps_state_and_gaps_equal_compacted_input(kind):
    # Fact: at a masked step the cell runs but every state keeps its previous value; a mask may
    # have gaps. So a row with gaps gives the same final state as the row with its gaps removed.
    spec = token_spec({"class_name": kind, "name": "r", "units": 3, "return_state": True})
    x = tokens(["gaps"])
    compact = x[:, x[0] != 0]
    full, _ = _ref(spec, {"t": x})
    short, _ = _ref(spec, {"t": compact})
    np.testing.assert_allclose(full["r_state_h"], short["r_state_h"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(full["r"], short["r"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_output_is_carried_or_zero(kind):
    # Fact: output at a masked step is the last valid output (0 before the first valid step), or
    # 0 with zero_output_for_mask.
    x = tokens(["left", "gaps"])
    carried, _ = _ref(token_spec({"class_name": kind, "name": "r", "units": 3, "return_sequences": True}), {"t": x})
    zeroed, _ = _ref(token_spec({"class_name": kind, "name": "r", "units": 3, "return_sequences": True,
                                 "zero_output_for_mask": True}), {"t": x})
    y, z = carried["r"], zeroed["r"]
    assert np.all(y[0, :3] == 0)                         # left padding: before the first valid step
    np.testing.assert_array_equal(y[1, 1], y[1, 0])       # a gap carries the previous output
    np.testing.assert_array_equal(y[1, 4], y[1, 2])
    assert np.all(z[1, [1, 3, 4]] == 0) and np.all(z[0, :3] == 0)
    valid = x != 0
    np.testing.assert_array_equal(y[valid], z[valid])     # valid steps agree


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_output_in_processing_order(kind):
    # Fact: go_backwards reverses inputs and mask; out[:, 0] belongs to time T-1.
    x = tokens(["none"])
    fwd, _ = _ref(token_spec({"class_name": kind, "name": "r", "units": 3, "return_sequences": True}),
                  {"t": x[:, ::-1].copy()})
    bwd, _ = _ref(token_spec({"class_name": kind, "name": "r", "units": 3, "return_sequences": True,
                              "go_backwards": True}), {"t": x})
    np.testing.assert_allclose(bwd["r"], fwd["r"], atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_row_returns_initial_state_and_zero_output(kind):
    # Fact: return_state of a fully masked row is the initial state; the last output is 0.
    n = 2 if kind == "LSTM" else 1
    spec = {"layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        *[{"class_name": "Input", "name": f"s{i}", "shape": [3]} for i in range(n)],
        {"class_name": "Embedding", "name": "emb", "inputs": "t", "input_dim": 20, "output_dim": 4, "mask_zero": True},
        {"class_name": kind, "name": "r", "units": 3, "return_state": True,
         "initial_state": [f"s{i}" for i in range(n)]}]}
    init = {f"s{i}": np.full((2, 3), 0.5 + i, np.float32) for i in range(n)}
    outs, _ = _ref(spec, {"t": tokens(["empty", "none"]), **init})
    assert np.all(outs["r"][0] == 0)
    np.testing.assert_array_equal(outs["r_state_h"][0], init["s0"][0])
    assert not np.allclose(outs["r_state_h"][1], init["s0"][1])
    ort_vs_reference(spec, {"t": tokens(["empty", "none"]), **init})


def test_zero_output_last_output_of_short_row_is_zero():
    # Fact: return_sequences=False with zero_output_for_mask: a row shorter than T returns 0.
    outs, _ = _ref(token_spec({"class_name": "GRU", "name": "r", "units": 3, "zero_output_for_mask": True}),
                   {"t": tokens(["right", "left"])})
    assert np.all(outs["r"][0] == 0) and np.all(outs["r"][1] != 0)


def test_bidirectional_merge_and_state_order():
    # Fact: backward copy has go_backwards=True and its sequence is flipped back; concat puts the
    # forward half first; states come as [h_f, c_f, h_b, c_b].
    x = tokens(["none", "right"])
    layer = {"class_name": "LSTM", "units": 3, "return_sequences": True, "return_state": True}
    spec = token_spec({"class_name": "Bidirectional", "name": "b", "merge_mode": None, "layer": layer})
    sep, model = _ref(spec, {"t": x})
    cat, _ = _ref(token_spec({"class_name": "Bidirectional", "name": "b", "layer": layer}), {"t": x})
    np.testing.assert_array_equal(cat["b"], np.concatenate([sep["b_forward"], sep["b_backward"]], -1))
    assert model.output_names == ["b_forward", "b_backward", "b_forward_state_h", "b_forward_state_c",
                                  "b_backward_state_h", "b_backward_state_c"]
    # the backward state is the state after reading the valid steps from last to first:
    # a unidirectional go_backwards LSTM with the same weights gives it
    w = model.layer_weights(model.layers["b"])
    back = token_spec({"class_name": "LSTM", "name": "r", **{k: v for k, v in layer.items() if k != "class_name"},
                       "go_backwards": True, "zero_output_for_mask": True})
    m2 = load_spec(back, weights={"emb/embeddings": model.weights["emb/embeddings"],
                                  **{f"r/{k[9:]}": v for k, v in w.items() if k.startswith("backward/")}})
    outs, _ = run_reference(m2, {"t": x})
    np.testing.assert_allclose(outs[1], sep["b_backward_state_h"], atol=1e-12)
    np.testing.assert_allclose(outs[0][:, ::-1], sep["b_backward"], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# onnxruntime == reference, over the flag matrix, with every mask pattern in one batch.

FLAGS = list(itertools.product(KINDS, [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("kind,go_backwards,zero_output,return_sequences", FLAGS)
def test_onnx_matches_reference_masked(kind, go_backwards, zero_output, return_sequences):
    layer = {"class_name": kind, "name": "r", "units": 4, "return_state": True, "go_backwards": go_backwards,
             "zero_output_for_mask": zero_output, "return_sequences": return_sequences}
    ort_vs_reference(token_spec(layer, seed=3), {"t": tokens(MIXED)})
    ort_vs_reference(token_spec(layer, seed=3), {"t": tokens(["none"], steps=1)})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masked", [False, True])
def test_onnx_matches_reference_with_initial_state(kind, masked):
    n = 2 if kind == "LSTM" else 1
    spec = {"layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        *[{"class_name": "Input", "name": f"s{i}", "shape": [4]} for i in range(n)],
        {"class_name": "Embedding", "name": "emb", "inputs": "t", "input_dim": 20, "output_dim": 4,
         "mask_zero": masked},
        {"class_name": kind, "name": "r", "units": 4, "return_state": True, "return_sequences": True,
         "initial_state": [f"s{i}" for i in range(n)]}]}
    rng = np.random.default_rng(1)
    feeds = {"t": tokens(MIXED), **{f"s{i}": rng.standard_normal((5, 4)).astype(np.float32) for i in range(n)}}
    ort_vs_reference(spec, feeds)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
@pytest.mark.parametrize("inner", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_onnx_matches_reference_bidirectional(merge_mode, inner, return_sequences):
    spec = token_spec({"class_name": "Bidirectional", "name": "b", "merge_mode": merge_mode,
                       "layer": {"class_name": inner, "units": 3, "return_sequences": return_sequences,
                                 "return_state": True}})
    ort_vs_reference(spec, {"t": tokens(MIXED)})


@pytest.mark.parametrize("act,rec", [("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("elu", "softsign"),
                                     ("softsign", "hard_sigmoid_keras2"), ("tanh", "relu"), ("leaky_relu", "tanh")])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_onnx_matches_reference_activations(act, rec, kind):
    spec = token_spec({"class_name": kind, "name": "r", "units": 3, "activation": act,
                       "recurrent_activation": rec, "return_sequences": True})
    ort_vs_reference(spec, {"t": tokens(MIXED)})


@pytest.mark.parametrize("kind", KINDS)
def test_no_bias_and_gru_reset_before(kind):
    extra = {"reset_after": False} if kind == "GRU" else {}
    spec = token_spec({"class_name": kind, "name": "r", "units": 3, "use_bias": False, **extra},
                      {"class_name": kind, "name": "r2", "units": 3, "inputs": "emb", **extra},
                      mask_zero=False, outputs=["r", "r2"])
    ort_vs_reference(spec, {"t": tokens(["none", "none"])})


def test_masking_dense_pooling_and_glue_layers():
    spec = {"layers": [
        {"class_name": "Input", "name": "x", "shape": [None, 3]},
        {"class_name": "Masking", "mask_value": -1.0},
        {"class_name": "Dense", "units": 4, "activation": "gelu"},
        {"class_name": "Dropout", "rate": 0.5},
        {"class_name": "Activation", "activation": "swish"},
        {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True},
        {"class_name": "GlobalAveragePooling1D", "name": "avg"},
        {"class_name": "GlobalMaxPooling1D", "name": "max", "inputs": "g"},
        {"class_name": "Dense", "name": "head", "inputs": "g", "units": 2, "activation": "softmax"}],
        "outputs": ["avg", "max", "head"]}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    x[0, 4:] = -1.0
    x[1, :2] = -1.0
    x[2, 2] = -1.0
    ref, _ = ort_vs_reference(spec, {"x": x})
    # Masking zeroes masked steps; average pooling ignores them; max pooling (Keras 3) does not
    head_mask_rows = ref["head"]
    np.testing.assert_allclose(head_mask_rows.sum(-1), 1.0, atol=1e-12)


def test_stateful_chunks_equal_one_long_sequence():
    # Keras cross-batch statefulness: feeding chunks carries the state.
    from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
    from rnncompile.backends.reference import ReferenceRunner
    from rnncompile.runtime import Session
    from rnncompile.lower import lower
    from rnncompile.build import io_description

    base = {"class_name": "LSTM", "name": "r", "units": 4, "return_sequences": True}
    stateful = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]}, dict(base, stateful=True)]}
    plain = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]}, base]}
    m_s, m_p = load_spec(stateful), load_spec(plain, weights=None)
    m_p.weights = m_s.weights
    x = np.random.default_rng(0).standard_normal((2, 9, 3)).astype(np.float32)
    whole, _ = run_reference(m_p, {"x": x})
    low = lower(m_s)
    io = io_description(m_s, low)
    for runner in (ReferenceRunner(m_s), OnnxRuntimeRunner(low.model_bytes)):
        sess = Session(runner, io)
        parts = [sess.run({"x": x[:, i:i + 3]})["r"] for i in (0, 3, 6)]
        np.testing.assert_allclose(np.concatenate(parts, 1), whole[0], atol=1e-5)
        sess.reset_states()
        again = sess.run({"x": x[:, :3]})["r"]
        np.testing.assert_allclose(again, parts[0], atol=1e-6)


@pytest.mark.parametrize("kind,acts", [("SimpleRNN", {"activation": "gelu"}),
                                       ("LSTM", {"activation": "swish", "recurrent_activation": "relu6"}),
                                       ("GRU", {"activation": "selu", "recurrent_activation": "softplus"}),
                                       ("GRU", {"activation": "gelu", "reset_after": False})])
@pytest.mark.parametrize("go_backwards,zero_output,return_sequences",
                         [(False, False, True), (True, True, True), (False, True, False), (True, False, False)])
def test_scan_fallback_matches_reference(kind, acts, go_backwards, zero_output, return_sequences):
    # activations no native operator computes lower to an ONNX Scan with the same mask rule
    layer = {"class_name": kind, "name": "r", "units": 3, "return_state": True, "go_backwards": go_backwards,
             "zero_output_for_mask": zero_output, "return_sequences": return_sequences, **acts}
    spec = token_spec(layer)
    assert load_spec(spec).layers["r"].lowering().startswith("ONNX Scan loop")
    ort_vs_reference(spec, {"t": tokens(MIXED)})


@pytest.mark.parametrize("merge_mode", ["concat", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_scan_fallback_bidirectional_with_initial_state(merge_mode, return_sequences):
    spec = {"layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        *[{"class_name": "Input", "name": f"s{i}", "shape": [3]} for i in range(4)],
        {"class_name": "Embedding", "name": "emb", "inputs": "t", "input_dim": 20, "output_dim": 4, "mask_zero": True},
        {"class_name": "Bidirectional", "name": "b", "merge_mode": merge_mode,
         "initial_state": ["s0", "s1", "s2", "s3"],
         "layer": {"class_name": "LSTM", "units": 3, "activation": "gelu", "return_sequences": return_sequences,
                   "return_state": True}}]}
    rng = np.random.default_rng(2)
    ort_vs_reference(spec, {"t": tokens(MIXED), **{f"s{i}": rng.standard_normal((5, 3)).astype(np.float32)
                                                    for i in range(4)}})
