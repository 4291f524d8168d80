"""Losses: each returns ``(value, gradient with respect to its first argument)``."""
import numpy as np

from rnnlib._checks import as_float_array


def mse(pred, target):
    """Mean squared error over all elements: ``mean((pred - target)**2)`` and its gradient."""
    pred = as_float_array("pred", pred)
    target = np.asarray(target, dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"target: expected shape {pred.shape} (the shape of pred), got {target.shape}")
    diff = pred - target
    return float(np.mean(diff * diff)), 2.0 * diff / diff.size


def softmax(logits, axis=-1):
    """Numerically stable softmax (the max is subtracted before ``exp``)."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def softmax_cross_entropy(logits, targets):
    """Cross-entropy of ``softmax(logits)`` against integer class ``targets``, averaged over positions.

    logits (..., C) float, targets (...) integers in [0, C). Same value as
    ``torch.nn.functional.cross_entropy`` on the flattened arrays. Returns ``(loss, dlogits)``.
    """
    logits = as_float_array("logits", logits)
    targets = np.asarray(targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets: expected shape {logits.shape[:-1]}, got {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets: expected an integer dtype, got {targets.dtype}")
    C = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= C):
        raise ValueError(f"targets: expected classes in [0, {C}), got values in [{targets.min()}, {targets.max()}]")
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    n = targets.size
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)
    loss = -picked.sum() / n
    dlogits = np.exp(log_p)
    np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(dlogits, targets[..., None], -1) - 1.0, -1)
    return float(loss), dlogits / n
