"""The weights of one Keras layer call: which arrays the layer kind expects (its `weight_shapes`
keys, in Keras's save order; Keras 3 paths from its `keras_weight_paths`, legacy base names), and
finding them in the file's weight store."""
from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from ..layer import Layer
from .fields import Mapped
from .nodes import Node
from .reader import WeightStore


def weight_plan(layer: Layer, mapped: Mapped) -> list[tuple[str, str, str]]:
    """(spec key, Keras 3 path, legacy base name) of each weight, in Keras save order."""
    plan, count = [], defaultdict(int)
    for key in layer.weight_shapes(layer.input_types):
        group, _, base = key.rpartition("/")
        prefix = layer.keras_weight_paths[group]
        plan.append((key, f"{mapped.weight_prefix}{prefix}{count[group]}", base))
        count[group] += 1
    return plan


def _legacy_base(name: str) -> str:
    return re.sub(r":\d+$", "", name.split("/")[-1])


def _float32(a: np.ndarray, where: str) -> np.ndarray:
    if a.dtype.kind != "f":
        raise ModelFileError(f"weight has dtype {a.dtype}; expected floats", where=where)
    return a.astype(np.float32, copy=False)



def read_layer_weights(store: WeightStore, n: Node, layer: Layer, plan: list, where: str,
                       fail: Callable[[str], None]) -> dict[str, np.ndarray]:
    """The arrays of the Keras layer called by `n`, by spec key, following `plan`; a missing,
    unexpected or misnamed array is reported with `fail`."""
    arrays = store.layer_arrays(n.layer)
    stateful = bool(layer.state_shapes(layer.input_types))
    out: dict[str, np.ndarray] = {}
    if arrays is None:
        if plan:
            fail(f"no saved weights for this layer in {store.where}")
        return out
    if store.keras3_paths:
        by_rel = dict(arrays)
        for key, rel, _ in plan:
            entry = by_rel.pop(rel, None)
            if entry is None:
                fail(f"weight {rel!r} ({key}) is missing from {store.where}")
                continue
            out[key] = _float32(store.arrays.get(entry, f"{where} [{rel}]"), f"{where} [{rel}]")
        extra = [rel for rel in by_rel if not ("seed_generator" in rel or rel.startswith("vars/") and stateful)]
        if extra:
            fail(f"has saved weights rnncompile does not expect ({', '.join(extra[:5])}); "
                 f"a quantized, LoRA or otherwise modified layer is not supported")
        return out
    # legacy: order and basenames
    arrays = [(nm, a) for nm, a in arrays if "seed_generator" not in nm]
    if stateful:
        arrays = [(nm, a) for nm, a in arrays if _legacy_base(nm) not in ("state", "states")
                  and not re.search(r"/states?(_\d+)?(:\d+)?$", nm)]
    if len(arrays) != len(plan):
        fail(f"expected {len(plan)} saved weights ({', '.join(p[0] for p in plan) or 'none'}), "
             f"found {len(arrays)} ({', '.join(nm for nm, _ in arrays) or 'none'})")
        return out
    groups = {key.rpartition("/")[0] for key, _, _ in plan} - {""}
    for (key, _, base), (nm, entry) in zip(plan, arrays):
        if _legacy_base(nm) != base:
            fail(f"saved weight {nm!r} is not the expected {base!r} (for {key})")
            continue
        group = key.rpartition("/")[0]
        others = [g for g in groups if g != group and g in nm.lower()]
        if group and others and group not in nm.lower():
            fail(f"saved weight {nm!r} belongs to the {others[0]} layer, expected {group}")
            continue
        out[key] = _float32(store.arrays.get(entry, f"{where} [{nm}]"), f"{where} [{nm}]")
    return out
