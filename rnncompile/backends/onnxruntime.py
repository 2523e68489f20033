"""onnxruntime: the one place that creates onnxruntime sessions (session options written once).

Session defaults (measured, BENCHMARKS.md, benchmarks/session_defaults.py): intra-op threads =
the CPUs this process may use (`default_threads`), 1 inter-op thread, sequential execution (one
chain of ops), all graph optimizations (levels none..all measured alike within noise; `all` fuses
Dense's MatMul+Add). No ORT-optimized copy of the model is saved next to model.onnx: loading one
measured no faster to run and no faster to open."""
from __future__ import annotations

import os

from ..errors import RunError
from . import InputMeta, ModelSource

OPTIMIZATION_LEVELS = ("none", "basic", "extended", "all")
_OPTIONS = {"threads", "providers", "optimization", "quiet", "precision"}

#: onnxruntime's element type names -> ours
_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(bfloat16)": "bfloat16",
           "tensor(double)": "float64", "tensor(int32)": "int32", "tensor(int64)": "int64",
           "tensor(bool)": "bool", "tensor(string)": "string"}


def default_threads() -> int:
    """onnxruntime's intra-op threads when none are asked for: the CPUs this process may use.

    Measured (BENCHMARKS.md, benchmarks/session_defaults.py, 2-core machine, 100 steps): with the
    second core idle, 2 threads ran batch 32 1.6-1.8x faster than 1 and batch 1 between 1.3x
    faster (LSTM 128) and 1.1x slower (BiLSTM 64); while other processes kept that core busy,
    2 threads ran 1.1-1.8x slower, since onnxruntime's pool threads sync (and spin) every step.
    On a shared machine, or for reproducible timings, pass threads=1 (CLI `--threads 1`);
    `rnncompile bench` and benchmarks/ use 1 unless told otherwise."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def session_options(threads: int | None = None, optimization: str = "all", quiet: bool = False):
    """The SessionOptions every rnncompile session uses."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4 if quiet else 3
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    return opts


def check_options(options: dict) -> None:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise RunError(f"unknown onnxruntime option(s) {sorted(unknown)}; expected {sorted(_OPTIONS)}",
                       where="backend options")
    level = options.get("optimization", "all")
    if level not in OPTIMIZATION_LEVELS:
        raise RunError(f"optimization level {level!r}; expected one of {OPTIMIZATION_LEVELS}",
                       where="backend options")


class OnnxRuntimeRunner:
    """An ONNX model on onnxruntime, behind the Runner interface."""

    def __init__(self, model: ModelSource, threads: int | None = None,
                 providers: list[str] | None = None, optimization: str = "all", quiet: bool = False,
                 precision: str = "float32"):
        """`precision`: the float precision the model computes in (a typed fp16/bf16 graph says
        so in its manifest); verification picks its tolerance row from it."""
        import onnxruntime as ort

        providers = providers or ["CPUExecutionProvider"]
        data = model if isinstance(model, bytes) else str(model)
        if precision in ("float16", "bfloat16") and optimization == "all":
            # onnxruntime 1.32's level-"all" optimizer crashed the process (segfault, no exception)
            # loading typed graphs (generated specs 17 in bfloat16, 74 and 111 in float16; see
            # tests/test_tensorrt.py); "extended" and below load them, and the graph is unchanged
            optimization = "extended"
        #: op types run in float32 between casts: this onnxruntime has no kernel for them at the
        #: typed graph's precision (typed fp16/bf16 graphs only; see onnx_precision.widen_nodes)
        self.widened: list[str] = []
        where = "model.onnx" if isinstance(model, bytes) else str(model)[:200]
        while True:
            try:
                self.session = ort.InferenceSession(data, sess_options=session_options(threads, optimization, quiet),
                                                    providers=providers)
                break
            except Exception as e:  # onnxruntime raises its own exception types
                node = _missing_kernel(str(e)) if precision in ("float16", "bfloat16") else None
                raw = data if isinstance(data, bytes) else open(data, "rb").read()
                from ..onnx_precision import node_op, widen_nodes

                op = node_op(raw, *node) if node else None
                new = [o for o in (op or "").split(",") if o and o not in self.widened]
                if not new:
                    raise RunError(f"onnxruntime cannot load the model: {e}", where=where) from None
                self.widened += new
                data = widen_nodes(raw, set(self.widened))
        self.name = f"onnxruntime {ort.__version__} ({', '.join(self.session.get_providers())})"
        if self.widened:
            self.name += (f"; no {precision} kernel here for {', '.join(sorted(self.widened))}: those "
                          f"ops ran in float32 between {precision} casts")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.inputs = [InputMeta(i.name, _DTYPES.get(i.type, i.type),
                                 tuple(d if isinstance(d, int) else None for d in i.shape))
                       for i in self.session.get_inputs()]
        self.precision = precision

    def run(self, feeds):
        try:
            outs = self.session.run(None, feeds)
        except Exception as e:
            raise RunError(f"onnxruntime failed: {e}", where="model.onnx") from None
        return dict(zip(self.output_names, outs))


def _missing_kernel(message: str) -> tuple[str, str] | None:
    """(node name, op type) from onnxruntime's "Could not find an implementation for Op(version) node
    with name '...'"."""
    import re

    m = re.search(r"Could not find an implementation for (\w+)\(\d+\) node with name '([^']*)'", message)
    return (m.group(2), m.group(1)) if m else None


def open_runner(model: ModelSource, **options) -> OnnxRuntimeRunner:
    return OnnxRuntimeRunner(model, **options)


