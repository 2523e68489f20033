"""SimpleRNN on the onnxruntime target: an exact Scan instead of the native RNN op (its CPU kernel
is slower, BENCHMARKS.md). Pins where the Scan is emitted (onnxruntime only, never tensorrt or for
LSTM/GRU), and that it equals the reference and the native op over every mask pattern (empty rows
included), stateful chunks, return_state, initial states, go_backwards, zero_output_for_mask,
Bidirectional merges and stacking."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest

from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.build import io_description
from rnncompile.lower import lower
from rnncompile.spec import load_spec
from rnncompile.targets import ONNXRUNTIME, TENSORRT
from rnncompile.verify import verify

from helpers import MIXED, ort_vs_reference, token_spec, tokens

#: The onnxruntime target as it was: the native RNN op.
NATIVE = replace(ONNXRUNTIME, rnn_ops_as_scan=frozenset())


def _ops(model_bytes: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(model_bytes).graph.node]


def _check(spec: dict) -> None:
    """The Scan lowering passes verification (every mask pattern, empty rows, stateful chunks)
    and agrees with the native op's lowering on the same cases."""
    model = load_spec(spec)
    scan, native = lower(model), lower(model, NATIVE)
    assert "RNN" not in _ops(scan.model_bytes) and "Scan" in _ops(scan.model_bytes)
    assert "RNN" in _ops(native.model_bytes)
    io = io_description(model, scan)
    report = verify(model, OnnxRuntimeRunner(scan.model_bytes, threads=1), io)
    assert report.passed, report
    for pattern in (MIXED if "t" in model.inputs else [None]):
        feeds = ({"t": tokens([pattern] * 2 + MIXED, steps=6)} if pattern else
                 {"x": np.random.default_rng(0).standard_normal((5, 6, 4)).astype(np.float32)})
        for s in model.states:
            feeds[s.input_name] = np.full((len(next(iter(feeds.values()))), *s.shape), 0.5, np.float32)
        a = OnnxRuntimeRunner(scan.model_bytes, threads=1).run(feeds)
        b = OnnxRuntimeRunner(native.model_bytes, threads=1).run(feeds)
        for k in b:
            np.testing.assert_allclose(a[k], b[k], atol=1e-5, rtol=1e-5, err_msg=f"{k} {pattern}")


@pytest.mark.parametrize("go_backwards,zero_output,return_sequences",
                         [(False, False, True), (True, True, True), (False, True, False), (True, False, False)])
@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "hard_sigmoid"])
def test_masked_simplernn_scan_matches_reference_and_native(go_backwards, zero_output, return_sequences,
                                                            activation):
    _check(token_spec({"class_name": "SimpleRNN", "name": "r", "units": 3, "return_state": True,
                       "activation": activation, "go_backwards": go_backwards,
                       "zero_output_for_mask": zero_output, "return_sequences": return_sequences}))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_zero", [False, True])
def test_bidirectional_simplernn_scan(merge_mode, return_sequences, mask_zero):
    _check(token_spec({"class_name": "Bidirectional", "name": "b", "merge_mode": merge_mode,
                       "layer": {"class_name": "SimpleRNN", "units": 3, "return_sequences": return_sequences,
                                 "return_state": True}}, mask_zero=mask_zero))


def test_stacked_masked_simplernn_hands_over_time_major_and_mixes_with_native_ops():
    spec = token_spec({"class_name": "SimpleRNN", "name": "a", "units": 4, "return_sequences": True},
                      {"class_name": "GRU", "name": "g", "units": 3, "return_sequences": True},
                      {"class_name": "Bidirectional", "name": "b", "layer": {
                          "class_name": "SimpleRNN", "units": 2, "return_sequences": True}},
                      {"class_name": "SimpleRNN", "name": "c", "units": 3, "use_bias": False})
    _check(spec)
    ops = _ops(lower(load_spec(spec)).model_bytes)
    native = _ops(lower(load_spec(spec), NATIVE).model_bytes)
    assert ops.count("Scan") == 3 and ops.count("GRU") == 1
    # the Scans read and leave the op's time-major layout: no Transpose beyond the native graph's
    # (the mask plan's index and the Bidirectional concat), and the input is compacted once
    assert ops.count("Transpose") == native.count("Transpose") == 2  # MaskPlan index, concat
    assert ops.count("TopK") == native.count("TopK") == 1


def test_initial_state_and_stateful_simplernn_scan():
    init = {"layers": [
        {"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
        {"class_name": "Input", "name": "s0", "shape": [3]},
        {"class_name": "Input", "name": "s1", "shape": [3]},
        {"class_name": "Embedding", "name": "emb", "inputs": "t", "input_dim": 20, "output_dim": 4,
         "mask_zero": True},
        {"class_name": "Bidirectional", "name": "b", "inputs": "emb", "initial_state": ["s0", "s1"],
         "layer": {"class_name": "SimpleRNN", "units": 3, "return_sequences": True, "return_state": True}},
        {"class_name": "SimpleRNN", "name": "r", "inputs": "emb", "units": 3, "initial_state": ["s0"],
         "return_state": True}],
        "outputs": ["b", "r"]}
    rng = np.random.default_rng(2)
    ort_vs_reference(init, {"t": tokens(MIXED), **{s: rng.standard_normal((5, 3)).astype(np.float32)
                                                  for s in ("s0", "s1")}})
    _check(token_spec({"class_name": "SimpleRNN", "name": "r", "units": 3, "stateful": True,
                       "return_sequences": True}))
    _check({"layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                       {"class_name": "SimpleRNN", "name": "r", "units": 5, "stateful": True,
                        "return_state": True}]})


def test_only_the_onnxruntime_target_and_only_simplernn_get_the_scan():
    spec = token_spec({"class_name": "SimpleRNN", "name": "r", "units": 3, "return_sequences": True},
                      {"class_name": "LSTM", "name": "l", "units": 3, "return_sequences": True},
                      {"class_name": "GRU", "name": "g", "units": 3})
    model = load_spec(spec)
    ops = _ops(lower(model).model_bytes)
    assert ops.count("Scan") == 1 and "RNN" not in ops and "LSTM" in ops and "GRU" in ops
    trt = _ops(lower(model, TENSORRT).model_bytes)
    assert "Scan" not in trt and "RNN" in trt
    assert not TENSORRT.rnn_ops_as_scan and "RNN" in ONNXRUNTIME.rnn_ops_as_scan
    layer = model.layers["r"]
    assert layer.lowering().startswith("ONNX Scan of Gemm + tanh")
    assert layer.lowering(TENSORRT).startswith("native ONNX RNN")
    assert not layer.fused_path()["native"] and "slower" in layer.fused_path()["why_not"]
    assert layer.fused_path(TENSORRT)["native"]


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_scan_form_gives_the_native_ops_outputs_with_sequence_lens(direction, activation):
    """rnn_as_scan's contract, against onnxruntime's RNN op on the same X, weights, lengths and
    initial state: Y per direction (0 at and past sequence_lens) and Y_h of every non-empty row."""
    from rnncompile.layers.rnn_scan import rnn_as_scan
    from rnncompile.layers.simple_rnn import SimpleRNN
    from rnncompile.onnx_graph import GraphBuilder

    T, B, F, H = 6, 5, 4, 3
    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(7)
    cells = [SimpleRNN(f"c{d}", {"units": H, "activation": activation, "use_bias": True}) for d in range(dirs)]
    params = [(rng.standard_normal((H, F)).astype(np.float32), rng.standard_normal((H, H)).astype(np.float32),
               rng.standard_normal(2 * H).astype(np.float32)) for _ in range(dirs)]
    g = GraphBuilder("g")
    x, lens, h0 = (g.add_input("x", "float32", ["T", "B", F]), g.add_input("lens", "int32", ["B"]),
                   g.add_input("init", "float32", [dirs, "B", H]))
    init = [[g.take(h0, d, axis=0)] for d in range(dirs)]
    seqs, finals = rnn_as_scan(g, cells, params, x, g.cast(lens, "int64"), init, need_seq=True)
    for d in range(dirs):
        g.add_output(seqs[d], f"y{d}", "float32", ["T", "B", H])
        g.add_output(finals[d], f"h{d}", "float32", ["B", H])
    Y, Yh = g.op("RNN", x, g.const(np.stack([p[0] for p in params])), g.const(np.stack([p[1] for p in params])),
                 g.const(np.stack([p[2] for p in params])), lens, h0, n_out=2, hidden_size=H,
                 direction=direction, activations=[activation.capitalize()] * dirs)
    g.add_output(Y, "Y", "float32", ["T", dirs, "B", H])
    g.add_output(Yh, "Yh", "float32", [dirs, "B", H])
    feeds = {"x": rng.standard_normal((T, B, F)).astype(np.float32),
             "lens": np.array([6, 3, 1, 0, 5], np.int32), "init": rng.standard_normal((dirs, B, H)).astype(np.float32)}
    out = OnnxRuntimeRunner(g.to_model().SerializeToString(), threads=1).run(feeds)
    nonempty = feeds["lens"] > 0
    for d in range(dirs):
        np.testing.assert_allclose(out[f"y{d}"], out["Y"][:, d], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(out[f"h{d}"][nonempty], out["Yh"][d][nonempty], atol=1e-5, rtol=1e-5)
    assert not out["y0"][3:, 1].any() and not out["y0"][:, 3].any()  # 0 past sequence_lens


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("mask_zero", [True, False])
def test_typed_graphs_keep_the_scan_body_in_float32(tmp_path, precision, mask_zero):
    """A typed fp16/bf16 graph on onnxruntime, where SimpleRNN is a Scan: the body computes in
    float32 (an island), the outer initializers it reads stay in the graph (the typed-graph pass
    used to drop them: 'Nodes in a graph must be topologically sorted'), and it verifies."""
    import rnncompile
    from rnncompile.targets import get_target

    spec = token_spec({"class_name": "SimpleRNN", "units": 3}, mask_zero=mask_zero)
    result = rnncompile.build(spec, tmp_path / "out", target=get_target("onnxruntime", precision))
    assert result.verified
    assert any("(Scan)" in island for island in result.manifest["typed_graph"]["float32_islands"])
