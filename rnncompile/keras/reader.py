"""Reading a Keras model file safely: the config, the Keras version and the weight arrays, as data.

A `.keras` file is a zip: `config.json` and `metadata.json` are read here (zipfile and json, with
sizes checked before reading and inflating), `model.weights.h5` is copied out (size-limited) and
read by `h5reader.py`. A legacy `.h5` file is read by `h5reader.py` entirely (its config is an
HDF5 attribute). `h5reader.py` runs in a child process with address-space and CPU limits and a
wall-clock timeout (KerasLimits): a libhdf5 crash, hang or memory blow-up on a damaged or crafted
file becomes a ModelFileError naming the file. Arrays come back as `.npy` files loaded with
allow_pickle=False; nothing is unpickled, nothing from the file is run.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from . import h5reader

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ENV_PREFIX = "RNNCOMPILE_KERAS_"


@dataclass(frozen=True)
class KerasLimits:
    """Limits on what a Keras model file may make the importer read, allocate or spend. Each can
    be raised by an environment variable `RNNCOMPILE_KERAS_<NAME>` (e.g.
    `RNNCOMPILE_KERAS_MAX_WEIGHT_BYTES=8589934592`) or by passing `limits=` to the Python API."""

    max_file_bytes: int = 4 << 30          # a model file
    max_config_bytes: int = 16 << 20       # config.json / the model_config attribute (decoded)
    max_metadata_bytes: int = 1 << 20      # metadata.json
    max_weights_file_bytes: int = 2 << 30  # model.weights.h5 inside a .keras zip
    max_zip_members: int = 10_000
    max_asset_bytes: int = 256 << 20       # one asset of a .keras zip (a TextVectorization vocabulary)
    max_array_values: int = 1 << 28        # one weight array (declared shape)
    max_weight_bytes: int = 2 << 30        # all weight arrays together (declared shapes)
    max_layers: int = 10_000               # layer entries in the config
    max_calls_per_layer: int = 1_000       # calls (nodes) of one layer
    memory_bytes: int = 6 << 30            # address space of the HDF5 reader process
    cpu_seconds: int = 60                  # CPU time of the HDF5 reader process
    timeout_seconds: float = 120.0         # wall-clock time of the HDF5 reader process
    contained: bool = True                 # run the HDF5 reader in a child process

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "KerasLimits":
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            try:
                if f.type in ("bool", bool):
                    changes[f.name] = raw.strip().lower() not in ("0", "false", "no", "off")
                elif f.type in ("float", float):
                    changes[f.name] = float(raw)
                else:
                    changes[f.name] = int(raw)
            except ValueError:
                raise ModelFileError(f"expected a number, found {raw!r}",
                                     where=f"environment variable {ENV_PREFIX + f.name.upper()}") from None
        return replace(cls(), **changes)

    def reader_limits(self) -> dict:
        return {"max_config_bytes": self.max_config_bytes, "max_array_values": self.max_array_values,
                "max_weight_bytes": self.max_weight_bytes}


# ================================================================================================
# The weights of a file, by layer.


class Arrays:
    """The arrays the HDF5 reader returned, loaded on first use and kept (read once)."""

    def __init__(self, where: str, loaded: list | None = None, directory: Path | None = None):
        self.where = where
        self.loaded = loaded
        self.directory = directory
        self.cache: dict[int, np.ndarray] = {}

    def get(self, entry: dict, what: str) -> np.ndarray:
        if "error" in entry:
            raise ModelFileError(entry["error"], where=what)
        k = int(entry["id"])
        if k not in self.cache:
            if self.loaded is not None:
                a = self.loaded[k]
            else:
                a = np.load(self.directory / f"{k}.npy", allow_pickle=False)
            if list(a.shape) != entry["shape"] or a.dtype.str != entry["dtype"]:
                raise RuntimeError(f"HDF5 reader returned array {k} as {a.dtype}{a.shape}, "
                                   f"its index says {entry['dtype']}{entry['shape']}")
            self.cache[k] = a
        return self.cache[k]


class WeightStore:
    """The saved arrays of one Keras layer, by name, in save order: `layer_arrays(name)` ->
    [(relative path, index entry)] or None when the file has no group for the layer."""

    where: str
    keras3_paths: bool

    def __init__(self, index: dict, arrays: Arrays, where: str):
        self.index = index
        self.arrays = arrays
        self.where = where

    def layer_arrays(self, layer_name: str) -> list[tuple[str, dict]] | None:
        raise NotImplementedError

    def set_order(self, layers: list[tuple[str, str]]) -> None:
        """(name, Keras class) of the model's layers in save order (Keras 3 files without names)."""


class Keras3Store(WeightStore):
    """model.weights.h5 of a .keras zip: `layers/<snake_case class>[_n]/...`, each layer's `vars`
    group carrying its name (newer Keras); without names, the order of the config."""

    keras3_paths = True

    def __init__(self, index: dict, arrays: Arrays, where: str):
        super().__init__(index, arrays, where)
        self.by_path: dict[str, dict] = index.get("layers", {})
        self.by_name: dict[str, dict] = {}
        for entry in self.by_path.values():
            if entry.get("name"):
                self.by_name.setdefault(entry["name"], entry)
        self.positional: dict[str, str] = {}

    def set_order(self, layers):
        used: dict[str, int] = {}
        for name, cls in layers:
            snake = keras_snake(cls)
            if snake in used:
                used[snake] += 1
                snake = f"{snake}_{used[snake]}"
            else:
                used[snake] = 0
            self.positional[name] = snake

    def layer_arrays(self, layer_name):
        entry = self.by_name.get(layer_name)
        if entry is None and layer_name in self.positional:
            entry = self.by_path.get(self.positional[layer_name])
        if entry is None:
            return None
        if "error" in entry:
            raise ModelFileError(entry["error"], where=f"{self.where}[{entry.get('path')}]")
        return [(rel, a) for rel, a in entry["arrays"]]


class LegacyStore(WeightStore):
    """model_weights of a legacy .h5: `model_weights/<layer>` with a `weight_names` attribute
    listing `<path>/<weight>[:0]`, in save order."""

    keras3_paths = False

    def layer_arrays(self, layer_name):
        entry = self.index.get("layers", {}).get(layer_name)
        if entry is None:
            return None
        if "error" in entry:
            raise ModelFileError(entry["error"], where=f"{self.where}[{layer_name}]")
        return [(n, a) for n, a in entry["arrays"]]


def keras_snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ================================================================================================
# The source: config, version, weights.


@dataclass
class Source:
    path: Path
    config: dict                      # {"class_name": ..., "config": ...}
    keras_version: str                # "3.15.1", "2.15.0", or "" when unknown
    weights: WeightStore
    limits: KerasLimits
    cleanup: list = field(default_factory=list)
    #: Asset files of a .keras zip that layers read (`assets/<path>` -> bytes, keyed by <path>).
    assets: dict[str, bytes] = field(default_factory=dict)

    def asset(self, layer_name: str, filename: str) -> bytes | None:
        """The asset `filename` Keras saved for layer `layer_name` (assets/layers/<snake_case
        class>[_n]/<filename>: named by class and position, like the weights), or None."""
        folder = getattr(self.weights, "positional", {}).get(layer_name)
        return None if folder is None else self.assets.get(f"layers/{folder}/{filename}")

    @property
    def major(self) -> int:
        m = re.match(r"^(\d+)", self.keras_version or "")
        if m:
            return int(m.group(1))
        text = json.dumps(self.config)[:200_000]
        return 3 if '"module": "keras' in text or '"__keras_tensor__"' in text else 2

    def close(self) -> None:
        for c in reversed(self.cleanup):
            c()
        self.cleanup = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_source(path: Path, limits: KerasLimits) -> Source:
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
    if size > limits.max_file_bytes:
        raise ModelFileError(f"file is {size} bytes, over the limit of {limits.max_file_bytes}", where=where)
    with open(path, "rb") as f:
        head = f.read(8)
        hdf5 = head == HDF5_MAGIC
        for off in (512, 1024, 2048, 4096):  # an HDF5 superblock may follow a user block
            if not hdf5:
                f.seek(off)
                hdf5 = f.read(8) == HDF5_MAGIC
    if head[:4] in ZIP_MAGIC:
        return _open_keras_zip(path, limits)
    if hdf5:
        return _open_legacy_h5(path, limits)
    raise ModelFileError("not a Keras model file: expected a Keras 3 .keras zip or a legacy HDF5 "
                         ".h5 file (neither signature found)", where=where)


def unsafe_member_name(name: str) -> str | None:
    if "\x00" in name:
        return "a NUL character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if any(part == ".." for part in name.split("/")):
        return "a '..' component (path traversal)"
    return None


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str, out) -> None:
    """Copy a member to `out`, refusing (before and while inflating) more than `limit` bytes."""
    if info.file_size > limit:
        raise ModelFileError(f"member is {info.file_size} bytes uncompressed, over the limit of "
                             f"{limit}; refusing to read it", where=where)
    if info.flag_bits & 0x1:
        raise ModelFileError("member is encrypted", where=where)
    total = 0
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise ModelFileError(f"member decompresses to more than its declared size "
                                         f"(limit {limit})", where=where)
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as e:
        raise ModelFileError(f"damaged zip member: {e}", where=where) from None
    out.flush()


def _read_member(zf, info, limit: int, where: str) -> bytes:
    buf = io.BytesIO()
    _copy_member(zf, info, limit, where, buf)
    return buf.getvalue()


def parse_json(data: bytes | str, where: str) -> Any:
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


def _open_keras_zip(path: Path, limits: KerasLimits) -> Source:
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelFileError(f"not a readable .keras file (damaged zip): {e}", where=where) from None
    except ValueError as e:  # zipfile's own refusal of a malformed central directory
        raise ModelFileError(f"not a readable .keras file (damaged zip): {e}", where=where) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise ModelFileError(f"zip has {len(infos)} members (limit {limits.max_zip_members})", where=where)
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            why = unsafe_member_name(info.filename)
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
        cfg_where = f"{path}[config.json]"
        config = parse_json(_read_member(zf, members["config.json"], limits.max_config_bytes, cfg_where),
                            cfg_where)
        version = ""
        if "metadata.json" in members:
            meta_where = f"{path}[metadata.json]"
            meta = parse_json(_read_member(zf, members["metadata.json"], limits.max_metadata_bytes,
                                           meta_where), meta_where)
            if isinstance(meta, dict) and isinstance(meta.get("keras_version"), str):
                version = meta["keras_version"]
        assets = {}
        for name, info in members.items():   # the files layers read: vocabularies (TextVectorization)
            if name.startswith("assets/") and name.endswith("/vocabulary.txt"):
                assets[name[len("assets/"):]] = _read_member(zf, info, limits.max_asset_bytes, f"{path}[{name}]")
        w_where = f"{path}[model.weights.h5]"
        tmp = Path(tempfile.mkdtemp(prefix="rnncompile-keras-"))
        try:
            with open(tmp / "model.weights.h5", "wb") as out:
                _copy_member(zf, members["model.weights.h5"], limits.max_weights_file_bytes, w_where, out)
            index, arrays = run_h5reader("keras3", tmp / "model.weights.h5", limits, w_where, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if not isinstance(config, dict):
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelFileError("config.json is not a JSON object", where=cfg_where)
    return Source(path, config, version, Keras3Store(index, arrays, w_where), limits,
                  [lambda: shutil.rmtree(tmp, ignore_errors=True)], assets)


def _open_legacy_h5(path: Path, limits: KerasLimits) -> Source:
    where = str(path)
    tmp = Path(tempfile.mkdtemp(prefix="rnncompile-keras-"))
    try:
        index, arrays = run_h5reader("legacy", path, limits, where, tmp)
        if "model_config" not in index:
            if {"layer_names", "weight_names"} & set(index.get("attrs", [])):
                raise ModelFileError("this HDF5 file holds weights only (model.save_weights), no "
                                     "model config; save the whole model with model.save()", where=where)
            raise ModelFileError("no model_config attribute: not a Keras .h5 model file", where=where)
        config = parse_json(index["model_config"], f"{path}[model_config]")
        if "layers" not in index:
            raise ModelFileError("no model_weights group: the file holds a config but no weights",
                                 where=where)
        version = index.get("keras_version") or index.get("weights_version") or ""
        if not isinstance(config, dict):
            raise ModelFileError("model_config is not a JSON object", where=f"{path}[model_config]")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Source(path, config, version, LegacyStore(index, arrays, f"{path}[model_weights]"), limits,
                  [lambda: shutil.rmtree(tmp, ignore_errors=True)])


# ================================================================================================
# Running the HDF5 reader: in a child process (the default) or in this one.

_SIGNALS = {getattr(signal, n): n for n in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE",
                                            "SIGKILL", "SIGXCPU") if hasattr(signal, n)}


def run_h5reader(mode: str, h5_path: Path, limits: KerasLimits, where: str,
                 workdir: Path) -> tuple[dict, Arrays]:
    """(index, arrays) of an HDF5 Keras file; ModelFileError naming `where` for a bad file."""
    if not limits.contained:
        try:
            index, loaded = h5reader.read(mode, str(h5_path), limits.reader_limits())
        except h5reader.FileProblem as p:
            raise ModelFileError(str(p), where=where) from None
        return index, Arrays(where, loaded=loaded)
    out = workdir / "arrays"
    out.mkdir()
    process = {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds}
    cmd = [sys.executable, h5reader.__file__, mode, str(h5_path), str(out),
           json.dumps(dict(limits.reader_limits(), process=process))]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               HDF5_PLUGIN_PATH=str(workdir / "no-hdf5-plugins"))

    try:
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=limits.timeout_seconds)
    except subprocess.TimeoutExpired:
        raise ModelFileError(f"reading the HDF5 data took longer than {limits.timeout_seconds:g} s "
                             f"(limit timeout_seconds); the file is damaged or crafted", where=where) from None
    err = r.stderr.decode("utf-8", "replace")[-4000:]
    if r.returncode < 0:
        sig = _SIGNALS.get(-r.returncode, f"signal {-r.returncode}")
        if sig == "SIGXCPU":
            raise ModelFileError(f"reading the HDF5 data took more than {limits.cpu_seconds} s of CPU "
                                 f"(limit cpu_seconds); the file is damaged or crafted", where=where)
        if sig == "SIGKILL":
            raise ModelFileError(f"the HDF5 reader was killed (SIGKILL: over {limits.cpu_seconds} s of "
                                 f"CPU, limit cpu_seconds, or out of memory)", where=where)
        raise ModelFileError(f"the HDF5 library crashed reading this file ({sig}); the file is "
                             f"damaged or crafted, or reading it needs more than {limits.memory_bytes} "
                             f"bytes of memory (limit memory_bytes)", where=where)
    if r.returncode != 0:
        if "MemoryError" in err:
            raise ModelFileError(f"reading the HDF5 data needs more than {limits.memory_bytes} bytes "
                                 f"of memory (limit memory_bytes)", where=where)
        raise RuntimeError(f"the HDF5 reader process failed (exit {r.returncode}):\n{err}")
    index_path = out / "index.json"
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    if "problem" in index:
        raise ModelFileError(index["problem"], where=where)
    return index, Arrays(where, directory=out)
