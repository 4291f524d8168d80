"""The recurrent layers of :mod:`rnnlib.sequence`, arranged for speed: same signatures, same results.

The plain layers call the step function of :mod:`rnnlib.cells` T times; here the input part
``x @ W_ih.T + b_ih`` of every step is one matrix product before the loop (for the LSTM, one per
block of steps), the loop runs on
time-major ``(T, B, ...)`` arrays (step t's slice is contiguous) and writes into arrays allocated
once (``out=``), the weight gradients are one matrix product over all steps after the loop, and the
LSTM gets its four gates from a single ``tanh``. NumPy pays a fixed cost per call, so fewer and
larger calls are what makes a NumPy loop fast; the measurements are in ``benchmarks/RESULTS.md``.
Caches are this module's own: pass a cache only to the backward of the same module.
"""
import numpy as np

from rnnlib._checks import check_same_dtype, check_shape
from rnnlib.cells import sigmoid
from rnnlib.sequence import check_lstm_upstream, check_sequence_input, initial_state

STEPS_PER_BLOCK = 8  # the LSTM's step-independent work is done for this many steps at a time


def swap_batch_time(a):
    """``(B, T, ...)`` <-> ``(T, B, ...)`` as a contiguous copy."""
    return np.ascontiguousarray(a.swapaxes(0, 1))


def gate_views(a, n):
    """The ``n`` gate blocks of ``a (..., n*H)`` as views ``(..., H)``."""
    H = a.shape[-1] // n
    return [a[..., k * H:(k + 1) * H] for k in range(n)]


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """:func:`rnnlib.sequence.rnn_forward`, with the input part of all steps in one matrix product.

    x (B, T, D), h0 (B, H) or None -> hs (B, T, H), cache ``(x, h0, hs, W_ih, W_hh)`` (the same
    layout as the plain one's, so :mod:`rnnlib.truncated` can use either).
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh)
    h = initial_state("h0", h0, B, H, x.dtype)
    h0 = h
    # a 2-D matmul: NumPy hands it to BLAS, which it does not do for the 3-D x @ W_ih.T
    xw = (x.reshape(B * T, D) @ W_ih.T).reshape(B, T, H)
    xw += b_ih + b_hh
    hs = np.empty((B, T, H), dtype=x.dtype)
    for t in range(T):
        h = np.tanh(xw[:, t] + h @ W_hh.T)
        hs[:, t] = h
    return hs, (x, h0, hs, W_ih, W_hh)


def rnn_backward(dhs, cache):
    """:func:`rnnlib.sequence.rnn_backward`; the weight gradients are one matrix product over all steps.

    dhs (B, T, H) -> ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x, h0, hs, W_ih, W_hh = cache
    dhs = check_shape("dhs", dhs, hs.shape)
    check_same_dtype(dhs=dhs, x=x)
    T = hs.shape[1]
    da = np.empty_like(hs)  # gradient at the pre-activation of every step
    dh_next = np.zeros_like(h0)  # gradient arriving from step t + 1
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next
        da[:, t] = dh * (1.0 - hs[:, t] ** 2)
        dh_next = da[:, t] @ W_hh
    h_prev = np.concatenate([h0[:, None], hs], axis=1)[:, :-1]  # state entering each step
    da2 = da.reshape(-1, da.shape[-1])  # (B*T, H): every step of every sequence is one row
    dx = (da2 @ W_ih).reshape(x.shape)
    dW_ih = da2.T @ x.reshape(-1, x.shape[-1])
    dW_hh = da2.T @ h_prev.reshape(-1, h_prev.shape[-1])
    db = da.sum(axis=(0, 1))
    return dx, dh_next, dW_ih, dW_hh, db, db.copy()


def lstm_gate_scale(H, dtype):
    """``(4H,)``: 1/2 for the sigmoid gates i, f, o and 1 for the tanh gate g (torch's order i, f, g, o).

    ``sigmoid(a) = (1 + tanh(a / 2)) / 2`` exactly, so :func:`lstm_forward` multiplies the weight
    rows of i, f and o by 1/2 (exact in floating point) and gets all four gates from one ``tanh``:
    ``u = tanh(scale * a)``, ``i, f, o = (1 + u) / 2``, ``g = u``. The derivative of every gate is
    then ``scale**2 * (1 - u**2)`` (``s (1 - s)`` for i, f, o; ``1 - g^2`` for g).
    """
    return np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype=dtype), H)


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """:func:`rnnlib.sequence.lstm_forward`, arranged for speed.

    x (B, T, D), h0 and c0 (B, H) or None (zeros) -> hs (B, T, H), cache (cell states:
    :func:`lstm_cell_states`). Besides the time-major arrays written in place, two changes:
    all four gates come from one ``tanh`` (:func:`lstm_gate_scale`), and the bias is the weight
    of a constant input 1, so that one matrix product gives the input part with its bias.
    ``hs[t]``, ``cs[t]`` are the states entering step t; the step writes ``hs[t + 1]``, ``cs[t + 1]``.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=4)
    scale = lstm_gate_scale(H, x.dtype)[:, None]
    x_and_one = np.empty((T, B, D + 1), dtype=x.dtype)  # time-major x with a last input that is always 1 ...
    x_and_one[:, :, :D] = x.swapaxes(0, 1)
    x_and_one[:, :, D] = 1.0
    W_x = np.concatenate([W_ih, (b_ih + b_hh)[:, None]], axis=1) * scale  # ... whose weight is the bias
    # u: scale * (pre-activations) of every gate and step; the loop adds the hidden part, then tanh
    u = np.empty((T, B, 4 * H), dtype=x.dtype)
    x_rows, u_rows = x_and_one.reshape(T * B, D + 1), u.reshape(T * B, 4 * H)
    W_hh_T = np.ascontiguousarray((W_hh * scale).T)  # (H, 4H): BLAS is faster on it than on the view
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    cs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = initial_state("h0", h0, B, H, x.dtype)
    cs[0] = initial_state("c0", c0, B, H, x.dtype)
    tanh_cs = np.empty((T, B, H), dtype=x.dtype)
    sig_gates = np.empty_like(u)  # (1 + u) / 2: the sigmoid gates i, f, o (its g block is unused)
    i, f, _, o = gate_views(sig_gates, 4)  # (T, B, H) views
    g = gate_views(u, 4)[2]  # g = u on its block (scale 1)
    a_h = np.empty((B, 4 * H), dtype=x.dtype)  # hidden part of one step's scaled pre-activations
    ig = np.empty((B, H), dtype=x.dtype)  # i * g of one step
    for t in range(T):
        if t % STEPS_PER_BLOCK == 0:  # input part of the next steps just before they use it: still in cache
            rows = slice(t * B, min(t + STEPS_PER_BLOCK, T) * B)
            np.matmul(x_rows[rows], W_x.T, out=u_rows[rows])
        u_t, s_t, c, tanh_c = u[t], sig_gates[t], cs[t + 1], tanh_cs[t]
        u_t += np.matmul(hs[t], W_hh_T, out=a_h)
        np.tanh(u_t, out=u_t)
        np.multiply(u_t, 0.5, out=s_t)
        s_t += 0.5
        np.multiply(f[t], cs[t], out=c)
        c += np.multiply(i[t], g[t], out=ig)  # c = f * c_prev + i * g
        np.tanh(c, out=tanh_c)
        np.multiply(o[t], tanh_c, out=hs[t + 1])  # h = o * tanh(c)
    return swap_batch_time(hs[1:]), (x_and_one, hs, cs, tanh_cs, sig_gates, u, W_ih, W_hh)


def lstm_cell_states(cache):
    """The cell states ``cs (B, T, H)`` kept in a :func:`lstm_forward` cache of this module."""
    cs = cache[2]
    return cs[1:].swapaxes(0, 1)


def lstm_backward(dhs, cache, dc_last=None):
    """:func:`rnnlib.sequence.lstm_backward` for a cache of :func:`lstm_forward`.

    dhs (B, T, H), dc_last (B, H) or None -> ``(dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh)``.
    The loop computes ``da / scale**2 = d[i, f, g, o] * (1 - u^2)`` (:func:`lstm_gate_scale`); the
    factor ``scale**2`` goes into ``W_hh`` for ``dh_prev`` and into the weight gradients, which are
    summed over the steps after the loop in one matrix product each (``db`` with ``dW_ih``).
    """
    x_and_one, hs, cs, tanh_cs, sig_gates, u, W_ih, W_hh = cache
    T, B, H = tanh_cs.shape
    dhs, dc = check_lstm_upstream(dhs, dc_last, B, T, H, x_and_one)
    dc = dc.copy()  # updated in place below
    dhs = swap_batch_time(dhs)
    scale2 = lstm_gate_scale(H, x_and_one.dtype)[:, None] ** 2
    W_hh_scaled2 = W_hh * scale2  # W_hh * scale**2: dh_prev = (da / scale**2) @ W_hh_scaled2
    dh = np.zeros((B, H), dtype=x_and_one.dtype)  # gradient at h arriving from step t + 1
    i, f, _, o = gate_views(sig_gates, 4)  # (T, B, H) views
    g = gate_views(u, 4)[2]
    dh_to_dc = np.empty((STEPS_PER_BLOCK, B, H), dtype=x_and_one.dtype)  # o (1 - tanh(c)^2) of one block
    da = np.empty_like(u)  # (T, B, 4H): gradient at the pre-activations, divided by scale**2
    dgates = np.empty((B, 4 * H), dtype=x_and_one.dtype)  # gradient at the gates' outputs, one step
    d_i, d_f, d_g, d_o = gate_views(dgates, 4)
    tmp = np.empty((B, H), dtype=x_and_one.dtype)
    for t in reversed(range(T)):
        if t == T - 1 or t % STEPS_PER_BLOCK == STEPS_PER_BLOCK - 1:  # a new block: what does not depend
            steps = slice(t - t % STEPS_PER_BLOCK, t + 1)  # on dh, dc for all its steps at once (fewer calls,
            np.multiply(u[steps], u[steps], out=da[steps])  # and the block is still in cache when used)
            np.subtract(1.0, da[steps], out=da[steps])  # 1 - u^2
            q = dh_to_dc[:t + 1 - steps.start]  # o (1 - tanh(c)^2) turns dh into its share of dc
            np.multiply(tanh_cs[steps], tanh_cs[steps], out=q)
            np.subtract(1.0, q, out=q)
            q *= o[steps]
        dh += dhs[t]
        dc += np.multiply(dh, dh_to_dc[t % STEPS_PER_BLOCK], out=tmp)
        np.multiply(dc, g[t], out=d_i)
        np.multiply(dc, cs[t], out=d_f)
        np.multiply(dc, i[t], out=d_g)
        np.multiply(dh, tanh_cs[t], out=d_o)
        da_t = da[t]
        da_t *= dgates  # d[i, f, g, o] * (1 - u^2)
        np.matmul(da_t, W_hh_scaled2, out=dh)
        dc *= f[t]
    da2 = da.reshape(T * B, 4 * H)
    dx = swap_batch_time((da2 @ (W_ih * scale2)).reshape(T, B, W_ih.shape[1]))
    dW_x = (da2.T @ x_and_one.reshape(T * B, x_and_one.shape[2])) * scale2  # [dW_ih | db]: one matmul over all steps
    dW_hh = (da2.T @ hs[:-1].reshape(T * B, H)) * scale2  # hs[:-1]: the state entering each step
    db = dW_x[:, -1].copy()
    return dx, dh, dc, np.ascontiguousarray(dW_x[:, :-1]), dW_hh, db, db.copy()


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """:func:`rnnlib.sequence.gru_forward` on time-major arrays written in place.

    x (B, T, D), h0 (B, H) or None -> hs (B, T, H), cache.
    """
    x, (B, T, D, H) = check_sequence_input(x, W_ih, W_hh, b_ih, b_hh, gates=3)
    x_tm = swap_batch_time(x)  # (T, B, D)
    gates = (x_tm.reshape(T * B, D) @ W_ih.T).reshape(T, B, 3 * H)  # input part of every step
    gates += b_ih
    gates[..., :2 * H] += b_hh[:2 * H]  # b_hr and b_hz are plain biases; b_hn stays inside r * (...)
    hs = np.empty((T + 1, B, H), dtype=x.dtype)  # hs[t]: the state entering step t
    hs[0] = initial_state("h0", h0, B, H, x.dtype)
    a_hns = np.empty((T, B, H), dtype=x.dtype)  # W_hn h_prev + b_hn of every step
    W_hh_T = np.ascontiguousarray(W_hh.T)
    r, z, n = gate_views(gates, 3)  # (T, B, H) views; gates[t] receives r, z, n
    a_h = np.empty((B, 3 * H), dtype=x.dtype)  # h_prev @ W_hh.T of one step
    for t in range(T):
        np.matmul(hs[t], W_hh_T, out=a_h)
        rz = gates[t, :, :2 * H]
        rz += a_h[:, :2 * H]
        rz[...] = sigmoid(rz)  # r and z in one pass
        np.add(a_h[:, 2 * H:], b_hh[2 * H:], out=a_hns[t])
        n[t] += np.multiply(r[t], a_hns[t], out=a_h[:, 2 * H:])
        np.tanh(n[t], out=n[t])  # n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))
        np.subtract(hs[t], n[t], out=hs[t + 1])
        hs[t + 1] *= z[t]
        hs[t + 1] += n[t]  # h = n + z * (h_prev - n) = (1 - z) * n + z * h_prev
    return swap_batch_time(hs[1:]), (x_tm, hs, gates, a_hns, W_ih, W_hh)


def gru_backward(dhs, cache):
    """:func:`rnnlib.sequence.gru_backward` for a cache of :func:`gru_forward`.

    dhs (B, T, H) -> ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)``.
    """
    x_tm, hs, gates, a_hns, W_ih, W_hh = cache
    T, B, H = a_hns.shape
    dhs = check_shape("dhs", dhs, (B, T, H))
    check_same_dtype(dhs=dhs, x=x_tm)
    dhs = swap_batch_time(dhs)
    da_h = np.empty_like(gates)  # (T, B, 3H): gradient at h_prev @ W_hh.T + b_hh of every step
    da_n = np.empty_like(a_hns)  # (T, B, H): gradient at the pre-activation of n
    r, z, n = gate_views(gates, 3)
    dh = np.zeros((B, H), dtype=x_tm.dtype)  # gradient at h arriving from step t + 1
    tmp = np.empty((B, H), dtype=x_tm.dtype)
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
        da_r *= da_n[t]  # da_r = da_n * a_hn * r (1 - r)
        da_r *= a_hns[t]
        np.subtract(hs[t], n[t], out=tmp)  # da_z = dh * (h_prev - n) * z (1 - z)
        tmp *= dh
        da_z *= tmp
        dh *= z[t]  # dh_prev = dh * z + da_h @ W_hh
        dh += np.matmul(da_h[t], W_hh, out=tmp)
    da_i = da_h.copy()  # gradient at x @ W_ih.T + b_ih: the same for r and z, not for n
    da_i[..., 2 * H:] = da_n
    da_i2, da_h2 = da_i.reshape(T * B, 3 * H), da_h.reshape(T * B, 3 * H)
    dx = swap_batch_time((da_i2 @ W_ih).reshape(T, B, W_ih.shape[1]))
    dW_ih = da_i2.T @ x_tm.reshape(T * B, W_ih.shape[1])
    dW_hh = da_h2.T @ hs[:-1].reshape(T * B, H)
    return dx, dh, dW_ih, dW_hh, da_i2.sum(axis=0), da_h2.sum(axis=0)
