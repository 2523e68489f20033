"""Errors that reach the user. Each names where (a JSON path, a layer, a file) and what was expected.

The CLI maps them to exit codes: 2 for bad input, 1 for a model that fails verification.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what was expected."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class RnnCompileError(Exception):
    """Base of every error rnncompile reports to a user (never shown with a traceback)."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str, where: str = ""):
        if isinstance(problems, str):
            problems = [Problem(where or "input", problems)]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SpecError(RnnCompileError):
    """The spec (or a file it names) is invalid. Holds every problem found, not just the first."""


class ModelFileError(RnnCompileError):
    """A file we were asked to read (weights, Keras model, inputs) is missing, damaged or unsafe."""


class TargetError(RnnCompileError):
    """The model is valid but cannot be lowered for the requested target (e.g. a Scan-only cell
    for TensorRT): each problem names the layer, the reason and the nearest alternative."""


class RunError(RnnCompileError):
    """Running a built model failed (bad inputs, missing artifacts, runtime refusal)."""


class LayerContractError(RnnCompileError):
    """A layer kind broke its own contract: its lowering or reference disagrees with its shape rule."""

    exit_code = 1


class VerificationError(RnnCompileError):
    """The built artifact does not compute what the reference computes."""

    exit_code = 1
