"""Recurrent layers over whole sequences, and the output layer.

``x (B, T, D)`` is batch-first. The input projection ``x @ W_ih.T + b_ih`` has no recurrence, so it
is computed for every step at once; only the hidden-to-hidden part loops over time. The result is
the same as calling :func:`rnnlib.cells.rnn_step_forward` T times (tested).
"""
import numpy as np

from rnnlib._checks import check_same_dtype, check_shape
from rnnlib.cells import check_rnn_params


def initial_state(name, h0, B, H, dtype):
    """``h0`` as a ``(B, H)`` array; ``None`` means zeros."""
    if h0 is None:
        return np.zeros((B, H), dtype=dtype)
    h0 = check_shape(name, h0, (B, H))
    if h0.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)} (the dtype of x), got {h0.dtype}")
    return h0


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Run a tanh RNN over a batch of sequences.

    x (B, T, D), h0 (B, H) or None -> hs (B, T, H) (the state after every step), cache.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh)
    x = check_shape("x", x, (None, None, D))
    check_same_dtype(x=x, W_ih=W_ih)
    B, T, _ = x.shape
    h = initial_state("h0", h0, B, H, x.dtype)
    h_init = h
    xw = x @ W_ih.T + b_ih + b_hh  # (B, T, H): the input part of every step at once
    hs = np.empty((B, T, H), dtype=x.dtype)
    for t in range(T):
        h = np.tanh(xw[:, t] + h @ W_hh.T)
        hs[:, t] = h
    return hs, (x, h_init, hs, W_ih, W_hh)


def rnn_backward(dhs, cache):
    """Backpropagation through time for :func:`rnn_forward`.

    dhs (B, T, H) holds only the upstream gradient of the loss with respect to each ``hs[:, t]``
    (for a loss on the last state only, zeros except ``dhs[:, -1]``). The gradient that flows back
    through the recurrence is added here. Returns ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h0, hs, W_ih, W_hh = cache
    dhs = check_shape("dhs", dhs, hs.shape)
    T = hs.shape[1]
    da = np.empty_like(hs)  # gradient at the pre-activation of every step
    dh_next = np.zeros_like(h0)  # gradient arriving from step t+1
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next
        da[:, t] = dh * (1.0 - hs[:, t] ** 2)
        dh_next = da[:, t] @ W_hh
    h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)  # state entering each step
    dx = da @ W_ih
    dW_ih = np.einsum("bth,btd->hd", da, x)
    dW_hh = np.einsum("bth,btk->hk", da, h_prev)
    db = da.sum(axis=(0, 1))
    return dx, dh_next, dW_ih, dW_hh, db, db.copy()


def linear_forward(h, W, b):
    """Output layer ``y = h @ W.T + b`` for ``h (..., H)``, ``W (O, H)``, ``b (O,)`` -> y (..., O)."""
    W = check_shape("W", W, (None, None))
    O, H = W.shape
    check_shape("b", b, (O,))
    h = np.asarray(h)
    if h.ndim < 1 or h.shape[-1] != H:
        raise ValueError(f"h: expected shape (..., {H}), got {h.shape}")
    check_same_dtype(h=h, W=W, b=b)
    return h @ W.T + b, (h, W)


def linear_backward(dy, cache):
    """Backward of :func:`linear_forward`: returns ``(dh, dW, db)``."""
    h, W = cache
    dy = check_shape("dy", dy, h.shape[:-1] + (W.shape[0],))
    h2 = h.reshape(-1, h.shape[-1])
    dy2 = dy.reshape(-1, dy.shape[-1])
    return dy @ W, dy2.T @ h2, dy2.sum(axis=0)
