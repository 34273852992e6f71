"""Numerical gradients by central differences, to check backpropagation against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """d f / d x by central differences, (f(x + eps) - f(x - eps)) / 2 eps, element by element.

    `f` takes no argument and reads `x` itself (x is usually one of a net's parameter
    arrays, changed in place here); every entry is restored after it is perturbed.
    Use float64: in float32 the differences drown in rounding.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        original = x[i]
        x[i] = original + eps
        f_plus = f()
        x[i] = original - eps
        f_minus = f()
        x[i] = original
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): scale-free, and 0 when both are exactly zero.

    Norms over the whole array, not element by element: an entry whose true gradient is
    ~1e-12 would otherwise turn rounding noise into a "100%" error.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / scale)


def check_net_gradients(net, x: np.ndarray, labels: np.ndarray, eps: float = 1e-5) -> dict[str, float]:
    """The relative error between backprop and numerical gradients, per parameter."""
    analytic = net.gradient(x, labels)
    errors = {}
    for name, param in net.params.items():
        numeric = numerical_gradient(lambda: net.loss(x, labels), param, eps)
        errors[name] = relative_error(analytic[name], numeric)
    return errors
