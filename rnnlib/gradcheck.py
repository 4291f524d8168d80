"""Gradient checking by central differences.

    df/dx_i ≈ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The truncation error is O(eps²); in float64 with eps = 1e-6 a correct analytic gradient agrees to a
relative error of about 1e-8 or better, a wrong one to 1e-2 or worse. Check in float64: in float32
the rounding error of f swamps the difference quotient.
"""
import numpy as np


def rel_error(a, b, floor=1e-12):
    """Largest element-wise relative error ``|a - b| / max(|a| + |b|, floor)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"b: expected shape {a.shape} (the shape of a), got {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar ``f()`` with respect to the array ``x``.

    ``f`` takes no arguments and reads ``x``, which is perturbed in place one element at a time and
    restored afterwards.
    """
    if x.dtype != np.float64:
        raise ValueError(f"x: expected dtype float64 for a gradient check, got {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        f_plus = f()
        x[i] = old - eps
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def check_gradients(f, params, grads, eps=1e-6):
    """Compare analytic ``grads`` with central differences of ``f`` for every array in ``params``.

    params, grads: dicts with the same keys. Returns ``{name: relative error}``.
    """
    missing = set(params) ^ set(grads)
    if missing:
        raise ValueError(f"grads: expected the keys of params {sorted(params)}, got {sorted(grads)}")
    return {k: rel_error(grads[k], numerical_gradient(f, params[k], eps)) for k in params}
