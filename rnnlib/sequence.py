"""Recurrent layers over whole sequences, and the output layer.

``x (B, T, D)`` is batch-first. The input projection ``x @ W_ih.T + b_ih`` has no recurrence, so it
is computed for every step at once; only the hidden-to-hidden part loops over time. The result is
the same as calling :func:`rnnlib.cells.rnn_step_forward` T times (tested).

The LSTM and GRU loops are written for speed (see ``benchmarks/lstm_vs_torch.py``): they run on
time-major ``(T, B, ...)`` copies, so that the arrays of step t are contiguous (slices ``[:, t]`` of a
batch-first array were several times slower to compute on), and write into preallocated arrays
(``out=``) instead of allocating new ones at every step. Inputs and outputs stay batch-first.
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
    """Run a tanh RNN over a batch of sequences.

    x (B, T, D), h0 (B, H) or None -> hs (B, T, H) (the state after every step), cache.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh)
    h = initial_state("h0", h0, B, H, x.dtype)
    h_init = h
    # The input part of every step at once, as one 2-D matmul: the same numbers as the 3-D
    # ``x @ W_ih.T``, which NumPy does not hand to BLAS (73 vs 12 us at B=200, T=3, D=3, H=64).
    xw = (x.reshape(B * T, D) @ W_ih.T).reshape(B, T, H)
    xw += b_ih + b_hh
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
    da2 = da.reshape(-1, da.shape[-1])  # (B*T, H): every step of every sequence is one row
    dx = (da2 @ W_ih).reshape(x.shape)
    dW_ih = da2.T @ x.reshape(-1, x.shape[-1])  # one matmul over all steps (faster than np.einsum)
    dW_hh = da2.T @ h_prev.reshape(-1, h_prev.shape[-1])
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


def swap_batch_time(a):
    """``(B, T, ...)`` <-> ``(T, B, ...)`` as a contiguous copy: time-major, step t's slice ``[t]`` is contiguous."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


def gate_views(a, n):
    """The ``n`` gate blocks of ``a (..., n*H)`` as views ``(..., H)`` (``np.split`` is slower)."""
    H = a.shape[-1] // n
    return [a[..., k * H:(k + 1) * H] for k in range(n)]


def lstm_gate_scale(H, dtype):
    """``(4H,)``: 1/2 for the sigmoid gates i, f, o and 1 for the tanh gate g (torch's order i, f, g, o).

    ``sigmoid(a) = (1 + tanh(a / 2)) / 2`` exactly, so :func:`lstm_forward` multiplies the weight rows of i, f
    and o by 1/2 (exact in floating point) and gets all four gates from one ``tanh`` pass: ``u = tanh(scale * a)``,
    ``i, f, o = (1 + u) / 2``, ``g = u``. The derivative of every gate is then ``scale**2 * (1 - u**2)``
    (``s (1 - s)`` for the sigmoid gates, ``1 - g^2`` for g), which :func:`lstm_backward` uses."""
    return np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype=dtype), H)


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """Run an LSTM over a batch of sequences (gates i, f, g, o as ``torch.nn.LSTM``).

    x (B, T, D), h0 and c0 (B, H) or None (zeros) -> hs (B, T, H) (the hidden state after every
    step), cache. The cell states are in the cache: :func:`lstm_cell_states`.

    The same arithmetic as :func:`rnnlib.cells.lstm_step_forward` T times (tested), arranged for
    speed: the loop works on time-major ``(T, B, ...)`` buffers, so that step t's arrays are
    contiguous, and writes into them in place (``out=``) instead of allocating per step.
    ``hs[t]``, ``cs[t]`` are the states entering step t; the step writes ``hs[t + 1]``, ``cs[t + 1]``.
    Two more tricks, each measured on forward + backward (float32, B=32, T=64, D=64, H=128, one
    thread, ~20 ms in all; see benchmarks/RESULTS.md):

    * one ``tanh`` pass over all four gates (:func:`lstm_gate_scale`), then ``(1 + u) / 2`` with
      scalars, instead of a sigmoid (negative, exp, +1, reciprocal, inside ``np.errstate``) over all
      four and a tanh over the strided block of g: 3 NumPy calls per step instead of 5, and ``tanh``
      is faster than ``exp`` (6.4 vs 7.9 us on a (32, 512) block); with the backward's simpler
      derivative, -0.6 to -0.8 ms;
    * the bias is the weight of a constant input 1: ``xs`` gets a last column of ones and the input
      weights the column ``b_ih + b_hh``, so one matmul gives the input part with its bias, instead
      of a matmul and a pass over the (T, B, 4H) result (and :func:`lstm_backward` gets ``db`` from
      the matmul of ``dW_ih`` instead of a sum): -0.3 ms.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=4)
    scale = lstm_gate_scale(H, x.dtype)[:, None]
    xs = np.empty((T, B, D + 1), dtype=x.dtype)  # time-major x with a constant input 1 ...
    xs[:, :, :D] = x.swapaxes(0, 1)
    xs[:, :, D] = 1.0
    W_x = np.concatenate([W_ih, (b_ih + b_hh)[:, None]], axis=1) * scale  # ... whose weight is the bias
    us = (xs.reshape(T * B, D + 1) @ W_x.T).reshape(T, B, 4 * H)  # input part of every step, in one matmul
    W_hh_T = np.ascontiguousarray((W_hh * scale).T)  # (H, 4H): BLAS is faster on it than on the transposed view
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    cs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = initial_state("h0", h0, B, H, x.dtype)
    cs[0] = initial_state("c0", c0, B, H, x.dtype)
    tanh_cs = np.empty((T, B, H), dtype=x.dtype)
    sig = np.empty_like(us)  # (1 + u) / 2: the gates i, f, o (the block of g is not used: g = u)
    i, f, _, o = gate_views(sig, 4)  # (T, B, H) views
    g = gate_views(us, 4)[2]
    a = np.empty((B, 4 * H), dtype=x.dtype)  # hidden part of one step's pre-activations
    ig = np.empty((B, H), dtype=x.dtype)  # i * g of one step
    for t in range(T):
        u, s, c, tanh_c = us[t], sig[t], cs[t + 1], tanh_cs[t]  # views made once per step: -0.1 ms
        u += np.matmul(hs[t], W_hh_T, out=a)  # scale * pre-activations ...
        np.tanh(u, out=u)  # ... and u = tanh of them, kept for the backward
        np.multiply(u, 0.5, out=s)
        s += 0.5
        np.multiply(f[t], cs[t], out=c)
        c += np.multiply(i[t], g[t], out=ig)  # c = f * c_prev + i * g
        np.tanh(c, out=tanh_c)
        np.multiply(o[t], tanh_c, out=hs[t + 1])  # h = o * tanh(c)
    return swap_batch_time(hs[1:]), (xs, hs, cs, tanh_cs, sig, us, W_ih, W_hh)


def lstm_cell_states(cache):
    """The cell states ``cs (B, T, H)`` kept in an :func:`lstm_forward` cache (``cs[:, -1]`` is torch's ``c_n``)."""
    cs = cache[2]
    return cs[1:].swapaxes(0, 1)


def lstm_backward(dhs, cache, dc_last=None):
    """Backpropagation through time for :func:`lstm_forward`.

    dhs (B, T, H) is the upstream gradient of each ``hs[:, t]`` (as in :func:`rnn_backward`);
    ``dc_last (B, H)``, optional, that of the last cell state. The gradients that flow back through
    h and c are added here. Returns ``(dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh)``.

    Per step, with ``dh`` and ``dc`` the gradients at h and c (from above and from step t + 1)::

        dc += dh * o * (1 - tanh(c)^2)                              # through h = o * tanh(c)
        d[i, f, g, o] = [dc * g, dc * c_prev, dc * i, dh * tanh(c)]  # at the gates' outputs
        da = d[i, f, g, o] * [s(1-s), s(1-s), 1-g^2, s(1-s)]        # at the pre-activations
        dh_prev = da @ W_hh;  dc_prev = dc * f

    The gate derivatives are ``scale**2 * (1 - u^2)`` (:func:`lstm_gate_scale`): the loop computes
    ``da / scale**2 = d[i, f, g, o] * (1 - u^2)`` (3 NumPy calls instead of 5) and the factor
    ``scale**2`` goes into ``W_hh`` for ``dh_prev``, and into the weight gradients, summed over steps
    after the loop, one matmul each (``dW_ih`` and ``db`` in one: the bias is the weight of the input 1).
    """
    xs, hs, cs, tanh_cs, sig, us, W_ih, W_hh = cache
    T, B, H = tanh_cs.shape
    dhs = check_shape("dhs", dhs, (B, T, H))
    check_same_dtype(dhs=dhs, x=xs)
    if dc_last is None:
        dc = np.zeros((B, H), dtype=xs.dtype)
    else:
        dc = check_shape("dc_last", dc_last, (B, H)).copy()
        check_same_dtype(dc_last=dc, x=xs)
    dhs = swap_batch_time(dhs)
    scale2 = lstm_gate_scale(H, xs.dtype)[:, None] ** 2
    W_hh_2 = W_hh * scale2
    dh = np.zeros((B, H), dtype=xs.dtype)  # gradient at h arriving from step t + 1
    i, f, _, o = gate_views(sig, 4)  # (T, B, H) views
    g = gate_views(us, 4)[2]
    dc_dh = np.multiply(tanh_cs, tanh_cs)  # (T, B, H): dc/dh = o * (1 - tanh(c)^2) through h = o * tanh(c),
    np.subtract(1.0, dc_dh, out=dc_dh)  # every step, in place (one array instead of three)
    dc_dh *= o
    da = np.empty_like(us)  # (T, B, 4H): gradient at the pre-activations of every step, divided by scale**2
    dgates = np.empty((B, 4 * H), dtype=xs.dtype)  # gradient at the gates' outputs, one step
    d_i, d_f, d_g, d_o = gate_views(dgates, 4)
    tmp = np.empty((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        dh += dhs[t]
        dc += np.multiply(dh, dc_dh[t], out=tmp)
        np.multiply(dc, g[t], out=d_i)
        np.multiply(dc, cs[t], out=d_f)
        np.multiply(dc, i[t], out=d_g)
        np.multiply(dh, tanh_cs[t], out=d_o)
        da_t = da[t]
        np.multiply(us[t], us[t], out=da_t)
        np.subtract(1.0, da_t, out=da_t)
        da_t *= dgates  # (d[i, f, g, o] * (1 - u^2))
        np.matmul(da_t, W_hh_2, out=dh)
        dc *= f[t]
    da2 = da.reshape(T * B, 4 * H)
    dx = swap_batch_time((da2 @ (W_ih * scale2)).reshape(T, B, -1))
    dW_x = (da2.T @ xs.reshape(T * B, -1)) * scale2  # [dW_ih | db]: one matmul over all steps
    dW_hh = (da2.T @ hs[:-1].reshape(T * B, H)) * scale2  # hs[:-1]: the state entering each step
    db = dW_x[:, -1].copy()
    return dx, dh, dc, np.ascontiguousarray(dW_x[:, :-1]), dW_hh, db, db.copy()


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Run a GRU over a batch of sequences (gates r, z, n and ``b_hn`` placed as ``torch.nn.GRU``).

    x (B, T, D), h0 (B, H) or None -> hs (B, T, H), cache. The same arithmetic as
    :func:`rnnlib.cells.gru_step_forward` T times (tested), on time-major buffers like :func:`lstm_forward`.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=3)
    xs = swap_batch_time(x)  # (T, B, D)
    gates = (xs.reshape(T * B, D) @ W_ih.T).reshape(T, B, 3 * H)  # input part of every step, one matmul
    gates += b_ih
    gates[..., :2 * H] += b_hh[:2 * H]  # b_hr and b_hz are plain biases; b_hn stays inside r * (...)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)  # hs[t]: the state entering step t
    hs[0] = initial_state("h0", h0, B, H, x.dtype)
    hns = np.empty((T, B, H), dtype=x.dtype)  # W_hn h_prev + b_hn of every step
    W_hh_T = np.ascontiguousarray(W_hh.T)
    r, z, n = gate_views(gates, 3)  # (T, B, H) views; gates[t] receives r, z, n
    a_h = np.empty((B, 3 * H), dtype=x.dtype)  # h_prev @ W_hh.T of one step
    for t in range(T):
        np.matmul(hs[t], W_hh_T, out=a_h)
        rz = gates[t, :, :2 * H]
        rz += a_h[:, :2 * H]
        cells.sigmoid(rz, out=rz)  # r and z in one pass
        np.add(a_h[:, 2 * H:], b_hh[2 * H:], out=hns[t])
        n[t] += np.multiply(r[t], hns[t], out=a_h[:, 2 * H:])
        np.tanh(n[t], out=n[t])  # n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))
        np.subtract(hs[t], n[t], out=hs[t + 1])
        hs[t + 1] *= z[t]
        hs[t + 1] += n[t]  # h = n + z * (h_prev - n) = (1 - z) * n + z * h_prev
    return swap_batch_time(hs[1:]), (xs, hs, gates, hns, W_ih, W_hh)


def gru_backward(dhs, cache):
    """Backpropagation through time for :func:`gru_forward`.

    Returns ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)`` (``db_ih`` and ``db_hh`` differ in the n gate).
    Per step, with ``dh`` the gradient at h (from above and from step t + 1)::

        da_n = dh * (1 - z) * (1 - n^2)               # at n's pre-activation, i.e. at W_in x + b_in
        da_z = dh * (h_prev - n) * z (1 - z)
        da_r = da_n * (W_hn h_prev + b_hn) * r (1 - r)
        da_h = [da_r, da_z, da_n * r]                 # at h_prev @ W_hh.T + b_hh
        dh_prev = dh * z + da_h @ W_hh
    """
    xs, hs, gates, hns, W_ih, W_hh = cache
    T, B, H = hns.shape
    dhs = check_shape("dhs", dhs, (B, T, H))
    check_same_dtype(dhs=dhs, x=xs)
    dhs = swap_batch_time(dhs)
    da_h = np.empty_like(gates)  # (T, B, 3H): gradient at h_prev @ W_hh.T + b_hh of every step
    da_n = np.empty_like(hns)  # (T, B, H): gradient at the pre-activation of n
    r, z, n = gate_views(gates, 3)
    dh = np.zeros((B, H), dtype=xs.dtype)  # gradient at h arriving from step t + 1
    tmp = np.empty((B, H), dtype=xs.dtype)
    for t in reversed(range(T)):
        da_r, da_z, da_hn = gate_views(da_h[t], 3)
        dh += dhs[t]
        np.multiply(n[t], n[t], out=da_n[t])  # da_n = dh * (1 - z) * (1 - n^2)
        np.subtract(1.0, da_n[t], out=da_n[t])
        da_n[t] *= dh
        np.subtract(1.0, z[t], out=tmp)
        da_n[t] *= tmp
        np.multiply(da_n[t], r[t], out=da_hn)
        np.subtract(1.0, gates[t, :, :2 * H], out=da_h[t, :, :2 * H])  # s (1 - s) for r and z at once
        da_h[t, :, :2 * H] *= gates[t, :, :2 * H]
        da_r *= da_n[t]  # da_r = da_n * hn * r (1 - r)
        da_r *= hns[t]
        np.subtract(hs[t], n[t], out=tmp)  # da_z = dh * (h_prev - n) * z (1 - z)
        tmp *= dh
        da_z *= tmp
        dh *= z[t]  # dh_prev = dh * z + da_h @ W_hh
        dh += np.matmul(da_h[t], W_hh, out=tmp)
    da_i = da_h.copy()  # gradient at x @ W_ih.T + b_ih: the same for r and z, not for n
    da_i[..., 2 * H:] = da_n
    da_i2, da_h2 = da_i.reshape(T * B, 3 * H), da_h.reshape(T * B, 3 * H)
    dx = swap_batch_time((da_i2 @ W_ih).reshape(T, B, -1))
    dW_ih = da_i2.T @ xs.reshape(T * B, -1)
    dW_hh = da_h2.T @ hs[:-1].reshape(T * B, H)
    return dx, dh, dW_ih, dW_hh, da_i2.sum(axis=0), da_h2.sum(axis=0)
