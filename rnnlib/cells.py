"""One time step of a recurrent cell: forward and backward.

PyTorch conventions: row vectors and batch first, so a batch of inputs is ``x (B, D)``, a batch of
states is ``h (B, H)`` and the weights are ``W_ih (H, D)``, ``W_hh (H, H)``, ``b_ih (H,)``,
``b_hh (H,)``, exactly the shapes of ``torch.nn.RNN``'s ``weight_ih_l0`` etc. One step is

    h = tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)

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
