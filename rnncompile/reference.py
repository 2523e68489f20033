"""The reference pass: runs a Model in float64 NumPy, layer by layer, with Keras semantics.
Generic: it only calls each layer's `reference` and checks the layer kept its own contract."""
from __future__ import annotations

import numpy as np

from .errors import LayerContractError
from .feeds import check_not_empty
from .layer import Tensor
from .spec import Model


def run_reference(model: Model, feeds: dict[str, np.ndarray],
                  states: dict[str, np.ndarray] | None = None,
                  trace: dict[str, list[Tensor]] | None = None) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Outputs in model order, and the new carried states (stateful layers) by state input name.
    Missing states start at zero. With a `trace` dict, every layer's values (its outputs, then its
    new carried states) are stored there by layer name, for localizing a disagreement."""
    values: dict[str, list[Tensor]] = {}
    new_states: dict[str, np.ndarray] = {}
    for name in model.inputs:
        if name in feeds:
            check_not_empty(name, np.shape(feeds[name]))
    batch = next(iter(feeds.values())).shape[0] if feeds else 1
    for layer in model.layers.values():
        if layer.is_model_input:
            data = np.asarray(feeds[layer.name])
            ins = [Tensor(data.astype(np.float64) if data.dtype.kind == "f" else data)]
        else:
            ins = [values[r.layer][r.index] for r in layer.inbound]
        carried = [s for s in model.states if s.layer == layer.name]
        for s in carried:
            v = (states or {}).get(s.input_name)
            ins.append(Tensor(np.zeros((batch, *s.shape)) if v is None else np.asarray(v, np.float64)))
        outs = list(layer.reference(ins, model.layer_weights(layer)))
        n = len(layer.output_types_)
        if len(outs) != n + len(carried):
            raise LayerContractError(f"reference returned {len(outs)} value(s); its shape rule "
                                     f"declares {n} output(s) and {len(carried)} state(s)",
                                     where=f"layer {layer.name!r} ({layer.class_name})")
        for i, (t, v) in enumerate(zip(layer.output_types_, outs)):
            _check_value(layer, i, t, v)
        for s, v in zip(carried, outs[n:]):
            new_states[s.input_name] = v.data
        values[layer.name] = outs[:n]
        if trace is not None:
            trace[layer.name] = outs
    return [values[r.layer][r.index].data for r in model.outputs], new_states


def _check_value(layer, i, t, v) -> None:
    where = f"layer {layer.name!r} ({layer.class_name}) output {i}"
    data = np.asarray(v.data)
    if data.ndim != t.rank or any(w is not None and d != w for d, w in zip(data.shape, t.shape)):
        raise LayerContractError(f"reference produced shape {data.shape}; its shape rule says {t}", where=where)
    if t.masked != (v.mask is not None):
        raise LayerContractError(f"reference {'dropped' if t.masked else 'added'} a mask; its mask rule "
                                 f"says {'masked' if t.masked else 'unmasked'}", where=where)
    if v.mask is not None:
        mask = np.asarray(v.mask)
        if mask.dtype != bool or mask.shape != data.shape[:2]:
            raise LayerContractError(f"reference mask is {mask.dtype} {mask.shape}; a mask is bool "
                                     f"(batch, time) = {data.shape[:2]}", where=where)
