"""Activation functions: one table row per name with its float64 reference, its elementwise ONNX
lowering, and, where one exists, the ONNX RNN-family activation (name, alpha, beta) that lets a
recurrent layer use the native LSTM/GRU/RNN operator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    #: emit(g, x) -> name of the result, elementwise ONNX ops
    emit: Callable
    #: ONNX RNN-family activation: (op name, parameters it consumes); None when there is none
    rnn: tuple[str, tuple[float, ...]] | None
    #: why it cannot be native, or a caveat, for the summary
    note: str = ""
    #: only meaningful on a feature axis (Dense, Activation), never inside a recurrent cell
    feature_only: bool = False


def _unary(op, **attrs):
    return lambda g, x: g.op(op, x, **attrs)


def _softplus(g, x):
    # Numerically stable: relu(x) + log(1 + exp(-|x|)); onnxruntime's Softplus overflows to inf.
    one = g.const(np.float32(1.0))
    t = g.op("Exp", g.op("Neg", g.op("Abs", x)))
    return g.op("Add", g.op("Relu", x), g.op("Log", g.op("Add", one, t)))


def _gelu(g, x):
    half = g.const(np.float32(0.5))
    one = g.const(np.float32(1.0))
    inv_sqrt2 = g.const(np.float32(1.0 / math.sqrt(2.0)))
    erf = g.op("Erf", g.op("Mul", x, inv_sqrt2))
    return g.op("Mul", g.op("Mul", x, half), g.op("Add", one, erf))


def _swish(g, x):
    return g.op("Mul", x, g.op("Sigmoid", x))


def _relu6(g, x):
    return g.op("Clip", x, g.const(np.float32(0.0)), g.const(np.float32(6.0)))


ACTIVATIONS: dict[str, Activation] = {}


def _add(a: Activation) -> None:
    ACTIVATIONS[a.name] = a


_add(Activation("linear", lambda x: x, lambda g, x: x, ("Affine", (1.0, 0.0)),
                note="Affine (TensorRT's importer rejects Affine)"))
_add(Activation("tanh", np.tanh, _unary("Tanh"), ("Tanh", ())))
_add(Activation("sigmoid", _sigmoid, _unary("Sigmoid"), ("Sigmoid", ())))
_add(Activation("hard_sigmoid", lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
                _unary("HardSigmoid", alpha=1.0 / 6.0, beta=0.5), ("HardSigmoid", (1.0 / 6.0, 0.5))))
_add(Activation("hard_sigmoid_keras2", lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
                _unary("HardSigmoid", alpha=0.2, beta=0.5), ("HardSigmoid", (0.2, 0.5))))
_add(Activation("relu", lambda x: np.maximum(x, 0.0), _unary("Relu"), ("Relu", ())))
_add(Activation("relu6", lambda x: np.clip(x, 0.0, 6.0), _relu6, None,
                note="no ONNX RNN activation computes relu6"))
_add(Activation("leaky_relu", lambda x: np.where(x >= 0, x, 0.2 * x),
                _unary("LeakyRelu", alpha=0.2), ("LeakyRelu", (0.2,))))
_add(Activation("softsign", lambda x: x / (1.0 + np.abs(x)), _unary("Softsign"), ("Softsign", ())))
_add(Activation("softplus", lambda x: np.logaddexp(0.0, x), _softplus, None,
                note="onnxruntime's native Softplus overflows to inf for large inputs"))
_add(Activation("elu", lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
                _unary("Elu", alpha=1.0), ("Elu", (1.0,))))
_add(Activation("selu", lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
                _unary("Selu", alpha=SELU_ALPHA, gamma=SELU_SCALE), None,
                note="no ONNX RNN activation computes selu"))
_add(Activation("swish", lambda x: x * _sigmoid(x), _swish, None, note="no ONNX RNN activation computes swish"))
_add(Activation("silu", lambda x: x * _sigmoid(x), _swish, None, note="no ONNX RNN activation computes silu"))
_add(Activation("gelu", lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))), _gelu, None,
                note="no ONNX RNN activation computes gelu"))
_add(Activation("exponential", np.exp, _unary("Exp"), None, note="no ONNX RNN activation computes exp"))
_add(Activation("softmax", _softmax, _unary("Softmax", axis=-1), None,
                note="softmax acts across features", feature_only=True))

#: Names accepted anywhere an activation is.
NAMES = tuple(ACTIVATIONS)
#: Names accepted inside a recurrent cell.
CELL_NAMES = tuple(n for n, a in ACTIVATIONS.items() if not a.feature_only)


def get(name: str) -> Activation:
    return ACTIVATIONS[name]
