"""Keras-like `summary` table: layer, type, output shape, parameters, mask, and how each layer is
lowered for a target (rnncompile.targets): whether a recurrent layer gets the native fused op
there and, if not, why, with the Keras guide's cuDNN conditions it does not meet."""
from __future__ import annotations

import numpy as np

from .spec import Model
from .targets import Target, get_target


def summary_rows(model: Model, target: Target | str | None = None) -> list[dict]:
    target = get_target(target)
    rows = []
    for l in model.layers.values():
        params = int(sum(np.prod(s) for s in l.weight_shapes(l.input_types).values()))
        row = {"layer": l.name, "type": l.class_name,
               "output_shape": ", ".join(str(t) for t in l.output_types_),
               "params": params,
               "mask": "yes" if any(t.masked for t in l.output_types_) else "",
               "lowering": "" if l.is_model_input else l.lowering(target),
               "inputs": ", ".join(str(r) for r in l.inbound)}
        fused = l.fused_path(target)
        if fused is not None:
            row["fused"] = fused
        blocker = l.target_blocker(target)
        if blocker is not None:
            row["refused"] = blocker
        rows.append(row)
    return rows


def render_summary(model: Model, target: Target | str | None = None) -> str:
    target = get_target(target)
    rows = summary_rows(model, target)
    cols = [("layer", "Layer (type)"), ("output_shape", "Output shape"), ("params", "Param #"),
            ("mask", "Mask"), ("inputs", "Inputs"), ("lowering", f"Lowering ({target})")]
    cells = [[f"{r['layer']} ({r['type']})", r["output_shape"], f"{r['params']:,}", r["mask"],
              r["inputs"], r["lowering"]] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h) in enumerate(cols)]
    line = "  ".join(h.ljust(w) for (_, h), w in zip(cols, widths))
    out = [f'Model: "{model.name}"', line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    out.append("-" * len(line))
    out.append(f"Total params: {model.parameter_count:,}")
    out.append("Inputs: " + ", ".join(f"{n} {model.input_type(n)} {model.input_type(n).dtype}" for n in model.inputs))
    out.append("Outputs: " + ", ".join(f"{model.output_name(r)} {model.output_type(r)}" for r in model.outputs))
    if model.states:
        out.append("Carried states (stateful): " + ", ".join(f"{s.input_name} -> {s.output_name}"
                                                            for s in model.states))
    fused = [r for r in rows if "fused" in r]
    if fused:
        out.append(f"Recurrent layers on {target}:")
        for r in fused:
            f = r["fused"]
            verdict = "native fused op" if f["native"] else f"no native op: {f['why_not']}"
            out.append(f"  {r['layer']}: {verdict}")
            if f["keras_cudnn_conditions_unmet"]:
                out.append("    Keras would not use cuDNN: " + "; ".join(f["keras_cudnn_conditions_unmet"]))
    refused = [r for r in rows if "refused" in r]
    for r in refused:
        out.append(f"REFUSED on {target}: {r['layer']} ({r['type']}): {r['refused']}")
    return "\n".join(out)
