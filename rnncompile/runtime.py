"""`Session`: a model behind any runner (rnncompile.backends), carrying the state of stateful
layers across calls, as Keras's cross-batch statefulness does, until `reset_states()`."""
from __future__ import annotations

import numpy as np

from .backends import Runner
from .errors import RunError
from .feeds import check_feeds
from .io import ModelIO


class Session:
    """Runs a model through a runner; carries stateful layers' states across calls.

    `io`: the model's inputs, outputs and carried states (a manifest's: `ModelIO.from_dict`)."""

    def __init__(self, runner: Runner, io: ModelIO):
        self.runner = runner
        self.io = io
        self.states_spec = io.states
        self._states: dict[str, np.ndarray] | None = None
        self.input_names = [i.name for i in io.feed_inputs]

    @property
    def stateful(self) -> bool:
        return bool(self.states_spec)

    def reset_states(self) -> None:
        """Forget carried states: the next call starts from zeros."""
        self._states = None

    @property
    def states(self) -> dict[str, np.ndarray]:
        """Copies of the carried states (changing them does not change the session's)."""
        return {k: v.copy() for k, v in (self._states or {}).items()}

    def run(self, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        feeds = self.prepare(inputs)
        if self.states_spec:
            batch = next(iter(feeds.values())).shape[0]
            if self._states is not None:
                prev = next(iter(self._states.values())).shape[0]
                if prev != batch:
                    raise RunError(f"a stateful model keeps its batch size: got {batch}, the carried "
                                   f"state has {prev}; call reset_states() first", where="inputs")
            for s in self.states_spec:
                cur = (self._states or {}).get(s.input)
                feeds[s.input] = (np.zeros((batch, *s.shape), np.float32) if cur is None
                                     else cur)
        outs = self.runner.run(feeds)
        if self.states_spec:
            self._states = {s.input: outs.pop(s.output) for s in self.states_spec}
        return outs

    def prepare(self, inputs: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """The runner's feeds for `inputs` (carried states aside): checked against the model's
        inputs, cast, and host-side preprocessing (a tokenizer) applied."""
        if not isinstance(inputs, dict):
            if len(self.input_names) != 1:
                raise RunError(f"the model has inputs {self.input_names}: pass a dict", where="inputs")
            inputs = {self.input_names[0]: inputs}
        specs = self.io.feed_inputs
        feeds = check_feeds(specs, inputs)
        for spec in specs:
            limit = spec.token_range
            if limit is not None:
                ids = feeds[spec.name]
                bad = (ids < 0) | (ids >= limit)
                if bad.any():
                    idx = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise RunError(f"token id {int(ids[idx])} at index {idx} is outside the vocabulary "
                                   f"[0, {limit})", where=f"input {spec.name!r}")
        self._preprocess(feeds)
        return feeds

    def _preprocess(self, feeds: dict[str, np.ndarray]) -> None:
        """Host-side preprocessing (a tokenizer) for a runner that takes its output, not its input
        (the reference runner tokenizes itself; a graph built with --tokenizer host does not)."""
        if not self.io.preprocessing:
            return
        takes = {i.name for i in self.runner.inputs}
        used = set()
        for p in self.io.preprocessing:
            if p.output in takes and p.input.name not in takes:
                if p.function is None:
                    raise RunError(f"the {p.kind} of layer {p.layer!r} runs on the host but is not loaded "
                                   f"(open the build with rnncompile.open_session)", where=f"input {p.input.name!r}")
                try:
                    feeds[p.output] = p.function(feeds[p.input.name])
                except (ValueError, UnicodeError) as e:
                    raise RunError(f"{p.kind} {p.layer!r} failed: {e}", where=f"input {p.input.name!r}") from None
                used.add(p.input.name)
        for name in used - takes:
            feeds.pop(name, None)
