"""rnncompile.bench and the benchmarks/ comparison pieces: what they compute (feeds, padding,
FLOPs, statistics, process accounting, rendering, the CLI), never how fast anything runs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rnncompile.io import ModelIO, StateIO, TensorIO
from rnncompile.qa import bench
from rnncompile.build import build, io_description
from rnncompile.errors import RunError
from rnncompile.lower import lower
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.backends.reference import ReferenceRunner
from rnncompile.spec import load_spec

from helpers import cli

ROOT = Path(__file__).resolve().parent.parent


def _spec(masked=True, units=6, rnn="LSTM", bidirectional=False, return_sequences=False):
    layer = {"class_name": rnn, "units": units, "return_sequences": return_sequences}
    if bidirectional:
        layer = {"class_name": "Bidirectional", "layer": layer}
    return {"name": "tiny", "layers": [
        {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "input_dim": 30, "output_dim": 5, "mask_zero": masked},
        layer,
        {"class_name": "Dense", "units": 3}]}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "tiny"
    build(_spec(), out, threads=1)
    return out


# -- statistics ------------------------------------------------------------------------------

def test_timing_statistics():
    t = bench.Timing([0.004, 0.001, 0.003, 0.002, 0.010])
    assert t.median == 0.003
    assert t.best == 0.001
    assert t.p90 == pytest.approx(float(np.percentile(t.samples, 90)))
    s = t.summary()
    assert s["runs"] == 5 and s["median_ms"] == pytest.approx(3.0) and s["min_ms"] == pytest.approx(1.0)


def test_time_calls_and_interleaved_call_counts():
    calls = {"a": 0, "b": 0}

    def fn(k):
        def f():
            calls[k] += 1
        return f
    t = bench.time_calls(fn("a"), runs=7, warmup=2)
    assert len(t.samples) == 7 and calls["a"] == 9
    calls = {"a": 0, "b": 0}
    ts = bench.time_interleaved({"a": fn("a"), "b": fn("b")}, runs=5, warmup=1)
    assert set(ts) == {"a", "b"} and all(len(v.samples) == 5 for v in ts.values())
    assert calls == {"a": 6, "b": 6}


# -- padding and feeds -----------------------------------------------------------------------

def test_make_feeds_tokens_padding_and_states():
    io = {"inputs": [{"name": "tokens", "dtype": "int32", "shape": ["batch", "time"],
                      "token_range": 30, "pad_value": 0},
                     {"name": "rnn_state_h_in", "dtype": "float32", "shape": ["batch", 4]}],
          "states": [{"layer": "rnn", "input": "rnn_state_h_in", "output": "o", "shape": [4]}], "outputs": []}
    io = ModelIO.from_dict(io)
    f = bench.make_feeds(io, 3, 11, "left:0.5", seed=1)
    assert f["tokens"].dtype == np.int32 and f["tokens"].shape == (3, 11)
    assert (f["tokens"][:, :5] == 0).all() and (f["tokens"][:, 5:] >= 1).all()
    assert (f["tokens"] < 30).all()
    assert f["rnn_state_h_in"].shape == (3, 4) and not f["rnn_state_h_in"].any()
    assert (bench.make_feeds(io, 3, 11, "none")["tokens"] != 0).all()
    again = bench.make_feeds(io, 3, 11, "left", seed=1)
    assert np.array_equal(again["tokens"], bench.make_feeds(io, 3, 11, "left", seed=1)["tokens"])
    assert bench.masked_inputs(io) == ["tokens"]


def test_make_feeds_float_masking_and_fixed_axes():
    io = {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 5, 3], "pad_value": 0.0}], "outputs": []}
    io = ModelIO.from_dict(io)
    f = bench.make_feeds(io, 2, 100, "right:0.4")["x"]
    assert f.shape == (2, 5, 3)      # a fixed time axis wins over --steps
    assert (f[:, 3:] == 0).all() and (f[:, :3] != 0).any(axis=-1).all()
    with pytest.raises(RunError):
        bench.make_feeds(ModelIO.from_dict({"inputs": [{"name": "x", "dtype": "float32",
                                                         "shape": ["batch", "t", "d"]}], "outputs": []}), 1, 4)


def test_fixed_steps():
    f = bench._fixed_steps
    seq = TensorIO("x", "float32", ("batch", "time", 3))
    side = TensorIO("n", "int32", ("batch", 1))
    assert f(ModelIO((seq, side), ())) is None               # a [batch, 1] side input fixes nothing
    assert f(ModelIO((TensorIO("x", "float32", ("batch", 5, 10)), side), ())) == 5
    state = TensorIO("s_in", "float32", ("batch", 4))
    assert f(ModelIO((seq, state), (), (StateIO("l", "s_in", "s_out", (4,)),))) is None


# -- FLOPs -----------------------------------------------------------------------------------

def test_flop_count_matches_the_formula():
    model = load_spec(_spec(masked=True, units=6))
    low = lower(model)
    io = io_description(model, low)
    b, t, i, h, u = 4, 9, 5, 6, 3
    feeds = bench.make_feeds(io, b, t, "left", seed=3)
    f = bench.flop_count(low.model_bytes, feeds)
    assert f["recurrent"] == t * b * 2 * 4 * h * (i + h)
    valid = int((feeds["tokens"] != 0).sum())
    assert f["recurrent_valid"] == valid * 2 * 4 * h * (i + h)
    assert f["dense"] == 2 * b * h * u
    assert f["total"] == f["recurrent"] + f["dense"]
    assert {o["op"] for o in f["ops"]} >= {"LSTM"}


def test_flop_count_bidirectional_gru_sequence():
    model = load_spec(_spec(masked=False, units=4, rnn="GRU", bidirectional=True, return_sequences=True))
    low = lower(model)
    feeds = bench.make_feeds(io_description(model, low), 2, 7, "none")
    f = bench.flop_count(low.model_bytes, feeds)
    assert f["recurrent"] == f["recurrent_valid"] == 7 * 2 * 2 * 2 * 3 * 4 * (5 + 4)
    assert f["dense"] == 2 * (2 * 7) * 8 * 3          # Dense over every step of [B, T, 2H]


def test_flop_count_scan_fallback():
    # gelu has no ONNX RNN activation: the layer lowers to a Scan (input projection outside,
    # h @ recurrent_kernel inside the body)
    spec = _spec(masked=True, units=4, rnn="SimpleRNN")
    spec["layers"][2]["activation"] = "gelu"
    model = load_spec(spec)
    low = lower(model)
    feeds = bench.make_feeds(io_description(model, low), 3, 6, "left", seed=1)
    f = bench.flop_count(low.model_bytes, feeds)
    assert "Scan" in {o["op"] for o in f["ops"]}
    assert f["recurrent"] == f["recurrent_valid"] == 6 * 3 * 2 * 4 * 4     # h @ R, every step
    assert f["dense"] == 2 * (3 * 6) * 5 * 4 + 2 * 3 * 4 * 3               # x @ K over all steps, Dense


def test_matmul_peak_is_measured():
    p = bench.matmul_peak(1, sizes=(32, 64), runs=2)
    assert p["gflops"] > 0 and p["size"] in (32, 64) and p["threads"] == 1


# -- build directory, processes, rendering, CLI ------------------------------------------------

def test_bench_dir_rows_and_json(built):
    r = bench.bench_dir(built, batches=(1, 3), steps=(6,), threads=(1,), patterns=("none", "left:0.5"),
                        runs=3, warmup=1, processes=False)
    assert [(x.batch, x.pattern) for x in r.rows] == [(1, "none"), (1, "left:0.5"), (3, "none"), (3, "left:0.5")]
    for row in r.rows:
        assert row.runs == 3 and row.steps == 6 and 0 < row.flops_valid <= row.flops
        assert (row.flops_valid == row.flops) == (row.pattern == "none")
        assert 0 < row.min_ms <= row.median_ms <= row.p90_ms
        assert row.sequences_per_s == pytest.approx(row.batch / (row.median_ms / 1e3))
        assert row.fraction_of_peak == pytest.approx(row.gflops_per_s / r.peak[1]["gflops"])
    data = json.loads(json.dumps(r.to_dict()))
    assert data["matmul_peak"]["1"]["gflops"] > 0 and len(data["results"]) == 4
    text = bench.render(r)
    assert "median ms" in text and "fp32 matmul peak" in text and "left:0.5" in text


def test_bench_dir_unmasked_model_skips_padding(tmp_path):
    out = tmp_path / "plain"
    build(_spec(masked=False), out, verify_model=False)
    r = bench.bench_dir(out, batches=(2,), steps=(5,), patterns=("none", "left"), runs=2, warmup=0,
                        processes=False)
    assert [x.pattern for x in r.rows] == ["none"] and r.notes


def test_bench_dir_rejects_bad_input(tmp_path, built):
    with pytest.raises(RunError):
        bench.bench_dir(tmp_path, runs=1, processes=False)
    with pytest.raises(RunError):
        bench.bench_dir(built, patterns=("sideways",), runs=1, processes=False)


def test_process_cost_reports_wall_and_memory(tmp_path):
    r = bench.process_cost([sys.executable, "-c", "x = bytearray(64 << 20); print(len(x))"])
    assert r["wall_s"] > 0 and r["peak_rss_mib"] >= 64
    with pytest.raises(RunError, match="exit 3"):
        bench.process_cost([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_build_and_run_commands(built, tmp_path):
    b = bench.process_cost(bench.build_command(built), read_compile_seconds=True)
    assert b["compile_s"] is not None and 0 < b["compile_s"] < b["wall_s"]
    assert b["command"].startswith("rnncompile build") and "<tmp>" in b["command"]
    inp = tmp_path / "in.npz"
    np.savez(inp, tokens=np.ones((2, 5), np.int32))
    r = bench.process_cost(bench.run_command(built, inp))
    assert r["peak_rss_mib"] > 0 and r["command"].startswith("rnncompile run")


def test_cli_bench(built, tmp_path):
    out = tmp_path / "r.json"
    code, out_text, err = cli("bench", built, "--batch", "2", "--steps", "4", "--runs", "2",
                              "--warmup", "0", "--pattern", "none,right", "--no-process", "--json", out)
    assert code == 0, out_text + err
    assert "of peak" in out_text
    data = json.loads(out.read_text())
    assert [(r["batch"], r["steps"], r["pattern"]) for r in data["results"]] == [(2, 4, "none"), (2, 4, "right")]
    assert cli("bench", built, "--batch", "0").code == 2
    code, _, err = cli("bench", built, "--pattern", "diagonal", "--no-process", "--runs", "1")
    assert code == 2 and "padding pattern" in err


# -- the comparison's other variants agree with the reference ---------------------------------

sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.parametrize("rnn,bidi,rs", [("LSTM", False, False), ("GRU", True, True),
                                         ("SimpleRNN", False, True), ("LSTM", True, False)])
@pytest.mark.parametrize("pattern", ["none", "left", "gaps"])
def test_loop_lowering_and_torch_port_match_the_reference(rnn, bidi, rs, pattern):
    from loop_lowering import lower_with_loops

    spec = _spec(masked=True, units=4, rnn=rnn, bidirectional=bidi, return_sequences=rs)
    model = load_spec(spec)
    io = io_description(model, lower(model))
    feeds = bench.make_feeds(io, 3, 8, pattern, seed=2)
    want = ReferenceRunner(model).run(feeds)
    got = OnnxRuntimeRunner(lower_with_loops(model), threads=1).run(feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-5, rtol=1e-5)
    torch_port = pytest.importorskip("torch_port", exc_type=ImportError)
    tm = torch_port.TorchModel(model)
    out = tm(feeds)
    for k in want:
        np.testing.assert_allclose(out[k], want[k], atol=1e-5, rtol=1e-5)


def test_loop_lowering_uses_loops_only():
    import onnx
    from loop_lowering import lower_with_loops

    m = onnx.load_from_string(lower_with_loops(load_spec(_spec(rnn="GRU", bidirectional=True))))
    ops = {n.op_type for n in m.graph.node}
    assert "Loop" in ops and not ops & {"LSTM", "GRU", "RNN"}


def test_bench_runs_on_the_runner_factory_it_is_given(built):
    from rnncompile.backends import default_factory

    threads_asked = []

    def factory(threads):
        threads_asked.append(threads)
        return default_factory(threads)
    r = bench.bench_dir(built, batches=(2,), steps=(4,), threads=(1,), patterns=("none",), runs=1,
                        warmup=0, processes=False, factory=factory)
    assert len(r.rows) == 1 and r.peak[1]["engine"].startswith("onnxruntime ")
    assert threads_asked and set(threads_asked) == {1}
