"""One time step of a recurrent cell (RNN, LSTM, GRU): forward and backward.

PyTorch conventions: row vectors and batch first, so a batch of inputs is ``x (B, D)``, a batch of
states is ``h (B, H)`` and the weights are ``W_ih (H, D)``, ``W_hh (H, H)``, ``b_ih (H,)``,
``b_hh (H,)``, exactly the shapes of ``torch.nn.RNN``'s ``weight_ih_l0`` etc. One step is

    h = tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)

The LSTM and GRU cells compute ``torch.nn.LSTMCell`` and ``torch.nn.GRUCell`` with the same
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


def init_params(D, H, seed, gates=1, dtype=np.float64):
    """One layer's ``{W_ih, W_hh, b_ih, b_hh}`` drawn as torch initialises them: U(-1/sqrt(H), 1/sqrt(H)).

    Inputs: D input size, H hidden size, ``gates`` stacked blocks (1 RNN, 4 LSTM, 3 GRU), ``seed`` an
    int or a ``numpy.random.Generator`` (which is used, and advanced, as it is).
    Returns W_ih (gates*H, D), W_hh (gates*H, H), b_ih and b_hh (gates*H,), in that draw order.
    """
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    shapes = {"W_ih": (gates * H, D), "W_hh": (gates * H, H), "b_ih": gates * H, "b_hh": gates * H}
    return {name: rng.uniform(-s, s, shape).astype(dtype) for name, shape in shapes.items()}


def sigmoid(a):
    """The logistic function ``1 / (1 + exp(-a))``, elementwise."""
    with np.errstate(over="ignore"):  # exp(-a) = inf for very negative a; 1 / inf is the right 0
        return 1.0 / (1.0 + np.exp(-a))


def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of a tanh RNN for a batch.

    Inputs: x (B, D), h_prev (B, H), W_ih (H, D), W_hh (H, H), b_ih (H,), b_hh (H,).
    Returns h (B, H) and the cache for :func:`rnn_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, W_ih=W_ih)
    h = np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
    return h, (x, h_prev, h, W_ih, W_hh)


def rnn_step_backward(dh, cache):
    """Backward of :func:`rnn_step_forward`.

    Inputs: dh (B, H), the gradient of the loss with respect to h; the forward's cache.
    Returns ``(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)``, shaped like the forward's inputs.
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


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of an LSTM for a batch, exactly as ``torch.nn.LSTMCell``::

        i, f, g, o = split(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
        i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        c = f * c_prev + i * g
        h = o * tanh(c)

    Inputs: x (B, D), h_prev and c_prev (B, H), W_ih (4H, D), W_hh (4H, H), b_ih and b_hh (4H,),
    the gates stacked i, f, g, o. Returns h (B, H), c (B, H) and the cache for
    :func:`lstm_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=4)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    c_prev = check_shape("c_prev", c_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, c_prev=c_prev, W_ih=W_ih)
    a = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh  # (B, 4H): the pre-activations of all four gates
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i = sigmoid(a_i)  # input gate
    f = sigmoid(a_f)  # forget gate
    g = np.tanh(a_g)  # candidate values for the cell
    o = sigmoid(a_o)  # output gate
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    return h, c, (x, h_prev, c_prev, i, f, g, o, tanh_c, W_ih, W_hh)


def lstm_step_backward(dh, dc, cache):
    """Backward of :func:`lstm_step_forward`.

    Inputs: dh and dc (B, H), the gradients of the loss with respect to h and c (zeros for ``dc``
    if the loss does not use ``c``); the forward's cache.
    Returns ``(dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h_prev, c_prev, i, f, g, o, tanh_c, W_ih, W_hh = cache
    dh = check_shape("dh", dh, h_prev.shape)
    dc = check_shape("dc", dc, c_prev.shape)
    do = dh * tanh_c
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)  # h = o * tanh(c) also depends on c
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dc_prev = dc * f
    da = np.concatenate([  # at the pre-activations, gates in torch's order
        di * i * (1.0 - i),  # sigmoid'(a) = s (1 - s)
        df * f * (1.0 - f),
        dg * (1.0 - g * g),  # tanh'(a) = 1 - tanh(a)^2
        do * o * (1.0 - o),
    ], axis=1)
    dx = da @ W_ih
    dh_prev = da @ W_hh
    dW_ih = da.T @ x
    dW_hh = da.T @ h_prev
    db = da.sum(axis=0)
    return dx, dh_prev, dc_prev, dW_ih, dW_hh, db, db.copy()


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    """One step of a GRU for a batch, exactly as ``torch.nn.GRUCell``.

    The reset gate scales ``W_hn h_prev + b_hn`` *after* the matrix product (PyTorch's and cuDNN's
    placement, not Cho et al.'s), so the hidden part of n keeps its own bias::

        r = sigmoid(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))
        h = (1 - z) * n + z * h_prev

    Inputs: x (B, D), h_prev (B, H), W_ih (3H, D), W_hh (3H, H), b_ih and b_hh (3H,), the gates
    stacked r, z, n. Returns h (B, H) and the cache for :func:`gru_step_backward`.
    """
    D, H = check_rnn_params(W_ih, W_hh, b_ih, b_hh, gates=3)
    x = check_shape("x", x, (None, D))
    h_prev = check_shape("h_prev", h_prev, (x.shape[0], H))
    check_same_dtype(x=x, h_prev=h_prev, W_ih=W_ih)
    a_ir, a_iz, a_in = np.split(x @ W_ih.T + b_ih, 3, axis=1)  # input parts of r, z, n
    a_hr, a_hz, a_hn = np.split(h_prev @ W_hh.T + b_hh, 3, axis=1)  # hidden parts of r, z, n
    r = sigmoid(a_ir + a_hr)  # reset gate
    z = sigmoid(a_iz + a_hz)  # update gate
    n = np.tanh(a_in + r * a_hn)  # candidate state
    h = (1.0 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n, a_hn, W_ih, W_hh)


def gru_step_backward(dh, cache):
    """Backward of :func:`gru_step_forward`.

    Inputs: dh (B, H), the gradient of the loss with respect to h; the forward's cache.
    Returns ``(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)``; unlike the RNN and the LSTM, ``db_ih``
    and ``db_hh`` differ: ``b_hn`` sits inside the reset product, ``b_in`` outside.
    """
    x, h_prev, r, z, n, a_hn, W_ih, W_hh = cache
    dh = check_shape("dh", dh, h_prev.shape)
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1.0 - n * n)  # at n's pre-activation, W_in x + b_in + r * a_hn
    dr = da_n * a_hn
    da_r = dr * r * (1.0 - r)
    da_z = dz * z * (1.0 - z)
    da_i = np.concatenate([da_r, da_z, da_n], axis=1)  # at x @ W_ih.T + b_ih
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # at h_prev @ W_hh.T + b_hh
    dx = da_i @ W_ih
    dh_prev = dh * z + da_h @ W_hh  # h depends on h_prev directly and through the gates
    dW_ih = da_i.T @ x
    dW_hh = da_h.T @ h_prev
    return dx, dh_prev, dW_ih, dW_hh, da_i.sum(axis=0), da_h.sum(axis=0)
