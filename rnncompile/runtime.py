"""Runners: one interface over the ways a model can be run (Polygraphy-style). Each takes every
model input (states included) by name and returns every output by name.

  * ReferenceRunner   - the NumPy float64 reference (the source of truth)
  * OnnxRuntimeRunner - model.onnx on onnxruntime
  * TensorRTRunner    - in rnncompile.tensorrt (needs a GPU)

`Session` sits on top of a runner and carries the state of stateful layers across calls, as
Keras's cross-batch statefulness does, until `reset_states()`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import RunError
from .feeds import check_feeds


class Runner(Protocol):
    name: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def default_threads() -> int:
    """onnxruntime's intra-op threads when none are asked for: the CPUs this process may use.

    Measured (BENCHMARKS.md, benchmarks/session_defaults.py, 2-core machine, 100 steps): with the
    second core idle, 2 threads ran batch 32 1.6-1.8x faster than 1 and batch 1 between 1.3x
    faster (LSTM 128) and 1.1x slower (BiLSTM 64); while other processes kept that core busy,
    2 threads ran 1.1-1.8x slower, since onnxruntime's pool threads sync (and spin) every step.
    On a shared machine, or for reproducible timings, pass threads=1 (CLI `--threads 1`);
    `rnncompile bench` and benchmarks/ use 1 unless told otherwise."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class OnnxRuntimeRunner:
    """model.onnx on onnxruntime. Session defaults (measured, see `default_threads`): intra-op
    threads = available CPUs, 1 inter-op thread, sequential execution (one chain of ops), all
    graph optimizations (levels none..all measured alike within noise; `all` fuses Dense's
    MatMul+Add). No ORT-optimized copy of the model is saved next to model.onnx: loading one
    measured no faster to run and no faster to open."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None,
                 providers: list[str] | None = None, optimization: str = "all"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
        providers = providers or ["CPUExecutionProvider"]
        data = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(data, sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise RunError(f"onnxruntime cannot load the model: {e}", where=str(model)[:200]
                           if not isinstance(model, bytes) else "model.onnx") from None
        self.name = f"onnxruntime {ort.__version__} ({', '.join(self.session.get_providers())})"
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds):
        try:
            outs = self.session.run(None, feeds)
        except Exception as e:
            raise RunError(f"onnxruntime failed: {e}", where="model.onnx") from None
        return dict(zip(self.output_names, outs))


class ReferenceRunner:
    """The float64 NumPy reference behind the Runner interface."""

    name = "reference (NumPy float64)"

    def __init__(self, model):
        self.model = model

    def run(self, feeds):
        from .reference import run_reference

        m = self.model
        inputs = {n: feeds[n] for n in m.inputs}
        states = {s.input_name: feeds[s.input_name] for s in m.states if s.input_name in feeds}
        outs, new_states = run_reference(m, inputs, states)
        result = dict(zip(m.output_names, outs))
        for s in m.states:
            result[s.output_name] = new_states[s.input_name]
        return result


class Session:
    """Runs a model through a runner; carries stateful layers' states across calls.

    `io` is the manifest's description: {"inputs": [...], "outputs": [...], "states": [...]}."""

    def __init__(self, runner: Runner, io: dict):
        self.runner = runner
        self.io = io
        self.states_spec = io.get("states", [])
        self._states: dict[str, np.ndarray] | None = None
        self.input_names = [i["name"] for i in io["inputs"] if i["name"] not in
                            {s["input"] for s in self.states_spec}]

    @property
    def stateful(self) -> bool:
        return bool(self.states_spec)

    def reset_states(self) -> None:
        """Forget carried states: the next call starts from zeros."""
        self._states = None

    @property
    def states(self) -> dict[str, np.ndarray]:
        """Copies of the carried states (changing them does not change the session's)."""
        return {k: v.copy() for k, v in (self._states or {}).items()}

    def run(self, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        if not isinstance(inputs, dict):
            if len(self.input_names) != 1:
                raise RunError(f"the model has inputs {self.input_names}: pass a dict", where="inputs")
            inputs = {self.input_names[0]: inputs}
        specs = [i for i in self.io["inputs"] if i["name"] in self.input_names]
        feeds = check_feeds(specs, inputs)
        for spec in specs:
            limit = spec.get("token_range")
            if limit is not None:
                ids = feeds[spec["name"]]
                bad = (ids < 0) | (ids >= limit)
                if bad.any():
                    idx = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise RunError(f"token id {int(ids[idx])} at index {idx} is outside the vocabulary "
                                   f"[0, {limit})", where=f"input {spec['name']!r}")
        if self.states_spec:
            batch = next(iter(feeds.values())).shape[0]
            if self._states is not None:
                prev = next(iter(self._states.values())).shape[0]
                if prev != batch:
                    raise RunError(f"a stateful model keeps its batch size: got {batch}, the carried "
                                   f"state has {prev}; call reset_states() first", where="inputs")
            for s in self.states_spec:
                cur = (self._states or {}).get(s["input"])
                feeds[s["input"]] = (np.zeros((batch, *s["shape"]), np.float32) if cur is None
                                     else cur)
        outs = self.runner.run(feeds)
        if self.states_spec:
            self._states = {s["input"]: outs.pop(s["output"]) for s in self.states_spec}
        return outs
