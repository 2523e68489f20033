"""Keras-like `summary` table: layer, type, output shape, parameters, mask, lowering."""
from __future__ import annotations

import numpy as np

from .spec import Model


def summary_rows(model: Model) -> list[dict]:
    rows = []
    for l in model.layers.values():
        params = int(sum(np.prod(s) for s in l.weight_shapes(l.input_types).values()))
        rows.append({"layer": l.name, "type": l.class_name,
                     "output_shape": ", ".join(str(t) for t in l.output_types_),
                     "params": params,
                     "mask": "yes" if any(t.masked for t in l.output_types_) else "",
                     "lowering": "" if getattr(l, "is_model_input", False) else l.lowering(),
                     "inputs": ", ".join(str(r) for r in l.inbound)})
    return rows


def render_summary(model: Model) -> str:
    rows = summary_rows(model)
    cols = [("layer", "Layer (type)"), ("output_shape", "Output shape"), ("params", "Param #"),
            ("mask", "Mask"), ("inputs", "Inputs"), ("lowering", "Lowering")]
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
    return "\n".join(out)
