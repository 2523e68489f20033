"""The same model in PyTorch eager, with the same weights and the same (Keras) mask semantics, for
the side-by-side comparison. torch is an optional benchmark dependency (`pip install .[bench]`).

Recurrent layers run as torch.nn.LSTM / GRU / RNN. A masked layer does what a careful PyTorch user
does for arbitrary padding: move each row's valid steps to the front (a gather), run the layer on a
PackedSequence (pack_padded_sequence, enforce_sorted=False), and gather the outputs back to their
time steps with Keras's rule for masked steps. Layers or settings torch.nn cannot express (GRU
reset_after=False, non-default activations, layer kinds without a port) raise Unsupported.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnncompile.spec import Model


class Unsupported(Exception):
    pass


_DENSE_ACTIVATIONS = {"linear": lambda x: x, "relu": torch.relu, "sigmoid": torch.sigmoid,
                      "tanh": torch.tanh, "softmax": lambda x: torch.softmax(x, -1)}


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32)))


class _Rnn:
    """One torch.nn recurrent module (one or two directions) with Keras weights loaded."""

    def __init__(self, cells, weights: list[dict], bidirectional: bool):
        c = cells[0]
        kind = c.class_name
        units = c["units"]
        self.kind = kind
        self.units = units
        self.n_states = c.n_states
        acts = c.cell_activations()
        if kind == "LSTM":
            if acts != ["sigmoid", "tanh", "tanh"]:
                raise Unsupported(f"torch.nn.LSTM has fixed activations, the layer uses {acts}")
            cls = torch.nn.LSTM
        elif kind == "GRU":
            if acts != ["sigmoid", "tanh"]:
                raise Unsupported(f"torch.nn.GRU has fixed activations, the layer uses {acts}")
            if not c["reset_after"]:
                raise Unsupported("torch.nn.GRU computes reset_after=True only")
            cls = torch.nn.GRU
        elif kind == "SimpleRNN":
            if acts[0] not in ("tanh", "relu"):
                raise Unsupported(f"torch.nn.RNN has tanh or relu, the layer uses {acts[0]}")
            cls = lambda *a, **k: torch.nn.RNN(*a, nonlinearity=acts[0], **k)  # noqa: E731
        else:
            raise Unsupported(f"no torch port for {kind}")
        i = weights[0]["kernel"].shape[0]
        self.module = cls(i, units, batch_first=True, bidirectional=bidirectional)
        self.module.eval()
        sd = {}
        for d, w in enumerate(weights):
            suffix = "_l0" + ("_reverse" if d == 1 else "")
            k, r = w["kernel"].T, w["recurrent_kernel"].T        # [G*H, I], [G*H, H]
            h = units
            if kind == "GRU":  # Keras gates z, r, h -> torch r, z, n
                order = lambda a: np.concatenate([a[h:2 * h], a[:h], a[2 * h:]])  # noqa: E731
                k, r = order(k), order(r)
                if c["use_bias"]:
                    b_in, b_rec = order(w["bias"][0]), order(w["bias"][1])
                else:
                    b_in = b_rec = np.zeros(3 * h, np.float32)
            else:  # LSTM i, f, c, o is torch's i, f, g, o; SimpleRNN one gate
                b_in = w["bias"] if c["use_bias"] else np.zeros(k.shape[0], np.float32)
                b_rec = np.zeros(k.shape[0], np.float32)
            sd[f"weight_ih{suffix}"] = _t(k)
            sd[f"weight_hh{suffix}"] = _t(r)
            sd[f"bias_ih{suffix}"] = _t(b_in)
            sd[f"bias_hh{suffix}"] = _t(b_rec)
        self.module.load_state_dict(sd)

    def __call__(self, x, mask, init):
        """x [B, T, I]; mask [B, T] bool or None; init: list of [dirs, B, H] or None.
        Returns (y [B, T, dirs*H] compacted when masked, finals [dirs, B, H] each, lengths)."""
        hx = None
        if init is not None:
            hx = tuple(init) if self.n_states == 2 else init[0]
        if mask is None:
            y, fin = self.module(x, hx)
            return y, (list(fin) if self.n_states == 2 else [fin]), None
        lengths = mask.sum(1)
        src = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)           # valid steps first
        xc = torch.gather(x, 1, src.unsqueeze(2).expand(-1, -1, x.shape[2]))
        packed = pack_padded_sequence(xc, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        y, fin = self.module(packed, hx)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        fin = list(fin) if self.n_states == 2 else [fin]
        return y, fin, lengths


def _gather_back(yc, mask, keep):
    """[B, T, W] compacted -> original steps; step t gets the output of the last valid step up to
    t (Keras's carried output), zeroed where keep is False."""
    pos = mask.to(torch.int64).cumsum(1)
    idx = (pos - 1).clamp(min=0)
    y = torch.gather(yc, 1, idx.unsqueeze(2).expand(-1, -1, yc.shape[2]))
    return torch.where(keep.unsqueeze(2), y, torch.zeros((), dtype=y.dtype))


class TorchModel:
    """Callable: feeds (numpy, by input name) -> {output name: numpy}."""

    def __init__(self, model: Model, device: str = "cpu"):
        """`device="cuda"`: modules and weights on the GPU (torch.nn's recurrent modules then run
        on cuDNN); calls still take and return numpy arrays (host to host, synchronized)."""
        from rnncompile.layers.bidirectional import Bidirectional
        from rnncompile.layers.recurrent import Recurrent

        self.model = model
        self.device = torch.device(device)
        self.steps = []
        for layer in model.layers.values():
            w = model.layer_weights(layer)
            cn = layer.class_name
            if getattr(layer, "is_model_input", False):
                self.steps.append((layer, None))
            elif isinstance(layer, Bidirectional):
                if layer.inner["stateful"] or layer.config.get("ignore_mask"):
                    raise Unsupported("stateful / ignore_mask Bidirectional")
                wf, wb = layer._split(w)
                self.steps.append((layer, _Rnn([layer.forward, layer.backward], [wf, wb], True)))
            elif isinstance(layer, Recurrent):
                if layer.config.get("ignore_mask"):
                    raise Unsupported("ignore_mask")
                self.steps.append((layer, _Rnn([layer], [w], False)))
            elif cn == "Embedding":
                self.steps.append((layer, _t(w["embeddings"])))
            elif cn == "Dense":
                if layer["activation"] not in _DENSE_ACTIVATIONS:
                    raise Unsupported(f"Dense activation {layer['activation']}")
                self.steps.append((layer, (_t(w["kernel"]), _t(w["bias"]) if layer["use_bias"] else None)))
            elif cn in ("Dropout", "Masking"):
                self.steps.append((layer, None))
            else:
                raise Unsupported(f"no torch port for {cn}")
        if self.device.type != "cpu":
            for i, (layer, obj) in enumerate(self.steps):
                if isinstance(obj, _Rnn):
                    obj.module.to(self.device)
                elif isinstance(obj, torch.Tensor):
                    self.steps[i] = (layer, obj.to(self.device))
                elif isinstance(obj, tuple):
                    self.steps[i] = (layer, tuple(None if t is None else t.to(self.device) for t in obj))

    @torch.inference_mode()
    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from rnncompile.layers.bidirectional import Bidirectional

        m = self.model
        vals: dict[str, list] = {}
        for layer, obj in self.steps:
            cn = layer.class_name
            if obj is None and getattr(layer, "is_model_input", False):
                a = feeds[layer.name]
                arr = a if a.dtype.kind != "f" else a.astype(np.float32)
                vals[layer.name] = [(torch.from_numpy(arr).to(self.device), None)]
                continue
            ins = [vals[r.layer][r.index] for r in layer.inbound]
            carried = [s for s in m.states if s.layer == layer.name]
            states_in = [torch.from_numpy(feeds[s.input_name]).to(self.device) for s in carried]
            x, mask = ins[0]
            if cn == "Embedding":
                ids = x.to(torch.int64)
                out = F.embedding(ids, obj)
                mask = (ids != 0) if layer["mask_zero"] else mask
                vals[layer.name] = [(out, mask)]
            elif cn == "Dense":
                k, b = obj
                y = x @ k
                if b is not None:
                    y = y + b
                vals[layer.name] = [(_DENSE_ACTIVATIONS[layer["activation"]](y), mask)]
            elif cn == "Dropout":
                vals[layer.name] = [(x, mask)]
            elif cn == "Masking":
                keep = (x != layer["mask_value"]).any(-1)
                vals[layer.name] = [(x * keep.unsqueeze(2), keep)]
            elif isinstance(layer, Bidirectional):
                vals[layer.name] = self._bidi(layer, obj, x, mask, [t for t, _ in ins[1:]])
            else:
                outs, new_states = self._uni(layer, obj, x, mask, [t for t, _ in ins[1:]] or states_in)
                vals[layer.name] = outs
                if carried:
                    vals[layer.name + "/__states__"] = new_states
        result = {}
        for ref, name in zip(m.outputs, m.output_names):
            result[name] = vals[ref.layer][ref.index][0].cpu().numpy()
        for s in m.states:
            k = [c.input_name for c in m.states if c.layer == s.layer].index(s.input_name)
            result[s.output_name] = vals[s.layer + "/__states__"][k].cpu().numpy()
        return result

    def _uni(self, layer, rnn: _Rnn, x, mask, init):
        rs, zero = layer["return_sequences"], layer["zero_output_for_mask"]
        out_mask = mask
        if layer["go_backwards"]:
            x = torch.flip(x, [1])
            mask = torch.flip(mask, [1]) if mask is not None else None
        y, fin, lengths = rnn(x, mask, [s.unsqueeze(0) for s in init] if init else None)
        states = [f[0] for f in fin]
        if mask is not None:  # an empty row keeps its initial state (torch ran it for one step)
            nonempty = (lengths > 0).unsqueeze(1)
            s0 = init or [torch.zeros_like(s) for s in states]
            states = [torch.where(nonempty, s, z) for s, z in zip(states, s0)]
        if rs:
            if mask is not None:
                keep = mask if zero else mask.to(torch.int64).cumsum(1) > 0
                y = _gather_back(y, mask, keep)
            out = y
        else:
            out = fin[0][0]
            if mask is not None:
                if zero:
                    out = torch.where(mask[:, -1:], out, torch.zeros(()))
                else:
                    out = torch.where((lengths > 0).unsqueeze(1), out, torch.zeros(()))
        outs = [(out, out_mask if rs else None)]
        if layer["return_state"]:
            outs += [(s, None) for s in states]
        return outs, states

    def _bidi(self, layer, rnn: _Rnn, x, mask, init):
        rs = layer.inner["return_sequences"]
        n = rnn.n_states
        hx = None
        if init:
            hx = [torch.stack([init[k], init[n + k]]) for k in range(n)]
        y, fin, lengths = rnn(x, mask, hx)
        states = [f[d] for d in range(2) for f in fin]     # h_f, (c_f), h_b, (c_b)
        if mask is not None:
            nonempty = (lengths > 0).unsqueeze(1)
            s0 = init or [torch.zeros_like(s) for s in states]
            states = [torch.where(nonempty, s, z) for s, z in zip(states, s0)]
        h = rnn.units
        if rs:
            if mask is not None:
                y = _gather_back(y, mask, mask)
            yf, yb = y[..., :h], y[..., h:]
        else:
            yf, yb = fin[0][0], fin[0][1]
            if mask is not None:
                ne = (lengths > 0).unsqueeze(1)
                yf, yb = torch.where(ne, yf, torch.zeros(())), torch.where(ne, yb, torch.zeros(()))
        mode = layer["merge_mode"]
        m_out = mask if rs else None
        if mode is None:
            outs = [(yf, m_out), (yb, m_out)]
        else:
            merged = {"concat": lambda: torch.cat([yf, yb], -1), "sum": lambda: yf + yb,
                      "ave": lambda: (yf + yb) / 2, "mul": lambda: yf * yb}[mode]()
            outs = [(merged, m_out)]
        if layer.inner["return_state"]:
            outs += [(s, None) for s in states]
        return outs
