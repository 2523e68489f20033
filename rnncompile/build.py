"""`build`: source (spec or Keras file) -> OUT/model.onnx, manifest.json, report.json, spec.json,
weights.npz, verified before anything appears in OUT. Nothing is left in OUT when a build fails."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import LayerContractError, Problem, RunError, SpecError, VerificationError
from .lower import Lowered, lower
from .runtime import OnnxRuntimeRunner, Session
from .spec import Model, load_spec
from .verify import Report, conditioning, input_infos, localize, make_cases, verify

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
ARTIFACTS = ("model.onnx", "manifest.json", "report.json", "spec.json", "weights.npz")


def load_model(source: str | Path | dict) -> Model:
    """A Model from a spec (path or dict) or a Keras model file (.keras, .h5)."""
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() in KERAS_SUFFIXES:
        from .keras import load_model_file

        return load_model_file(source)
    return load_spec(source)


def io_description(model: Model, lowered: Lowered) -> dict:
    """Inputs (with token ranges), outputs and carried states, for manifests and sessions."""
    infos = {i.name: i for i in input_infos(model)}
    inputs = []
    for vi in lowered.io["inputs"]:
        entry = dict(vi)
        info = infos.get(vi["name"])
        if info is not None:
            if info.token_range is not None:
                entry["token_range"] = info.token_range
            if info.pad_value is not None:
                entry["pad_value"] = info.pad_value
        inputs.append(entry)
    states = [{"layer": s.layer, "input": s.input_name, "output": s.output_name, "shape": list(s.shape)}
              for s in model.states]
    return {"inputs": inputs, "outputs": lowered.io["outputs"], "states": states}


def manifest(model: Model, lowered: Lowered, model_bytes: bytes, compile_seconds: float) -> dict:
    io = io_description(model, lowered)
    return {
        "rnncompile": __version__,
        "name": model.name,
        "source": Path(model.source).name if model.source != "<dict>" else "<dict>",
        "spec_sha256": model.digest,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "opset": lowered.io["opset"],
        **io,
        "layers": [{"name": l.name, "class_name": l.class_name,
                    "output_shapes": [str(t) for t in l.output_types_],
                    "mask": [t.masked for t in l.output_types_],
                    "parameters": int(sum(np.prod(s) for s in l.weight_shapes(l.input_types).values())),
                    "lowering": l.lowering()} for l in model.layers.values()],
        "onnx_ops": lowered.io["ops"],
        "compile_seconds": round(compile_seconds, 4),
    }


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
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SpecError("output path exists and is not a directory", where=str(out_dir))
        contents = {p.name for p in out_dir.iterdir()}
        if contents and not (contents <= set(ARTIFACTS) and "manifest.json" in contents):
            raise SpecError("output directory is not empty and was not written by rnncompile; "
                            "refusing to overwrite it", where=str(out_dir))


def verification_failure(model: Model, io: dict, report: Report, problem: Problem, seed: int,
                         threads: int | None) -> VerificationError:
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
            culprit = localize(model, report, seed=seed, threads=threads)  # names the layer
        except (LayerContractError, KeyboardInterrupt):
            raise
        except Exception:
            culprit = None
    err = VerificationError(([culprit] if culprit else []) + [problem])
    err.report = report
    return err


def build(source: str | Path | dict, out_dir: str | Path, *, seed: int = 0, verify_model: bool = True,
          threads: int | None = None) -> BuildResult:
    """Compile, verify, then publish the artifacts into out_dir atomically. Raises SpecError
    (invalid input) or VerificationError (the artifact disagrees with the reference; out_dir is
    left untouched and the report is attached to the error)."""
    out_dir = Path(out_dir)
    _prepare_out(out_dir)
    model = load_model(source)
    t0 = time.perf_counter()
    lowered = lower(model)
    compile_seconds = time.perf_counter() - t0
    man = manifest(model, lowered, lowered.model_bytes, compile_seconds)
    report = None
    if verify_model:
        runner = OnnxRuntimeRunner(lowered.model_bytes, threads=threads)
        report = verify(model, runner, man, seed=seed)
        if not report.passed:
            raise verification_failure(model, man, report, Problem(
                str(out_dir), "model.onnx disagrees with the reference (see the report below); "
                              "nothing was written"), seed, threads)
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        (tmp / "model.onnx").write_bytes(lowered.model_bytes)
        (tmp / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
        if report is not None:
            (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        (tmp / "spec.json").write_text(json.dumps(spec_with_weights_file(model), indent=2) + "\n")
        with open(tmp / "weights.npz", "wb") as f:
            np.savez(f, **{k: model.weights[k] for k in sorted(model.weights)})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(out_dir, model, man, report)


# ---------------------------------------------------------------------------------------------
# Using a built directory.


def read_manifest(out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise RunError("not an rnncompile build directory (no manifest.json)", where=str(out_dir))
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"damaged manifest.json: {e}", where=str(path)) from None


def open_session(out_dir: str | Path, threads: int | None = None) -> Session:
    """A Session over OUT/model.onnx on onnxruntime, states carried for stateful models."""
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    model_path = out_dir / "model.onnx"
    if not model_path.is_file():
        raise RunError("model.onnx is missing", where=str(out_dir))
    return Session(OnnxRuntimeRunner(model_path, threads=threads), man)


def verify_dir(out_dir: str | Path, seed: int = 0, threads: int | None = None) -> Report:
    """Re-verify OUT/model.onnx against the reference rebuilt from OUT/spec.json and weights.npz,
    after checking the files are the ones the manifest names. Returns the passing report; raises
    VerificationError (report attached, failing layer named where it can be) otherwise."""
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    model_bytes = (out_dir / "model.onnx").read_bytes() if (out_dir / "model.onnx").is_file() else None
    if model_bytes is None:
        raise RunError("model.onnx is missing", where=str(out_dir))
    if hashlib.sha256(model_bytes).hexdigest() != man.get("model_sha256"):
        raise VerificationError("model.onnx is not the file this manifest describes (sha256 differs)",
                                where=str(out_dir / "model.onnx"))
    model = load_spec(out_dir / "spec.json")
    if model.digest != man.get("spec_sha256"):
        raise VerificationError("spec.json/weights.npz are not the ones this model was built from "
                                "(sha256 differs)", where=str(out_dir))
    report = verify(model, OnnxRuntimeRunner(model_bytes, threads=threads), man, seed=seed)
    if not report.passed:
        raise verification_failure(model, man, report, Problem(
            str(out_dir), "model.onnx disagrees with the reference (see the report below)"), seed, threads)
    return report
