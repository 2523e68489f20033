"""Import trained Keras models as rnncompile specs, without Keras or TensorFlow.

Reads Keras 3 `.keras` files (a zip of `config.json` and `model.weights.h5`) and legacy `.h5`
files (Keras 2 / tf.keras, or Keras 3's legacy HDF5 saving: a `model_config` attribute and
weights under `model_weights/<layer>/...`) as data: nothing is unpickled, deserialized into
objects or executed, and the HDF5 data is read in a contained child process (reader.py).

    spec, weights = import_keras("model.keras")     # a spec dict and {"<layer>/<weight>": array}
    model = load_model_file("model.keras")          # -> rnncompile.spec.Model
    write_spec("model.keras", "out/spec.json")      # spec.json + spec.npz beside it

The package, by job: `reader` (files, limits, the contained HDF5 reader `h5reader`), `graph` (the
Keras node graph, masks, weights of each call), `fields` (one Keras config -> one spec layer,
through the layer kinds' `from_keras` rules). Layer names, input names and output order come
from the Keras model. Every option that changes the math is either mapped exactly or refused
with a message naming the file, the layer, its class and the option; options with no effect at
inference (initializers, regularizers, constraints, seeds, dropout, cuDNN switches, ...) are dropped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .. import layers as _builtin_layers  # noqa: F401  (registers the built-in kinds)
from ..errors import Problem, SpecError
from .graph import Converter
from .reader import KerasLimits, open_source

__all__ = ["KerasLimits", "import_keras", "load_model_file", "write_spec"]


def import_keras(path: str | Path, limits: KerasLimits | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a `.keras` or `.h5` Keras model file. Returns (spec dict, weights by spec key).
    Raises ModelFileError (damaged, unsafe or over a limit) or SpecError (a layer or option that
    cannot be compiled exactly), each naming the file and the layer. `limits` defaults to
    KerasLimits.from_env()."""
    path = Path(path)
    with open_source(path, limits or KerasLimits.from_env()) as src:
        return Converter(src).run()


def load_model_file(path: str | Path, limits: KerasLimits | None = None):
    """Import a Keras model file and load it as an rnncompile Model (validated and typed).
    Problems found by the spec loader are reported against the Keras layer they come from."""
    from ..spec import load_spec

    path = Path(path)
    spec, weights = import_keras(path, limits)
    try:
        return load_spec(spec, weights=weights, base_dir=path.parent)
    except SpecError as e:
        raise SpecError([_relocate(p, spec, path) for p in e.problems]) from None


def write_spec(path_in: str | Path, spec_out_path: str | Path, limits: KerasLimits | None = None) -> list[Path]:
    """Import `path_in` and write the spec JSON to `spec_out_path`, with its weights in an `.npz`
    beside it (same stem) that the spec's `weights` field names by relative path. The imported
    model is validated before anything is written. Returns [spec path, weights path]."""
    from ..spec import load_spec

    path_in, spec_out = Path(path_in), Path(spec_out_path)
    spec, weights = import_keras(path_in, limits)
    try:
        load_spec(spec, weights=weights)
    except SpecError as e:
        raise SpecError([_relocate(p, spec, path_in) for p in e.problems]) from None
    npz_path = spec_out.with_suffix(".npz")
    if npz_path == spec_out:
        npz_path = spec_out.with_name(spec_out.name + ".npz")
    spec = dict(spec, weights=npz_path.name)
    spec_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_name(npz_path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()})
    tmp.replace(npz_path)
    order = ["name", "source", "weights", "seed", "layers", "outputs"]
    spec = {k: spec[k] for k in order if k in spec} | {k: v for k, v in spec.items() if k not in order}
    tmp_spec = spec_out.with_name(spec_out.name + ".tmp")
    tmp_spec.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    tmp_spec.replace(spec_out)
    return [spec_out, npz_path]


def _relocate(p: Problem, spec: dict, path: Path) -> Problem:
    """`$.layers[3].units` -> `model.keras: layer 'lstm' (LSTM) [$.layers[3].units]`."""
    m = re.match(r"^\$\.layers\[(\d+)\]", p.where)
    if m and int(m.group(1)) < len(spec.get("layers", [])):
        layer = spec["layers"][int(m.group(1))]
        return Problem(f"{path}: layer {layer.get('name')!r} ({layer.get('class_name')}) [{p.where}]",
                       p.message)
    return Problem(f"{path} [{p.where}]", p.message)
