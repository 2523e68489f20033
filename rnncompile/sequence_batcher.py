"""Triton's sequence batcher (direct strategy, implicit state), emulated over any runner: how the
stateful export (a graph lowered with a `targets.StateControl`) is verified on a CPU, the way the
server will drive it.

What the server does, per model instance (server docs/user_guide/implicit_state_management.md,
architecture.md "Stateful Models"): each sequence gets a batch slot; one execution stacks at most
one request per slot; the START control is 1 in the row of a sequence's first request; the input
state of a row is the output state of that sequence's previous request, and for a first request
whatever the server holds (zeros when `initial_state { zero_data: true }` is configured,
uninitialized memory otherwise). The emulation feeds NaN there, so only a graph that really
resets its state on START passes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import Runner
from .backends.reference import ReferenceRunner
from .errors import RnnCompileError
from .io import ModelIO
from .runtime import Session
from .spec import Model
from .targets import StateControl
from .verify import TOLERANCES, CaseResult, OutputResult, Report, compare, make_cases


@dataclass(frozen=True)
class StatePair:
    """One implicit state: the plain build's names (manifest) and the exported graph's names."""

    plain_input: str
    plain_output: str
    input: str
    output: str
    shape: tuple[int, ...]  # without batch


def state_pairs(model: Model, control: StateControl) -> list[StatePair]:
    """The carried states of `model`, with the names the stateful export gives them."""
    return [StatePair(s.input_name, s.output_name, *control.names(s.layer, s.suffix), tuple(s.shape))
            for s in model.states]


@dataclass
class Request:
    """One inference request of a sequence: one row of each model input (batch axis kept, 1)."""

    sequence: int
    start: bool
    feeds: dict[str, np.ndarray]


class SequenceBatcher:
    """Runs batches of requests (at most one per sequence) through the exported graph as Triton's
    sequence batcher does, keeping each sequence's output states for its next request."""

    def __init__(self, runner: Runner, pairs: list[StatePair], control: StateControl):
        self.runner = runner
        self.pairs = pairs
        self.control = control
        self.states: dict[int, dict[str, np.ndarray]] = {}

    def execute(self, requests: list[Request]) -> list[dict[str, np.ndarray]]:
        """One model execution over `requests` (one batch slot each); per request, its outputs
        (states excluded), one row each."""
        if len({r.sequence for r in requests}) != len(requests):
            raise ValueError("a batch holds at most one request per sequence")
        feeds = {name: np.concatenate([r.feeds[name] for r in requests])
                 for name in requests[0].feeds}
        feeds[self.control.start] = np.array([[int(r.start)] for r in requests], np.int32)
        for p in self.pairs:
            rows = []
            for r in requests:
                held = None if r.start else self.states.get(r.sequence, {}).get(p.input)
                if held is None and not r.start:
                    raise ValueError(f"sequence {r.sequence} continues without having started")
                rows.append(np.full((1, *p.shape), np.nan, np.float32) if held is None else held)
            feeds[p.input] = np.concatenate(rows)
        outs = self.runner.run(feeds)
        results = []
        for k, r in enumerate(requests):
            self.states[r.sequence] = {p.input: outs[p.output][k:k + 1] for p in self.pairs}
            results.append({n: v[k:k + 1] for n, v in outs.items()
                            if n not in {p.output for p in self.pairs}})
        return results


def slot_schedule(batch: int, steps: int) -> list[list[bool]]:
    """START flags [step][slot] of the verification schedule: slot b runs sequences of
    1 + (b + 1) % 3 requests back to back, so one batch mixes first, middle and last requests of
    different sequences, and new sequences start in slots whose neighbours continue."""
    return [[k % (1 + (b + 1) % 3) == 0 for b in range(batch)] for k in range(steps)]


def verify_stateful_export(model: Model, runner: Runner, io: ModelIO, control: StateControl,
                           seed: int = 0) -> Report:
    """Verify the stateful export on `runner` against the float64 reference, driven as the
    sequence batcher drives it: the verification cases of the plain build (every batch size,
    length and padding pattern; consecutive chunks), with the slots of each case running
    sequences of different lengths (`slot_schedule`). Each sequence's reference is a stateful
    reference Session over that sequence's requests alone."""
    tol = TOLERANCES[runner.precision]
    pairs = state_pairs(model, control)
    cases, notes = make_cases(model, seed)
    report = Report(f"{runner.name}, driven as Triton's sequence batcher", ReferenceRunner.name,
                    runner.precision, tol, notes=notes + [
                        "sequence batcher emulation: START per row, input state NaN on a "
                        "sequence's first request, its previous output state after; slot b runs "
                        "sequences of 1 + (b+1) % 3 requests"])
    for case in cases:
        batcher = SequenceBatcher(runner, pairs, control)
        refs: dict[int, Session] = {}
        slot_seq = list(range(case.batch))
        next_seq = case.batch
        for k, (feeds, starts) in enumerate(zip(case.chunks, slot_schedule(case.batch, len(case.chunks)))):
            requests = []
            for b, start in enumerate(starts):
                if start and k > 0:
                    slot_seq[b], next_seq = next_seq, next_seq + 1
                requests.append(Request(slot_seq[b], start, {n: v[b:b + 1] for n, v in feeds.items()}))
            try:
                got = batcher.execute(requests)
                want = []
                for r in requests:
                    if r.start:
                        refs[r.sequence] = Session(ReferenceRunner(model), io)
                    want.append(refs[r.sequence].run(dict(r.feeds)))
            except RnnCompileError as e:
                report.cases.append(CaseResult(case.name, case.batch, case.lengths, case.pattern, k,
                                               [OutputResult("*", [], float("inf"), float("inf"),
                                                             tol.atol, tol.rtol, False, str(e))]))
                continue
            results = [compare(n, np.concatenate([w[n] for w in want]),
                               np.concatenate([g[n] for g in got]), tol) for n in want[0]]
            for p in pairs:
                results.append(compare(p.output,
                                       np.concatenate([refs[r.sequence].states[p.plain_input] for r in requests]),
                                       np.concatenate([batcher.states[r.sequence][p.input] for r in requests]),
                                       tol))
            report.cases.append(CaseResult(case.name, case.batch, case.lengths, case.pattern, k, results))
    return report
