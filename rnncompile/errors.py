"""Errors that reach the user. Each names where (a JSON path, a layer, a file) and what was expected.

The CLI maps them to exit codes: 2 for bad input, 1 for a model that fails verification, 3 for an
internal error, 130 when interrupted by SIGINT (Ctrl-C) and 143 by SIGTERM.
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


class InputError(RnnCompileError):
    """Bad input (exit 2): the base of every error that the user's input, not rnncompile, caused.
    Only these are reported as the input's fault; any other exception is an internal error."""


class SpecError(InputError):
    """The spec (or a file it names) is invalid. Holds every problem found, not just the first."""


class PluginError(InputError):
    """A plugin (--plugin, entry point) cannot be imported or defines an invalid layer kind."""


class ModelFileError(InputError):
    """A file we were asked to read (weights, Keras model, inputs) is missing, damaged or unsafe."""


class TargetError(InputError):
    """The model is valid but cannot be lowered for the requested target (e.g. a Scan-only cell
    for TensorRT): each problem names the layer, the reason and the nearest alternative."""


class RunError(InputError):
    """Running a built model failed (bad inputs, missing artifacts, runtime refusal)."""


class OutputError(RnnCompileError):
    """An output path rnncompile will not write: a directory it cannot prove it created, a link,
    the very file being read, a missing or unwritable parent."""


class Terminated(BaseException):
    """Raised (by the CLI's SIGTERM handler) to unwind like KeyboardInterrupt does for SIGINT,
    so temporary files are removed before the process exits with 143."""


class LayerContractError(RnnCompileError):
    """A layer kind broke its own contract: its lowering or reference disagrees with its shape rule."""

    exit_code = 1


class VerificationError(RnnCompileError):
    """The built artifact does not compute what the reference computes. `report` is the
    verification report (rnncompile.verify.Report) when one was made."""

    exit_code = 1

    def __init__(self, problems: list[Problem] | str, where: str = "", report=None):
        super().__init__(problems, where)
        self.report = report
