"""`rnncompile triton OUT REPO --name NAME`: a built, verified OUT/ packaged as one model of a
Triton Inference Server model repository: REPO/NAME/config.pbtxt + REPO/NAME/VERSION/model.onnx
(or model.plan for a TensorRT build that has an engine).

Stateless models ship OUT/model.onnx as is, with dynamic batching. Stateful models (carried
states) ship a separate graph, lowered from OUT/spec.json + weights.npz for the build's target with
a `targets.StateControl`: a START control input resets the states inside the graph and the states
are named so that Triton pairs them right; the config uses the sequence batcher with implicit
state (zero initial state, strategy direct or oldest). That graph is verified against the float64
reference driven as the sequence batcher drives it (rnncompile.sequence_batcher) before anything
is written. The repository entry appears whole or not at all (written beside REPO, then renamed).

Facts and their sources: docs/triton.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .backends import RunnerFactory, default_factory
from .build import read_manifest
from .errors import Problem, RunError, SpecError, VerificationError
from .io import ModelIO, TensorIO
from .jsonfile import read_json_file
from .lower import lower
from .sequence_batcher import StatePair, state_pairs, verify_stateful_export
from .spec import load_spec
from .targets import StateControl, get_target
from .verify import Report

#: Our element types -> Triton's (common protobuf/model_config.proto, enum DataType).
TRITON_DTYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16", "string": "TYPE_STRING",
}
#: A model name we accept: one path component that needs no escaping in a URL path
#: (/v2/models/NAME), a shell or a Kubernetes manifest, and that Triton does not skip (hidden).
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
KINDS = {"auto": None, "cpu": "KIND_CPU", "gpu": "KIND_GPU"}
STRATEGIES = ("direct", "oldest")
#: The stateful export's control and state names.
CONTROL = StateControl()
#: What the export leaves next to config.pbtxt (Triton ignores it): provenance and verification.
EXPORT_RECORD = "rnncompile_export.json"


@dataclass
class TritonOptions:
    """Options of one exported model (see `rnncompile triton --help`)."""

    name: str
    version: int = 1
    max_batch_size: int = 8
    instance_count: int = 1
    instance_kind: str = "auto"
    #: dynamic batching (stateless) / the oldest strategy (stateful)
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int | None = None
    dynamic_batching: bool = True
    #: sequence batcher (stateful models)
    strategy: str = "direct"
    max_sequence_idle_us: int | None = None
    max_candidate_sequences: int | None = None
    #: "auto" (model.plan when the build has one, else model.onnx), "onnx" or "plan"
    model_format: str = "auto"

    def problems(self) -> list[Problem]:
        p = []
        if not NAME_RULE.fullmatch(self.name or ""):
            p.append(Problem("--name", f"{self.name!r} is not a model name Triton serves reliably: use "
                                       "1-128 letters, digits, '_', '.', '-', starting with a letter "
                                       "or digit (it becomes a directory and the /v2/models/NAME URL)"))
        if not (isinstance(self.version, int) and self.version >= 1):
            p.append(Problem("--version", f"expected an integer >= 1 (Triton ignores version "
                                          f"directories that are not numeric or start with 0), found {self.version}"))
        if self.max_batch_size < 0:
            p.append(Problem("--max-batch-size", f"expected a value >= 0, found {self.max_batch_size}"))
        if self.instance_count < 1:
            p.append(Problem("--instances", f"expected a value >= 1, found {self.instance_count}"))
        if self.instance_kind not in KINDS:
            p.append(Problem("--kind", f"expected one of {', '.join(KINDS)}, found {self.instance_kind!r}"))
        if self.strategy not in STRATEGIES:
            p.append(Problem("--strategy", f"expected one of {', '.join(STRATEGIES)}, found {self.strategy!r}"))
        if self.model_format not in ("auto", "onnx", "plan"):
            p.append(Problem("--format", f"expected auto, onnx or plan, found {self.model_format!r}"))
        for n in self.preferred_batch_sizes:
            if not 1 <= n <= max(self.max_batch_size, 0):
                p.append(Problem("--preferred-batch-size", f"{n} is outside 1..max_batch_size "
                                                           f"({self.max_batch_size})"))
        for flag, v in (("--max-queue-delay-us", self.max_queue_delay_us),
                        ("--max-sequence-idle-us", self.max_sequence_idle_us),
                        ("--max-candidate-sequences", self.max_candidate_sequences)):
            if v is not None and v < 0:
                p.append(Problem(flag, f"expected a value >= 0, found {v}"))
        return p


@dataclass
class TritonExport:
    """What `export_triton` wrote."""

    model_dir: Path
    config: str
    model_file: str
    stateful: bool
    states: list[StatePair] = field(default_factory=list)
    report: Report | None = None
    #: per model input: the value to pad it with so requests of different lengths batch together
    #: without changing results (only inputs whose padding the model masks)
    pad_values: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# config.pbtxt, as protobuf text format (tritonclient's model_config_pb2 parses it in the tests)


def _q(s: str) -> str:
    """A protobuf text-format string literal (non-printable and non-ASCII bytes as octal)."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        out.append("\\" + c if c in '"\\' else c if 32 <= b < 127 else f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def _dims(values) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _tensor(t: TensorIO, batched: bool) -> list[str]:
    """One input/output entry: dims without the batch axis when batching, -1 for dynamic."""
    shape = [d if isinstance(d, int) else -1 for d in t.shape]
    dims = shape[1:] if batched else shape
    lines = [f"name: {_q(t.name)}", f"data_type: {TRITON_DTYPES[t.dtype]}"]
    if not dims:  # a per-example scalar: Triton wants dims [1] and a reshape to rank 0
        lines += ["dims: [ 1 ]", "reshape: { shape: [ ] }"]
    else:
        lines.append(f"dims: {_dims(dims)}")
    return lines


def _block(key: str, entries: list[list[str]], indent: str = "") -> list[str]:
    out = [f"{indent}{key} ["]
    for k, e in enumerate(entries):
        out.append(f"{indent}  {{")
        out += [f"{indent}    {line}" for line in e]
        out.append(f"{indent}  }}" + ("," if k < len(entries) - 1 else ""))
    return out + [f"{indent}]"]


def render_config(opts: TritonOptions, platform: str, inputs: list[TensorIO], outputs: list[TensorIO],
                  states: list[StatePair], state_dtype: str = "float32") -> str:
    """config.pbtxt text for one model. `inputs`/`outputs`: TensorIOs, shapes with the
    batch axis first (states and controls excluded)."""
    batched = opts.max_batch_size > 0
    lines = [f"name: {_q(opts.name)}", f"platform: {_q(platform)}",
             f"max_batch_size: {opts.max_batch_size}"]
    lines += _block("input", [_tensor(i, batched) for i in inputs])
    lines += _block("output", [_tensor(o, batched) for o in outputs])
    group = [f"count: {opts.instance_count}"]
    if KINDS[opts.instance_kind]:
        group.append(f"kind: {KINDS[opts.instance_kind]}")
    lines += _block("instance_group", [group])
    delay = ([f"max_queue_delay_microseconds: {opts.max_queue_delay_us}"]
             if opts.max_queue_delay_us is not None else [])
    preferred = ([f"preferred_batch_size: {_dims(opts.preferred_batch_sizes)}"]
                 if opts.preferred_batch_sizes else [])
    if states:
        seq = []
        if opts.max_sequence_idle_us is not None:
            seq.append(f"max_sequence_idle_microseconds: {opts.max_sequence_idle_us}")
        if opts.strategy == "direct":
            seq += ["direct {"] + [f"  {d}" for d in delay] + ["}"]
        else:
            cand = opts.max_candidate_sequences or max(opts.max_batch_size, 1)
            seq += ["oldest {", f"  max_candidate_sequences: {cand}"]
            seq += [f"  {line}" for line in preferred + delay] + ["}"]
        seq += _block("control_input", [[f"name: {_q(CONTROL.start)}", "control [",
                                          "  {", "    kind: CONTROL_SEQUENCE_START",
                                          "    int32_false_true: [ 0, 1 ]", "  }", "]"]])
        dtype = TRITON_DTYPES[state_dtype]
        seq += _block("state", [[f"input_name: {_q(p.input)}", f"output_name: {_q(p.output)}",
                                 f"data_type: {dtype}", f"dims: {_dims(p.shape)}",
                                 "initial_state {", f"  data_type: {dtype}", f"  dims: {_dims(p.shape)}",
                                 "  zero_data: true", f"  name: {_q('zeros')}", "}"] for p in states])
        lines += ["sequence_batching {"] + [f"  {line}" for line in seq] + ["}"]
    elif batched and opts.dynamic_batching:
        lines += ["dynamic_batching {"] + [f"  {line}" for line in preferred + delay] + ["}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The export


def plan_max_batch(engine: dict) -> int | None:
    """The largest batch the TensorRT plan's optimization profile takes, from the engine summary
    that `rnncompile engine` writes beside model.plan (engine.json: `profile[input].max[0]`, the
    smallest over inputs); None when not stated."""
    profile = engine.get("profile") if isinstance(engine, dict) else None
    profile = profile if isinstance(profile, dict) else {}
    sizes = [p["max"][0] for p in profile.values()
             if isinstance(p, dict) and isinstance(p.get("max"), list) and p["max"]
             and isinstance(p["max"][0], int)]
    return min(sizes) if sizes else None


def _check_target_dir(repo: Path, name: str) -> None:
    if repo.exists() and not repo.is_dir():
        raise SpecError("the model repository path exists and is not a directory", where=str(repo))
    target = repo / name
    if target.is_symlink() or (target.exists() and (not target.is_dir() or any(target.iterdir()))):
        raise SpecError(f"model directory {name!r} already exists and is not empty; refusing to "
                        "overwrite it (remove it, or export a new --version elsewhere)", where=str(target))


def _source(out: Path) -> tuple[dict, bytes]:
    man = read_manifest(out)  # RunError (exit 2) when OUT is not a build
    path = out / "model.onnx"
    if not path.is_file():
        raise RunError("model.onnx is missing: not a complete rnncompile build", where=str(out))
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != man.get("model_sha256"):
        raise RunError("model.onnx is not the file this manifest describes (sha256 differs); "
                       "rebuild it", where=str(path))
    return man, data


def _io(io: ModelIO, exclude: set[str]) -> tuple[list[TensorIO], list[TensorIO]]:
    return ([i for i in io.inputs if i.name not in exclude], [o for o in io.outputs if o.name not in exclude])


def _check_batching(io: ModelIO, opts: TritonOptions, stateful: bool) -> None:
    fixed = [t.name for t in io.inputs + io.outputs if t.shape and isinstance(t.shape[0], int)]
    if opts.max_batch_size > 0 and fixed:
        raise SpecError(f"{', '.join(fixed)} ha{'s' if len(fixed) == 1 else 've'} a fixed batch size; "
                        "Triton batching needs a dynamic batch axis: use --max-batch-size 0",
                        where="--max-batch-size")
    if stateful and opts.max_batch_size == 0:
        raise SpecError("a stateful model is served through the sequence batcher, one batch row per "
                        "sequence: --max-batch-size must be >= 1", where="--max-batch-size")


def export_triton(out_dir: str | Path, repo: str | Path, opts: TritonOptions, *, seed: int = 0,
                  runner_factory: RunnerFactory | None = None, threads: int | None = None) -> TritonExport:
    """Package the build in `out_dir` as model `opts.name` of the Triton repository `repo`.
    Raises SpecError/RunError (bad request, exit 2; nothing written) or VerificationError (the
    stateful graph disagrees with the reference; nothing written)."""
    out, repo = Path(out_dir), Path(repo)
    problems = opts.problems()
    if problems:
        raise SpecError(problems)
    man, model_bytes = _source(out)
    io = ModelIO.from_dict(man)
    if io.preprocessing:
        names = ", ".join(f"{p.kind} {p.layer!r}" for p in io.preprocessing)
        raise SpecError(f"the build tokenizes on the host ({names}; manifest \"preprocessing\"): served as is, "
                        f"Triton would take token ids, not text. Rebuild with --tokenizer graph to serve text "
                        f"on Triton's onnxruntime backend (TensorRT plans run no string op)", where=str(out))
    stateful = bool(io.states)
    _check_target_dir(repo, opts.name)
    _check_batching(io, opts, stateful)

    plan = out / "model.plan"
    use_plan = opts.model_format == "plan" or (opts.model_format == "auto" and plan.is_file())
    report, pairs = None, []
    if use_plan:
        payload, model_file, platform = _plan_payload(man, plan, opts, stateful)
        inputs, outputs = _io(io, set())
    else:
        model_file, platform = "model.onnx", "onnxruntime_onnx"
        if stateful:
            payload, inputs, outputs, pairs, report = _stateful_graph(
                out, man, io, seed, runner_factory or default_factory(threads, man.get("precision", "float32")))
        else:
            payload = model_bytes
            inputs, outputs = _io(io, set())
    config = render_config(opts, platform, inputs, outputs, pairs)
    pads = {i.name: i.pad_value for i in io.inputs if i.pad_value is not None}
    record = {"source": str(out.resolve()), "source_model_sha256": man.get("model_sha256"),
              "spec_sha256": man.get("spec_sha256"), "target": man.get("target", "onnxruntime"),
              "precision": man.get("precision", "float32"), "model_file": model_file,
              "model_sha256": hashlib.sha256(payload).hexdigest(),
              "states": [{"input": p.input, "output": p.output, "plain_input": p.plain_input,
                          "plain_output": p.plain_output, "shape": list(p.shape)} for p in pairs],
              "control": {"start": CONTROL.start} if pairs else None, "pad_values": pads,
              "sequence_batcher_report": report.to_dict() if report else None}
    model_dir = _publish(repo, opts, model_file, payload, config, record)
    return TritonExport(model_dir, config, model_file, stateful, pairs, report, pads)


def _plan_payload(man: dict, plan: Path, opts: TritonOptions, stateful: bool):
    where = str(plan)
    if not plan.is_file():
        raise SpecError("--format plan: the build has no model.plan (build a TensorRT engine first, "
                        "or export --format onnx)", where=where)
    if stateful:
        raise SpecError("a stateful model needs the stateful graph (START control, implicit "
                        "state) built into its own engine, which needs a GPU: export --format onnx "
                        "and build the plan from that model.onnx", where=where)
    if opts.instance_kind == "cpu":
        raise SpecError("a TensorRT plan runs on GPUs only: use --kind gpu or auto", where="--kind")
    summary = plan.parent / "engine.json"
    limit = plan_max_batch(read_json_file(summary, "engine summary", SpecError)) if summary.is_file() else None
    if limit is None:
        raise SpecError("no optimization profile is stated for model.plan (engine.json, written by "
                        "`rnncompile engine`), so --max-batch-size cannot be checked against it",
                        where=str(summary))
    if opts.max_batch_size > limit:
        raise SpecError(f"{opts.max_batch_size} is above the batch size the plan's optimization "
                        f"profile allows ({limit}); use --max-batch-size {limit} or rebuild the "
                        "engine with a larger profile", where="--max-batch-size")
    return plan.read_bytes(), "model.plan", "tensorrt_plan"


def _stateful_graph(out: Path, man: dict, io: ModelIO, seed: int, make_runner: RunnerFactory):
    """Lower the build's model again for its target with the state control, and verify it the way
    the sequence batcher drives it."""
    model = load_spec(out / "spec.json")
    if model.digest != man.get("spec_sha256"):
        raise RunError("spec.json/weights.npz are not the ones this model was built from (sha256 "
                       "differs)", where=str(out))
    pairs = state_pairs(model, CONTROL)
    taken = {t.name for t in io.inputs + io.outputs} - {
        n for p in pairs for n in (p.plain_input, p.plain_output)}
    clash = sorted(taken & ({CONTROL.start} | {n for p in pairs for n in (p.input, p.output)}))
    if clash:
        raise SpecError(f"model input/output name(s) {clash} are the names the stateful export "
                        "gives its control or states; rename them in the spec", where=str(out / "spec.json"))
    target = replace(get_target(man.get("target", "onnxruntime"), man.get("precision", "float32")),
                     state_control=CONTROL)
    lowered = lower(model, target)
    report = verify_stateful_export(model, make_runner(lowered.model_bytes), io, CONTROL, seed)
    if not report.passed:
        raise VerificationError("the stateful graph disagrees with the reference when driven as "
                                "Triton's sequence batcher drives it; nothing was written", where=str(out),
                                report=report)
    exclude = {CONTROL.start} | {n for p in pairs for n in (p.input, p.output)}
    inputs, outputs = _io(ModelIO.from_dict(lowered.io), exclude)
    return lowered.model_bytes, inputs, outputs, pairs, report


def _publish(repo: Path, opts: TritonOptions, model_file: str, payload: bytes, config: str,
             record: dict) -> Path:
    """Write REPO/NAME whole: into a temporary directory beside REPO, then renamed into place."""
    parent = repo.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{repo.name}.", dir=parent))
    try:
        staged = tmp / opts.name
        (staged / str(opts.version)).mkdir(parents=True)
        (staged / str(opts.version) / model_file).write_bytes(payload)
        (staged / "config.pbtxt").write_text(config)
        (staged / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        _check_target_dir(repo, opts.name)  # again: another writer may have come first
        target = repo / opts.name
        if not repo.exists():
            os.replace(tmp, repo)  # a new repository holding just this model
        else:
            if target.is_dir():
                target.rmdir()  # empty (checked): os.replace needs it gone or empty
            os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return repo / opts.name
