"""Model inputs: checking what a user feeds against the model's inputs, and reading input files."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelFileError, Problem, RunError
from .io import TensorIO
from .jsonfile import read_json_file
from .npz import NpzFile, expected_text, read_npy, summarize


def check_feeds(inputs: Sequence[TensorIO], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`inputs`: the inputs to check (shapes with None/str for dynamic dims). Returns the feeds cast to
    the declared dtypes; raises RunError naming the input and what was expected."""
    out = {}
    names = [i.name for i in inputs]
    check_input_names(list(feeds), names)
    batch = None
    for spec in inputs:
        name = spec.name
        if name not in feeds:
            raise RunError(f"missing input; expected {spec.dtype} with shape {_shape_text(spec.shape)}",
                           where=f"input {name!r}")
        arr = np.asarray(feeds[name])
        want = spec.shape
        if spec.dtype == "string" and arr.ndim in (1, 2) and len(want) in (1, 2) and arr.ndim != len(want) \
                and (arr.ndim == 1 or arr.shape[1] == 1):
            arr = arr.reshape((-1, *([1] if len(want) == 2 else [])))   # (batch,) <-> (batch, 1)
        if arr.ndim != len(want):
            raise RunError(f"expected {len(want)}-D {_shape_text(want)}, got shape {arr.shape}",
                           where=f"input {name!r}")
        for axis, (d, w) in enumerate(zip(arr.shape, want)):
            if isinstance(w, int) and w > 0 and d != w:
                raise RunError(f"axis {axis} must be {w}, got shape {arr.shape}", where=f"input {name!r}")
        check_not_empty(name, arr.shape)
        if arr.ndim and (batch is None):
            batch = arr.shape[0]
        elif arr.ndim and arr.shape[0] != batch:
            raise RunError(f"batch size {arr.shape[0]} differs from the other inputs' {batch}",
                           where=f"input {name!r}")
        if spec.dtype == "string":
            out[name] = check_texts(name, arr)
            continue
        if spec.dtype.startswith("int"):
            if arr.dtype.kind not in "iu":
                if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                    pass
                else:
                    raise RunError(f"expected integer token ids, got {arr.dtype}", where=f"input {name!r}")
            lim = np.iinfo(spec.dtype)
            if arr.size and (arr.min() < lim.min or arr.max() > lim.max):
                bad = arr.min() if arr.min() < lim.min else arr.max()
                raise RunError(f"value {bad} does not fit the input's {spec.dtype}",
                               where=f"input {name!r}")
        elif spec.dtype == "bool":
            if arr.dtype.kind != "b" and not (arr.dtype.kind in "fiu" and np.isin(arr, (0, 1)).all()):
                raise RunError(f"expected a bool mask (True/False or 1/0), got {arr.dtype}", where=f"input {name!r}")
        elif arr.dtype.kind not in "fiu":
            raise RunError(f"expected numbers, got {arr.dtype}", where=f"input {name!r}")
        out[name] = arr.astype(spec.dtype)
    return out


def check_texts(name: str, arr: np.ndarray) -> np.ndarray:
    """A text input: str (or UTF-8 bytes) per batch row -> an object array of str, the shape kept.
    Invalid UTF-8 and strings that have no UTF-8 form (lone surrogates) are refused by row."""
    if arr.dtype.kind not in "USO":
        raise RunError(f"expected text (strings), got {arr.dtype}", where=f"input {name!r}")
    flat = arr.reshape(-1).tolist()
    for i, t in enumerate(flat):
        if isinstance(t, bytes):
            try:
                flat[i] = t.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RunError(f"row {i} is not valid UTF-8 (byte {e.start})", where=f"input {name!r}") from None
        elif isinstance(t, str):
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as e:
                raise RunError(f"row {i} has no UTF-8 form (character {e.start}: {t[e.start]!r})",
                               where=f"input {name!r}") from None
        else:
            raise RunError(f"row {i} is {type(t).__name__}, expected a string", where=f"input {name!r}")
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(arr.shape)


def check_input_names(found: list[str], names: list[str]) -> None:
    """Refuse inputs the model does not have; the message is bounded however many there are."""
    extra = sorted(set(found) - set(names))
    if extra:
        raise RunError(summarize([Problem(f"input {k!r}", f"unknown input {k!r}"
                                          + (f"; the model's inputs are: {expected_text(names)}"
                                             if i == 0 else ""))
                                  for i, k in enumerate(extra)], "more unknown inputs"))


def check_not_empty(name: str, shape: tuple) -> None:
    """A batch of 0 rows or a sequence of 0 steps is refused: onnxruntime's recurrent kernels
    crash the process on them, and Keras has no answer either (docs/security.md)."""
    for axis, d in enumerate(shape):
        if d == 0:
            what = {0: "batch of 0 rows", 1: "sequence of 0 time steps"}.get(axis, f"axis {axis} of size 0")
            raise RunError(f"empty input (shape {tuple(shape)}): a {what} has nothing to compute; "
                           f"expected at least 1", where=f"input {name!r}")


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) and d > 0 else (d or "?") for d in shape) + ")"


def read_inputs(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Inputs from .npz (one array per input name), .npy (the single input) or .json
    ({name: nested list}). With `names`, an .npz member of another name is refused before
    anything is inflated. Sizes are bounded by rnncompile.limits."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if not path.is_file():
            raise RunError("input file not found", where=str(path))
    except OSError as e:
        raise RunError(f"cannot read input file: {e.strerror or e}", where=str(path)) from None
    if suffix == ".npz":
        try:
            with NpzFile(path, "input file", kinds="biufUS") as npz:   # text inputs: unicode or bytes
                if names is not None:
                    check_input_names(npz.keys, names)  # before anything is inflated
                return {k: npz.read(k) for k in npz.keys}
        except ModelFileError as e:
            raise RunError(e.problems) from None
    if suffix == ".npy":
        return {"": read_npy(path, RunError, kinds="biufcUS")}  # complex, text: refused by input name later
    if suffix == ".txt":   # texts, one per line, for the model's single text input
        texts = _read_lines(path)
        return {"": np.array(texts, dtype=object)}
    if suffix == ".json":
        data = read_json_file(path, "input file", RunError)
        if not isinstance(data, dict):
            raise RunError("expected an object {input name: array}", where=str(path))
        out = {}
        for k, v in data.items():
            try:
                out[k] = np.asarray(v)
            except (ValueError, OverflowError) as e:
                raise RunError(f"not a rectangular array: {e}", where=f"{path}[{k}]") from None
            if out[k].dtype.kind == "U":   # texts, for a text input (checked against the model later)
                out[k] = out[k].astype(object)
                continue
            if out[k].dtype.kind != "b" and _has_bool(v):   # all true/false: a bool mask input
                raise RunError("expected numbers, found true/false", where=f"{path}[{k}]")
            if out[k].dtype.kind not in "iufb":
                raise RunError("expected numbers (or strings for a text input)", where=f"{path}[{k}]")
        return out
    raise RunError("expected a .npz, .npy, .json or .txt (texts, one per line) input file", where=str(path))


def _read_lines(path: Path) -> list[str]:
    """A UTF-8 text file, one text per line ("\n" or "\r\n"; a final newline ends the last line)."""
    from .jsonfile import read_text_lines

    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in read_text_lines(path, "input file", RunError)]
    if not lines:
        raise RunError("no texts: the file is empty", where=str(path))
    return lines


def _has_bool(value) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bool):
            return True
        if isinstance(v, list):
            stack.extend(v)
    return False
