"""Import trained Keras models as rnncompile specs, without Keras or TensorFlow.

Reads Keras 3 `.keras` files (a zip of `config.json` and `model.weights.h5`) and legacy `.h5`
files (Keras 2 / tf.keras, or Keras 3's legacy HDF5 saving: a `model_config` attribute and
weights under `model_weights/<layer>/...`) as data, with `zipfile`, `json` and `h5py` only:
nothing is unpickled, deserialized into objects or executed.

    spec, weights = import_keras("model.keras")     # a spec dict and {"<layer>/<weight>": array}
    model = load_model_file("model.keras")          # -> rnncompile.spec.Model
    write_spec("model.keras", "out/spec.json")      # spec.json + spec.npz beside it

Layer names, input names and output order come from the Keras model. Every option that changes
the math is either mapped exactly or refused with a message naming the file, the layer, its
class and the option; options with no effect at inference (initializers, regularizers,
constraints, seeds, dropout, cuDNN switches, ...) are dropped.
"""
from __future__ import annotations

import json
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ModelFileError, Problem, RnnCompileError, SpecError

# -- limits (checked before anything large is read) ---------------------------------------------
MAX_FILE_BYTES = 4 << 30          # a model file
MAX_CONFIG_BYTES = 16 << 20       # config.json / model_config
MAX_METADATA_BYTES = 1 << 20      # metadata.json
MAX_WEIGHTS_BYTES = 2 << 30       # model.weights.h5 inside a .keras zip
MAX_ARRAY_ELEMENTS = 1 << 28      # one weight array
MAX_ZIP_MEMBERS = 10_000
MAX_LAYERS = 10_000
MAX_NODES_PER_LAYER = 1_000

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# Activations the core knows; Keras 2's hard_sigmoid is a different function (see below).
_ACTIVATIONS = {
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "leaky_relu", "softsign",
    "softplus", "elu", "selu", "swish", "silu", "gelu", "exponential", "softmax",
}

# Config fields with no effect on inference, for every layer.
_INERT_COMMON = {
    "name", "trainable", "seed", "batch_input_shape", "batch_shape", "input_shape", "batch_size",
    "input_dtype", "autocast", "activity_regularizer", "build_config", "compile_config",
    "use_cudnn", "implementation", "input_spec", "lora_alpha", "sparse",
}
_INERT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")

_RECURRENT = ("LSTM", "GRU", "SimpleRNN")
_CELLS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_PASS_THROUGH = ("Dense", "Dropout", "Activation")
#: Keras layers whose call takes the mask (the ones where a wrong mask changes the result).
_MASK_CONSUMERS = (*_RECURRENT, "RNN", "Bidirectional", "GlobalAveragePooling1D")


# ================================================================================================
# Public API


def import_keras(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a `.keras` or `.h5` Keras model file. Returns (spec dict, weights by spec key).
    Raises ModelFileError (damaged or unsafe file) or SpecError (a layer or option that cannot
    be compiled exactly), each naming the file and the layer."""
    path = Path(path)
    try:
        with _open_source(path) as src:
            return _Converter(src).run()
    except RnnCompileError:
        raise
    except (OSError, RuntimeError) as e:  # h5py on damaged HDF5 data
        raise ModelFileError(f"damaged or unreadable model file ({type(e).__name__}: {e})",
                             where=str(path)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as e:
        # A config or weights layout that no Keras writes: report it, never a traceback.
        raise ModelFileError(f"malformed or damaged Keras model file ({type(e).__name__}: {e})",
                             where=str(path)) from None


def load_model_file(path: str | Path):
    """Import a Keras model file and load it as an rnncompile Model (validated and typed).
    Problems found by the spec loader are reported against the Keras layer they come from."""
    from .spec import load_spec

    path = Path(path)
    spec, weights = import_keras(path)
    try:
        return load_spec(spec, weights=weights, base_dir=path.parent)
    except SpecError as e:
        raise SpecError([_relocate(p, spec, path) for p in e.problems]) from None


def write_spec(path_in: str | Path, spec_out_path: str | Path) -> list[Path]:
    """Import `path_in` and write the spec JSON to `spec_out_path`, with its weights in an `.npz`
    beside it (same stem) that the spec's `weights` field names by relative path. The imported
    model is validated before anything is written. Returns [spec path, weights path]."""
    from .spec import load_spec

    path_in, spec_out = Path(path_in), Path(spec_out_path)
    spec, weights = import_keras(path_in)
    try:
        load_spec(spec, weights=weights)
    except SpecError as e:
        raise SpecError([_relocate(p, spec, path_in) for p in e.problems]) from None
    npz_path = spec_out.with_suffix(".npz")
    if npz_path == spec_out:
        npz_path = spec_out.with_name(spec_out.name + ".npz")
    spec = dict(spec)
    spec["weights"] = npz_path.name
    spec_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_name(npz_path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()})
    tmp.replace(npz_path)
    text = json.dumps(_ordered_spec(spec), indent=2) + "\n"
    tmp_spec = spec_out.with_name(spec_out.name + ".tmp")
    tmp_spec.write_text(text, encoding="utf-8")
    tmp_spec.replace(spec_out)
    return [spec_out, npz_path]


def _ordered_spec(spec: dict) -> dict:
    order = ["name", "source", "weights", "seed", "layers", "outputs"]
    return {k: spec[k] for k in order if k in spec} | {k: v for k, v in spec.items() if k not in order}


def _relocate(p: Problem, spec: dict, path: Path) -> Problem:
    """`$.layers[3].units` -> `model.keras: layer 'lstm' (LSTM) [$.layers[3].units]`."""
    m = re.match(r"^\$\.layers\[(\d+)\]", p.where)
    if m and int(m.group(1)) < len(spec.get("layers", [])):
        layer = spec["layers"][int(m.group(1))]
        return Problem(f"{path}: layer {layer.get('name')!r} ({layer.get('class_name')}) [{p.where}]",
                       p.message)
    return Problem(f"{path} [{p.where}]", p.message)


# ================================================================================================
# Reading the file: config, version, weights. Everything is data.


@dataclass
class _Source:
    path: Path
    config: dict                      # {"class_name": ..., "config": ...}
    keras_version: str                # "3.15.1", "2.15.0", or "" when unknown
    weights: "_WeightStore"
    cleanup: list = field(default_factory=list)

    @property
    def major(self) -> int:
        m = re.match(r"^(\d+)", self.keras_version or "")
        if m:
            return int(m.group(1))
        return 3 if _looks_keras3(self.config) else 2

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in reversed(self.cleanup):
            try:
                c()
            except Exception:  # noqa: BLE001 (closing never masks the real error)
                pass


def _looks_keras3(config: dict) -> bool:
    text = json.dumps(config)[:200_000]
    return '"module": "keras' in text or '"__keras_tensor__"' in text


def _open_source(path: Path) -> _Source:
    where = str(path)
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            raise ModelFileError("this is a TensorFlow SavedModel directory, which holds TensorFlow "
                                 "graphs, not a Keras model file; save the model with "
                                 "model.save('model.keras') and import that", where=where)
        raise ModelFileError("expected a .keras or .h5 file, found a directory", where=where)
    if not path.is_file():
        raise ModelFileError("model file not found", where=where)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFileError(f"file is {size} bytes, over the limit of {MAX_FILE_BYTES}", where=where)
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] in ZIP_MAGIC:
        return _open_keras_zip(path)
    if head == HDF5_MAGIC or _hdf5_at_offset(path):
        return _open_legacy_h5(path)
    raise ModelFileError("not a Keras model file: expected a Keras 3 .keras zip or a legacy HDF5 "
                         ".h5 file (neither signature found)", where=where)


def _hdf5_at_offset(path: Path) -> bool:
    # An HDF5 superblock may sit at 0, 512, 1024, 2048, ... (user block).
    with open(path, "rb") as f:
        for off in (512, 1024, 2048, 4096):
            f.seek(off)
            if f.read(8) == HDF5_MAGIC:
                return True
    return False


def _unsafe_member_name(name: str) -> str | None:
    if "\x00" in name:
        return "a NUL character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if any(part == ".." for part in name.split("/")):
        return "a '..' component (path traversal)"
    return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    if info.file_size > limit:
        raise ModelFileError(f"member is {info.file_size} bytes uncompressed, over the limit of "
                             f"{limit}; refusing to read it", where=where)
    if info.flag_bits & 0x1:
        raise ModelFileError("member is encrypted", where=where)
    try:
        with zf.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError) as e:
        raise ModelFileError(f"damaged zip member: {e}", where=where) from None
    if len(data) > limit:
        raise ModelFileError(f"member decompresses to more than its declared size (limit {limit})",
                             where=where)
    return data


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str, out) -> None:
    if info.file_size > limit:
        raise ModelFileError(f"member is {info.file_size} bytes uncompressed, over the limit of "
                             f"{limit}; refusing to read it", where=where)
    if info.flag_bits & 0x1:
        raise ModelFileError("member is encrypted", where=where)
    total = 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise ModelFileError(f"member decompresses to more than {limit} bytes", where=where)
                out.write(chunk)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError) as e:
        raise ModelFileError(f"damaged zip member: {e}", where=where) from None
    out.flush()
    out.seek(0)


def _parse_json(data: bytes | str, where: str) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as e:
        raise ModelFileError(f"not UTF-8 text: {e}", where=where) from None
    except json.JSONDecodeError as e:
        raise ModelFileError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}",
                             where=where) from None
    except RecursionError:
        raise ModelFileError("JSON nested too deeply", where=where) from None


def _open_keras_zip(path: Path) -> _Source:
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ModelFileError(f"not a readable .keras file (damaged zip): {e}", where=where) from None
    cleanup = [zf.close]
    try:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ModelFileError(f"zip has {len(infos)} members (limit {MAX_ZIP_MEMBERS})", where=where)
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            why = _unsafe_member_name(info.filename)
            if why:
                raise ModelFileError(f"zip member name {info.filename!r} contains {why}; a Keras "
                                     f"file never does, so the file is refused", where=where)
            if info.filename in members:
                raise ModelFileError(f"zip has two members named {info.filename!r}", where=where)
            members[info.filename] = info
        if "config.json" not in members:
            raise ModelFileError("no config.json in the zip: not a Keras 3 .keras model file "
                                 f"(members: {', '.join(sorted(members)[:10]) or 'none'})", where=where)
        if "model.weights.h5" not in members:
            other = [n for n in members if n.startswith("model.weights")]
            if other:
                raise ModelFileError(f"weights are stored as {other[0]!r}; only the default "
                                     f"model.weights.h5 layout is supported", where=where)
            raise ModelFileError("no model.weights.h5 in the zip: the model has no saved weights",
                                 where=where)
        config = _parse_json(_read_member(zf, members["config.json"], MAX_CONFIG_BYTES,
                                          f"{path}[config.json]"), f"{path}[config.json]")
        version = ""
        if "metadata.json" in members:
            meta = _parse_json(_read_member(zf, members["metadata.json"], MAX_METADATA_BYTES,
                                            f"{path}[metadata.json]"), f"{path}[metadata.json]")
            if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
                version = meta["keras_version"]
        tmp = tempfile.TemporaryFile()
        cleanup.append(tmp.close)
        _copy_member(zf, members["model.weights.h5"], MAX_WEIGHTS_BYTES,
                     f"{path}[model.weights.h5]", tmp)
        h5 = _h5_open(tmp, f"{path}[model.weights.h5]")
        cleanup.append(h5.close)
        if not isinstance(config, dict):
            raise ModelFileError("config.json is not a JSON object", where=f"{path}[config.json]")
        store = _Keras3Store(h5, f"{path}[model.weights.h5]")
        return _Source(path, config, version, store, cleanup)
    except BaseException:
        for c in reversed(cleanup):
            c()
        raise


def _h5_open(target, where: str):
    import h5py

    try:
        return h5py.File(target, "r")
    except (OSError, ValueError) as e:
        raise ModelFileError(f"not a readable HDF5 file: {e}", where=where) from None


def _open_legacy_h5(path: Path) -> _Source:
    where = str(path)
    h5 = _h5_open(path, where)
    try:
        attrs = h5.attrs
        if "model_config" not in attrs:
            if "layer_names" in attrs or "weight_names" in attrs:
                raise ModelFileError("this HDF5 file holds weights only (model.save_weights), no "
                                     "model config; save the whole model with model.save()", where=where)
            raise ModelFileError("no model_config attribute: not a Keras .h5 model file", where=where)
        _check_attr_size(attrs, "model_config", MAX_CONFIG_BYTES, where)
        config = _parse_json(_attr_text(attrs["model_config"]), f"{path}[model_config]")
        version = _attr_text(attrs.get("keras_version", b""))
        if "model_weights" not in h5:
            raise ModelFileError("no model_weights group: the file holds a config but no weights",
                                 where=where)
        mw = _hard_group(h5, "model_weights", where)
        if not version:
            version = _attr_text(mw.attrs.get("keras_version", b""))
        if not isinstance(config, dict):
            raise ModelFileError("model_config is not a JSON object", where=f"{path}[model_config]")
        store = _LegacyStore(mw, f"{path}[model_weights]")
        return _Source(path, config, version, store, [h5.close])
    except BaseException:
        h5.close()
        raise


def _attr_text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        return _attr_text(v.item())
    return str(v) if v is not None else ""


def _check_attr_size(attrs, name: str, limit: int, where: str) -> None:
    try:
        aid = attrs.get_id(name)
        size = aid.get_storage_size()
    except Exception:  # noqa: BLE001 (a weird attribute is reported when it is read)
        return
    if size > limit:
        raise ModelFileError(f"attribute {name} is {size} bytes, over the limit of {limit}", where=where)


def _hard_group(parent, name: str, where: str):
    import h5py

    link = parent.get(name, getlink=True)
    if link is None:
        raise ModelFileError(f"missing HDF5 group {name!r}", where=where)
    if not isinstance(link, h5py.HardLink):
        raise ModelFileError(f"HDF5 entry {name!r} is a {type(link).__name__}; links to other "
                             f"places or files are refused", where=where)
    obj = parent[name]
    if not isinstance(obj, h5py.Group):
        raise ModelFileError(f"HDF5 entry {name!r} is not a group", where=where)
    return obj


def _read_array(ds, where: str) -> np.ndarray:
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise ModelFileError("expected a weight array (HDF5 dataset), found a group", where=where)
    if ds.is_virtual or ds.external:
        raise ModelFileError("weight array stored outside the file (external or virtual dataset); "
                             "refused", where=where)
    if ds.dtype.kind not in "fiu" or ds.dtype.hasobject:
        raise ModelFileError(f"weight array has dtype {ds.dtype}; expected numbers", where=where)
    if ds.size > MAX_ARRAY_ELEMENTS:
        raise ModelFileError(f"weight array has {ds.size} elements (limit {MAX_ARRAY_ELEMENTS})",
                             where=where)
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, TypeError) as e:
        raise ModelFileError(f"damaged weight array: {e}", where=where) from None


def _walk_datasets(group, where: str, prefix: str = "") -> list[tuple[str, Any]]:
    """Every dataset under `group` (hard links only), as (relative path, dataset), in natural order."""
    import h5py

    out = []
    for key in sorted(group.keys(), key=_natural_key):
        link = group.get(key, getlink=True)
        rel = f"{prefix}{key}"
        if not isinstance(link, h5py.HardLink):
            raise ModelFileError(f"HDF5 entry {rel!r} is a {type(link).__name__}; links to other "
                                 f"places or files are refused", where=where)
        obj = group[key]
        if isinstance(obj, h5py.Group):
            out += _walk_datasets(obj, where, rel + "/")
        else:
            out.append((rel, obj))
    return out


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


class _WeightStore:
    """The saved arrays of one Keras layer, by name, in save order."""

    where: str

    def layer_arrays(self, layer_name: str, keras_class: str) -> list[tuple[str, Any]] | None:
        raise NotImplementedError

    keras3_paths = True


class _Keras3Store(_WeightStore):
    """model.weights.h5 of a .keras zip: `layers/<snake_case class>[_n]/...`, each layer's
    `vars` group carrying its name (newer Keras); without names, the order of the config."""

    keras3_paths = True

    def __init__(self, h5, where: str):
        self.h5 = h5
        self.where = where
        self.by_name: dict[str, Any] = {}
        self.by_path: dict[str, Any] = {}
        if "layers" in h5:
            layers = _hard_group(h5, "layers", where)
            for key in layers.keys():
                grp = _hard_group(layers, key, where)
                self.by_path[key] = grp
                if "vars" in grp:
                    name = _attr_text(grp["vars"].attrs.get("name", b""))
                    if name:
                        self.by_name.setdefault(name, grp)
        self.positional: dict[str, str] = {}

    def set_order(self, layers: list[tuple[str, str]]) -> None:
        """(name, class) of the model's layers in save order, for files without name attributes."""
        used: dict[str, int] = {}
        for name, cls in layers:
            snake = _keras_snake(cls)
            if snake in used:
                used[snake] += 1
                snake = f"{snake}_{used[snake]}"
            else:
                used[snake] = 0
            self.positional[name] = snake

    def layer_arrays(self, layer_name, keras_class):
        grp = self.by_name.get(layer_name)
        if grp is None and layer_name in self.positional:
            grp = self.by_path.get(self.positional[layer_name])
        if grp is None:
            return None
        where = f"{self.where}[{grp.name}]"
        return [(rel, ds) for rel, ds in _walk_datasets(grp, where)]


class _LegacyStore(_WeightStore):
    """model_weights of a legacy .h5: `model_weights/<layer>` with a `weight_names` attribute
    listing `<path>/<weight>[:0]`, in save order."""

    keras3_paths = False

    def __init__(self, group, where: str):
        self.group = group
        self.where = where

    def layer_arrays(self, layer_name, keras_class):
        import h5py

        if layer_name not in self.group:
            return None
        grp = _hard_group(self.group, layer_name, self.where)
        names = grp.attrs.get("weight_names")
        if names is None:
            return []
        out = []
        for n in list(names):
            n = _attr_text(n)
            if _unsafe_member_name(n) or n.startswith("/"):
                raise ModelFileError(f"weight name {n!r} is not a plain relative path",
                                     where=f"{self.where}[{layer_name}]")
            if n not in grp:
                raise ModelFileError(f"weight {n!r} is listed but missing", where=f"{self.where}[{layer_name}]")
            # every component must be a hard link
            node = grp
            parts = n.split("/")
            for part in parts:
                link = node.get(part, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    raise ModelFileError(f"weight {n!r} goes through a {type(link).__name__}; refused",
                                         where=f"{self.where}[{layer_name}]")
                node = node[part]
            out.append((n, node))
        return out


def _keras_snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


# ================================================================================================
# The model graph: Keras layers, their calls (nodes) and the tensors between them.

TRef = tuple  # (layer name, node index, tensor index)


@dataclass
class _Node:
    layer: str
    index: int
    cls: str
    config: dict
    entry: dict
    args: list
    kwargs: dict
    order: int
    is_op: bool = False
    explicit_masks: bool = True   # Keras 3 functional: the mask the layer used is in kwargs

    @property
    def key(self) -> tuple:
        return (self.layer, self.index)


@dataclass
class _T:
    """A converted tensor: its spec reference and the mask that the spec will carry with it."""

    ref: str
    mask: Any
    node: _Node | None
    index: int


class _Refused(Exception):
    pass


class _Converter:
    def __init__(self, src: _Source):
        self.src = src
        self.file = str(src.path)
        self.major = src.major
        self.problems: list[Problem] = []
        self.layers: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.names: set[str] = set()
        self.entries: dict[str, dict] = {}
        self.nodes: dict[tuple, _Node] = {}
        self.tensors: dict[TRef, _T] = {}
        self.broken: set[tuple] = set()

    # -- problems -----------------------------------------------------------------------------
    def where(self, layer: str | None = None, cls: str | None = None) -> str:
        if layer is None:
            return self.file
        return f"{self.file}: layer {layer!r} ({cls})" if cls else f"{self.file}: layer {layer!r}"

    def fail(self, message: str, layer: str | None = None, cls: str | None = None) -> None:
        p = Problem(self.where(layer, cls), message)
        if p not in self.problems:
            self.problems.append(p)

    # -- entry point --------------------------------------------------------------------------
    def run(self) -> tuple[dict, dict[str, np.ndarray]]:
        top = self.src.config
        cls = top.get("class_name")
        cfg = top.get("config")
        if self.major < 2:
            raise ModelFileError(f"Keras {self.src.keras_version} files are not supported "
                                 f"(Keras 2 and 3 are)", where=self.file)
        self._check_custom(top, None, cls)
        if self.problems:
            raise SpecError(self.problems)
        if cls == "Sequential":
            self._sequential(cfg)
        elif cls in ("Functional", "Model"):
            if not isinstance(cfg, dict) or "layers" not in cfg:
                raise SpecError([Problem(self.file, f"the model is a {cls} without a layer graph in "
                                                    f"its config (a subclassed model, whose call() "
                                                    f"is Python code); only Sequential and "
                                                    f"Functional models can be imported")])
            self._functional(cfg)
        else:
            raise SpecError([Problem(self.file, f"model class {cls!r} is not supported: only Sequential "
                                                f"and Functional models can be imported (a subclassed "
                                                f"model's call() is Python code, which is never run)")])
        if self.problems:
            raise SpecError(self.problems)
        name = (cfg or {}).get("name") if isinstance(cfg, dict) else None
        spec = {"name": _safe_name(name or self.src.path.stem), "layers": self.layers}
        spec["outputs"] = self.outputs
        return spec, self.weights

    # -- custom objects and code ----------------------------------------------------------------
    def _check_custom(self, entry: dict, name: str | None, cls: str | None) -> bool:
        """False (and a problem) when `entry` is a custom object or holds code."""
        if not isinstance(entry, dict):
            self.fail(f"expected a layer config object, found {type(entry).__name__}", name, cls)
            return False
        module = entry.get("module")
        registered = entry.get("registered_name")
        if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
            self.fail(f"{cls} layers hold Python code (serialized function bytecode or a TensorFlow "
                      f"function); rnncompile never runs code from a model file. Replace it with "
                      f"built-in layers", name, cls)
            return False
        if isinstance(module, str) and module and not (module == "keras" or module.startswith("keras.")):
            self.fail(f"custom object from module {module!r} (registered as {registered!r}): its code "
                      f"would have to be imported and run, which rnncompile never does; only "
                      f"built-in Keras layers are supported", name, cls)
            return False
        if isinstance(registered, str) and registered and registered != cls:
            self.fail(f"custom object registered as {registered!r}: its code would have to be run, "
                      f"which rnncompile never does; only built-in Keras layers are supported", name, cls)
            return False
        return True

    def _layer_entries(self, entries, what: str) -> list:
        """A config's list of layer entries: non-empty and within the size limit."""
        if not isinstance(entries, list) or not entries:
            raise SpecError([Problem(self.file, f"{what} has no layers")])
        if len(entries) > MAX_LAYERS:
            raise SpecError([Problem(self.file, f"{len(entries)} layers (limit {MAX_LAYERS})")])
        return entries

    # -- Sequential -----------------------------------------------------------------------------
    def _sequential(self, cfg) -> None:
        entries = self._layer_entries(cfg if isinstance(cfg, list) else (cfg or {}).get("layers"),
                                      "the Sequential model")
        nodes: list[_Node] = []
        names = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise SpecError([Problem(self.file, f"layer {i} of the Sequential model is not an object")])
            lcfg = e.get("config") if isinstance(e.get("config"), dict) else {}
            name = e.get("name") or lcfg.get("name") or f"{_keras_snake(str(e.get('class_name')))}_{i}"
            if not isinstance(name, str):
                raise SpecError([Problem(self.file, f"layer {i} of the Sequential model has a "
                                                    f"non-text name {_short(name)}")])
            names.append(name)
        first = entries[0]
        first_cfg = first.get("config") if isinstance(first.get("config"), dict) else {}
        prev: TRef
        if first.get("class_name") == "InputLayer":
            start = 1
            inp_name = names[0]
            inp_entry = first
        else:
            # No InputLayer: Keras 2 puts batch_input_shape on the first layer; Keras 3 keeps the
            # built shape in the model's build_config.
            start = 0
            shape = first_cfg.get("batch_input_shape") or first_cfg.get("batch_shape")
            if shape is None and isinstance(cfg, dict):
                bc = cfg.get("build_input_shape") or (cfg.get("build_config") or {}).get("input_shape")
                shape = bc
            if shape is None:
                raise SpecError([Problem(self.where(names[0], first.get("class_name")),
                                         "the Sequential model was never built (no input shape in the "
                                         "file); build it (or give it an Input) before saving")])
            dtype = first_cfg.get("dtype") if isinstance(first_cfg.get("dtype"), str) else "float32"
            inp_name = f"{names[0]}_input"
            inp_entry = {"class_name": "InputLayer",
                         "config": {"batch_shape": shape, "dtype": dtype, "name": inp_name}}
        self.entries[inp_name] = inp_entry
        inp_node = _Node(inp_name, 0, "InputLayer", inp_entry.get("config") or {}, inp_entry, [], {}, 0,
                         explicit_masks=False)
        nodes.append(inp_node)
        prev = (inp_name, 0, 0)
        order: list[tuple[str, str]] = []
        for i in range(start, len(entries)):
            e = entries[i]
            name = names[i]
            if name in self.entries:
                raise SpecError([Problem(self.where(name), "duplicate layer name in the Sequential model")])
            self.entries[name] = e
            n = _Node(name, 0, str(e.get("class_name")), e.get("config") if isinstance(e.get("config"), dict)
                      else {}, e, [prev], {}, i, explicit_masks=False)
            nodes.append(n)
            order.append((name, n.cls))
            prev = (name, 0, 0)
        if isinstance(self.src.weights, _Keras3Store):
            self.src.weights.set_order(order)
        self._convert([inp_node], nodes, None)

    # -- Functional -----------------------------------------------------------------------------
    def _functional(self, cfg: dict) -> None:
        entries = self._layer_entries(cfg.get("layers"), "the model")
        nodes: list[_Node] = []
        order = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise SpecError([Problem(self.file, f"layer entry {i} is not an object")])
            lcfg = e.get("config") if isinstance(e.get("config"), dict) else {}
            name = e.get("name") or lcfg.get("name")
            cls = str(e.get("class_name"))
            if not isinstance(name, str):
                raise SpecError([Problem(self.file, f"layer entry {i} ({cls}) has no name")])
            if name in self.entries:
                raise SpecError([Problem(self.where(name, cls), "two layers have this name")])
            self.entries[name] = e
            is_op = _is_op(e)
            if not is_op:
                order.append((name, cls))
            inbound = e.get("inbound_nodes") or []
            if not isinstance(inbound, list) or len(inbound) > MAX_NODES_PER_LAYER:
                raise SpecError([Problem(self.where(name, cls), "malformed inbound_nodes")])
            for k, raw in enumerate(inbound):
                try:
                    args, kwargs, explicit = self._parse_node(raw)
                except _Refused as r:
                    raise SpecError([Problem(self.where(name, cls), f"malformed inbound node {k}: {r}")]) from None
                nodes.append(_Node(name, k, cls, lcfg, e, args, kwargs, i, is_op, explicit))
            if cls == "InputLayer" and not inbound:
                nodes.append(_Node(name, 0, cls, lcfg, e, [], {}, i, False, True))
        if isinstance(self.src.weights, _Keras3Store):
            self.src.weights.set_order(order)
        ins = _tensor_list(cfg.get("input_layers"))
        outs = _tensor_list(cfg.get("output_layers"))
        if ins is None or outs is None:
            raise SpecError([Problem(self.file, "the model config has malformed input_layers/output_layers")])
        by_key = {n.key: n for n in nodes}
        input_nodes = []
        for t in ins:
            n = by_key.get((t[0], t[1]))
            if n is None or n.cls != "InputLayer":
                raise SpecError([Problem(self.file, f"model input {t[0]!r} is not an InputLayer")])
            input_nodes.append(n)
        self._convert(input_nodes, nodes, outs)

    def _parse_node(self, raw) -> tuple[list, dict, bool]:
        if isinstance(raw, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            args = _parse_value(raw.get("args", []))
            kwargs = _parse_value(raw.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise _Refused("args must be a list and kwargs an object")
            return args, kwargs, True
        if isinstance(raw, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            refs = []
            kwargs: dict = {}
            if not raw:
                raise _Refused("an inbound node with no input")
            for item in raw:
                if (not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], str)
                        or not all(isinstance(x, int) and not isinstance(x, bool) for x in item[1:3])):
                    raise _Refused(f"unexpected entry {_short(item)}")
                refs.append((item[0], item[1], item[2]))
                if len(item) > 3 and isinstance(item[3], dict) and not kwargs:
                    kwargs = _parse_keras2_kwargs(item[3])
            args = [refs[0]]
            if len(refs) > 1:
                kwargs = dict(kwargs)
                kwargs["__extra_inputs__"] = refs[1:]
            return args, kwargs, False
        raise _Refused(f"expected an object or a list, found {type(raw).__name__}")

    # -- the conversion proper ------------------------------------------------------------------
    def _convert(self, input_nodes: list[_Node], nodes: list[_Node],
                 outputs: list[TRef] | None) -> None:
        by_key = {n.key: n for n in nodes}
        self.nodes = by_key
        # Names: every Keras layer name is kept; a layer called more than once gets a copy per
        # extra call, named `<name>.<call>`.
        for n in nodes:
            if n.is_op:
                continue
            nm = n.layer if n.index == 0 else f"{n.layer}.{n.index}"
            if not _NAME_RE.match(nm) or len(nm) > 128:
                self.fail("the layer name cannot be used as an ONNX/spec name (it must match "
                          "[A-Za-z_][A-Za-z0-9_.-]*, at most 128 characters); rename the layer",
                          n.layer, n.cls)
        if self.problems:
            return
        for n in nodes:
            if not n.is_op:
                self.names.add(n.layer if n.index == 0 else f"{n.layer}.{n.index}")
        # Inputs first, in the model's order; then every other call in dependency order.
        for n in input_nodes:
            self._emit(n)
        emitted = {n.key for n in input_nodes}
        pending = sorted((n for n in nodes if not n.is_op and n.key not in emitted),
                         key=lambda n: (n.order, n.index))
        while pending:
            rest = []
            for n in pending:
                waiting = [r for r in _data_refs(n) if r[:2] in by_key and not by_key[r[:2]].is_op
                           and r[:2] not in emitted]
                if waiting:
                    rest.append(n)
                else:
                    self._emit(n)
                    emitted.add(n.key)
            if len(rest) == len(pending):
                for n in rest:
                    self.fail("its inputs form a cycle in the model graph", n.layer, n.cls)
                return
            pending = rest
        if self.problems:
            return
        if outputs is None:  # Sequential: every output of the last layer
            last = nodes[-1]
            outputs = sorted(t for t in self.tensors if t[:2] == last.key)
        out_refs = []
        for t in outputs:
            if t not in self.tensors:
                node = self.nodes.get(t[:2])
                if node is not None and node.is_op:
                    self.fail(f"operation {node.cls} is a model output; only layers' outputs are "
                              f"supported (the ops Keras generates for masks feed masks only)",
                              node.layer, node.cls)
                else:
                    self.fail(f"model output {t[0]!r} (node {t[1]}, tensor {t[2]}) does not exist",
                              t[0])
                continue
            out_refs.append(self.tensors[t].ref)
        self.outputs = out_refs
        if not any(self._stateful(m) for m in self.nodes.values() if not m.is_op):
            # A fixed batch only matters to stateful layers; keep the batch axis dynamic otherwise.
            for l in self.layers:
                if l["class_name"] == "Input":
                    l.pop("batch_size", None)
        self._check_inputs(input_nodes)

    def _check_inputs(self, input_nodes: list[_Node]) -> None:
        """A float input read only by Embeddings is really token ids: give it an integer type."""
        for n in input_nodes:
            spec = next(l for l in self.layers if l["name"] == n.layer)
            if spec["dtype"].startswith("float"):
                readers = [m for m in self.nodes.values() if not m.is_op and (n.layer, 0, 0) in _data_refs(m)]
                if readers and all(self._kind(m) == "Embedding" for m in readers):
                    spec["dtype"] = "int32"

    def _kind(self, n: _Node) -> str:
        if n.cls == "TimeDistributed":
            inner = n.config.get("layer") or {}
            return str(inner.get("class_name"))
        return n.cls

    # -- one call -------------------------------------------------------------------------------
    def _emit(self, n: _Node) -> None:
        before = len(self.problems)
        self._emit_call(n)
        if len(self.problems) > before or (n.layer, n.index, 0) not in self.tensors:
            self.broken.add(n.key)

    def _emit_call(self, n: _Node) -> None:
        entry = n.entry
        if not self._check_custom(entry, n.layer, n.cls):
            return
        name = n.layer if n.index == 0 else f"{n.layer}.{n.index}"
        try:
            conv = _CONVERTERS.get(n.cls)
            if conv is None and n.cls in ("Sequential", "Functional", "Model"):
                raise _Refused("nested models (a model used as a layer of another) are not supported; "
                               "rebuild the outer model from the inner model's layers before saving")
            if conv is None:
                raise _Refused(_unsupported_class_message(n.cls))
            spec_cfg, plan, n_out, mask_rule = conv(self, n)
        except _Refused as r:
            self.fail(str(r), n.layer, n.cls)
            return
        if n.index > 0 and self._stateful(n):
            self.fail("a stateful layer called more than once shares one state in Keras; rnncompile "
                      "cannot express that", n.layer, n.cls)
            return
        if n.cls == "InputLayer":
            self.layers.append({"class_name": "Input", "name": name, **spec_cfg})
            self.tensors[(n.layer, n.index, 0)] = _T(name, None, n, 0)
            return
        # inputs
        x_ref = n.args[0] if n.args else None
        if not _is_tref(x_ref):
            self.fail("expected a single input tensor as the first argument" +
                      (" (layers that take several tensors, e.g. merge layers, are not supported)"
                       if isinstance(x_ref, list) else ""), n.layer, n.cls)
            return
        x = self._tensor(x_ref, n)
        if x is None:
            return
        init_refs = self._initial_state(n)
        if init_refs is None:
            return
        init = []
        for r in init_refs:
            t = self._tensor(r, n)
            if t is None:
                return
            init.append(t.ref)
        # mask: what the Keras layer used vs what the spec will give it
        ignore_mask = False
        if n.explicit_masks and n.cls in _MASK_CONSUMERS:
            pos = 1 if n.cls == "GlobalAveragePooling1D" else 2
            given = n.kwargs.get("mask", n.args[pos] if len(n.args) > pos else None)
            if given is not None:
                used = self._mask_expr(given, n)
                if used is _BAD:
                    return
                if used != x.mask:
                    self.fail(f"is called with mask {_describe_mask(used)}, but rnncompile derives a "
                              f"layer's mask from its input, which carries "
                              f"{_describe_mask(x.mask)}; a mask passed from elsewhere is not "
                              f"supported", n.layer, n.cls)
                    return
            elif init_refs and x.mask is not None:
                # Keras 3 fills a missing mask in (from the input, at run time) only for a call
                # with one tensor argument; with initial_state tensors the layer runs unmasked,
                # and its output sequence still carries the input's mask on.
                ignore_mask = True
        elif not n.explicit_masks and n.kwargs.get("mask") is not None:
            self.fail("is called with an explicit mask argument; only masks from Embedding(mask_zero) "
                      "and Masking layers are supported", n.layer, n.cls)
            return
        if n.kwargs.get("training") is True and _random_in_training(n, spec_cfg):
            self.fail("is called with training=True, so Keras applies its dropout or noise even in "
                      "predict(); that is random and cannot be compiled. Call it without training=True",
                      n.layer, n.cls)
            return
        layer = {"class_name": spec_cfg.pop("class_name"), "name": name, "inputs": x.ref}
        layer.update(spec_cfg)
        if init:
            layer["initial_state"] = init
        if ignore_mask:
            layer["ignore_mask"] = True
        self.layers.append(layer)
        self._weights(n, name, plan)
        masks = mask_rule(x.mask, x_ref)
        for i in range(n_out):
            self.tensors[(n.layer, n.index, i)] = _T(name if i == 0 else f"{name}:{i}", masks[i], n, i)

    def _tensor(self, ref: TRef, consumer: _Node) -> _T | None:
        t = self.tensors.get(tuple(ref))
        if t is not None:
            return t
        if tuple(ref[:2]) in self.broken:
            return None  # already reported
        src = self.nodes.get(tuple(ref[:2]))
        if src is not None and src.is_op:
            self.fail(f"takes the result of operation {src.cls} {src.layer!r} as data; Keras ops "
                      f"(keras.ops.* / tensor arithmetic in a functional model) are not supported, "
                      f"except the ones Keras generates to compute masks", consumer.layer, consumer.cls)
        elif src is not None:
            self.fail(f"takes output {ref[2]} of {ref[0]!r}, which has no such output",
                      consumer.layer, consumer.cls)
        else:
            self.fail(f"takes an input from {ref[0]!r} (call {ref[1]}), which is not in the model",
                      consumer.layer, consumer.cls)
        return None

    def _initial_state(self, n: _Node) -> list | None:
        kw = n.kwargs
        init = kw.get("initial_state")
        if init is None and "__extra_inputs__" in kw:
            init = kw["__extra_inputs__"]
        if init is None and len(n.args) > 1 and n.cls in (*_RECURRENT, "RNN", "Bidirectional"):
            init = n.args[1]
        if n.cls not in (*_RECURRENT, "RNN", "Bidirectional"):
            extra = [a for a in n.args[(2 if n.cls == "GlobalAveragePooling1D" else 1):] if a is not None]
            if "__extra_inputs__" in kw or any(_contains_tref(a) for a in extra):
                self.fail("takes more than one input tensor; only single-input layers (and the "
                          "initial_state of recurrent layers) are supported", n.layer, n.cls)
                return None
            for k, v in kw.items():
                if k not in ("training", "mask") and _contains_tref(v):
                    self.fail(f"is called with tensor argument {k!r}, which is not supported", n.layer, n.cls)
                    return None
            return []
        for k, v in kw.items():
            if k not in ("training", "mask", "initial_state", "__extra_inputs__") and v is not None:
                self.fail(f"is called with argument {k}={_short(v)}, which is not supported "
                          f"(supported: initial_state, mask)", n.layer, n.cls)
                return None
        if init is None:
            return []
        if _is_tref(init):
            init = [init]
        if not isinstance(init, list) or not all(_is_tref(t) for t in init):
            self.fail(f"initial_state must be a list of tensors, found {_short(init)}", n.layer, n.cls)
            return None
        return [tuple(t) for t in init]

    # -- masks ------------------------------------------------------------------------------------
    def _mask_expr(self, value, n: _Node):
        """The mask a Keras 3 layer call used, as an expression comparable with the spec's."""
        if value is None:
            return None
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, list) and all(v is None for v in value):
            return None
        if not _is_tref(value):
            self.fail(f"is called with mask {_short(value)}, which is not supported", n.layer, n.cls)
            return _BAD
        return self._resolve_mask(tuple(value))

    def _resolve_mask(self, ref: TRef):
        src = self.nodes.get(ref[:2])
        if src is None:
            return ("opaque", ref)
        if src.is_op:
            a = src.args
            if src.cls == "NotEqual" and len(a) == 2 and _is_tref(a[0]) and _is_number(a[1]):
                return ("ne", tuple(a[0]), float(a[1]))
            if src.cls == "NotEqual" and len(a) == 2 and _is_tref(a[1]) and _is_number(a[0]):
                return ("ne", tuple(a[1]), float(a[0]))
            if (src.cls == "Any" and len(a) == 1 and _is_tref(a[0])
                    and src.config.get("axis") == -1 and not src.config.get("keepdims")):
                inner = self._resolve_mask(tuple(a[0]))
                if isinstance(inner, tuple) and inner[0] == "ne":
                    return ("any_ne", inner[1], inner[2])
        t = self.tensors.get(ref)
        if t is not None and t.node is not None and t.node.cls == "Masking":
            return ("layer", ref)
        return ("opaque", ref)

    # -- weights -----------------------------------------------------------------------------------
    def _weights(self, n: _Node, spec_name: str, plan: list[tuple[str, str, str]]) -> None:
        """`plan`: (spec key, Keras 3 relative path, legacy basename) in save order."""
        store = self.src.weights
        arrays = store.layer_arrays(n.layer, n.cls)
        where = self.where(n.layer, n.cls)
        if arrays is None:
            if plan:
                self.fail(f"no saved weights for this layer in {store.where}", n.layer, n.cls)
            return
        if store.keras3_paths:
            by_rel = dict(arrays)
            allowed_extra = lambda rel: ("seed_generator" in rel or rel.startswith("vars/")
                                         and self._stateful(n))
            for key, rel, _ in plan:
                ds = by_rel.pop(rel, None)
                if ds is None:
                    self.fail(f"weight {rel!r} ({key}) is missing from {store.where}", n.layer, n.cls)
                    continue
                self.weights[f"{spec_name}/{key}"] = _float_weights(_read_array(ds, f"{where} [{rel}]"),
                                                                   f"{where} [{rel}]")
            extra = [rel for rel in by_rel if not allowed_extra(rel)]
            if extra:
                self.fail(f"has saved weights rnncompile does not expect ({', '.join(extra[:5])}); "
                          f"a quantized, LoRA or otherwise modified layer is not supported", n.layer, n.cls)
            return
        # legacy: order and basenames
        arrays = [(nm, ds) for nm, ds in arrays if "seed_generator" not in nm]
        if self._stateful(n):
            arrays = [(nm, ds) for nm, ds in arrays if _legacy_base(nm) not in ("state", "states")
                      and not re.search(r"/states?(_\d+)?(:\d+)?$", nm)]
        if len(arrays) != len(plan):
            self.fail(f"expected {len(plan)} saved weights ({', '.join(p[0] for p in plan) or 'none'}), "
                      f"found {len(arrays)} ({', '.join(nm for nm, _ in arrays) or 'none'})", n.layer, n.cls)
            return
        for (key, _, base), (nm, ds) in zip(plan, arrays):
            got = _legacy_base(nm)
            if got != base:
                self.fail(f"saved weight {nm!r} is not the expected {base!r} (for {key})", n.layer, n.cls)
                continue
            if key.startswith(("forward/", "backward/")):
                d = key.split("/")[0]
                other = "backward" if d == "forward" else "forward"
                if other in nm.lower() and d not in nm.lower():
                    self.fail(f"saved weight {nm!r} belongs to the {other} layer, expected {d}", n.layer, n.cls)
                    continue
            self.weights[f"{spec_name}/{key}"] = _float_weights(_read_array(ds, f"{where} [{nm}]"),
                                                               f"{where} [{nm}]")

    def _stateful(self, n: _Node) -> bool:
        cfg = n.config
        if n.cls == "Bidirectional":
            cfg = (cfg.get("layer") or {}).get("config") or {}
        return bool(cfg.get("stateful"))


_BAD = object()


def _random_in_training(n: _Node, spec_cfg: dict) -> bool:
    """Whether the layer is random in training mode (dropout or noise)."""
    if n.cls in ("GaussianNoise", "GaussianDropout", "AlphaDropout", "SpatialDropout1D", "Dropout"):
        return n.cls == "GaussianNoise" and bool(n.config.get("stddev")) or bool(n.config.get("rate"))
    cfg = spec_cfg.get("layer", spec_cfg)
    return bool(cfg.get("dropout") or cfg.get("recurrent_dropout"))


def _legacy_base(name: str) -> str:
    base = name.split("/")[-1]
    return re.sub(r":\d+$", "", base)


def _float_weights(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype.kind != "f":
        raise ModelFileError(f"weight has dtype {a.dtype}; expected floats", where=where)
    return a.astype(np.float32)


def _unique(base: str, used: set[str]) -> str:
    name, k = base, 1
    while name in used:
        name = f"{base}{k}"
        k += 1
    return name


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))[:128] or "model"
    return name if re.match(r"^[A-Za-z_]", name) else f"m_{name}"[:128]


#: Keras 3 operation classes that Keras itself inserts into functional configs to compute masks.
#: (Keras 3's legacy .h5 saving writes ops without their `module`.)
_MASK_OPS = ("NotEqual", "Any")


def _is_op(entry: dict) -> bool:
    module = entry.get("module")
    if isinstance(module, str) and module:
        return module.startswith("keras.src.ops") or module.startswith("keras.ops")
    return entry.get("class_name") in _MASK_OPS and isinstance(entry.get("inbound_nodes"), list) \
        and all(isinstance(x, dict) for x in entry["inbound_nodes"])


def _is_tref(v) -> bool:
    return (isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], str))


def _contains_tref(v) -> bool:
    if _is_tref(v):
        return True
    if isinstance(v, list):
        return any(_contains_tref(x) for x in v)
    if isinstance(v, dict):
        return any(_contains_tref(x) for x in v.values())
    return False


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def _parse_value(v):
    """Keras 3 node arguments: `__keras_tensor__` objects become (layer, node, index) tuples."""
    if isinstance(v, dict):
        if v.get("class_name") == "__keras_tensor__":
            cfg = v.get("config")
            h = cfg.get("keras_history") if isinstance(cfg, dict) else None
            if not (isinstance(h, list) and len(h) == 3 and isinstance(h[0], str)
                    and all(isinstance(x, int) for x in h[1:])):
                raise _Refused(f"malformed keras_history {h!r}")
            return (h[0], h[1], h[2])
        return {k: _parse_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_parse_value(x) for x in v]
    return v


def _parse_keras2_kwargs(kw: dict) -> dict:
    out = {}
    for k, v in kw.items():
        if k in ("initial_state", "mask", "constants"):
            out[k] = _keras2_refs(v)
        else:
            out[k] = v
    return out


def _keras2_refs(v):
    if isinstance(v, list) and len(v) >= 3 and isinstance(v[0], str) and all(isinstance(x, int) for x in v[1:3]):
        return (v[0], v[1], v[2])
    if isinstance(v, list):
        return [_keras2_refs(x) for x in v]
    return v


def _tensor_list(v) -> list[TRef] | None:
    """input_layers / output_layers: [name, node, index], a list of those, or a dict of those."""
    if v is None:
        return None
    if isinstance(v, dict):
        out = []
        for k in sorted(v):
            sub = _tensor_list(v[k])
            if sub is None:
                return None
            out += sub
        return out
    if isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and all(isinstance(x, int) for x in v[1:]):
        return [(v[0], v[1], v[2])]
    if isinstance(v, list):
        out = []
        for x in v:
            sub = _tensor_list(x)
            if sub is None:
                return None
            out += sub
        return out
    return None


def _data_refs(n: _Node) -> list[TRef]:
    refs = []
    if n.args and _is_tref(n.args[0]):
        refs.append(tuple(n.args[0]))
    init = n.kwargs.get("initial_state")
    if init is None:
        init = n.kwargs.get("__extra_inputs__")
    if init is None and len(n.args) > 1:
        init = n.args[1]
    for t in (init if isinstance(init, list) else [init]):
        if _is_tref(t):
            refs.append(tuple(t))
    return refs


def _describe_mask(m) -> str:
    if m is None:
        return "no mask"
    if m[0] == "ne":
        return f"the mask ({m[1][0]} != {m[2]:g})"
    if m[0] == "any_ne":
        return f"the Masking mask of {m[1][0]!r} (value {m[2]:g})"
    return f"a mask computed by {m[1][0]!r}"


def _unsupported_class_message(cls: str) -> str:
    known = sorted(k for k in _CONVERTERS if k != "InputLayer")
    return (f"layer class {cls} is not supported; supported layers: InputLayer, {', '.join(known)}")


# ================================================================================================
# Per-class config mapping.


class _Fields:
    """Walks a Keras layer config: math fields are taken explicitly; known inert ones dropped;
    anything else must be null, or the layer is refused naming the option."""

    def __init__(self, conv: _Converter, n: _Node, cfg: dict | None = None, what: str = ""):
        self.conv, self.n = conv, n
        cfg = cfg if cfg is not None else n.config
        if not isinstance(cfg, dict):
            raise _Refused(f"the {what or 'layer '}config is not an object: {_short(cfg)}")
        self.cfg = dict(cfg)
        self.what = what  # "layer." for a wrapped layer's options
        self.taken: set[str] = set()
        self._check_dtype()

    def refuse(self, option: str, value: Any, why: str) -> None:
        raise _Refused(f"option {self.what}{option}={_short(value)} is not supported: {why}")

    def get(self, key: str, default: Any = None) -> Any:
        self.taken.add(key)
        return self.cfg.get(key, default)

    def require(self, key: str) -> Any:
        self.taken.add(key)
        if key not in self.cfg:
            raise _Refused(f"required option {self.what}{key} is missing from the config")
        return self.cfg[key]

    def expect(self, key: str, allowed: tuple, default: Any, why: str) -> Any:
        v = self.get(key, default)
        if v not in allowed:
            self.refuse(key, v, why)
        return v

    def boolean(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if v is None:
            v = default
        if not isinstance(v, bool):
            self.refuse(key, v, "expected true or false")
        return v

    def integer(self, key: str) -> int:
        v = self.require(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.refuse(key, v, "expected a positive integer")
        return v

    def number(self, key: str, default: float) -> float:
        v = self.get(key, default)
        if v is None:
            v = default
        if not _is_number(v):
            self.refuse(key, v, "expected a number")
        return float(v)

    def activation(self, key: str, default: str) -> str:
        v = self.get(key, default)
        return _activation(v, self.conv.major, lambda why: self.refuse(key, v, why))

    def done(self) -> None:
        for k, v in self.cfg.items():
            if k in self.taken or k in _INERT_COMMON or k == "dtype" or k.endswith(_INERT_SUFFIXES):
                continue
            if v is None or v == {} or v == []:
                continue
            self.refuse(k, v, "rnncompile does not know this option, so it cannot compile it exactly")

    def _check_dtype(self) -> None:
        if self.n.cls == "InputLayer":
            return
        v = self.cfg.get("dtype")
        name = _policy_name(v)
        if name not in (None, "float32"):
            raise _Refused(f"option {self.what}dtype={name!r} is not supported: rnncompile compiles "
                           f"float32 models (mixed or reduced precision changes the results)")


def _policy_name(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        cfg = v.get("config")
        if isinstance(cfg, dict):
            return cfg.get("name")
        if isinstance(cfg, str):
            return cfg
    return str(v)


def _activation(v: Any, major: int, refuse: Callable[[str], None]) -> str:
    if v is None:
        return "linear"
    if isinstance(v, dict):
        module, registered = v.get("module"), v.get("registered_name")
        cfg = v.get("config")
        name = cfg if isinstance(cfg, str) else (cfg or {}).get("name") if isinstance(cfg, dict) else None
        if not (isinstance(module, str) and module.startswith(("keras.activations", "keras.src.activations"))) \
                or registered not in (None, name, "function") or (isinstance(registered, str) and ">" in registered):
            refuse(f"custom activation function {name or registered!r} (module {module!r}): only "
                   f"built-in Keras activations are supported (code from a model file is never run)")
        v = name
    if not isinstance(v, str):
        refuse("expected an activation name")
    if v == "hard_sigmoid" and major < 3:
        return "hard_sigmoid_keras2"  # Keras 2: clip(0.2 x + 0.5, 0, 1)
    if v == "leaky_relu" and major < 3:
        refuse("Keras 2 had no leaky_relu activation name")
    if v not in _ACTIVATIONS:
        refuse(f"activation {v!r} is not supported; supported: {', '.join(sorted(_ACTIVATIONS))}")
    return v


def _plan(keys: list[str], prefix3: str, prefix_key: str = "") -> list[tuple[str, str, str]]:
    return [(f"{prefix_key}{k}", f"{prefix3}{i}", k) for i, k in enumerate(keys)]


def _c_input(conv: _Converter, n: _Node):
    cfg = n.config
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if shape is None and "shape" in cfg:
        shape = [cfg.get("batch_size"), *(cfg.get("shape") or [])]
    if not isinstance(shape, list) or len(shape) < 2:
        raise _Refused(f"input shape {shape!r} is not supported: expected (batch, time[, features]) "
                       f"with at least one axis besides the batch")
    if len(shape) > 5 or not all(d is None or (isinstance(d, int) and d >= 1) for d in shape):
        raise _Refused(f"input shape {shape!r} is not supported")
    for flag in ("sparse", "ragged", "optional"):
        if cfg.get(flag):
            raise _Refused(f"option {flag}=True is not supported (dense inputs only)")
    dtype = _policy_name(cfg.get("dtype")) or "float32"
    if dtype in ("float32", "float64", "float16", "bfloat16"):
        if dtype != "float32":
            raise _Refused(f"option dtype={dtype!r} is not supported: inputs are float32 or integer ids")
    elif dtype in ("int32", "int64"):
        pass
    elif dtype in ("int8", "int16", "uint8", "uint16"):
        dtype = "int32"
    elif dtype in ("uint32", "uint64"):
        dtype = "int64"
    else:
        raise _Refused(f"option dtype={dtype!r} is not supported for an input (float32, int32, int64)")
    out = {"shape": list(shape[1:]), "dtype": dtype}
    if shape[0] is not None:
        out["batch_size"] = shape[0]
    return out, [], 1, None


def _c_embedding(conv: _Converter, n: _Node):
    f = _Fields(conv, n)
    out = {"class_name": "Embedding", "input_dim": f.integer("input_dim"),
           "output_dim": f.integer("output_dim"), "mask_zero": f.boolean("mask_zero", False)}
    f.get("input_length")
    v = f.get("lora_rank")
    if v:
        f.refuse("lora_rank", v, "LoRA layers are not supported")
    v = f.get("quantization_config")
    if v:
        f.refuse("quantization_config", v, "quantized layers are not supported")
    v = f.get("embeddings_constraint")
    f.done()
    del v

    def masks(in_mask, x_ref):
        return [("ne", tuple(x_ref), 0.0) if out["mask_zero"] else None]
    return out, _plan(["embeddings"], "vars/"), 1, masks


def _c_dense(conv: _Converter, n: _Node, cfg: dict | None = None, prefix3: str = "vars/"):
    f = _Fields(conv, n, cfg)
    out = {"class_name": "Dense", "units": f.integer("units"),
           "activation": f.activation("activation", "linear"), "use_bias": f.boolean("use_bias", True)}
    for k in ("lora_rank", "quantization_config"):
        v = f.get(k)
        if v:
            f.refuse(k, v, "LoRA and quantized layers are not supported")
    f.done()
    keys = ["kernel", "bias"] if out["use_bias"] else ["kernel"]
    return out, _plan(keys, prefix3), 1, _keep_mask


def _keep_mask(in_mask, x_ref):
    return [in_mask]


def _c_dropout(conv: _Converter, n: _Node, cfg: dict | None = None, prefix3: str = ""):
    f = _Fields(conv, n, cfg)
    rate = f.get("rate", 0.0)
    if n.cls in ("GaussianNoise",):
        f.get("stddev")
        rate = 0.0
    if n.cls == "ActivityRegularization":
        f.get("l1")
        f.get("l2")
        rate = 0.0
    f.get("noise_shape")
    if not _is_number(rate) or not 0 <= rate <= 1:
        f.refuse("rate", rate, "expected a number in [0, 1]")
    f.done()
    return {"class_name": "Dropout", "rate": float(rate)}, [], 1, _keep_mask


def _c_activation(conv: _Converter, n: _Node, cfg: dict | None = None, prefix3: str = ""):
    f = _Fields(conv, n, cfg)
    act = f.activation("activation", "linear")
    f.done()
    return {"class_name": "Activation", "activation": act}, [], 1, _keep_mask


def _c_activation_layer(conv: _Converter, n: _Node):
    """ReLU, Softmax, ELU, LeakyReLU layers with the parameters one activation name covers."""
    f = _Fields(conv, n)
    cls = n.cls
    if cls == "ReLU":
        mx = f.get("max_value")
        slope = f.number("negative_slope", 0.0)
        thr = f.number("threshold", 0.0)
        if slope != 0.0:
            f.refuse("negative_slope", slope, "only 0 is supported")
        if thr != 0.0:
            f.refuse("threshold", thr, "only 0 is supported")
        if mx is None:
            act = "relu"
        elif _is_number(mx) and float(mx) == 6.0:
            act = "relu6"
        else:
            f.refuse("max_value", mx, "only None (relu) or 6 (relu6) is supported")
    elif cls == "Softmax":
        axis = f.get("axis", -1)
        if axis not in (-1, [-1]):
            f.refuse("axis", axis, "only the last axis (-1) is supported")
        act = "softmax"
    elif cls == "ELU":
        a = f.number("alpha", 1.0)
        if a != 1.0:
            f.refuse("alpha", a, "only alpha=1.0 is supported")
        act = "elu"
    elif cls == "LeakyReLU":
        key = "negative_slope" if "negative_slope" in f.cfg else "alpha"
        a = f.number(key, 0.2 if conv.major >= 3 else 0.3)
        if abs(a - 0.2) > 1e-12:
            f.refuse(key, a, "only a slope of 0.2 is supported")
        act = "leaky_relu"
    else:  # pragma: no cover
        raise _Refused(_unsupported_class_message(cls))
    f.done()
    return {"class_name": "Activation", "activation": act}, [], 1, _keep_mask


def _c_masking(conv: _Converter, n: _Node):
    f = _Fields(conv, n)
    v = f.get("mask_value", 0.0)
    if not _is_number(v):
        f.refuse("mask_value", v, "expected a number")
    f.done()

    def masks(in_mask, x_ref):
        return [("any_ne", tuple(x_ref), float(v))]
    return {"class_name": "Masking", "mask_value": float(v)}, [], 1, masks


def _c_pool(conv: _Converter, n: _Node):
    f = _Fields(conv, n)
    fmt = f.get("data_format", "channels_last")
    if fmt not in (None, "channels_last"):
        f.refuse("data_format", fmt, "only channels_last (time on axis 1) is supported")
    keep = f.boolean("keepdims", False)
    f.done()
    return {"class_name": n.cls, "keepdims": keep}, [], 1, lambda m, r: [None]


def _recurrent_fields(conv: _Converter, n: _Node, kind: str, cfg: dict, what: str = "",
                      cell_cfg: dict | None = None) -> dict:
    """Options of LSTM/GRU/SimpleRNN (or RNN over a cell: cell options in `cell_cfg`)."""
    f = _Fields(conv, n, cfg, what)
    c = _Fields(conv, n, cell_cfg, what + "cell.") if cell_cfg is not None else f
    out: dict[str, Any] = {"class_name": kind, "units": c.integer("units"),
                           "activation": c.activation("activation", "tanh")}
    if kind != "SimpleRNN":
        out["recurrent_activation"] = c.activation("recurrent_activation", "sigmoid")
    out["use_bias"] = c.boolean("use_bias", True)
    for k in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll"):
        out[k] = f.boolean(k, False)
    out["zero_output_for_mask"] = f.boolean("zero_output_for_mask", False)
    if f.get("time_major"):
        f.refuse("time_major", True, "time-major inputs are not supported")
    for k in ("dropout", "recurrent_dropout"):
        v = c.number(k, 0.0)
        if not 0 <= v <= 1:
            c.refuse(k, v, "expected a number in [0, 1]")
        out[k] = v
    if kind == "GRU":
        # Keras 2.0 had no reset_after (the old GRU, reset before); tf.keras 2 writes it.
        out["reset_after"] = c.boolean("reset_after", conv.major >= 3)
    if kind == "LSTM":
        c.get("unit_forget_bias")
    for k in ("lora_rank", "quantization_config"):
        v = c.get(k)
        if v:
            c.refuse(k, v, "LoRA and quantized layers are not supported")
    if f is not c:
        f.get("cell")
        c.done()
    f.done()
    return out


def _n_states(kind: str) -> int:
    return 2 if kind == "LSTM" else 1


def _rnn_plan(prefix3: str, use_bias: bool, key_prefix: str = "") -> list:
    keys = ["kernel", "recurrent_kernel"] + (["bias"] if use_bias else [])
    return _plan(keys, prefix3, key_prefix)


def _c_recurrent(conv: _Converter, n: _Node):
    out = _recurrent_fields(conv, n, n.cls, n.config)
    return _finish_recurrent(out, "cell/vars/")


def _c_rnn(conv: _Converter, n: _Node):
    kind, cell_cfg = _rnn_cell(n.config.get("cell"), "")
    out = _recurrent_fields(conv, n, kind, n.config, "", cell_cfg)
    return _finish_recurrent(out, "cell/vars/")


def _rnn_cell(cell, what: str) -> tuple[str, dict]:
    if isinstance(cell, list) or (isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells"):
        raise _Refused(f"option {what}cell: stacked cells (a list of cells) are not supported; use one "
                       f"recurrent layer per cell")
    if not isinstance(cell, dict) or cell.get("class_name") not in _CELLS:
        name = cell.get("class_name") if isinstance(cell, dict) else cell
        raise _Refused(f"option {what}cell={name!r} is not supported: the cell must be one of "
                       f"{', '.join(_CELLS)}")
    module = cell.get("module")
    if isinstance(module, str) and module and not module.startswith("keras"):
        raise _Refused(f"custom cell from module {module!r} is not supported (code is never run)")
    return _CELLS[cell["class_name"]], cell.get("config") or {}


def _finish_recurrent(out: dict, prefix3: str):
    rs, st = out["return_sequences"], out["return_state"]
    n_out = 1 + (_n_states(out["class_name"]) if st else 0)

    def masks(in_mask, x_ref):
        return [in_mask if rs else None] + [None] * (n_out - 1)
    return out, _rnn_plan(prefix3, out["use_bias"]), n_out, masks


def _inner_layer(conv: _Converter, n: _Node, cfg: Any, what: str) -> dict:
    if not isinstance(cfg, dict):
        raise _Refused(f"option {what} must be a layer config")
    cls = cfg.get("class_name")
    module = cfg.get("module")
    if isinstance(module, str) and module and not module.startswith("keras"):
        raise _Refused(f"option {what}: custom layer from module {module!r} is not supported "
                       f"(code is never run)")
    inner_cfg = cfg.get("config") or {}
    if cls in _RECURRENT:
        return _recurrent_fields(conv, n, cls, inner_cfg, what + ".")
    if cls == "RNN":
        kind, cell_cfg = _rnn_cell(inner_cfg.get("cell"), what + ".")
        return _recurrent_fields(conv, n, kind, inner_cfg, what + ".", cell_cfg)
    raise _Refused(f"option {what}: wrapping {cls} is not supported (SimpleRNN, LSTM, GRU or RNN "
                   f"over one of their cells)")


def _c_bidirectional(conv: _Converter, n: _Node):
    f = _Fields(conv, n)
    fwd = _inner_layer(conv, n, f.require("layer"), "layer")
    mode = f.get("merge_mode", "concat")
    if mode not in ("concat", "sum", "ave", "mul", None):
        f.refuse("merge_mode", mode, "expected concat, sum, ave, mul or None")
    bwd_cfg = f.get("backward_layer")
    if bwd_cfg is not None:
        bwd = _inner_layer(conv, n, bwd_cfg, "backward_layer")
        a = {k: v for k, v in fwd.items() if k not in ("go_backwards", "zero_output_for_mask")}
        b = {k: v for k, v in bwd.items() if k not in ("go_backwards", "zero_output_for_mask")}
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if diff or bwd["go_backwards"] == fwd["go_backwards"]:
            detail = ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in diff) or \
                "go_backwards is the same in both directions"
            raise _Refused(f"option backward_layer is not supported: it differs from the forward "
                           f"layer ({detail}); rnncompile supports a backward layer that is the "
                           f"forward layer run backwards")
    f.done()
    inner = {k: v for k, v in fwd.items()}
    kind = inner["class_name"]
    inner.pop("zero_output_for_mask", None)  # Bidirectional sets it to return_sequences
    rs, st = inner["return_sequences"], inner["return_state"]
    n_main = 2 if mode is None else 1
    n_out = n_main + (2 * _n_states(kind) if st else 0)

    def masks(in_mask, x_ref):
        return [in_mask if rs else None] * n_main + [None] * (n_out - n_main)
    plan = (_rnn_plan("forward_layer/cell/vars/", inner["use_bias"], "forward/")
            + _rnn_plan("backward_layer/cell/vars/", inner["use_bias"], "backward/"))
    return {"class_name": "Bidirectional", "layer": inner, "merge_mode": mode}, plan, n_out, masks


def _c_time_distributed(conv: _Converter, n: _Node):
    f = _Fields(conv, n)
    inner = f.require("layer")
    f.done()
    if not isinstance(inner, dict):
        raise _Refused("option layer must be a layer config")
    cls = inner.get("class_name")
    module = inner.get("module")
    if isinstance(module, str) and module and not module.startswith("keras"):
        raise _Refused(f"option layer: custom layer from module {module!r} is not supported")
    if not isinstance(cls, str):
        raise _Refused(f"option layer: class_name {_short(cls)} is not a layer class")
    sub = {"Dense": _c_dense, "Dropout": _c_dropout, "Activation": _c_activation}.get(cls)
    if sub is None:
        raise _Refused(f"option layer: TimeDistributed({cls}) is not supported (Dense, Dropout or "
                       f"Activation)")
    inner_node = _Node(n.layer, n.index, cls, inner.get("config") or {}, inner, [], {}, n.order)
    out, plan, n_out, masks = sub(conv, inner_node, inner.get("config") or {}, "layer/vars/")
    return out, plan, n_out, masks


_CONVERTERS: dict[str, Callable] = {
    "InputLayer": _c_input,
    "Embedding": _c_embedding,
    "Masking": _c_masking,
    "Dense": _c_dense,
    "Dropout": _c_dropout,
    "SpatialDropout1D": _c_dropout,
    "GaussianNoise": _c_dropout,
    "GaussianDropout": _c_dropout,
    "AlphaDropout": _c_dropout,
    "ActivityRegularization": _c_dropout,
    "Activation": _c_activation,
    "ReLU": _c_activation_layer,
    "Softmax": _c_activation_layer,
    "ELU": _c_activation_layer,
    "LeakyReLU": _c_activation_layer,
    "GlobalAveragePooling1D": _c_pool,
    "GlobalMaxPooling1D": _c_pool,
    "LSTM": _c_recurrent,
    "GRU": _c_recurrent,
    "SimpleRNN": _c_recurrent,
    "RNN": _c_rnn,
    "Bidirectional": _c_bidirectional,
    "TimeDistributed": _c_time_distributed,
}

__all__ = ["import_keras", "load_model_file", "write_spec", "MAX_CONFIG_BYTES", "MAX_WEIGHTS_BYTES"]
