"""One time step of a recurrent cell: forward and backward.

PyTorch conventions: row vectors and batch first, so a batch of inputs is ``x (B, D)``, a batch of
states is ``h (B, H)`` and the weights are ``W_ih (H, D)``, ``W_hh (H, H)``, ``b_ih (H,)``,
``b_hh (H,)``, exactly the shapes of ``torch.nn.RNN``'s ``weight_ih_l0`` etc. One step is

    h = tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)

The LSTM and GRU cells below compute ``torch.nn.LSTMCell`` and ``torch.nn.GRUCell`` with the same
weights: their gates are stacked along the first axis (``W_ih (4H, D)`` for i, f, g, o; ``(3H, D)``
for r, z, n), so one matrix product gives every gate.

Forward functions return ``(output, cache)``; backward functions take ``(dout, cache)``.
"""
import numpy as np

from rnnlib._checks import check_same_dtype, check_shape


def check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=1):
    """Validate one layer's weights; return ``(D, H)``. ``gates`` is 1 (RNN), 4 (LSTM), 3 (GRU)."""
    W_hh = check_shape("W_hh", W_hh, (None, None))
    gH, H = W_hh.shape
    if gH != gates * H:
        raise ValueError(f"W_hh: expected shape ({gates * H}, {H}) for hidden size {H}, got {W_hh.shape}")
    W_ih = check_shape("W_ih", W_ih, (gH, None))
    check_shape("b_ih", b_ih, (gH,))
    check_shape("b_hh", b_hh, (gH,))
    check_same_dtype(W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh)
    return W_ih.shape[1], H


def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of a tanh RNN for a batch.

    x (B, D), h_prev (B, H) -> h (B, H), cache for :func:`rnn_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, W_ih=W_ih)
    h = np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
    return h, (x, h_prev, h, W_ih, W_hh)


def rnn_step_backward(dh, cache):
    """Backward of :func:`rnn_step_forward`.

    dh (B, H) is dLoss/dh. Returns ``(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h_prev, h, W_ih, W_hh = cache
    dh = check_shape("dh", dh, h.shape)
    da = dh * (1.0 - h * h)  # through tanh: d tanh(a)/da = 1 - tanh(a)^2
    dx = da @ W_ih
    dh_prev = da @ W_hh
    dW_ih = da.T @ x
    dW_hh = da.T @ h_prev
    db = da.sum(axis=0)
    return dx, dh_prev, dW_ih, dW_hh, db, db.copy()


def sigmoid(a, out=None):
    """Logistic function ``1 / (1 + exp(-a))``, optionally in place (``out=a``).

    For very negative ``a`` the ``exp`` overflows to ``inf`` and the result is the correct 0, so the
    overflow warning is silenced.
    """
    with np.errstate(over="ignore"):
        out = np.negative(a, out=out)
        np.exp(out, out=out)
        out += 1.0
        return np.reciprocal(out, out=out)


def lstm_activate(a, out=None):
    """The LSTM gates i, f, g, o from their pre-activations ``a (..., 4H)`` (torch's gate order).

    i, f and o go through the sigmoid, g through tanh. ``out`` (same shape, not ``a`` itself) may
    receive the result. All four blocks go through the sigmoid in one pass and g is then
    overwritten: fewer, larger NumPy calls are faster than one per gate (measured).
    """
    H = a.shape[-1] // 4
    out = sigmoid(a, out=out)
    np.tanh(a[..., 2 * H:3 * H], out=out[..., 2 * H:3 * H])
    return out


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of an LSTM for a batch, exactly as ``torch.nn.LSTMCell``.

    The four gates are stacked i, f, g, o along the first axis of ``W_ih (4H, D)``, ``W_hh (4H, H)``,
    ``b_ih``, ``b_hh (4H,)``, and one matrix product computes all of them::

        i, f, g, o = split(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)   # then sigmoid, sigmoid, tanh, sigmoid
        c = f * c_prev + i * g
        h = o * tanh(c)

    x (B, D), h_prev (B, H), c_prev (B, H) -> h (B, H), c (B, H), cache for :func:`lstm_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=4)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    c_prev = check_shape("c_prev", c_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, c_prev=c_prev, W_ih=W_ih)
    gates = lstm_activate(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)  # (B, 4H)
    i, f, g, o = np.split(gates, 4, axis=1)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return h, c, (x, h_prev, c_prev, gates, tanh_c, W_ih, W_hh)


def lstm_step_backward(dh, dc, cache):
    """Backward of :func:`lstm_step_forward`.

    dh, dc (B, H) are dLoss/dh and dLoss/dc from above (pass zeros for ``dc`` if the loss does not
    use ``c``). Returns ``(dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h_prev, c_prev, gates, tanh_c, W_ih, W_hh = cache
    dh = check_shape("dh", dh, h_prev.shape)
    dc = check_shape("dc", dc, c_prev.shape)
    i, f, g, o = np.split(gates, 4, axis=1)
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)  # h = o * tanh(c) also depends on c
    da = np.concatenate([  # gradient at the pre-activations, gates in torch's order
        dc * g * i * (1.0 - i),  # sigmoid'(a) = s (1 - s)
        dc * c_prev * f * (1.0 - f),
        dc * i * (1.0 - g * g),  # tanh'(a) = 1 - tanh(a)^2
        dh * tanh_c * o * (1.0 - o),
    ], axis=1)
    dx = da @ W_ih
    dh_prev = da @ W_hh
    dW_ih = da.T @ x
    dW_hh = da.T @ h_prev
    db = da.sum(axis=0)
    return dx, dh_prev, dc * f, dW_ih, dW_hh, db, db.copy()


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of a GRU for a batch, exactly as ``torch.nn.GRUCell``.

    Gates r, z, n stacked in that order (``W_ih (3H, D)``, ``W_hh (3H, H)``, ``b_ih``, ``b_hh (3H,)``).
    The reset gate scales ``W_hn h_prev + b_hn`` *after* the matrix product (PyTorch's and cuDNN's
    placement, not Cho et al.'s), so the hidden part of n keeps its own bias::

        r = sigmoid(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))
        h = (1 - z) * n + z * h_prev

    x (B, D), h_prev (B, H) -> h (B, H), cache for :func:`gru_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=3)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, W_ih=W_ih)
    a_i = x @ W_ih.T + b_ih  # (B, 3H): input part of r, z, n
    a_h = h_prev @ W_hh.T + b_hh  # (B, 3H): hidden part of r, z, n
    gates = np.empty_like(a_i)
    sigmoid(a_i[:, :2 * H] + a_h[:, :2 * H], out=gates[:, :2 * H])  # r, z
    r, z = gates[:, :H], gates[:, H:2 * H]
    hn = a_h[:, 2 * H:]  # W_hn h_prev + b_hn
    n = np.tanh(a_i[:, 2 * H:] + r * hn, out=gates[:, 2 * H:])
    h = n + z * (h_prev - n)  # = (1 - z) * n + z * h_prev
    return h, (x, h_prev, gates, hn, W_ih, W_hh)


def gru_step_backward(dh, cache):
    """Backward of :func:`gru_step_forward`.

    dh (B, H) is dLoss/dh. Returns ``(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)``; unlike the RNN and
    the LSTM, ``db_ih`` and ``db_hh`` differ: ``b_hn`` sits inside the reset product, ``b_in`` outside.
    """
    x, h_prev, gates, hn, W_ih, W_hh = cache
    dh = check_shape("dh", dh, h_prev.shape)
    r, z, n = np.split(gates, 3, axis=1)
    da_n = dh * (1.0 - z) * (1.0 - n * n)  # at the pre-activation of n
    da_r = da_n * hn * r * (1.0 - r)
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    da_i = np.concatenate([da_r, da_z, da_n], axis=1)  # gradient at x @ W_ih.T + b_ih
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # gradient at h_prev @ W_hh.T + b_hh
    dx = da_i @ W_ih
    dh_prev = dh * z + da_h @ W_hh
    dW_ih = da_i.T @ x
    dW_hh = da_h.T @ h_prev
    return dx, dh_prev, dW_ih, dW_hh, da_i.sum(axis=0), da_h.sum(axis=0)
