"""Triton export: every example exports, its config.pbtxt parses with Triton's own schema
(tritonclient's model_config_pb2) and agrees with the ONNX model it ships; stateful exports,
driven through onnxruntime exactly as the sequence batcher drives them, give the Python stateful
Session's outputs per sequence; bad requests exit 2 and write nothing."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rnncompile.io import TensorIO
from rnncompile.backends import default_factory
from rnncompile.build import build, open_session
from rnncompile.cli import main
from rnncompile.errors import SpecError, VerificationError
from rnncompile.sequence_batcher import Request, SequenceBatcher, state_pairs
from rnncompile.spec import load_spec
from rnncompile.targets import StateControl, get_target
from rnncompile.triton import CONTROL, TritonOptions, export_triton, render_config
from rnncompile.triton_check import check_model_dir, parse_config

from helpers import token_spec

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="needs tritonclient[grpc] (dev extra)")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {p.stem: p for p in sorted((ROOT / "examples").glob("*.json"))}

#: Stateful models beyond the example: GRU under a mask (every padding pattern), a stateful
#: Bidirectional, and two stateful layers whose plain state names Triton would mis-pair
#: (`l_state_h_in` sorts before `l_state_h_j_state_h_in`, `l_state_h_out` after `..._j_state_h_out`).
STATEFUL_SPECS = {
    "masked_gru": token_spec({"class_name": "GRU", "name": "gru", "units": 6, "stateful": True,
                              "return_sequences": True},
                             {"class_name": "Dense", "name": "out", "units": 3}, name="masked_gru", seed=1),
    "bidirectional": token_spec({"class_name": "Bidirectional", "name": "bi", "layer": {
        "class_name": "LSTM", "units": 5, "stateful": True}}, {"class_name": "Dense", "units": 2},
        name="bidirectional", seed=2),
    "collide": token_spec({"class_name": "LSTM", "name": "l", "units": 4, "stateful": True,
                           "return_sequences": True},
                          {"class_name": "SimpleRNN", "name": "l_state_h_j", "units": 3, "stateful": True},
                          name="collide", seed=3),
}


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Every example and extra stateful spec, built once (onnxruntime target)."""
    root = tmp_path_factory.mktemp("builds")
    out = {}
    for name, src in list(EXAMPLES.items()) + list(STATEFUL_SPECS.items()):
        out[name] = build(src, root / name, threads=1).out_dir
    return out


ALL = list(EXAMPLES) + list(STATEFUL_SPECS)
STATEFUL = ["stateful_lstm"] + list(STATEFUL_SPECS)


@pytest.mark.parametrize("name", ALL)
def test_every_model_exports_and_its_config_agrees_with_the_model(builds, name, tmp_path):
    repo = tmp_path / "repo"
    code, text = cli("triton", builds[name], repo, "--name", name, "--max-batch-size", 4,
                     "--threads", 1)
    assert code == 0, text
    man = json.loads((builds[name] / "manifest.json").read_text())
    cfg = check_model_dir(repo / name)  # Triton's schema + agreement with model.onnx
    assert cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 4
    assert (repo / name / "1" / "model.onnx").is_file()
    stateful = bool(man["states"])
    assert cfg.HasField("sequence_batching") == stateful
    assert cfg.HasField("dynamic_batching") == (not stateful)
    # inputs and outputs keep the manifest's names, in order; states are not listed as inputs
    plain = {s["input"] for s in man["states"]} | {s["output"] for s in man["states"]}
    assert [i.name for i in cfg.input] == [i["name"] for i in man["inputs"] if i["name"] not in plain]
    assert [o.name for o in cfg.output] == [o["name"] for o in man["outputs"] if o["name"] not in plain]
    if stateful:
        seq = cfg.sequence_batching
        assert seq.WhichOneof("strategy_choice") == "direct"
        assert [c.name for c in seq.control_input] == ["START"]
        assert len(seq.state) == len(man["states"])
        assert all(len(s.initial_state) == 1 and s.initial_state[0].zero_data for s in seq.state)
        assert [list(s.dims) for s in seq.state] == [s["shape"] for s in man["states"]]
        record = json.loads((repo / name / "rnncompile_export.json").read_text())
        assert record["sequence_batcher_report"]["verified"] is True
    else:  # the stateless export ships the verified build's bytes
        assert (repo / name / "1" / "model.onnx").read_bytes() == (builds[name] / "model.onnx").read_bytes()


def test_plain_state_names_would_be_mispaired_and_the_export_names_are_not(builds):
    """The reason for the export's state names (server#8586): sorted inputs and sorted outputs
    must pair the same states."""
    model = load_spec(builds["collide"] / "spec.json")

    def pairs_agree(names):
        ins, outs = zip(*names)
        return sorted(zip(sorted(ins), sorted(outs))) == sorted(names)

    assert not pairs_agree([(s.input_name, s.output_name) for s in model.states])
    assert pairs_agree([(p.input, p.output) for p in state_pairs(model, CONTROL)])
    for layers in (["a", "ab", "a_b", "a_state_h_in", "z"], ["x_state_c", "x", "x_state_h_out_q"]):
        assert pairs_agree([CONTROL.names(l, s) for l in layers for s in ("state_h", "state_c")])


def _feeds(name, man, rng, steps):
    """One request (batch 1) per model input; token inputs padded at random positions."""
    feeds = {}
    states = {s["input"] for s in man["states"]}
    for i in man["inputs"]:
        if i["name"] in states:
            continue
        shape = [1] + [steps if not isinstance(d, int) else d for d in i["shape"][1:]]
        if i["dtype"].startswith("int"):
            x = rng.integers(1, i.get("token_range", 10), size=shape).astype(i["dtype"])
            x[rng.random(shape) < 0.3] = 0  # padding anywhere (the models mask it)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
        feeds[i["name"]] = x
    return feeds


@pytest.mark.parametrize("name", STATEFUL)
def test_stateful_export_driven_as_the_sequence_batcher_equals_the_python_session(builds, name, tmp_path):
    """Sequences of different lengths share 3 batch slots (direct strategy, with a backlog):
    START on each sequence's first request, each request's output state fed as that sequence's
    next input state, several sequences interleaved in every batch. Per sequence, the outputs
    equal the Python stateful Session's over the plain build within 1e-6."""
    repo = tmp_path / "repo"
    export_triton(builds[name], repo, TritonOptions(name=name, max_batch_size=3), threads=1)
    man = json.loads((builds[name] / "manifest.json").read_text())
    model = load_spec(builds[name] / "spec.json")
    runner = default_factory(1)(repo / name / "1" / "model.onnx")
    batcher = SequenceBatcher(runner, state_pairs(model, CONTROL), CONTROL)
    rng = np.random.default_rng(7)
    lengths = [4, 1, 3, 2, 5, 1, 2]  # requests per sequence; more sequences than slots
    backlog = list(range(len(lengths)))
    slots: list[list] = [[None, 0] for _ in range(3)]  # [sequence, requests done]
    got: dict[int, list] = {s: [] for s in backlog}
    sent: dict[int, list] = {s: [] for s in backlog}
    executions = 0
    while backlog or any(s is not None for s, _ in slots):
        for slot in slots:
            if slot[0] is None and backlog:
                slot[0], slot[1] = backlog.pop(0), 0
        steps = int(rng.integers(1, 6))  # one execution batches requests of equal shape
        requests = []
        for slot in slots[: 3 - executions % 2]:  # sometimes a slot has no request ready
            seq, done = slot
            if seq is None:
                continue
            feeds = _feeds(name, man, rng, steps)
            sent[seq].append(feeds)
            requests.append(Request(seq, done == 0, feeds))
        for r, out in zip(requests, batcher.execute(requests)):
            got[r.sequence].append(out)
        for slot in slots[: 3 - executions % 2]:
            if slot[0] is not None:
                slot[1] += 1
                if slot[1] == lengths[slot[0]]:
                    slot[0] = None
        executions += 1
    assert executions >= 6
    for seq, reqs in sent.items():
        session = open_session(builds[name], threads=1)
        assert len(reqs) == lengths[seq]
        for k, feeds in enumerate(reqs):
            want = session.run(dict(feeds))
            for out, value in want.items():
                np.testing.assert_allclose(got[seq][k][out], value, rtol=0, atol=1e-6,
                                           err_msg=f"sequence {seq} request {k} output {out}")


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
def test_verification_fails_when_start_does_not_reset(builds, tmp_path):
    """A runner that never sees START (the server's uninitialized state reaches the cells) fails
    the sequence-batcher verification: exit 1 semantics, nothing written."""
    class NoStart:
        def __init__(self, inner):
            self.inner, self.name, self.precision, self.inputs = inner, inner.name, inner.precision, inner.inputs

        def run(self, feeds):
            return self.inner.run({**feeds, CONTROL.start: np.zeros_like(feeds[CONTROL.start])})

    factory = default_factory(1)
    repo = tmp_path / "repo"
    with pytest.raises(VerificationError) as e:
        export_triton(builds["stateful_lstm"], repo, TritonOptions(name="m"),
                      runner_factory=lambda m: NoStart(factory(m)))
    assert not e.value.report.passed and not repo.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_options_reach_the_config(builds, tmp_path):
    repo = tmp_path / "repo"
    code, text = cli("triton", builds["sentiment"], repo, "--name", "s", "--version", 3, "--max-batch-size", 16,
                     "--instances", 2, "--kind", "cpu", "--preferred-batch-size", 8,
                     "--preferred-batch-size", 16, "--max-queue-delay-us", 250)
    assert code == 0, text
    assert "pad input 'tokens' with 0" in text
    cfg = check_model_dir(repo / "s")
    assert (repo / "s" / "3" / "model.onnx").is_file()
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 16]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 250
    group = cfg.instance_group[0]
    assert group.count == 2 and group.kind == group.KIND_CPU
    # a second model goes into the same repository beside the first
    code, text = cli("triton", builds["stateful_lstm"], repo, "--name", "st", "--strategy", "oldest",
                     "--preferred-batch-size", 2, "--max-queue-delay-us", 10, "--max-sequence-idle-us",
                     1000000, "--max-batch-size", 4, "--threads", 1)
    assert code == 0, text
    seq = check_model_dir(repo / "st").sequence_batching
    assert seq.WhichOneof("strategy_choice") == "oldest"
    assert seq.oldest.max_candidate_sequences == 4 and list(seq.oldest.preferred_batch_size) == [2]
    assert seq.max_sequence_idle_microseconds == 1000000
    assert sorted(p.name for p in repo.iterdir()) == ["s", "st"]


def test_rendered_configs_parse_for_edge_shapes(tmp_path):
    """A per-example scalar output gets dims [1] + reshape [], no batching gives full dims."""
    io = [TensorIO("x", "float32", ("batch", "time", 3))]
    outs = [TensorIO("y", "float32", ("batch",)), TensorIO('q"uote\\é', "int64", ("batch", 2))]
    for mbs in (0, 4):
        d = tmp_path / str(mbs)
        d.mkdir()
        (d / "config.pbtxt").write_text(render_config(TritonOptions(name="m", max_batch_size=mbs),
                                                      "onnxruntime_onnx", io, outs, []))
        cfg = parse_config(d / "config.pbtxt")
        assert cfg.output[1].name == 'q"uote\\é'
        if mbs:
            assert list(cfg.output[0].dims) == [1] and list(cfg.output[0].reshape.shape) == []
            assert list(cfg.input[0].dims) == [-1, 3]
        else:
            assert list(cfg.input[0].dims) == [-1, -1, 3] and not cfg.HasField("dynamic_batching")


def _fake_plan_build(src: Path, dst: Path, profile_max: int | None) -> Path:
    """A copy of a build as `rnncompile engine` leaves it: target tensorrt, model.plan and the
    engine summary engine.json with its optimization profile (backends/tensorrt.py)."""
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man["target"] = "tensorrt"
    (dst / "manifest.json").write_text(json.dumps(man))
    if profile_max is not None:
        profile = {i["name"]: {"min": [1, 1], "opt": [profile_max, 50], "max": [profile_max, 200]}
                   for i in man["inputs"]}
        (dst / "engine.json").write_text(json.dumps({"profile": profile}))
    (dst / "model.plan").write_bytes(b"not a real engine")
    return dst


def _nothing_written(tmp_path, repo):
    assert not repo.exists() or not any(repo.iterdir())
    assert not [p for p in repo.parent.iterdir() if p.name.startswith(f".{repo.name}.")]


BAD_OPTIONS = [
    (["--name", "../escape"], "--name"), (["--name", ".hidden"], "--name"), (["--name", "a b"], "--name"),
    (["--name", "m", "--version", 0], "--version"), (["--name", "m", "--max-batch-size", -1], "--max-batch-size"),
    (["--name", "m", "--instances", 0], "--instances"),
    (["--name", "m", "--max-batch-size", 4, "--preferred-batch-size", 8], "--preferred-batch-size"),
]


@pytest.mark.parametrize("args,where", BAD_OPTIONS, ids=[w + ":" + str(a[1]) for a, w in BAD_OPTIONS])
def test_bad_options_exit_2_nothing_written(builds, tmp_path, args, where):
    repo = tmp_path / "repo"
    code, text = cli("triton", builds["sentiment"], repo, *args)
    assert code == 2 and f"error: {where}:" in text and "Traceback" not in text
    _nothing_written(tmp_path, repo)


def test_bad_requests_exit_2_nothing_written(builds, tmp_path):
    repo = tmp_path / "repo"
    # OUT is not a build
    code, text = cli("triton", tmp_path, repo, "--name", "m")
    assert code == 2 and "not an rnncompile build directory" in text
    # OUT whose model.onnx is not the manifest's
    tampered = tmp_path / "tampered"
    shutil.copytree(builds["sentiment"], tampered)
    (tampered / "model.onnx").write_bytes(b"x")
    code, text = cli("triton", tampered, repo, "--name", "m")
    assert code == 2 and "sha256" in text
    # a stateful model cannot be served without batching through the sequence batcher
    code, text = cli("triton", builds["stateful_lstm"], repo, "--name", "m", "--max-batch-size", 0)
    assert code == 2 and "--max-batch-size" in text
    _nothing_written(tmp_path, repo)
    # an existing non-empty model directory is left alone
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "keep.txt").write_text("mine")
    code, text = cli("triton", builds["sentiment"], repo, "--name", "m")
    assert code == 2 and "already exists and is not empty" in text
    assert [p.name for p in (repo / "m").iterdir()] == ["keep.txt"]
    # REPO is a file
    code, text = cli("triton", builds["sentiment"], tmp_path / "tampered" / "model.onnx", "--name", "m")
    assert code == 2 and "not a directory" in text
    # an existing empty model directory is filled
    (repo / "e").mkdir()
    code, text = cli("triton", builds["sentiment"], repo, "--name", "e")
    assert code == 0, text
    check_model_dir(repo / "e")


def test_tensorrt_plan_batch_limit_and_refusals(builds, tmp_path):
    plan_build = _fake_plan_build(builds["sentiment"], tmp_path / "trt", profile_max=4)
    repo = tmp_path / "repo"
    code, text = cli("triton", plan_build, repo, "--name", "m", "--max-batch-size", 8)
    assert code == 2 and "above the batch size the plan's optimization profile allows (4)" in text
    code, text = cli("triton", plan_build, repo, "--name", "m", "--max-batch-size", 4, "--kind", "cpu")
    assert code == 2 and "GPUs only" in text
    _nothing_written(tmp_path, repo)
    code, text = cli("triton", plan_build, repo, "--name", "m", "--max-batch-size", 4)
    assert code == 0, text
    cfg = check_model_dir(repo / "m")
    assert cfg.platform == "tensorrt_plan" and (repo / "m" / "1" / "model.plan").read_bytes() == b"not a real engine"
    # --format onnx ships the build's ONNX instead
    code, text = cli("triton", plan_build, repo, "--name", "o", "--format", "onnx", "--max-batch-size", 8)
    assert code == 0 and check_model_dir(repo / "o").platform == "onnxruntime_onnx"
    # no profile stated: the limit cannot be checked
    no_profile = _fake_plan_build(builds["sentiment"], tmp_path / "trt2", profile_max=None)
    code, text = cli("triton", no_profile, repo, "--name", "n")
    assert code == 2 and "no optimization profile is stated" in text
    # a stateful plan would need the stateful graph's own engine
    st_plan = _fake_plan_build(builds["stateful_lstm"], tmp_path / "trt3", profile_max=8)
    code, text = cli("triton", st_plan, repo, "--name", "s")
    assert code == 2 and "--format onnx" in text
    assert sorted(p.name for p in repo.iterdir()) == ["m", "o"]


def test_stateful_export_for_the_tensorrt_target_lowers_with_its_rules(builds, tmp_path):
    """A TensorRT-target build's stateful export is lowered for TensorRT (its op rules) with the
    START control, and verified the same way."""
    out = build(STATEFUL_SPECS["masked_gru"], tmp_path / "out", target="tensorrt", threads=1).out_dir
    repo = tmp_path / "repo"
    result = export_triton(out, repo, TritonOptions(name="g", max_batch_size=2), threads=1)
    assert result.report.passed
    check_model_dir(repo / "g")
    record = json.loads((repo / "g" / "rnncompile_export.json").read_text())
    assert record["target"] == "tensorrt"


def test_state_control_names_clash_is_refused(tmp_path):
    spec = {"name": "clash", "seed": 0, "layers": [
        {"class_name": "Input", "name": "START", "shape": [None, 3]},
        {"class_name": "LSTM", "name": "l", "units": 2, "stateful": True}]}
    out = build(spec, tmp_path / "out", threads=1).out_dir
    with pytest.raises(SpecError, match="START"):
        export_triton(out, tmp_path / "repo", TritonOptions(name="c"))
    assert not (tmp_path / "repo").exists()


def test_state_control_is_a_target_fact_not_a_name():
    """Any target can carry a StateControl; names follow its prefixes."""
    c = replace(StateControl(), start="BEGIN", input_prefix="i_", output_prefix="o_")
    assert c.names("lstm", "state_h") == ("i_lstm_state_h", "o_lstm_state_h")


class _FakeTriton:
    """What the client example sees of a Triton server, served from an exported model directory
    by onnxruntime (stateful models through the sequence batcher emulation): model metadata and
    config as Triton's gRPC API gives them with as_json=True (int64 as strings, config wrapped),
    and infer()."""

    __module__ = "tritonclient.grpc.stand_in"

    def __init__(self, model_dir: Path, build_dir: Path):
        from google.protobuf.json_format import MessageToDict

        self.cfg = check_model_dir(model_dir)
        self.config = MessageToDict(self.cfg, preserving_proto_field_name=True)
        self.runner = default_factory(1)(model_dir / "1" / "model.onnx")
        model = load_spec(build_dir / "spec.json")
        self.batcher = SequenceBatcher(self.runner, state_pairs(model, CONTROL), CONTROL)

    def get_model_metadata(self, name, as_json=False):
        from tritonclient.grpc import model_config_pb2 as pb
        assert as_json
        return {"name": name, "inputs": [{"name": i.name, "datatype": pb.DataType.Name(i.data_type)[5:],
                                          "shape": [str(d) for d in (-1, *i.dims)]} for i in self.cfg.input]}

    def get_model_config(self, name, as_json=False):
        assert as_json
        return {"config": self.config}

    def infer(self, model, inputs, sequence_id=0, sequence_start=False, sequence_end=False):
        from tritonclient.utils import triton_to_np_dtype
        feeds = {i.name(): np.frombuffer(i._get_content(), triton_to_np_dtype(i.datatype())).reshape(i.shape())
                 for i in inputs}
        if self.cfg.HasField("sequence_batching"):
            (outs,) = self.batcher.execute([Request(sequence_id, sequence_start, feeds)])
        else:
            outs = self.runner.run(feeds)

        class Result:
            def as_numpy(self, name):
                return outs[name]
        return Result()


@pytest.mark.parametrize("name", ["sentiment", "stateful_lstm", "masked_gru"])
def test_client_example_against_an_emulated_server(builds, name, tmp_path, capsys):
    """examples/triton/client.py (gRPC flavour: the dev extra has tritonclient[grpc]), run against
    the exported model with the server replaced by an in-process stand-in, gets the Python
    session's answers."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("triton_client", ROOT / "examples" / "triton" / "client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    export_triton(builds[name], tmp_path / "repo", TritonOptions(name=name), threads=1)
    fake = _FakeTriton(tmp_path / "repo" / name, builds[name])
    assert client.run(fake, client.protocol_module("grpc"), name, str(builds[name]), batch=4, steps=9,
                      requests=3, seed=0, vocab=10)
    text = capsys.readouterr().out
    assert text.count(" ok") >= (1 if name == "sentiment" else 6) and "DIFFERS" not in text


def test_start_reset_follows_the_targets_comparison_types(builds):
    """A target whose Greater takes no int32 gets the START comparison in float32: asked of the
    target (accepts), and the reset still works."""
    from rnncompile.lower import lower
    from rnncompile.targets import ONNXRUNTIME

    model = load_spec(builds["stateful_lstm"] / "spec.json")
    floats_only = replace(ONNXRUNTIME, state_control=CONTROL,
                          op_input_dtypes={"Greater": frozenset({"float32"})})
    for target, cast in ((replace(ONNXRUNTIME, state_control=CONTROL), False), (floats_only, True)):
        lowered = lower(model, target)
        assert ("Cast" in lowered.io["ops"]) == cast
        runner = default_factory(1)(lowered.model_bytes)
        x = np.random.default_rng(0).standard_normal((2, 3, 50)).astype(np.float32)
        nan = np.full((2, 64), np.nan, np.float32)
        outs = runner.run({"paragraph": x, "state_in_reader_state_h": nan, "state_in_reader_state_c": nan,
                           "START": np.array([[1], [0]], np.int32)})
        assert np.isfinite(outs["logits"][0]).all() and np.isnan(outs["logits"][1]).all()


def test_a_half_precision_stateful_build_exports_verified_at_its_own_tolerance(tmp_path):
    """The stateful graph of an fp16 tensorrt-target build is verified with the fp16 row (it was
    checked against the fp32 row, and refused, before)."""
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    build(root / "examples/stateful_lstm.json", out, target=get_target("tensorrt", "fp16"))
    result = export_triton(out, tmp_path / "repo", TritonOptions(name="st"))
    assert result.report.passed and result.report.precision == "float16"
