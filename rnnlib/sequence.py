"""Recurrent layers over whole sequences, and the output layer.

``x (B, T, D)`` is batch-first. Each layer is the step function of :mod:`rnnlib.cells` in a loop:
the forward pass calls ``*_step_forward`` for t = 0, 1, ..., T - 1, the backward pass calls
``*_step_backward`` for t = T - 1, ..., 0, adding the gradient that comes back from step t + 1 to
the one from above. The same functions, arranged for speed, are in :mod:`rnnlib.fast`.
"""
import numpy as np

from rnnlib import cells
from rnnlib._checks import check_same_dtype, check_shape
from rnnlib.cells import check_rnn_params


def check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=1):
    """Check ``x (B, T, D)`` against one layer's parameters (``gates`` blocks: 1 RNN, 4 LSTM, 3 GRU);
    return ``x`` (as an array) and ``(B, T, D, H)``."""
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=gates)
    x = check_shape("x", x, (None, None, D))
    check_same_dtype(x=x, W_ih=W_ih)
    B, T, _ = x.shape
    return x, (B, T, D, H)


def initial_state(name, h0, B, H, dtype):
    """``h0`` as a ``(B, H)`` array; ``None`` means zeros."""
    if h0 is None:
        return np.zeros((B, H), dtype=dtype)
    h0 = check_shape(name, h0, (B, H))
    if h0.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)} (the dtype of x), got {h0.dtype}")
    return h0


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Run a tanh RNN over a batch of sequences: :func:`rnnlib.cells.rnn_step_forward` T times.

    Inputs: x (B, T, D), h0 (B, H) or None (zeros), the weights of :func:`rnn_step_forward`.
    Returns hs (B, T, H), the state after every step, and the cache ``(x, h0, hs, W_ih, W_hh)``.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh)
    h0 = initial_state("h0", h0, B, H, x.dtype)
    hs = np.zeros((B, T, H), dtype=x.dtype)
    h = h0
    for t in range(T):
        h, _ = cells.rnn_step_forward(x[:, t], h, W_ih, W_hh, b_ih, b_hh)
        hs[:, t] = h
    return hs, (x, h0, hs, W_ih, W_hh)


def rnn_backward(dhs, cache):
    """Backpropagation through time for :func:`rnn_forward`.

    Inputs: dhs (B, T, H), only the upstream gradient of the loss with respect to each ``hs[:, t]``
    (for a loss on the last state only, zeros except ``dhs[:, -1]``); the gradient that flows back
    through the recurrence is added here. Returns ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h0, hs, W_ih, W_hh = cache
    dhs = check_shape("dhs", dhs, hs.shape)
    check_same_dtype(dhs=dhs, x=x)
    T = hs.shape[1]
    dx = np.zeros_like(x)
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_hh.shape[0], dtype=hs.dtype)
    dh_next = np.zeros_like(h0)  # gradient arriving from step t + 1
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else hs[:, t - 1]
        step_cache = (x[:, t], h_prev, hs[:, t], W_ih, W_hh)  # what rnn_step_forward cached at step t
        dx[:, t], dh_next, dW_ih_t, dW_hh_t, db_t, _ = cells.rnn_step_backward(dhs[:, t] + dh_next, step_cache)
        dW_ih += dW_ih_t
        dW_hh += dW_hh_t
        db += db_t
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


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """Run an LSTM over a batch of sequences: :func:`rnnlib.cells.lstm_step_forward` T times.

    Inputs: x (B, T, D), h0 and c0 (B, H) or None (zeros), the weights of ``lstm_step_forward``.
    Returns hs (B, T, H), the hidden state after every step, and the cache, which also holds the
    cell states (:func:`lstm_cell_states`).
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=4)
    h = initial_state("h0", h0, B, H, x.dtype)
    c = initial_state("c0", c0, B, H, x.dtype)
    hs = np.zeros((B, T, H), dtype=x.dtype)
    cs = np.zeros((B, T, H), dtype=x.dtype)
    step_caches = []
    for t in range(T):
        h, c, step_cache = cells.lstm_step_forward(x[:, t], h, c, W_ih, W_hh, b_ih, b_hh)
        hs[:, t], cs[:, t] = h, c
        step_caches.append(step_cache)
    return hs, (x, cs, step_caches, W_ih, W_hh)


def lstm_cell_states(cache):
    """The cell states ``cs (B, T, H)`` kept in an :func:`lstm_forward` cache (``cs[:, -1]`` is torch's ``c_n``)."""
    return cache[1]


def check_lstm_upstream(dhs, dc_last, B, T, H, x):
    """Check the upstream gradients of an LSTM layer: ``dhs (B, T, H)`` and ``dc_last (B, H)`` or
    None, both of the dtype of its input ``x``. Return them, ``dc_last`` as zeros if it is None."""
    dhs = check_shape("dhs", dhs, (B, T, H))
    check_same_dtype(dhs=dhs, x=x)
    if dc_last is None:
        return dhs, np.zeros((B, H), dtype=x.dtype)
    dc_last = check_shape("dc_last", dc_last, (B, H))
    check_same_dtype(dc_last=dc_last, x=x)
    return dhs, dc_last


def lstm_backward(dhs, cache, dc_last=None):
    """Backpropagation through time for :func:`lstm_forward`.

    Inputs: dhs (B, T, H), the upstream gradient of each ``hs[:, t]`` (as in :func:`rnn_backward`);
    ``dc_last (B, H)``, optional, that of the last cell state. The gradients that flow back through
    h and c are added here. Returns ``(dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, cs, step_caches, W_ih, W_hh = cache
    B, T, H = cs.shape
    dhs, dc = check_lstm_upstream(dhs, dc_last, B, T, H, x)
    dx = np.zeros_like(x)
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_hh.shape[0], dtype=x.dtype)
    dh_next = np.zeros((B, H), dtype=x.dtype)  # gradient at h arriving from step t + 1
    for t in reversed(range(T)):
        dx[:, t], dh_next, dc, dW_ih_t, dW_hh_t, db_t, _ = cells.lstm_step_backward(
            dhs[:, t] + dh_next, dc, step_caches[t])
        dW_ih += dW_ih_t
        dW_hh += dW_hh_t
        db += db_t
    return dx, dh_next, dc, dW_ih, dW_hh, db, db.copy()


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Run a GRU over a batch of sequences: :func:`rnnlib.cells.gru_step_forward` T times.

    Inputs: x (B, T, D), h0 (B, H) or None (zeros), the weights of ``gru_step_forward`` (gates
    r, z, n and ``b_hn`` placed as ``torch.nn.GRU``). Returns hs (B, T, H) and the cache.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=3)
    h = initial_state("h0", h0, B, H, x.dtype)
    hs = np.zeros((B, T, H), dtype=x.dtype)
    step_caches = []
    for t in range(T):
        h, step_cache = cells.gru_step_forward(x[:, t], h, W_ih, W_hh, b_ih, b_hh)
        hs[:, t] = h
        step_caches.append(step_cache)
    return hs, (x, hs, step_caches, W_ih, W_hh)


def gru_backward(dhs, cache):
    """Backpropagation through time for :func:`gru_forward`.

    Inputs: dhs (B, T, H), the upstream gradient of each ``hs[:, t]``.
    Returns ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)`` (``db_ih`` and ``db_hh`` differ in the n gate).
    """
    x, hs, step_caches, W_ih, W_hh = cache
    dhs = check_shape("dhs", dhs, hs.shape)
    check_same_dtype(dhs=dhs, x=x)
    B, T, H = hs.shape
    dx = np.zeros_like(x)
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db_ih = np.zeros(W_hh.shape[0], dtype=x.dtype)
    db_hh = np.zeros(W_hh.shape[0], dtype=x.dtype)
    dh_next = np.zeros((B, H), dtype=x.dtype)  # gradient at h arriving from step t + 1
    for t in reversed(range(T)):
        dx[:, t], dh_next, dW_ih_t, dW_hh_t, db_ih_t, db_hh_t = cells.gru_step_backward(
            dhs[:, t] + dh_next, step_caches[t])
        dW_ih += dW_ih_t
        dW_hh += dW_hh_t
        db_ih += db_ih_t
        db_hh += db_hh_t
    return dx, dh_next, dW_ih, dW_hh, db_ih, db_hh
