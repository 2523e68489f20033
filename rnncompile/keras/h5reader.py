"""Reads the HDF5 part of a Keras model file: every weight array and the few attributes the
importer needs, as data. Standalone on purpose (it imports numpy and h5py only): the importer
runs it as a child process (`python -I h5reader.py ...`) under address-space and CPU limits and a
wall-clock timeout, so that a damaged or crafted file that makes libhdf5 crash, hang or allocate
without bound costs a clean error, never the host process (rnncompile/keras/reader.py).

    read(mode, path, limits) -> (index, arrays)

`mode` is "keras3" (a .keras zip's model.weights.h5: `layers/<key>/.../vars/<n>`, each layer's
`vars` group naming the layer) or "legacy" (a Keras 2 / Keras 3 legacy .h5: attribute
`model_config`, weights under `model_weights/<layer>` listed by `weight_names`). `index` is plain
JSON data; `arrays[k]` is the k-th array it refers to. Problems with one layer or one array are
recorded where they are (`{"error": ...}`) and reported by the importer only when it needs that
layer, as before; problems with the whole file raise FileProblem.

Guards: hard links only (soft and external links, external and virtual datasets are refused
before anything is dereferenced); numeric dtypes only; every array's size is computed from its
declared shape and dtype and checked (per array and in total) before anything is read; an
uncompressed array must be stored in full in the file (a dataset declaring 2^28 values held as a
fill value is refused, it would inflate a tiny file); text attributes are limited by their
decoded length.
"""
from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

#: The limits the reader needs; the importer passes its own (KerasLimits) values.
DEFAULT_LIMITS = {"max_config_bytes": 16 << 20, "max_array_values": 1 << 28,
                  "max_weight_bytes": 2 << 30, "max_name_bytes": 4096, "max_weight_names": 100_000}


class FileProblem(Exception):
    """The file is damaged, unsafe or over a limit (never a bug in this module)."""


def _from_h5py(e: BaseException) -> bool:
    """Whether an exception was raised inside h5py (the library refusing the data)."""
    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and ("h5py" + os.sep in last or last.startswith("h5py/"))


def _text(v, limit: int, what: str) -> str:
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
    if isinstance(v, bytes):
        if len(v) > limit:
            raise FileProblem(f"attribute {what} is {len(v)} bytes, over the limit of {limit}")
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        if len(v) > limit:
            raise FileProblem(f"attribute {what} is {len(v)} characters, over the limit of {limit}")
        return v
    if v is None:
        return ""
    raise FileProblem(f"attribute {what} is not text ({type(v).__name__})")


class _Reader:
    def __init__(self, h5, limits: dict):
        import h5py

        self.h5py = h5py
        self.h5 = h5
        self.limits = limits
        self.datasets: list = []       # datasets to read, in index order
        self.total = 0

    # -- structure ------------------------------------------------------------------------------
    def link_problem(self, parent, name: str) -> str | None:
        link = parent.get(name, getlink=True)
        if link is None:
            return f"missing HDF5 entry {name!r}"
        if not isinstance(link, self.h5py.HardLink):
            return (f"HDF5 entry {name!r} is a {type(link).__name__}; links to other places or files "
                    f"are refused")
        return None

    def attr(self, obj, name: str, limit: int):
        """A text attribute (or None), limited by its decoded length; a fixed-size attribute is
        also checked by its storage size before it is read."""
        if name not in obj.attrs:
            return None
        aid = obj.attrs.get_id(name)
        if aid.get_type().get_class() != self.h5py.h5t.STRING and aid.get_storage_size() > limit:
            raise FileProblem(f"attribute {name} is {aid.get_storage_size()} bytes, over the limit of {limit}")
        return obj.attrs[name]

    def array(self, ds) -> dict:
        """An index entry for a weight array: {"id": k} (read later) or {"error": ...}."""
        h5py = self.h5py
        if not isinstance(ds, h5py.Dataset):
            return {"error": "expected a weight array (HDF5 dataset), found a group"}
        dcpl = ds.id.get_create_plist()
        if dcpl.get_layout() == h5py.h5d.VIRTUAL or dcpl.get_external_count():
            return {"error": "weight array stored outside the file (external or virtual dataset); refused"}
        if ds.shape is None:
            return {"error": "weight array has no shape (an empty HDF5 dataspace)"}
        dt = ds.dtype
        if dt.kind not in "fiu" or dt.hasobject or dt.subdtype is not None or dt.names:
            return {"error": f"weight array has dtype {dt}; expected numbers"}
        values = int(np.prod(ds.shape, dtype=object)) if ds.shape is not None else 0
        if values > self.limits["max_array_values"]:
            return {"error": f"weight array has {values} elements (limit {self.limits['max_array_values']})"}
        nbytes = values * dt.itemsize
        stored = ds.id.get_storage_size()
        if not dcpl.get_nfilters() and stored < nbytes:
            return {"error": f"weight array declares {values} values ({nbytes} bytes) but the file "
                             f"stores {stored} bytes of it (a fill value or a damaged layout); refused"}
        self.total += nbytes
        if self.total > self.limits["max_weight_bytes"]:
            raise FileProblem(f"the weight arrays take more than {self.limits['max_weight_bytes']} "
                              f"bytes (limit max_weight_bytes)")
        self.datasets.append(ds)
        return {"id": len(self.datasets) - 1, "shape": list(ds.shape), "dtype": dt.str}

    def walk(self, group, prefix: str = "") -> list:
        """Every dataset under `group` (hard links only), as [relative path, entry], in natural order."""
        out = []
        for key in sorted(_keys(group), key=_natural_key):
            rel = f"{prefix}{key}"
            why = self.link_problem(group, key)
            if why:
                raise FileProblem(why.replace(repr(key), repr(rel)))
            obj = group[key]
            if isinstance(obj, self.h5py.Group):
                out += self.walk(obj, rel + "/")
            else:
                out.append([rel, self.array(obj)])
        return out

    def read_arrays(self) -> list[np.ndarray]:
        return [np.asarray(ds[()]) for ds in self.datasets]

    # -- the two layouts ------------------------------------------------------------------------
    def keras3(self) -> dict:
        layers: dict[str, dict] = {}
        h5 = self.h5
        if "layers" in h5:
            why = self.link_problem(h5, "layers")
            if why or not isinstance(h5["layers"], self.h5py.Group):
                raise FileProblem(why or "HDF5 entry 'layers' is not a group")
            group = h5["layers"]
            for key in _keys(group):
                why = self.link_problem(group, key)
                if why or not isinstance(group[key], self.h5py.Group):
                    raise FileProblem(why or f"HDF5 entry {key!r} is not a group")
                grp = group[key]
                entry: dict = {"name": ""}
                if "vars" in grp and self.link_problem(grp, "vars") is None:
                    entry["name"] = _text(self.attr(grp["vars"], "name", self.limits["max_name_bytes"]),
                                          self.limits["max_name_bytes"], "name")
                try:
                    entry["arrays"] = self.walk(grp)
                except FileProblem as p:
                    entry = {"name": entry["name"], "error": str(p)}
                entry["path"] = grp.name
                layers[key] = entry
        return {"kind": "keras3", "layers": layers}

    def legacy(self) -> dict:
        h5, lim = self.h5, self.limits
        out: dict = {"kind": "legacy", "attrs": sorted(k for k in ("model_config", "layer_names", "weight_names")
                                                        if k in h5.attrs)}
        if "model_config" not in h5.attrs:
            return out
        out["model_config"] = _text(self.attr(h5, "model_config", lim["max_config_bytes"]),
                                    lim["max_config_bytes"], "model_config")
        out["keras_version"] = _text(self.attr(h5, "keras_version", lim["max_name_bytes"]),
                                     lim["max_name_bytes"], "keras_version")
        if "model_weights" not in h5:
            return out
        why = self.link_problem(h5, "model_weights")
        if why or not isinstance(h5["model_weights"], self.h5py.Group):
            raise FileProblem(why or "HDF5 entry 'model_weights' is not a group")
        mw = h5["model_weights"]
        out["weights_version"] = _text(self.attr(mw, "keras_version", lim["max_name_bytes"]),
                                       lim["max_name_bytes"], "keras_version")
        layers = {}
        for name in _keys(mw):
            try:
                layers[name] = {"arrays": self.legacy_layer(mw, name)}
            except FileProblem as p:
                layers[name] = {"error": str(p)}
        out["layers"] = layers
        return out

    def legacy_layer(self, mw, layer: str) -> list:
        why = self.link_problem(mw, layer)
        if why or not isinstance(mw[layer], self.h5py.Group):
            raise FileProblem(why or f"HDF5 entry {layer!r} is not a group")
        grp = mw[layer]
        names = grp.attrs.get("weight_names") if "weight_names" in grp.attrs else None
        if names is None:
            return []
        names = np.atleast_1d(names)
        if names.size > self.limits["max_weight_names"]:
            raise FileProblem(f"weight_names lists {names.size} weights (limit {self.limits['max_weight_names']})")
        out = []
        for raw in names.tolist():
            n = _text(raw, self.limits["max_name_bytes"], "weight_names")
            if _unsafe_name(n):
                raise FileProblem(f"weight name {n!r} is not a plain relative path")
            node = grp
            for part in n.split("/"):
                link = node.get(part, getlink=True) if isinstance(node, self.h5py.Group) else None
                if link is None:
                    raise FileProblem(f"weight {n!r} is listed but missing")
                if not isinstance(link, self.h5py.HardLink):
                    raise FileProblem(f"weight {n!r} goes through a {type(link).__name__}; refused")
                node = node[part]
            out.append([n, self.array(node)])
        return out


def _keys(group) -> list[str]:
    """The link names of a group; h5py gives a name that is not UTF-8 as bytes."""
    keys = list(group.keys())
    for k in keys:
        if not isinstance(k, str):
            raise FileProblem(f"HDF5 entry name {k[:80]!r} in {group.name!r} is not UTF-8 text")
    return keys


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _unsafe_name(n: str) -> bool:
    return (not n or "\x00" in n or "\\" in n or n.startswith("/")
            or any(p in ("", "..", ".") for p in n.split("/")))


def read(mode: str, path: str, limits: dict | None = None) -> tuple[dict, list[np.ndarray]]:
    """Read the weights (and, for legacy files, the config) of an HDF5 Keras file. Raises
    FileProblem for a damaged, unsafe or oversized file; any other exception is a bug."""
    import h5py

    lim = dict(DEFAULT_LIMITS, **(limits or {}))
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise FileProblem(f"not a readable HDF5 file: {e}") from None
    try:
        with h5:
            r = _Reader(h5, lim)
            index = r.keras3() if mode == "keras3" else r.legacy()
            return index, r.read_arrays()
    except FileProblem:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        if _from_h5py(e):
            raise FileProblem(f"damaged HDF5 data ({type(e).__name__}: {e})") from None
        raise


def _limit_process(memory_bytes: int | None = None, cpu_seconds: int | None = None) -> None:
    """Address space, CPU time, no core dump: set by the reader on itself, before any HDF5 data
    is read (the importer also enforces a wall-clock timeout from outside)."""
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX: only the timeout applies)
        return
    def lower(which: int, soft: int, hard: int) -> None:
        # never above a limit the parent process already set (a process cannot raise its hard limit)
        _, cur = resource.getrlimit(which)
        if cur != resource.RLIM_INFINITY:
            soft, hard = min(soft, cur), min(hard, cur)
        resource.setrlimit(which, (soft, hard))

    if memory_bytes:
        lower(resource.RLIMIT_AS, memory_bytes, memory_bytes)
    if cpu_seconds:
        lower(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    """`h5reader.py MODE PATH OUT_DIR LIMITS_JSON`: OUT_DIR/index.json and OUT_DIR/<k>.npy.
    Exit 0 (index.json holds {"problem": ...} for a bad file); anything else is a failure."""
    import h5py  # noqa: F401  (loaded before the limits: they are for the data, not the library)

    mode, path, out_dir, limits = argv[1], argv[2], argv[3], json.loads(argv[4])
    _limit_process(**limits.pop("process", {}))
    try:
        index, arrays = read(mode, path, limits)
    except FileProblem as p:
        index, arrays = {"problem": str(p)}, []
    except MemoryError:
        index, arrays = {"problem": "reading the file needs more memory than the limit allows"}, []
    for k, a in enumerate(arrays):
        np.save(os.path.join(out_dir, f"{k}.npy"), a, allow_pickle=False)
    index["n_arrays"] = len(arrays)
    with open(os.path.join(out_dir, "index.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(index, f)
    os.replace(os.path.join(out_dir, "index.json.tmp"), os.path.join(out_dir, "index.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
