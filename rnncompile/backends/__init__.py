"""Backends: one interface over the runtimes that execute a model (Polygraphy-style runners).

A `Runner` takes every graph input (carried states included) by name and returns every output by
name; it says which runtime it is (`name`), the float precision it computes in (`precision`) and
the inputs it takes (`inputs`). Code that needs to run a model never constructs a runtime itself:
it receives a `RunnerFactory` (`runner_factory(...)`), which makes a runner from model bytes or
a file, so `build`, `verify`, `localize`, `open_session`, the QA tools and tests run the same
code on onnxruntime today and on TensorRT engines where a GPU has them.

One module per runtime: `reference` (the float64 NumPy reference, the oracle), `onnxruntime`,
and `tensorrt` (engines; needs a GPU and TensorRT). Adding a runtime is one module here plus one
line in BACKENDS.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Union

import numpy as np

from ..errors import RunError

ModelSource = Union[bytes, str, Path]


@dataclass(frozen=True)
class InputMeta:
    """A graph input as the runtime declares it: name, element type, shape (None or a name for
    a dynamic axis)."""

    name: str
    dtype: str
    shape: tuple


class Runner(Protocol):
    #: human-readable runtime and device, for reports ("onnxruntime 1.32 (CPUExecutionProvider)")
    name: str
    #: float precision the runner computes in: float32, float16 or bfloat16 (verification picks
    #: its tolerance row from it)
    precision: str
    #: the graph inputs it takes
    inputs: list[InputMeta]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


#: Makes a runner for one model (bytes of an ONNX model, or a path to one; engines for tensorrt).
RunnerFactory = Callable[[ModelSource], Runner]

#: backend name -> module (imported only when used: onnxruntime and TensorRT are heavy).
BACKENDS = {
    "onnxruntime": "rnncompile.backends.onnxruntime",
    "tensorrt": "rnncompile.backends.tensorrt",
}


def runner_factory(backend: str = "onnxruntime", **options) -> RunnerFactory:
    """A factory of runners on `backend`, with the runtime's options (e.g. threads=, providers=
    for onnxruntime). The factory is what callers pass around; each call opens one model."""
    module = BACKENDS.get(backend)
    if module is None:
        raise RunError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}",
                       where="--backend")
    mod = importlib.import_module(module)
    mod.check_options(options)
    return lambda model: mod.open_runner(model, **options)


def default_factory(threads: int | None = None, precision: str = "float32") -> RunnerFactory:
    """onnxruntime on the CPU with the measured session defaults (see backends/onnxruntime.py),
    for graphs computing in `precision` (a typed fp16/bf16 graph: its tolerance row)."""
    return runner_factory("onnxruntime", threads=threads, precision=precision)


__all__ = ["BACKENDS", "InputMeta", "ModelSource", "Runner", "RunnerFactory", "default_factory",
           "runner_factory"]
