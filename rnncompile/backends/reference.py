"""The float64 NumPy reference behind the Runner interface: the source of truth."""
from __future__ import annotations

from . import InputMeta


class ReferenceRunner:
    name = "reference (NumPy float64)"
    precision = "float64"

    def __init__(self, model):
        self.model = model
        m = model
        self.inputs = [InputMeta(n, m.input_type(n).dtype, m.input_type(n).shape) for n in m.inputs]
        self.inputs += [InputMeta(s.input_name, "float32", (None, *s.shape)) for s in m.states]

    def run(self, feeds):
        from ..reference import run_reference

        m = self.model
        inputs = {n: feeds[n] for n in m.inputs}
        states = {s.input_name: feeds[s.input_name] for s in m.states if s.input_name in feeds}
        outs, new_states = run_reference(m, inputs, states)
        result = dict(zip(m.output_names, outs))
        for s in m.states:
            result[s.output_name] = new_states[s.input_name]
        return result
