"""Benchmarking a built model: latency (median, p90) and throughput on onnxruntime at chosen batch
sizes, sequence lengths, thread counts and padding patterns; the machine's fp32 matrix-multiply
peak measured in the same run; the model's matmul FLOP count; the result as a fraction of peak;
and the compile time and peak memory of `rnncompile build` and `rnncompile run` (each in its own
process). `rnncompile bench` renders it; `benchmarks/compare.py` builds on the same pieces.

Timings are wall-clock and depend on the machine and on whatever else runs on it: every result
carries the machine description and the load average seen while it was measured. Unit tests
check what the functions compute, never how fast anything is.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..backends import RunnerFactory, default_factory
from ..errors import RunError
from ..inputs import infos_from_io, make_inputs, parse_pattern
from ..io import ModelIO
from ..runtime import Session
from .flops import flop_count


# ---------------------------------------------------------------------------------------------
# Timing.


@dataclass
class Timing:
    """Per-call wall times of one configuration, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    def summary(self) -> dict:
        return {"runs": len(self.samples), "median_ms": self.median * 1e3, "p90_ms": self.p90 * 1e3,
                "mean_ms": self.mean * 1e3, "min_ms": self.best * 1e3}


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile with linear interpolation (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(samples, np.float64), q))


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> Timing:
    """Call fn `warmup` times untimed, then `runs` times timed one by one."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return Timing(samples)


def time_interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, Timing]:
    """Time several variants round-robin (the order rotates every round), so that a burst of load
    from elsewhere on the machine hits all of them alike: the ratios stay meaningful on a shared
    machine even when absolute times move."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[n]()
            samples[n].append(time.perf_counter() - t0)
    return {n: Timing(s) for n, s in samples.items()}


# ---------------------------------------------------------------------------------------------
# The machine.


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime as ort

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "logical_cpus": cores, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": ort.__version__, "load_average": load_average()}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def matmul_peak(threads: int = 1, sizes: tuple[int, ...] = (256, 512, 1024), runs: int = 20,
                factory: Callable[[int], RunnerFactory] = default_factory) -> dict:
    """The machine's fp32 matrix-multiply rate, measured now with the runtime's MatMul (for
    onnxruntime the MLAS kernel its LSTM/GRU/RNN ops use) on runners `factory(threads)` makes:
    the best over square sizes of the best of `runs` calls. Returns {"gflops", "size", "engine",
    "threads"}."""
    from onnx import TensorProto, helper

    best = (0.0, 0)
    for n in sizes:
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["y"])], "matmul",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
            [helper.make_tensor("b", TensorProto.FLOAT, [n, n],
                                np.random.default_rng(1).standard_normal((n, n)).astype(np.float32).tobytes(),
                                raw=True)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        runner = factory(threads)(model.SerializeToString())
        engine = runner.name.split(" (")[0]
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        t = time_calls(lambda: runner.run({"a": a}), runs=runs, warmup=2)
        rate = 2.0 * n ** 3 / t.best / 1e9
        if rate > best[0]:
            best = (rate, n)
    return {"gflops": best[0], "size": best[1], "engine": f"{engine} MatMul fp32", "threads": threads}


# ---------------------------------------------------------------------------------------------
# Inputs (the padding patterns and the generator of rnncompile.inputs).


def masked_inputs(io: ModelIO) -> list[str]:
    """Names of the inputs that carry padding (a pad value: Embedding mask_zero or Masking), and
    text inputs (texts of varying length; `empty` gives token-less texts)."""
    return [i.name for i in io.feed_inputs if (i.pad_value is not None and len(i.shape) >= 2) or i.dtype == "string"]


def make_feeds(io: ModelIO, batch: int, steps: int, pattern: str = "none", seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded feeds for every model input (carried states as zeros) at this batch size and
    sequence length, padded with `pattern` (rnncompile.inputs) where the input has a pad value.
    `io`: the model's inputs (dtype, shape, token_range, pad_value) and states."""
    states = {s.input: s for s in io.states}
    for spec in io.inputs:
        for axis, d in enumerate(spec.shape):
            if axis > 1 and spec.name not in states and not (isinstance(d, int) and d > 0):
                raise RunError(f"input {spec.name!r} has a dynamic axis {axis} ({d}); only batch and "
                               "time may be dynamic for benchmarking", where=f"input {spec.name!r}")
    infos = infos_from_io(io)
    feeds = make_inputs(infos, batch, {i.name: steps for i in infos}, pattern, np.random.default_rng(seed))
    made = {p.output for p in io.preprocessing}   # fed by a host tokenizer from its text input
    return {**{i.name: (np.zeros((batch, *states[i.name].shape), np.float32) if i.name in states
                        else feeds[i.name]) for i in io.inputs if i.name not in made},
            **{p.input.name: feeds[p.input.name] for p in io.preprocessing}}


# ---------------------------------------------------------------------------------------------
# Benchmarking a build directory.


@dataclass
class BenchRow:
    batch: int
    steps: int
    threads: int
    pattern: str
    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    sequences_per_s: float
    #: matmul FLOPs of one call over every step, and over the valid steps only (what a padded
    #: row needs; the rate and the fraction of peak are computed from this one)
    flops: int
    flops_valid: int
    gflops_per_s: float
    fraction_of_peak: float
    note: str = ""


@dataclass
class BenchResult:
    model: str
    out_dir: str
    machine: dict
    peak: dict[int, dict]
    rows: list[BenchRow] = field(default_factory=list)
    build: dict | None = None
    run: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.model, "out_dir": self.out_dir, "machine": self.machine,
                "matmul_peak": {str(k): v for k, v in self.peak.items()},
                "results": [asdict(r) for r in self.rows], "build": self.build, "run": self.run,
                "notes": self.notes}


def bench_dir(out_dir: str | Path, batches=(1, 32), steps=(100,), threads=(1,), patterns=("none", "left"),
              runs: int = 100, warmup: int = 10, seed: int = 0, processes: bool = True,
              plugins: tuple[str, ...] = (),
              factory: Callable[[int], RunnerFactory] = default_factory) -> BenchResult:
    """Benchmark OUT/model.onnx on runners `factory(threads)` makes (default: onnxruntime with the
    session defaults of `open_session`, threads as given). With `processes`, also time
    `rnncompile build` (OUT/spec.json) and `rnncompile run` in fresh processes for compile time
    and peak memory."""
    from ..build import model_io, open_build

    build_dir = open_build(out_dir)
    out_dir, man, model_bytes = build_dir.path, build_dir.manifest, build_dir.model_bytes()
    for p in patterns:
        try:
            parse_pattern(p)
        except ValueError as e:
            raise RunError(str(e), where="--pattern") from None
    io = model_io(build_dir)   # host-side preprocessing (a tokenizer) loaded: timed as part of each call
    masked = masked_inputs(io)
    result = BenchResult(man.get("name", out_dir.name), str(out_dir), machine_info(), {})
    if not masked and any(p != "none" for p in patterns):
        result.notes.append("the model has no padded input (no mask): padding patterns other than "
                            "'none' are skipped")
        patterns = ["none"]
    for t in threads:
        result.peak[t] = matmul_peak(t, factory=factory)
    runner_for_flops = factory(1)
    for t in threads:
        runner = factory(t)(model_bytes)
        for b in batches:
            for s in steps:
                fixed_t = _fixed_steps(io)
                s_eff = fixed_t if fixed_t is not None else s
                for p in patterns:
                    feeds = make_feeds(io, b, s_eff, p, seed)
                    call = runner.run
                    if io.preprocessing:   # time the session: the host tokenizer, then the graph
                        session = Session(runner, io)
                        call = session.run
                        fc = flop_count(model_bytes, session.prepare(dict(feeds)), runner_for_flops)
                    else:
                        fc = flop_count(model_bytes, feeds, runner_for_flops)
                    useful = fc["recurrent_valid"] + fc["dense"]
                    timing = time_calls(lambda: call(feeds), runs=runs, warmup=warmup)
                    med = timing.median
                    rate = useful / med / 1e9
                    result.rows.append(BenchRow(
                        b, s_eff, t, p, runs, med * 1e3, timing.p90 * 1e3, timing.mean * 1e3,
                        timing.best * 1e3, b / med, fc["total"], useful, rate,
                        rate / result.peak[t]["gflops"],
                        note="" if s_eff == s else f"the model's time axis is fixed at {s_eff}"))
    result.machine["load_average_after"] = load_average()
    if processes:
        result.build = process_cost(build_command(out_dir, plugins), read_compile_seconds=True)
        with tempfile.TemporaryDirectory(prefix="rnncompile-bench-") as tmp:
            inp = Path(tmp) / "inputs.npz"
            feeds = make_feeds(io, batches[0], steps[0] if _fixed_steps(io) is None else _fixed_steps(io),
                               "none", seed)
            feeds = {k: v for k, v in feeds.items() if k not in io.state_inputs}
            np.savez(inp, **feeds)
            result.run = process_cost(run_command(out_dir, inp, plugins))
            result.run["command"] = result.run["command"].replace(tmp, "<tmp>")
            result.run["inputs"] = {k: list(v.shape) for k, v in feeds.items()}
    return result


def _fixed_steps(io: ModelIO) -> int | None:
    """The model's time length when no input has a dynamic time axis (else None: --steps
    applies). Sequence inputs ([batch, time, features]) decide over [batch, k] side inputs."""
    ins = [i for i in io.feed_inputs if len(i.shape) >= 2 and i.dtype != "string"]   # text: steps = words
    if not ins or any(not (isinstance(i.shape[1], int) and i.shape[1] > 0) for i in ins):
        return None
    seqs = [i for i in ins if len(i.shape) >= 3] or ins
    return seqs[0].shape[1]


def _cli() -> list[str]:
    return [sys.executable, "-m", "rnncompile.cli"]


def _plugin_args(plugins) -> list[str]:
    return [a for p in plugins for a in ("--plugin", str(p))]


def build_command(out_dir: Path, plugins=()) -> list[str]:
    """`rnncompile build OUT/spec.json -o {tmp}/build`: the normal build, verification included."""
    return _cli() + ["build", str(Path(out_dir) / "spec.json"), "-o", "{tmp}/build"] + _plugin_args(plugins)


def run_command(out_dir: Path, inputs: Path, plugins=()) -> list[str]:
    """`rnncompile run OUT -i INPUTS --save {tmp}/outputs.npz`."""
    return _cli() + ["run", str(out_dir), "-i", str(inputs), "--save", "{tmp}/outputs.npz"] + _plugin_args(plugins)


def process_cost(cmd: list[str], read_compile_seconds: bool = False) -> dict:
    """Run `cmd` in a fresh process; return its wall time, peak resident memory (ru_maxrss of
    exactly that child, from os.wait4) and, for a build, the compile time from its manifest.
    `{tmp}` in the command stands for a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="rnncompile-bench-") as tmp:
        cmd = [c.replace("{tmp}", tmp) for c in cmd]
        with open(Path(tmp) / "stderr.txt", "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - t0
                proc.returncode = os.waitstatus_to_exitcode(status)
                rss = usage.ru_maxrss / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)
            else:  # pragma: no cover - Windows
                proc.wait()
                wall, rss = time.perf_counter() - t0, None
        if proc.returncode != 0:
            text = (Path(tmp) / "stderr.txt").read_text(errors="replace").strip()
            raise RunError(f"`{' '.join(cmd[3:])}` failed (exit {proc.returncode}): {text[-500:]}",
                           where="bench")
        result = {"command": " ".join(["rnncompile"] + cmd[3:]).replace(tmp, "<tmp>"),
                  "wall_s": wall, "peak_rss_mib": rss}
        if read_compile_seconds:
            man = json.loads((Path(tmp) / "build" / "manifest.json").read_text())
            result["compile_s"] = man.get("compile_seconds")
    return result


# ---------------------------------------------------------------------------------------------
# Rendering.


def render(result: BenchResult) -> str:
    m = result.machine
    lines = [f"{result.model}: {result.out_dir}",
             f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs, onnxruntime {m['onnxruntime']}, "
             f"load average {m.get('load_average')} -> {m.get('load_average_after')}"]
    for t, p in result.peak.items():
        lines.append(f"fp32 matmul peak ({t} thread{'s' if t != 1 else ''}): {p['gflops']:.1f} GFLOP/s "
                     f"({p['size']}x{p['size']}, {p['engine']})")
    head = (f"{'batch':>5} {'steps':>5} {'thr':>3} {'pattern':<9} {'median ms':>10} {'p90 ms':>9} "
            f"{'seq/s':>9} {'MFLOP':>9} {'GFLOP/s':>8} {'of peak':>8}")
    lines += ["", head, "-" * len(head)]
    for r in result.rows:
        lines.append(f"{r.batch:>5} {r.steps:>5} {r.threads:>3} {r.pattern:<9} {r.median_ms:>10.3f} "
                     f"{r.p90_ms:>9.3f} {r.sequences_per_s:>9.1f} {r.flops_valid / 1e6:>9.1f} "
                     f"{r.gflops_per_s:>8.2f} {r.fraction_of_peak:>7.1%}" + (f"  ({r.note})" if r.note else ""))
    for what, d in (("build", result.build), ("run", result.run)):
        if d:
            extra = f", compile {d['compile_s'] * 1e3:.0f} ms" if d.get("compile_s") is not None else ""
            lines.append(f"{what}: {d['command']}: wall {d['wall_s']:.2f} s{extra}, "
                         f"peak RSS {d['peak_rss_mib']:.0f} MiB")
    lines.append("MFLOP: matmul FLOPs of one call over the valid steps (padded steps excluded); "
                 "GFLOP/s and 'of peak' from those and the median")
    for n in result.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)
