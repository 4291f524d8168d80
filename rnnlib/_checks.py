"""Argument checks shared by every rnnlib function.

Wrong shapes or dtypes raise ``ValueError`` naming the argument, the expected and the actual
shape; nothing is ever silently broadcast.
"""
import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_array(name, a):
    """Return ``a`` as a NumPy array of float32 or float64; raise ``ValueError`` otherwise."""
    arr = np.asarray(a)
    if arr.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name}: expected dtype float32 or float64, got {arr.dtype}")
    return arr


def check_shape(name, a, expected):
    """Check ``a.shape`` against ``expected`` (a tuple whose ``None`` entries match any size)."""
    arr = as_float_array(name, a)
    shown = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ("," if len(expected) == 1 else "") + ")"
    if arr.ndim != len(expected) or any(e is not None and e != s for e, s in zip(expected, arr.shape)):
        raise ValueError(f"{name}: expected shape {shown}, got {arr.shape}")
    return arr


def check_same_dtype(**arrays):
    """All arrays must share one dtype (no silent float32/float64 mixing)."""
    dtypes = {name: np.asarray(a).dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in dtypes.items())
        raise ValueError(f"arguments must share one dtype, got {listed}")
