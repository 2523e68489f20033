"""TensorRT engines: build (`build_engine`), run (`TensorRTRunner`, behind the Runner interface so
verify, run and Session work on engines, stateful models included), and what runs without a GPU:
optimization profiles (`profiles_for`), the equivalent `trtexec` command line (`artifacts`), and
the GPU probe (`probe`, in a subprocess: TensorRT can take a process down when no GPU is there).

Engine code is thin over Polygraphy's TensorRT backend (NVIDIA's pure-Python wrapper: network from
ONNX, builder config, engine bytes, a runner that owns the CUDA buffers), not hand-written CUDA
buffer code. Networks are strongly typed: the precision is in the ONNX types (typed fp16/bf16
graphs, rnncompile/onnx_precision.py); TensorRT 11 has no FP16/BF16 builder flags at all.

Status: the profile, trtexec and probe code runs (and is tested) on the CPU. `build_engine` and
`TensorRTRunner` follow the TensorRT 10.x / Polygraphy 0.49+ APIs and have NOT been run here (no
GPU, TensorRT not installable); tools/gpu_check.py is the one prepared script that runs them.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import tensorrt_rules
from ..errors import RunError, SpecError
from . import InputMeta, ModelSource

_OPTIONS = {"precision", "profiles", "workspace_mib", "timing_cache", "progress", "out_dir"}
#: Default (min, opt, max) per dynamic axis, by the axis name the lowering gives it (rnncompile.lower
#: input_dims: "batch", "time" or "<input>_time", ...). Other symbolic axes get OTHER_AXIS.
DEFAULT_AXES = {"batch": (1, 8, 64), "time": (1, 128, 512)}
OTHER_AXIS = (1, 16, 256)
DEFAULT_WORKSPACE_MIB = 1024
PLAN, SUMMARY, TRTEXEC = "model.plan", "engine.json", "trtexec.sh"
INSTALL_HINT = ("TensorRT is not available here: it needs an NVIDIA GPU and `pip install "
                "tensorrt-cu12` (CUDA 12) or `tensorrt` (CUDA 13), plus `pip install polygraphy`")


@dataclass(frozen=True)
class Profile:
    """One optimization profile: per input, (min, opt, max) shapes."""

    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

    def flag(self, which: int) -> str:
        """trtexec's `name:AxBxC,...` for min (0), opt (1) or max (2)."""
        return ",".join(f"{n}:{'x'.join(str(d) for d in s[which])}" for n, s in self.shapes.items())

    def to_dict(self) -> dict:
        return {n: {"min": list(s[0]), "opt": list(s[1]), "max": list(s[2])} for n, s in self.shapes.items()}


def _axis_name(d) -> str | None:
    return d if isinstance(d, str) else None


def _default_axis(name: str) -> tuple[int, int, int]:
    if name in DEFAULT_AXES:
        return DEFAULT_AXES[name]
    if name.endswith("time"):
        return DEFAULT_AXES["time"]
    return OTHER_AXIS


def parse_profile_flag(text: str) -> tuple[str, tuple[tuple[int, ...], ...]]:
    """`tokens:1x1,8x128,64x512` -> ("tokens", (min, opt, max))."""
    where = f"--profile {text}"
    name, sep, rest = text.rpartition(":")
    if not sep or not name:
        raise SpecError("expected NAME:MIN,OPT,MAX with shapes like 1x128", where=where)
    parts = rest.split(",")
    if len(parts) != 3:
        raise SpecError(f"expected three shapes (min,opt,max), got {len(parts)}", where=where)
    try:
        shapes = tuple(tuple(int(d) for d in p.lower().split("x")) for p in parts)
    except ValueError:
        raise SpecError("shapes are integers joined by 'x', e.g. 8x128", where=where) from None
    return name, shapes


def profiles_for(io: dict, flags: list[str] | tuple[str, ...] = ()) -> Profile:
    """The optimization profile for a model described by `io` (a manifest: inputs with shapes
    whose dynamic axes are named, and onnx_ops), from `--profile` flags, with defaults for every
    dynamic axis the flags leave open. An axis name shared by several inputs (batch) gets one
    range. Checked: ranks, fixed sizes, 1 <= min <= opt <= max, and TopK's limit on the time axis
    of masked models (tensorrt_rules.TOPK_MAX_K)."""
    inputs = {i["name"]: i["shape"] for i in io["inputs"]}
    axes: dict[str, tuple[int, int, int]] = {}
    given = [parse_profile_flag(f) for f in flags]
    for name, shapes in given:
        where = f"--profile {name}"
        if name not in inputs:
            raise SpecError(f"no input named {name!r}; inputs: {', '.join(inputs)}", where=where)
        dims = inputs[name]
        for s in shapes:
            if len(s) != len(dims):
                raise SpecError(f"shape {'x'.join(map(str, s))} has rank {len(s)}; {name} has rank "
                                f"{len(dims)} ({dims})", where=where)
        for k, d in enumerate(dims):
            lo, opt, hi = (s[k] for s in shapes)
            if not 1 <= lo <= opt <= hi:
                raise SpecError(f"axis {k}: expected 1 <= min <= opt <= max, got {lo}, {opt}, {hi}", where=where)
            if isinstance(d, int):
                if (lo, opt, hi) != (d, d, d):
                    raise SpecError(f"axis {k} is fixed at {d}", where=where)
                continue
            if d in axes and axes[d] != (lo, opt, hi):
                raise SpecError(f"axis {d!r} is shared with another input and given two ranges "
                                f"{axes[d]} and {(lo, opt, hi)}", where=where)
            axes[d] = (lo, opt, hi)
    for dims in inputs.values():
        for d in dims:
            if _axis_name(d) and d not in axes:
                axes[d] = _default_axis(d)
    if "TopK" in io.get("onnx_ops", []):
        for n, dims in inputs.items():
            if len(dims) > 1 and _axis_name(dims[1]) and axes[dims[1]][2] >= tensorrt_rules.TOPK_MAX_K:
                raise SpecError(f"the mask lowering sorts along time (TopK, K = T) and TensorRT takes "
                                f"K < {tensorrt_rules.TOPK_MAX_K}: keep the time axis's max below it",
                                where=f"--profile {n} ({tensorrt_rules.TOPK_SOURCE})")
    shapes = {n: tuple(tuple(d if isinstance(d, int) else axes[d][w] for d in dims) for w in range(3))
              for n, dims in inputs.items()}
    return Profile(shapes)


def trtexec_command(io: dict, profile: Profile, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                    onnx: str = "model.onnx", plan: str = PLAN, timing_cache: str = "timing.cache") -> str:
    """The trtexec command line that builds the same engine as `rnncompile engine`."""
    args = ["trtexec", f"--onnx={onnx}", f"--saveEngine={plan}",
            f"--minShapes={profile.flag(0)}", f"--optShapes={profile.flag(1)}",
            f"--maxShapes={profile.flag(2)}", "--stronglyTyped",
            f"--memPoolSize=workspace:{int(workspace_mib)}M", f"--timingCacheFile={timing_cache}"]
    return " ".join(shlex.quote(a) for a in args)


def artifacts(manifest: dict) -> dict[str, str]:
    """Files a tensorrt-target build adds to OUT (no GPU needed): trtexec.sh, the equivalent
    trtexec command with the default profile (edit the shapes to your traffic)."""
    profile = profiles_for(manifest)
    return {TRTEXEC: "#!/bin/sh\n"
                     "# Builds model.plan with NVIDIA's trtexec: the same engine as `rnncompile engine OUT`\n"
                     f"# (strongly typed: {manifest.get('precision', 'float32')} as the ONNX types say; "
                     "default profile below).\n"
                     'cd "$(dirname "$0")" && ' + trtexec_command(manifest, profile) + "\n"}


# ---------------------------------------------------------------------------------------------
# The GPU probe: a subprocess, so a crash or hang in TensorRT/CUDA cannot take this process down.

_PROBE = r"""
import json, shutil, subprocess
out = {}
try:
    import tensorrt as trt
    out["tensorrt"] = trt.__version__
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    out["builder"] = builder is not None
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
try:
    import polygraphy
    out["polygraphy"] = polygraphy.__version__
except Exception as e:
    out["error_polygraphy"] = f"{type(e).__name__}: {e}"
if shutil.which("nvidia-smi"):
    r = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                       capture_output=True, text=True, timeout=30)
    out["gpu"] = r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None
print(json.dumps(out))
"""


def probe(timeout: float = 120.0) -> dict:
    """Whether TensorRT can build engines here: {"available", "reason", "tensorrt", "gpu", ...}."""
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"the TensorRT probe did not finish in {timeout:.0f} s"}
    if r.returncode != 0:
        return {"available": False, "reason": f"the TensorRT probe crashed (exit {r.returncode}): "
                                              f"{r.stderr.strip()[-300:]}"}
    try:
        info = json.loads(r.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"available": False, "reason": f"the TensorRT probe printed no result: {r.stdout[-200:]}"}
    reasons = []
    if "error" in info:
        reasons.append(f"import tensorrt failed ({info['error']})")
    elif not info.get("builder"):
        reasons.append("tensorrt.Builder could not be created (no usable GPU?)")
    if "error_polygraphy" in info:
        reasons.append(f"import polygraphy failed ({info['error_polygraphy']})")
    if not info.get("gpu"):
        reasons.append("no GPU reported by nvidia-smi")
    info["available"] = not reasons
    info["reason"] = "; ".join(reasons) if reasons else "ok"
    return info


def _require():
    """tensorrt and polygraphy's TensorRT backend, or a RunError saying what is missing."""
    try:
        import tensorrt as trt
        from polygraphy.backend import trt as ptrt
    except Exception as e:  # ImportError, or a missing libnvinfer / CUDA driver
        raise RunError(f"{INSTALL_HINT} ({type(e).__name__}: {e})", where="backend tensorrt") from None
    return trt, ptrt


# ---------------------------------------------------------------------------------------------
# Engines (GPU only; not run on our CPU-only machines).


def _progress_monitor(trt):
    """A trt.IProgressMonitor printing build phases to stderr (TensorRT >= 10)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self._steps[phase_name] = num_steps
            print(f"  tensorrt: {phase_name} ...", file=sys.stderr, flush=True)

        def step_complete(self, phase_name, step):
            n = self._steps.get(phase_name, 0)
            if n > 1:
                print(f"\r  tensorrt: {phase_name} {step + 1}/{n}", end="", file=sys.stderr, flush=True)
            return True  # keep building

        def phase_finish(self, phase_name):
            if self._steps.pop(phase_name, 0) > 1:
                print(file=sys.stderr, flush=True)

    return Monitor()


def build_engine_bytes(onnx_path: str | Path, profile: Profile, workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                       timing_cache: str | Path | None = None, progress: bool = True) -> bytes:
    """A serialized engine for `onnx_path`: strongly typed network, one optimization profile, a
    workspace limit, and a timing cache read before and written after the build (later builds on
    the same GPU and TensorRT version reuse the measured tactics)."""
    trt, ptrt = _require()
    network = ptrt.NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
    prof = ptrt.Profile()
    for name, (lo, opt, hi) in profile.shapes.items():
        prof.add(name, min=lo, opt=opt, max=hi)
    cache = str(timing_cache) if timing_cache else None
    config = ptrt.CreateConfig(
        profiles=[prof],
        memory_pool_limits={trt.MemoryPoolType.WORKSPACE: int(workspace_mib) << 20},
        load_timing_cache=cache if cache and Path(cache).is_file() else None,
        progress_monitor=_progress_monitor(trt) if progress else None)
    try:
        return bytes(ptrt.EngineBytesFromNetwork(network, config=config, save_timing_cache=cache)())
    except Exception as e:  # parser or builder refusal: TensorRT says why in its log and here
        raise RunError(f"TensorRT could not build the engine: {type(e).__name__}: {e}", where=str(onnx_path)) from None


def build_engine(out_dir: str | Path, profile_flags: tuple[str, ...] = (), workspace_mib: int = DEFAULT_WORKSPACE_MIB,
                 timing_cache: str | Path | None = None, progress: bool = True) -> dict:
    """OUT/model.onnx -> OUT/model.plan + OUT/engine.json (the engine summary). Profiles from
    `profile_flags` with defaults from OUT/manifest.json. Returns the summary."""
    out = Path(out_dir)
    man = json.loads((out / "manifest.json").read_text())
    onnx_path = out / "model.onnx"
    profile = profiles_for(man, profile_flags)
    timing_cache = Path(timing_cache) if timing_cache else out / "timing.cache"
    t0 = time.perf_counter()
    plan = build_engine_bytes(onnx_path, profile, workspace_mib, timing_cache, progress)
    seconds = time.perf_counter() - t0
    trt, _ = _require()
    summary = {
        "tensorrt": trt.__version__, "gpu": probe().get("gpu"),
        "precision": man.get("precision", "float32"), "strongly_typed": True,
        "profile": profile.to_dict(), "workspace_mib": workspace_mib,
        "timing_cache": str(timing_cache), "build_seconds": round(seconds, 2),
        "model_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "plan_sha256": hashlib.sha256(plan).hexdigest(), "plan_bytes": len(plan),
        "trtexec": trtexec_command(man, profile, workspace_mib),
        "note": "a plan runs only on the GPU architecture and TensorRT version that built it",
    }
    (out / PLAN).write_bytes(plan)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    from .. import outdir

    written = [PLAN, SUMMARY] + ([timing_cache.name] if timing_cache.parent == out and timing_cache.is_file() else [])
    outdir.adopt(out, written)  # a later `build -o OUT` may replace them
    return summary


class TensorRTRunner:
    """An engine behind the Runner interface (polygraphy's TrtRunner owns context and buffers)."""

    def __init__(self, plan: bytes, precision: str = "float32"):
        trt, ptrt = _require()
        self._runner = ptrt.TrtRunner(ptrt.EngineFromBytes(plan))
        self._runner.activate()
        engine = self._runner.engine
        self.name = f"TensorRT {trt.__version__}"
        self.precision = precision
        self.inputs, self.output_names = [], []
        for i in range(engine.num_io_tensors):
            n = engine.get_tensor_name(i)
            if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT:
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(n))).name
                shape = tuple(d if d >= 0 else None for d in engine.get_tensor_shape(n))
                self.inputs.append(InputMeta(n, dtype, shape))
            else:
                self.output_names.append(n)

    def run(self, feeds):
        try:
            outs = self._runner.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
        except Exception as e:
            raise RunError(f"TensorRT failed: {type(e).__name__}: {e}", where=PLAN) from None
        return {n: np.array(outs[n]) for n in self.output_names}

    def __del__(self):
        try:
            self._runner.deactivate()
        except Exception:
            pass


def check_options(options: dict) -> None:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise RunError(f"unknown tensorrt option(s) {sorted(unknown)}; expected {sorted(_OPTIONS)}",
                       where="backend options")


def open_runner(model: ModelSource, precision: str | None = None, profiles: tuple[str, ...] = (),
                workspace_mib: int = DEFAULT_WORKSPACE_MIB, timing_cache: str | None = None,
                progress: bool = False, out_dir: str | None = None) -> TensorRTRunner:
    """A runner on an engine: `model` is a plan (model.plan), a build directory's model.onnx (its
    model.plan is used when engine.json says it was built from these bytes), or ONNX bytes (the
    plan of `out_dir` when its engine.json says it was built from these bytes, else an engine
    built in memory with the default profile of the graph's inputs)."""
    _require()
    if isinstance(model, bytes) and out_dir and (Path(out_dir) / PLAN).is_file():
        model = _matching_plan(Path(out_dir), model) or model
    if isinstance(model, (str, Path)) and Path(model).suffix == ".plan":
        man = _manifest_near(Path(model))
        return TensorRTRunner(Path(model).read_bytes(), precision or man.get("precision", "float32"))
    if isinstance(model, (str, Path)):
        path = Path(model)
        man = _manifest_near(path)
        summary = path.parent / SUMMARY
        if (path.parent / PLAN).is_file() and summary.is_file() and json.loads(summary.read_text()).get(
                "model_sha256") == hashlib.sha256(path.read_bytes()).hexdigest():
            return TensorRTRunner((path.parent / PLAN).read_bytes(), precision or man.get("precision", "float32"))
        data = path.read_bytes()
    else:
        data, man = model, {}
    from ..onnx_graph import describe  # the graph's inputs, for the default profile

    io = describe(data)
    profile = profiles_for({"inputs": io["inputs"], "onnx_ops": io["ops"]}, profiles)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rnncompile-trt-") as tmp:
        p = Path(tmp) / "model.onnx"
        p.write_bytes(data)
        plan = build_engine_bytes(p, profile, workspace_mib, timing_cache, progress)
    return TensorRTRunner(plan, precision or man.get("precision", "float32"))


def _matching_plan(out: Path, model_bytes: bytes) -> Path | None:
    try:
        summary = json.loads((out / SUMMARY).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return out / PLAN if summary.get("model_sha256") == hashlib.sha256(model_bytes).hexdigest() else None


def _manifest_near(path: Path) -> dict:
    m = path.parent / "manifest.json"
    try:
        return json.loads(m.read_text()) if m.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
