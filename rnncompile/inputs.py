"""Seeded model inputs: the one padding-pattern vocabulary and the one input generator, used by
verification (verify.make_cases), `rnncompile bench`, the conformance sweep and the tests.

Padding patterns (which steps of a [batch, time] input are valid; padded steps hold the input's
pad value, so the model's Embedding(mask_zero) or Masking layer masks them):

  none      every step valid
  right     each row loses a seeded random number of trailing steps in [1, T-1]
  left      each row loses a seeded random number of leading steps in [1, T-1]
  gaps      each row loses up to T-2 interior steps (both ends stay valid; needs T >= 3)
  empty     every step of every row padded (a fully masked row)
  mixed     rows cycle through none, right, left, gaps, empty (row b gets the (b mod 5)-th)
  random    every step independently valid with probability 0.6
  combined  one row holds left padding, an interior gap and right padding (steps 0, 2 and T-1
            padded; the Keras goldens' fifth row pattern)

`left:F` / `right:F` pad the fraction F (0 <= F < 1, rounded down) of every row instead of a
random amount; `random:P` makes each step valid with probability P (0 < P <= 1). A row never
loses all of its steps except under `empty`, `mixed` and `random` (where `allow_empty` decides).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .io import ModelIO

#: The pattern names (module doc). `mixed` cycles through MIXED_ROWS.
PATTERNS = ("none", "right", "left", "gaps", "empty", "mixed", "random", "combined")
MIXED_ROWS = ("none", "right", "left", "gaps", "empty")
#: Patterns that take a fraction (`left:0.5`) or a probability (`random:0.8`).
_FRACTIONAL = ("left", "right", "random")
RANDOM_VALID = 0.6


def parse_pattern(pattern: str) -> tuple[str, float | None]:
    """`left` -> ("left", None); `left:0.5` -> ("left", 0.5). Raises ValueError naming the
    vocabulary."""
    kind, sep, frac = str(pattern).partition(":")
    if kind not in PATTERNS:
        raise ValueError(f"unknown padding pattern {pattern!r}; expected one of {', '.join(PATTERNS)} "
                         f"(or left:F, right:F with 0 <= F < 1, random:P with 0 < P <= 1)")
    if not sep:
        return kind, None
    if kind not in _FRACTIONAL:
        raise ValueError(f"pattern {kind!r} takes no fraction")
    try:
        f = float(frac)
    except ValueError:
        raise ValueError(f"pattern {pattern!r}: {frac!r} is not a number") from None
    if kind == "random" and not 0.0 < f <= 1.0:
        raise ValueError(f"probability of a valid step must be in (0, 1], got {f}")
    if kind != "random" and not 0.0 <= f < 1.0:
        raise ValueError(f"padding fraction must be in [0, 1), got {f}")
    return kind, f


def valid_steps(pattern: str, batch: int, steps: int, rng: np.random.Generator,
                allow_empty: bool = True) -> np.ndarray:
    """A [batch, steps] bool array, True for a valid step, for one padding pattern (module doc).
    `allow_empty=False` keeps one valid step in every row of a `random` mask."""
    kind, frac = parse_pattern(pattern)
    valid = np.ones((batch, steps), bool)
    if kind == "none":
        return valid
    if kind == "random":
        valid = rng.random((batch, steps)) < (RANDOM_VALID if frac is None else frac)
        if not allow_empty:
            valid[np.arange(batch), rng.integers(0, steps, size=batch)] = True
        return valid
    if frac is not None:  # left:F / right:F, the same amount in every row
        n = min(int(frac * steps), max(steps - 1, 0))
        if kind == "left":
            valid[:, :n] = False
        else:
            valid[:, steps - n:] = False
        return valid
    for b in range(batch):
        p = kind if kind != "mixed" else MIXED_ROWS[b % len(MIXED_ROWS)]
        if steps == 1:
            if p == "empty":
                valid[b] = False
            continue
        n = int(rng.integers(1, steps))  # number of padded steps, at least one valid left
        if p == "right":
            valid[b, steps - n:] = False
        elif p == "left":
            valid[b, :n] = False
        elif p == "gaps":
            if steps >= 3:  # interior steps only, so the gap is neither left nor right padding
                idx = rng.choice(np.arange(1, steps - 1), size=min(n, steps - 2), replace=False)
                valid[b, idx] = False
        elif p == "empty":
            valid[b] = False
        elif p == "combined":  # T >= 3: steps 0, 2 and T-1 padded; T = 2: step 0
            valid[b, [0, 2, steps - 1] if steps >= 3 else [0]] = False
    return valid


@dataclass
class InputInfo:
    """What the generator needs to know about a model input: its dtype, its shape without the
    batch axis (None for a dynamic axis), the token range of an id input and the pad value of a
    masked one (Embedding mask_zero: 0; Masking: mask_value)."""

    name: str
    dtype: str
    shape: tuple
    token_range: int | None = None
    pad_value: float | None = None
    #: For a text input: words to build texts from (a tokenizer's vocabulary), None: a generic pool.
    words: tuple[str, ...] | None = None

    @property
    def masked(self) -> bool:
        """Its rows can be padded: a masked input, or text (of varying length; "empty" rows have
        no tokens)."""
        return (self.pad_value is not None and len(self.shape) >= 1) or self.dtype == "string"


def infos_from_io(io: ModelIO) -> list[InputInfo]:
    """InputInfos from a model's description (inputs with dtype, shape incl. batch,
    token_range, pad_value), carried-state inputs left out."""
    return [InputInfo(i.name, i.dtype, tuple(d if isinstance(d, int) and d > 0 else None for d in i.shape[1:]),
                      i.token_range, i.pad_value)
            for i in io.feed_inputs]


def input_infos(model) -> list[InputInfo]:
    """InputInfos of a Model's inputs, derived generically from the layers that consume each one
    (their token_range() and pad_value())."""
    infos = []
    for name in model.inputs:
        t = model.input_type(name)
        consumers = [l for l in model.layers.values() if any(r.layer == name for r in l.inbound)]
        ranges = [r for r in (c.token_range() for c in consumers) if r is not None]
        pads = [p for p in (c.pad_value() for c in consumers) if p is not None]
        words = [w for c in consumers for w in (c.text_words() or ())]
        infos.append(InputInfo(name, t.dtype, tuple(t.shape[1:]), min(ranges) if ranges else None,
                               pads[0] if pads else None, tuple(dict.fromkeys(words)) or None))
    return infos


def make_inputs(infos: list[InputInfo], batch: int, lengths: dict[str, int], pattern: str,
                rng: np.random.Generator, valid: dict[str, np.ndarray] | None = None,
                other_axes: int = 3) -> dict[str, np.ndarray]:
    """Seeded inputs of one call: token ids in [1, range) (0 is padding) or in [0, range), floats
    from a standard normal (never equal to the pad value). A dynamic time axis gets
    `lengths[name]` steps, other dynamic axes `other_axes`. Inputs with a pad value get padded
    steps where `valid[name]` (a [batch, time] bool array) is False when given, else by
    `pattern`."""
    feeds = {}
    for info in infos:
        shape = tuple(lengths[info.name] if (i == 0 and d is None) else (d if d is not None else other_axes)
                      for i, d in enumerate(info.shape))
        full = (batch, *shape)
        if info.dtype == "string":
            feeds[info.name] = make_texts(info, batch, lengths.get(info.name) or 8, pattern, rng).reshape(
                (batch, *info.shape))
            continue
        if info.dtype == "bool":   # a mask input (SetMask): False on padded steps, below
            x = np.ones(full, bool)
        elif info.dtype.startswith("int"):
            hi = int(info.token_range or 10)
            lo = 1 if (info.pad_value == 0 and hi > 1) else 0
            x = rng.integers(lo, hi, size=full).astype(info.dtype)
        else:
            x = rng.standard_normal(full).astype(info.dtype)
            if info.pad_value is not None:
                x[x == info.pad_value] += 0.5
        if info.pad_value is not None and len(full) >= 2:
            steps = (valid or {}).get(info.name)
            if steps is None and pattern != "none":
                steps = valid_steps(pattern, batch, full[1], rng)
            if steps is not None:
                if steps.shape != full[:2]:
                    raise ValueError(f"mask shape {steps.shape} does not fit input {info.name} {full}")
                x[~steps] = info.pad_value
        feeds[info.name] = x
    return feeds


#: Pieces of generated texts besides the words: what standardize and split must get right.
_SEPARATORS = (" ", " ", " ", "  ", "\t", "\n", " \r\n", "\x0b", "\x0c", " \u00a0", "\u2003")
_OTHER_WORDS = ("zzqx", "Ünïcödé", "ÉCOLE", "straße", "😀", "👍🏽", "[UNK]", "don't", "e-mail", "U.S.A.", "...",
                "(a)", "x\x00y", "ǅ", "")
_GENERIC_WORDS = ("the", "a", "movie", "was", "great", "bad", "not", "good", "plot", "actor")


def make_texts(info: InputInfo, batch: int, steps: int, pattern: str, rng: np.random.Generator) -> np.ndarray:
    """[batch] object array of seeded texts for a text input: words of `info.words` (in upper,
    title and lower case, with punctuation around and inside some), unknown and non-ASCII words,
    emoji, every kind of whitespace between them. Row lengths vary up to about 3 x `steps`
    words, so a fixed output length both pads and truncates. `pattern`: "empty" makes every text
    token-less ("" or whitespace), "mixed" every fifth row; other patterns give no empty row."""
    words = info.words or _GENERIC_WORDS
    kind, _ = parse_pattern(pattern)
    out = np.empty(batch, dtype=object)
    for b in range(batch):
        if kind == "empty" or (kind == "mixed" and MIXED_ROWS[b % len(MIXED_ROWS)] == "empty"):
            out[b] = ("", " ", "\t\n", "  \r\n")[b % 4]
            continue
        n = int(rng.integers(1, max(2, 3 * steps + 1)))
        parts = []
        for _ in range(n):
            r = rng.random()
            pool = words if r < 0.75 else _OTHER_WORDS
            w = str(pool[int(rng.integers(0, len(pool)))])
            c = rng.random()
            if c < 0.15:
                w = w.upper()
            elif c < 0.3:
                w = w.title()
            p = rng.random()
            if p < 0.1:
                w = w + ("," if p < 0.05 else "!?")
            elif p < 0.15:
                w = "\"" + w + "\""
            elif p < 0.18 and len(w) > 1:
                w = w[:1] + "'" + w[1:]
            parts.append(w)
            parts.append(_SEPARATORS[int(rng.integers(0, len(_SEPARATORS)))])
        lead = _SEPARATORS[int(rng.integers(0, len(_SEPARATORS)))] if rng.random() < 0.2 else ""
        out[b] = lead + "".join(parts[:-1] if rng.random() < 0.7 else parts)
    return out


__all__ = ["InputInfo", "MIXED_ROWS", "PATTERNS", "infos_from_io", "input_infos", "make_inputs", "make_texts",
           "parse_pattern", "valid_steps"]
