"""`build`: source (spec or Keras file) -> OUT/model.onnx, manifest.json, report.json, spec.json,
weights.npz, verified before anything appears in OUT. Nothing is left in OUT when a build fails."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__, outdir
from .backends import RunnerFactory, default_factory
from .errors import LayerContractError, Problem, RunError, VerificationError
from .io import ModelIO, PreprocessIO, StateIO, TensorIO
from .jsonfile import read_json_file
from .lower import Lowered, host_layers, lower
from .runtime import Session
from .schema import validate
from .spec import Model, load_spec
from .targets import Target, get_target
from .verify import Report, conditioning, input_infos, localize, make_cases, verify

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
ARTIFACTS = outdir.ARTIFACTS


def load_model(source: str | Path | dict) -> Model:
    """A Model from a spec (path or dict) or a Keras model file (.keras, .h5)."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in KERAS_SUFFIXES:
        from .keras import load_model_file

        return load_model_file(source)
    return load_spec(source)


def io_description(model: Model, lowered: Lowered) -> ModelIO:
    """Inputs (with token ranges and pad values), outputs and carried states, for manifests and sessions."""
    infos = {i.name: i for i in input_infos(model)}
    inputs = []
    for vi in lowered.io["inputs"]:
        info = infos.get(vi["name"])
        inputs.append(TensorIO(vi["name"], vi["dtype"], tuple(vi["shape"]),
                               info.token_range if info is not None else None,
                               info.pad_value if info is not None else None))
    states = tuple(StateIO(s.layer, s.input_name, s.output_name, tuple(s.shape)) for s in model.states)
    pre = []
    for name in host_layers(model, lowered.target):
        layer = model.layers[name]
        (src,) = layer.inbound
        t = model.input_type(src.layer)
        entry, _files = layer.host_entry()
        text = TensorIO(src.layer, t.dtype, ("batch", *t.shape[1:]))
        pre.append(PreprocessIO(layer.class_name, name, text, name, entry, layer.host_apply))
    return ModelIO(tuple(inputs), tuple(TensorIO.from_dict(o) for o in lowered.io["outputs"]), states, tuple(pre))


def host_files(model: Model, lowered: Lowered) -> dict[str, bytes]:
    """The files host-side preprocessing needs in OUT (a tokenizer's vocabulary)."""
    files = {}
    for name in host_layers(model, lowered.target):
        files.update(model.layers[name].host_entry()[1])
    return files


def manifest(model: Model, lowered: Lowered, model_bytes: bytes, compile_seconds: float) -> dict:
    io = io_description(model, lowered)
    return {
        "rnncompile": __version__,
        "name": model.name,
        "source": Path(model.source).name if model.source != "<dict>" else "<dict>",
        "spec_sha256": model.digest,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "opset": lowered.io["opset"],
        "target": lowered.target.name,
        "precision": lowered.target.precision,
        **io.to_dict(),
        **({"tokenizer": "host" if io.preprocessing else "graph"} if _reads_text(model) else {}),
        "layers": [{"name": l.name, "class_name": l.class_name,
                    "output_shapes": [str(t) for t in l.output_types_],
                    "mask": [t.masked for t in l.output_types_],
                    "parameters": int(sum(np.prod(s) for s in l.weight_shapes(l.input_types).values())),
                    "lowering": l.lowering(lowered.target)} for l in model.layers.values()],
        "onnx_ops": lowered.io["ops"],
        **({"typed_graph": lowered.precision_info.to_dict()} if lowered.precision_info else {}),
        "compile_seconds": round(compile_seconds, 4),
    }


def _reads_text(model: Model) -> bool:
    return any(model.input_type(n).dtype == "string" for n in model.inputs)


def spec_with_weights_file(model: Model) -> dict:
    spec = dict(model.spec)
    spec["weights"] = "weights.npz"
    spec.pop("seed", None)
    return spec


@dataclass
class BuildResult:
    out_dir: Path
    model: Model
    manifest: dict
    report: Report | None

    @property
    def verified(self) -> bool:
        return self.report is not None and self.report.passed


def _prepare_out(out_dir: Path) -> None:
    """Fail fast when OUT could not be replaced (checked again at publish: rnncompile.outdir)."""
    outdir.check(out_dir)


def verification_failure(model: Model, io: ModelIO, report: Report, problem: Problem, seed: int,
                         make_runner: RunnerFactory, target: Target) -> VerificationError:
    """The error for a failed verification, with its diagnosis: the first layer whose lowering
    disagrees with its reference, and a note when float32 rounding alone explains the failure
    (an ill-conditioned model, not a wrong artifact)."""
    try:
        cond = conditioning(model, io, make_cases(model, seed)[0], report, seed)
    except Exception:  # a diagnosis must never hide the failure itself
        cond = None
    if cond is not None and cond.ill_conditioned:
        # the model, not the artifact: blaming a layer's lowering would mislead
        report.notes.append(cond.text + ": the model amplifies float32 rounding, so no float32 "
                                        "artifact can match the float64 reference to the tolerance")
        culprit = Problem(problem.where, "the model is ill-conditioned in float32 (see the note below)")
    else:
        try:
            culprit = localize(model, report, make_runner, target, seed=seed)  # names the layer
        except (LayerContractError, KeyboardInterrupt):
            raise
        except Exception:
            culprit = None
    return VerificationError(([culprit] if culprit else []) + [problem], report=report)


def build(source: str | Path | dict, out_dir: str | Path, *, seed: int = 0, verify_model: bool = True,
          threads: int | None = None, target: Target | str | None = None,
          runner_factory: RunnerFactory | None = None) -> BuildResult:
    """Compile for `target` (rnncompile.targets; default onnxruntime), verify, then publish the
    artifacts into out_dir atomically. Verification runs the exact model bytes on the runners
    `runner_factory` makes (default: onnxruntime on the CPU with `threads`). Raises SpecError /
    TargetError (invalid input) or VerificationError (the artifact disagrees with the reference;
    out_dir is left untouched and the report is attached to the error)."""
    out_dir = Path(out_dir)
    target = get_target(target)
    make_runner = runner_factory or default_factory(threads, target.precision)
    _prepare_out(out_dir)
    model = load_model(source)
    t0 = time.perf_counter()
    lowered = lower(model, target)
    compile_seconds = time.perf_counter() - t0
    man = manifest(model, lowered, lowered.model_bytes, compile_seconds)
    io = io_description(model, lowered)
    report = None
    if verify_model:
        report = verify(model, make_runner(lowered.model_bytes), io, seed=seed)
        if not report.passed:
            raise verification_failure(model, io, report, Problem(
                str(out_dir), "model.onnx disagrees with the reference (see the report below); "
                              "nothing was written"), seed, make_runner, target)

    def write(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(lowered.model_bytes)
        (tmp / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
        if report is not None:
            (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (tmp / "spec.json").write_text(json.dumps(spec_with_weights_file(model), indent=2) + "\n")
        for name, data in host_files(model, lowered).items():
            (tmp / name).write_bytes(data)
        with open(tmp / "weights.npz", "wb") as f:
            np.savez(f, **{k: model.weights[k] for k in sorted(model.weights)})
        if target.engine_backend:  # files the engine backend adds (no GPU needed), e.g. trtexec.sh
            import importlib

            from .backends import BACKENDS
            for name, text in importlib.import_module(BACKENDS[target.engine_backend]).artifacts(man).items():
                (tmp / name).write_text(text)
                if name.endswith(".sh"):
                    os.chmod(tmp / name, 0o755)

    outdir.publish(out_dir, write)  # checks OUT again, under a lock; cleans up on any failure
    return BuildResult(out_dir, model, man, report)


# ---------------------------------------------------------------------------------------------
# Using a built directory.


_IO_ENTRY = {"type": "object", "required": ["name", "dtype", "shape"], "properties": {
    "name": {"type": "string"}, "dtype": {"enum": ["float32", "int32", "int64", "bool", "string"]},
    "shape": {"type": "array", "items": {"type": ["integer", "string", "null"]}},
    "token_range": {"type": "integer", "minimum": 1}}}
_TEXT_IO = {"type": "object", "required": ["name", "dtype", "shape"], "properties": {
    "name": {"type": "string"}, "dtype": {"const": "string"},
    "shape": {"type": "array", "items": {"type": ["integer", "string", "null"]}}}}
#: What running a build directory relies on in its manifest.json.
MANIFEST_SCHEMA = {"type": "object", "required": ["inputs", "outputs"], "properties": {
    "inputs": {"type": "array", "items": _IO_ENTRY}, "outputs": {"type": "array", "items": _IO_ENTRY},
    "preprocessing": {"type": "array", "items": {"type": "object", "required": ["kind", "layer", "input", "output"],
                      "properties": {"kind": {"type": "string"}, "layer": {"type": "string"}, "input": _TEXT_IO,
                                     "output": {"type": "string"}}}},
    "states": {"type": "array", "items": {"type": "object", "required": ["input", "output", "shape"],
               "properties": {"input": {"type": "string"}, "output": {"type": "string"},
                              "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}}}}}}}


def read_manifest(out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise RunError("not an rnncompile build directory (no manifest.json)", where=str(out_dir))
    try:
        man = read_json_file(path, "manifest.json", RunError)
    except RunError as e:
        raise RunError([Problem(p.where, f"damaged manifest.json: {p.message}") for p in e.problems]) from None
    problems = validate(man, MANIFEST_SCHEMA, "$", "manifest.json")
    if problems:
        raise RunError([Problem(f"{path}: {p.where}", f"damaged manifest.json: {p.message}")
                        for p in problems[:10]])
    return man


@dataclass(frozen=True)
class BuildDir:
    """A build directory opened for use: its manifest and its model file."""

    path: Path
    manifest: dict
    model_path: Path

    def model_bytes(self) -> bytes:
        return self.model_path.read_bytes()


def open_build(out_dir: str | Path) -> BuildDir:
    """The one way to open a build directory (run, verify, bench): its manifest, read and
    checked to exist, and model.onnx, checked to exist."""
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    model_path = out_dir / "model.onnx"
    if not model_path.is_file():
        raise RunError("model.onnx is missing", where=str(out_dir))
    return BuildDir(out_dir, man, model_path)


def open_session(out_dir: str | Path, threads: int | None = None,
                 runner_factory: RunnerFactory | None = None) -> Session:
    """A Session over OUT/model.onnx (default: onnxruntime on the CPU with `threads`), states
    carried for stateful models."""
    d = open_build(out_dir)
    make_runner = runner_factory or default_factory(threads, d.manifest.get("precision", "float32"))
    return Session(make_runner(d.model_path), model_io(d))


def model_io(d: BuildDir) -> ModelIO:
    """The manifest's ModelIO with its host-side preprocessing loaded from OUT (a tokenizer's
    vocabulary, checked against the manifest's sha256)."""
    from .layer import REGISTRY

    io = ModelIO.from_dict(d.manifest)
    if not io.preprocessing:
        return io
    pre = []
    for p in io.preprocessing:
        cls = REGISTRY.get(p.kind)
        if cls is None or not cls.host_capable:
            raise RunError(f"unknown preprocessing kind {p.kind!r}", where=f"{d.path / 'manifest.json'}")
        pre.append(PreprocessIO(p.kind, p.layer, p.input, p.output, p.config,
                                cls.host_function(p.to_dict(), d.path)))
    return ModelIO(io.inputs, io.outputs, io.states, tuple(pre))


def verify_dir(out_dir: str | Path, seed: int = 0, threads: int | None = None,
               runner_factory: RunnerFactory | None = None) -> Report:
    """Re-verify OUT/model.onnx against the reference rebuilt from OUT/spec.json and weights.npz,
    after checking the files are the ones the manifest names. Returns the passing report; raises
    VerificationError (report attached, failing layer named where it can be) otherwise."""
    d = open_build(out_dir)
    out_dir, man, model_bytes = d.path, d.manifest, d.model_bytes()
    if hashlib.sha256(model_bytes).hexdigest() != man.get("model_sha256"):
        raise VerificationError("model.onnx is not the file this manifest describes (sha256 differs)",
                                where=str(out_dir / "model.onnx"))
    model = load_spec(out_dir / "spec.json")
    if model.digest != man.get("spec_sha256"):
        raise VerificationError("spec.json/weights.npz are not the ones this model was built from "
                                "(sha256 differs)", where=str(out_dir))
    target = get_target(man.get("target", "onnxruntime"), man.get("precision", "float32"), man.get("tokenizer"))
    make_runner = runner_factory or default_factory(threads, target.precision)
    io = model_io(d)
    report = verify(model, make_runner(model_bytes), io, seed=seed)
    if not report.passed:
        raise verification_failure(model, io, report, Problem(
            str(out_dir), "model.onnx disagrees with the reference (see the report below)"), seed,
            make_runner, target)
    return report
