"""Model inputs: checking what a user feeds against the model's inputs, and reading input files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import RunError
from .npz import read_npz


def check_feeds(inputs: list[dict], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`inputs`: [{name, dtype, shape}] with None/str for dynamic dims. Returns the feeds cast to
    the declared dtypes; raises RunError naming the input and what was expected."""
    out = {}
    names = [i["name"] for i in inputs]
    for extra in sorted(set(feeds) - set(names)):
        raise RunError(f"unknown input {extra!r}; the model's inputs are: {', '.join(names)}",
                       where=f"input {extra!r}")
    batch = None
    for spec in inputs:
        name = spec["name"]
        if name not in feeds:
            raise RunError(f"missing input; expected {spec['dtype']} with shape {_shape_text(spec['shape'])}",
                           where=f"input {name!r}")
        arr = np.asarray(feeds[name])
        want = spec["shape"]
        if arr.ndim != len(want):
            raise RunError(f"expected {len(want)}-D {_shape_text(want)}, got shape {arr.shape}",
                           where=f"input {name!r}")
        for axis, (d, w) in enumerate(zip(arr.shape, want)):
            if isinstance(w, int) and w > 0 and d != w:
                raise RunError(f"axis {axis} must be {w}, got shape {arr.shape}", where=f"input {name!r}")
        if arr.ndim and (batch is None):
            batch = arr.shape[0]
        elif arr.ndim and arr.shape[0] != batch:
            raise RunError(f"batch size {arr.shape[0]} differs from the other inputs' {batch}",
                           where=f"input {name!r}")
        if spec["dtype"].startswith("int"):
            if arr.dtype.kind not in "iu":
                if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                    pass
                else:
                    raise RunError(f"expected integer token ids, got {arr.dtype}", where=f"input {name!r}")
            lim = np.iinfo(spec["dtype"])
            if arr.size and (arr.min() < lim.min or arr.max() > lim.max):
                bad = arr.min() if arr.min() < lim.min else arr.max()
                raise RunError(f"value {bad} does not fit the input's {spec['dtype']}",
                               where=f"input {name!r}")
        elif arr.dtype.kind not in "fiu":
            raise RunError(f"expected numbers, got {arr.dtype}", where=f"input {name!r}")
        out[name] = arr.astype(spec["dtype"])
    return out


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) and d > 0 else (d or "?") for d in shape) + ")"


def read_inputs(path: str | Path) -> dict[str, np.ndarray]:
    """Inputs from .npz (one array per input name), .npy (the single input) or .json
    ({name: nested list})."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise RunError("input file not found", where=str(path))
    if suffix == ".npz":
        return read_npz(path, "input file")
    if suffix == ".npy":
        try:
            return {"": np.load(path, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as e:
            raise RunError(f"not a readable .npy array: {e}", where=str(path)) from None
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"invalid JSON: {e}", where=str(path)) from None
        if not isinstance(data, dict):
            raise RunError("expected an object {input name: array}", where=str(path))
        out = {}
        for k, v in data.items():
            try:
                out[k] = np.asarray(v)
            except ValueError as e:
                raise RunError(f"not a rectangular array: {e}", where=f"{path}[{k}]") from None
            if out[k].dtype.kind not in "biuf":
                raise RunError("expected numbers", where=f"{path}[{k}]")
        return out
    raise RunError("expected a .npz, .npy or .json input file", where=str(path))
