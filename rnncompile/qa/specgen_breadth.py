"""The breadth family of generated specs (rnncompile.qa.specgen's module doc): the kinds around
the recurrent core (convolutions, pooling, attention, one-hot, TimeDistributed, SetMask, merges,
normalization, shape layers), mixed with masks, valid by construction. `specgen.generate_spec(...,
breadth=True)` uses it; the classic family stays in specgen.py, decision for decision unchanged."""
from __future__ import annotations

from typing import Any

from .specgen import FEATURE_ACTIVATIONS, MERGE_MODES, RNN_KINDS, Chooser, _Gen



def _out_len(t: int | None, span: int, stride: int, same: bool) -> int | None:
    """Steps out of a window over t steps (Keras's rule); None for a variable t."""
    if t is None:
        return None
    return -(-t // stride) if same else (t - span) // stride + 1


class Breadth(_Gen):
    """Specs that mix the kinds around the recurrent core with masks. Every decision keeps the
    spec valid by construction: `t` (steps, None when variable), `f` (features) and `masked`
    describe the sequence the last layer gives, and each block only picks options that fit them
    (windows no longer than the steps, attention features that match, fixed sizes where weights
    need them). Models stay small: sizes 1..5, at most four body blocks.

    `masked_consumer=True` makes the family of the mask invariant (tests/test_properties.py): a
    bool input `m` (SetMask) masks the sequence, every block keeps that mask and never mixes
    padded steps into valid ones, and the output comes from a layer that consumes the mask (a
    last recurrent step, a masked mean, attention pooling): so the values at padded steps of `x`
    never change the output (rows with at least one valid step)."""

    def __init__(self, c: Chooser, masked_consumer: bool = False):
        super().__init__(c)
        self.masked_consumer = masked_consumer
        self.t: int | None = None
        self.f = 1
        self.masked = False
        self.outputs: list[str] = []

    # -- helpers --------------------------------------------------------------------------------
    def seq(self, layer: dict, t: int | None, f: int, masked: bool, named: bool | None = None) -> dict:
        layer = self.add(layer, named=named)
        self.t, self.f, self.masked = t, f, masked
        return layer

    def cur(self) -> str:
        return self.ensure_name(self.layers[-1])

    def window(self, max_span: int = 3) -> tuple[int, int, bool] | None:
        """(span, stride, same padding) of a window that fits the current steps, or None."""
        c = self.c
        span = c.integer(1, max_span)
        same = c.boolean(0.4)
        stride = 1 if same else c.integer(1, 2)
        if self.t is not None and not same and span > self.t:
            return None
        return span, stride, same

    # -- sources --------------------------------------------------------------------------------
    def source(self) -> None:
        c = self.c
        t = None if c.boolean(0.7) else c.integer(3, 6)
        if self.masked_consumer:
            f = c.integer(1, 5)
            self.add({"class_name": "Input", "name": "x", "shape": [t, f]}, named=True)
            self.t, self.f = t, f
            self.set_mask("x")
            return
        kind = c.choice(["tokens", "features", "set_mask", "one_hot", "images", "image_repeat"])
        if kind == "tokens":
            self.add({"class_name": "Input", "name": "x", "shape": [t], "dtype": c.choice(["int32", "int64"])},
                     named=True)
            mask_zero = c.boolean(0.7)
            d = c.integer(1, 5)
            self.seq({"class_name": "Embedding", "input_dim": c.integer(2, 12), "output_dim": d,
                      "mask_zero": mask_zero}, t, d, mask_zero)
        elif kind in ("features", "set_mask"):
            f = c.integer(1, 5)
            self.add({"class_name": "Input", "name": "x", "shape": [t, f]}, named=True)
            self.t, self.f = t, f
            if kind == "features" and c.boolean(0.6):
                self.seq({"class_name": "Masking", "mask_value": c.choice([0.0, -1.0, 0.5])}, t, f, True)
            elif kind == "set_mask":
                self.set_mask("x")
        elif kind == "one_hot":
            self.add({"class_name": "Input", "name": "x", "shape": [t], "dtype": c.choice(["int32", "int64"])},
                     named=True)
            n = c.integer(2, 6)
            if c.boolean():
                self.seq({"class_name": "CategoryEncoding", "num_tokens": n}, t, n, False)
            else:
                self.seq({"class_name": "OneHot", "num_classes": n}, t, n, False)
            if c.boolean(0.5):
                self.set_mask(self.cur())
        elif kind == "images":
            h, w, ch = c.integer(2, 5), c.integer(2, 5), c.integer(1, 2)
            self.add({"class_name": "Input", "name": "x", "shape": [t, h, w, ch]}, named=True)
            self.t = t
            if c.boolean(0.6):   # the bool mask goes before the image layers: TimeDistributed keeps it
                self.set_mask("x")
            h, w, ch = self.conv2d(h, w, ch, distributed=True)
            if c.boolean(0.5):
                h, w = self.pool2d(h, w, distributed=True)
            self.seq({"class_name": "TimeDistributed", "layer": {"class_name": "Flatten"}},
                     self.t, h * w * ch, self.masked)
        else:   # image_repeat: a CNN over one image, its features repeated as a sequence
            h, w, ch = c.integer(2, 5), c.integer(2, 5), c.integer(1, 2)
            self.add({"class_name": "Input", "name": "x", "shape": [h, w, ch]}, named=True)
            h, w, ch = self.conv2d(h, w, ch, distributed=False)
            if c.boolean(0.5):
                h, w = self.pool2d(h, w, distributed=False)
            self.add({"class_name": "Flatten"})
            f = c.integer(1, 4)
            self.add({"class_name": "Dense", "units": f, "activation": c.choice(["relu", "tanh", "linear"])})
            self.seq({"class_name": "RepeatVector", "n": c.integer(1, 5)}, None, f, False)
            self.t = self.layers[-1]["n"]

    def set_mask(self, x: str) -> None:
        """A bool model input `m` becomes the mask (Keras `mask=`; it replaces any mask x has)."""
        self.add({"class_name": "Input", "name": "m", "shape": [self.t], "dtype": "bool"}, named=True)
        self.seq({"class_name": "SetMask", "inputs": [x, "m"]}, self.t, self.f, True)

    def conv2d(self, h: int, w: int, ch: int, distributed: bool) -> tuple[int, int, int]:
        c = self.c
        k = [c.integer(1, min(3, h)), c.integer(1, min(3, w))]
        same = c.boolean(0.3) and k[0] % 2 == 1 and k[1] % 2 == 1
        filters = c.integer(1, 3)
        conv: dict[str, Any] = {"class_name": "Conv2D", "filters": filters, "kernel_size": k}
        if same:
            conv["padding"] = "same"
        else:
            h, w = h - k[0] + 1, w - k[1] + 1
        if c.boolean(0.5):
            conv["activation"] = c.choice(["relu", "tanh", "sigmoid"])
        if distributed:
            self.seq({"class_name": "TimeDistributed", "layer": conv}, self.t, 0, self.masked)
        else:
            self.add(conv)
        return h, w, filters

    def pool2d(self, h: int, w: int, distributed: bool) -> tuple[int, int]:
        c = self.c
        p = [c.integer(1, min(2, h)), c.integer(1, min(2, w))]
        pool = {"class_name": c.choice(["MaxPooling2D", "AveragePooling2D"]), "pool_size": p}
        h, w = (h - p[0]) // p[0] + 1, (w - p[1]) // p[1] + 1
        if distributed:
            self.seq({"class_name": "TimeDistributed", "layer": pool}, self.t, 0, self.masked)
        else:
            self.add(pool)
        return h, w

    # -- body blocks ----------------------------------------------------------------------------
    def block(self) -> None:
        c = self.c
        kinds = ["elementwise", "conv1d", "pool1d", "attention", "rnn", "shape", "merge"]
        if self.masked_consumer:
            kinds = ["elementwise", "attention", "rnn", "merge"]
        kind = c.choice(kinds)
        getattr(self, f"block_{kind}")()

    def block_elementwise(self) -> None:
        c = self.c
        kind = c.choice(["Dense", "LayerNormalization", "BatchNormalization", "PReLU", "LeakyReLU",
                         "Activation", "Dropout"])
        if kind == "Dense":
            f = c.integer(1, 5)
            self.seq({"class_name": "Dense", "units": f, "activation": self.feature_activation(FEATURE_ACTIVATIONS)},
                     self.t, f, self.masked)
        elif kind in ("LayerNormalization", "BatchNormalization"):
            self.seq({"class_name": kind, "epsilon": c.choice([0.001, 0.1])}, self.t, self.f, self.masked)
        elif kind == "PReLU":
            layer: dict[str, Any] = {"class_name": "PReLU"}
            if self.t is None or c.boolean():
                layer["shared_axes"] = [1]   # one alpha per feature (per-step alphas need fixed steps)
            self.seq(layer, self.t, self.f, self.masked)
        elif kind == "LeakyReLU":
            self.seq({"class_name": "LeakyReLU", "negative_slope": c.choice([0.01, 0.3])}, self.t, self.f, self.masked)
        elif kind == "Activation":
            self.seq({"class_name": "Activation", "activation": c.choice(["tanh", "relu", "sigmoid", "softmax"])},
                     self.t, self.f, self.masked)
        else:
            self.seq({"class_name": "Dropout", "rate": 0.5}, self.t, self.f, self.masked)

    def block_conv1d(self) -> None:
        c = self.c
        win = self.window()
        if win is None:
            return
        span, stride, same = win
        causal = same and c.boolean(0.4)
        dilation = c.integer(1, 2) if stride == 1 and (same or self.t is None or 2 * span - 1 <= self.t) else 1
        full = (span - 1) * dilation + 1
        filters = c.integer(1, 5)
        conv: dict[str, Any] = {"class_name": "Conv1D", "filters": filters, "kernel_size": span}
        if stride != 1:
            conv["strides"] = stride
        if dilation != 1:
            conv["dilation_rate"] = dilation
        if same:
            conv["padding"] = "causal" if causal else "same"
        if c.boolean(0.5):
            conv["activation"] = c.choice(["relu", "tanh", "linear"])
        self.seq(conv, _out_len(self.t, full, stride, same), filters, False)   # Keras drops the mask

    def block_pool1d(self) -> None:
        c = self.c
        kind = c.choice(["MaxPooling1D", "AveragePooling1D"])
        span = c.integer(1, 3)
        same = c.boolean(0.3) and span % 2 == 1   # AveragePooling "same": even padding only
        stride = 1 if same else c.integer(1, span)
        if self.t is not None and not same and span > self.t:
            return
        pool: dict[str, Any] = {"class_name": kind, "pool_size": span}
        if stride != span:
            pool["strides"] = stride
        if same:
            pool["padding"] = "same"
        self.seq(pool, _out_len(self.t, span, stride, same), self.f, False)   # drops the mask

    def block_attention(self) -> None:
        """Attention of the sequence (query) over a value branch: itself, a Dense or recurrent
        layer of it (same mask), or a Conv1D of it (no mask); or of a Conv1D of the sequence (no
        mask) over the sequence itself (its mask): every query/value mask combination."""
        c = self.c
        q = self.cur()
        qt, qf, qmask = self.t, self.f, self.masked
        value = c.choice(["self", "dense", "rnn"] if self.masked_consumer else
                         ["self", "dense", "rnn", "conv", "conv_query"])
        if value == "conv_query":
            v = q
            q = self.add({"class_name": "Conv1D", "filters": qf, "kernel_size": c.integer(1, 2),
                          "padding": "causal", "inputs": v}, named=True)["name"]
            qmask = False
        elif value == "self":
            v = q
        elif value == "dense":
            v = self.add({"class_name": "Dense", "units": qf, "inputs": q}, named=True)["name"]
        elif value == "rnn":
            cell = self.cell(c.choice(RNN_KINDS), qf, in_bidi=False, stateful=False)
            cell.pop("go_backwards", None)
            cell["return_sequences"] = True
            cell["inputs"] = q
            v = self.add(cell, named=True)["name"]
        else:
            v = self.add({"class_name": "Conv1D", "filters": qf, "kernel_size": c.integer(1, 2),
                          "padding": "causal", "inputs": q}, named=True)["name"]
        kind = c.choice(["Attention", "AdditiveAttention"])
        att: dict[str, Any] = {"class_name": kind, "inputs": [q, v]}
        if c.boolean(0.4):
            att["use_scale"] = kind == "Attention"   # the other value than the default
        if c.boolean(0.3):
            att["use_causal_mask"] = True
        if kind == "Attention" and c.boolean(0.3):
            att["score_mode"] = "concat"
        scores = not self.masked_consumer and c.boolean(0.2)
        if scores:
            att["return_attention_scores"] = True
        layer = self.seq(att, qt, qf, qmask, named=True)
        if scores:
            self.outputs.append(f"{layer['name']}:1")
            # the sequence goes on from output 0: an Activation names it
            self.seq({"class_name": "Activation", "activation": "linear", "inputs": f"{layer['name']}:0"},
                     qt, qf, qmask, named=True)

    def block_rnn(self) -> None:
        c = self.c
        kind = c.choice(RNN_KINDS)
        units = c.integer(1, 5)
        bidi = c.boolean(0.3)
        cell = self.cell(kind, units, bidi, stateful=False)
        cell["return_sequences"] = True
        layer: dict[str, Any] = cell
        f = units
        if bidi:
            merge = c.choice(MERGE_MODES[:4])
            layer = {"class_name": "Bidirectional", "layer": cell, "merge_mode": merge}
            f = 2 * units if merge == "concat" else units
        self.seq(layer, self.t, f, self.masked)

    def block_shape(self) -> None:
        c = self.c
        kind = c.choice(["Reshape", "Permute", "RepeatVector"])
        if kind == "Reshape":
            k = c.choice([d for d in range(1, self.f + 1) if self.f % d == 0])
            t = None if self.t is None else self.t * k
            self.seq({"class_name": "Reshape", "target_shape": [-1, self.f // k]}, t, self.f // k, False)
        elif kind == "Permute" and self.t is not None:
            self.seq({"class_name": "Permute", "dims": [2, 1]}, self.f, self.t, False)
        else:
            # a summary of the sequence, repeated: GlobalAveragePooling1D (masked mean) + RepeatVector
            pool = c.choice(["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
            self.add({"class_name": pool})
            n = c.integer(1, 4)
            self.seq({"class_name": "RepeatVector", "n": n}, n, self.f, False)

    def block_merge(self) -> None:
        """Two branches of the sequence merged: elementwise kinds, or Concatenate on features or
        on time (the time join carries the masks along)."""
        c = self.c
        a = self.cur()
        b = self.add({"class_name": "Activation", "activation": c.choice(["tanh", "relu", "sigmoid"]),
                      "inputs": a}, named=True)["name"]
        kind = c.choice(["Concatenate", "Concatenate_time", "Add", "Subtract", "Multiply", "Average",
                         "Maximum", "Minimum"])
        pair = c.choice([[a, b], [b, a]])
        if kind == "Concatenate":
            self.seq({"class_name": "Concatenate", "inputs": pair}, self.t, 2 * self.f, self.masked, named=True)
        elif kind == "Concatenate_time":
            self.seq({"class_name": "Concatenate", "axis": 1, "inputs": pair},
                     None if self.t is None else 2 * self.t, self.f, self.masked, named=True)
        else:
            self.seq({"class_name": kind, "inputs": pair}, self.t, self.f, self.masked, named=True)

    # -- the tail -------------------------------------------------------------------------------
    def tail(self) -> None:
        c = self.c
        kind = c.choice(["rnn", "masked_pool", "attention_pool"] if self.masked_consumer else
                        ["sequence", "rnn", "pool", "attention_pool", "flatten"])
        if kind == "masked_pool":
            self.add({"class_name": "GlobalAveragePooling1D"})
        elif kind == "rnn":
            cell = self.cell(c.choice(RNN_KINDS), c.integer(1, 5), in_bidi=False, stateful=False)
            if c.boolean(0.3):
                cell["return_state"] = True
            self.add(cell)
        elif kind == "pool":
            self.add({"class_name": c.choice(["GlobalAveragePooling1D", "GlobalMaxPooling1D"])})
        elif kind == "attention_pool":
            self.add({"class_name": "AttentionPooling1D", "units": c.integer(1, 4)})
        elif kind == "flatten" and self.t is not None and self.t * self.f <= 64:
            self.add({"class_name": "Flatten"})
        if c.boolean(0.5):
            self.add({"class_name": "Dense", "units": c.integer(1, 4),
                      "activation": c.choice(["linear", "sigmoid", "softmax", "tanh"])})

    def spec(self, name: str) -> dict:
        c = self.c
        self.source()
        for _ in range(c.integer(1, 4)):
            self.block()
        self.tail()
        spec: dict[str, Any] = {"name": name, "layers": self.layers}
        if c.boolean(0.2):
            spec["seed"] = c.integer(0, 1000)
        if self.outputs:
            spec["outputs"] = [self.ensure_name(self.layers[-1]), *self.outputs]
        return spec


