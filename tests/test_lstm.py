"""The LSTM of rnnlib (cell and sequence) against torch autograd and finite differences."""
import numpy as np
import pytest
import torch

from rnnlib import cells, gradcheck, sequence
from torch_helpers import EPS, SHAPES, TOL, assert_all_close, copy_into, lstm_params, weight_grads


@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_lstm_step_matches_torch_autograd(rng, B, T, D, H):
    p = lstm_params(rng, D, H)
    x, h_prev, c_prev = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    h, c, cache = cells.lstm_step_forward(x, h_prev, c_prev, **p)
    grads = cells.lstm_step_backward(dh, dc, cache)

    cell = copy_into(torch.nn.LSTMCell(D, H).double(), p, "")
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h_prev, c_prev))
    h_t, c_t = cell(xt, (ht, ct))
    ((h_t * torch.tensor(dh)).sum() + (c_t * torch.tensor(dc)).sum()).backward()
    assert_all_close(["h", "c"], [h, c], [h_t.detach().numpy(), c_t.detach().numpy()])
    expected = [xt.grad.numpy(), ht.grad.numpy(), ct.grad.numpy()] + weight_grads(cell, "")
    assert_all_close(["dx", "dh_prev", "dc_prev", "dW_ih", "dW_hh", "db_ih", "db_hh"], grads, expected)


@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_lstm_sequence_matches_torch_autograd(rng, B, T, D, H):
    p = lstm_params(rng, D, H)
    x = rng.standard_normal((B, T, D))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dhs, dc_last = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    hs, cache = sequence.lstm_forward(x, h0, c0, **p)
    grads = sequence.lstm_backward(dhs, cache, dc_last)

    m = copy_into(torch.nn.LSTM(D, H, batch_first=True).double(), p, "_l0")
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    out, (h_n, c_n) = m(xt, (h0t, c0t))
    ((out * torch.tensor(dhs)).sum() + (c_n[0] * torch.tensor(dc_last)).sum()).backward()
    assert_all_close(["hs", "h_n", "c_n"], [hs, hs[:, -1], sequence.lstm_cell_states(cache)[:, -1]],
                     [out.detach().numpy(), h_n[0].detach().numpy(), c_n[0].detach().numpy()])
    expected = [xt.grad.numpy(), h0t.grad[0].numpy(), c0t.grad[0].numpy()] + weight_grads(m, "_l0")
    assert_all_close(["dx", "dh0", "dc0", "dW_ih", "dW_hh", "db_ih", "db_hh"], grads, expected)


def test_lstm_zero_initial_state_is_the_default(rng):
    p = lstm_params(rng, 3, 4)
    x = rng.standard_normal((2, 5, 3))
    hs, _ = sequence.lstm_forward(x, None, None, **p)
    out, _ = copy_into(torch.nn.LSTM(3, 4, batch_first=True).double(), p, "_l0")(torch.tensor(x))
    assert gradcheck.rel_error(hs, out.detach().numpy()) < TOL


def test_lstm_sequence_equals_repeated_steps(rng):
    B, T, D, H = 2, 6, 3, 4
    p = lstm_params(rng, D, H)
    x, dhs = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, H))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    hs, cache = sequence.lstm_forward(x, h0, c0, **p)
    seq_grads = sequence.lstm_backward(dhs, cache)

    h, c, step_caches = h0, c0, []
    for t in range(T):
        h, c, step_cache = cells.lstm_step_forward(x[:, t], h, c, **p)
        step_caches.append(step_cache)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sequence.lstm_cell_states(cache)[:, t], c, rtol=1e-12, atol=1e-14)
    dh, dc = np.zeros((B, H)), np.zeros((B, H))
    dx = np.empty_like(x)
    sums = [0.0] * 4
    for t in reversed(range(T)):
        dx[:, t], dh, dc, *dparams = cells.lstm_step_backward(dhs[:, t] + dh, dc, step_caches[t])
        sums = [s + d for s, d in zip(sums, dparams)]
    for got, exp in zip(seq_grads, [dx, dh, dc] + sums):
        np.testing.assert_allclose(got, exp, rtol=1e-10, atol=1e-13)


def test_lstm_step_backward_by_finite_differences(rng):
    B, D, H = 2, 3, 2
    p = lstm_params(rng, D, H)
    arrays = dict(x=rng.standard_normal((B, D)), h_prev=rng.standard_normal((B, H)),
                  c_prev=rng.standard_normal((B, H)), **p)
    wh, wc = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss():
        h, c, _ = cells.lstm_step_forward(**arrays)
        return float(np.sum(h * wh) + np.sum(c * wc))

    _, _, cache = cells.lstm_step_forward(**arrays)
    grads = dict(zip(arrays, cells.lstm_step_backward(wh, wc, cache)))
    errors = gradcheck.check_gradients(loss, arrays, grads, EPS)
    assert max(errors.values()) < TOL, errors


def test_lstm_backward_by_finite_differences(rng):
    B, T, D, H = 2, 4, 3, 2
    p = lstm_params(rng, D, H)
    arrays = dict(x=rng.standard_normal((B, T, D)), h0=rng.standard_normal((B, H)),
                  c0=rng.standard_normal((B, H)), **p)
    w, wc = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))

    def loss():
        hs, cache = sequence.lstm_forward(**arrays)
        return float(np.sum(hs * w) + np.sum(sequence.lstm_cell_states(cache)[:, -1] * wc))

    _, cache = sequence.lstm_forward(**arrays)
    grads = dict(zip(arrays, sequence.lstm_backward(w, cache, wc)))
    errors = gradcheck.check_gradients(loss, arrays, grads, EPS)
    assert max(errors.values()) < TOL, errors


def test_lstm_saturated_gates_stay_finite():
    """Pre-activations of ±1000: exp overflows inside the sigmoid, the result must still be exact."""
    H = 2
    p = {"W_ih": np.zeros((4 * H, 1)), "W_hh": np.zeros((4 * H, H)),
         "b_ih": np.array([-1000.0, 1000.0] * 4), "b_hh": np.zeros(4 * H)}
    with np.errstate(all="raise", under="ignore"):
        hs, cache = sequence.lstm_forward(np.zeros((1, 3, 1)), None, None, **p)
        grads = sequence.lstm_backward(np.ones_like(hs), cache)
    assert all(np.all(np.isfinite(g)) for g in grads)
    # Unit 0 has every gate shut (i = f = o = 0): h = 0. Unit 1 has them open and g = 1: c = t + 1.
    np.testing.assert_array_equal(hs[0, :, 0], 0.0)
    np.testing.assert_allclose(hs[0, :, 1], np.tanh([1.0, 2.0, 3.0]), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_float32_and_float64_are_kept(rng, dtype):
    B, T, D, H = 2, 5, 3, 4
    p = lstm_params(rng, D, H, dtype)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    h0, c0 = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    hs, cache = sequence.lstm_forward(x, h0, c0, **p)
    grads = sequence.lstm_backward(np.ones_like(hs), cache, np.ones_like(h0))
    h, c, step_cache = cells.lstm_step_forward(x[:, 0], h0, c0, **p)
    step_grads = cells.lstm_step_backward(np.ones_like(h), np.ones_like(c), step_cache)
    assert all(a.dtype == dtype for a in (hs, h, c, *grads, *step_grads))
    ref, _ = sequence.lstm_forward(*(a.astype(np.float64) for a in (x, h0, c0)),
                                   **{k: v.astype(np.float64) for k, v in p.items()})
    np.testing.assert_allclose(hs, ref, atol=1e-5 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("call,message", [
    (lambda p: cells.lstm_step_forward(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((2, 4)), **p),
     "x: expected shape (?, 3), got (2, 4)"),
    (lambda p: cells.lstm_step_forward(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros((2, 4)), **p),
     "h_prev: expected shape (2, 4), got (3, 4)"),
    (lambda p: cells.lstm_step_forward(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 5)), **p),
     "c_prev: expected shape (2, 4), got (2, 5)"),
    (lambda p: cells.lstm_step_backward(np.zeros((2, 5)), np.zeros((2, 4)),
                                        cells.lstm_step_forward(np.zeros((2, 3)), np.zeros((2, 4)),
                                                                np.zeros((2, 4)), **p)[2]),
     "dh: expected shape (2, 4), got (2, 5)"),
    (lambda p: cells.lstm_step_backward(np.zeros((2, 4)), np.zeros((1, 4)),
                                        cells.lstm_step_forward(np.zeros((2, 3)), np.zeros((2, 4)),
                                                                np.zeros((2, 4)), **p)[2]),
     "dc: expected shape (2, 4), got (1, 4)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 3)), None, None, **p), "x: expected shape (?, ?, 3), got (2, 3)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3)), np.zeros((2, 5)), None, **p),
     "h0: expected shape (2, 4), got (2, 5)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3)), None, np.zeros((4,)), **p),
     "c0: expected shape (2, 4), got (4,)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **{**p, "W_hh": np.zeros((4, 4))}),
     "W_hh: expected shape (16, 4) for hidden size 4, got (4, 4)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **{**p, "W_ih": np.zeros((4, 3))}),
     "W_ih: expected shape (16, ?), got (4, 3)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **{**p, "b_ih": np.zeros(4)}),
     "b_ih: expected shape (16,), got (4,)"),
    (lambda p: sequence.lstm_forward(np.zeros((2, 5, 3), dtype=np.float32), None, None, **p), "share one dtype"),
    (lambda p: sequence.lstm_backward(np.zeros((2, 5, 3)), sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **p)[1]),
     "dhs: expected shape (2, 5, 4), got (2, 5, 3)"),
    (lambda p: sequence.lstm_backward(np.zeros((2, 5, 4)), sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **p)[1],
                                      np.zeros((2, 3))),
     "dc_last: expected shape (2, 4), got (2, 3)"),
    (lambda p: sequence.lstm_backward(np.zeros((2, 5, 4), dtype=np.float32),
                                      sequence.lstm_forward(np.zeros((2, 5, 3)), None, None, **p)[1]),
     "share one dtype, got dhs=float32, x=float64"),
])
def test_lstm_bad_arguments_raise_value_error_naming_them(rng, call, message):
    with pytest.raises(ValueError) as err:
        call(lstm_params(rng, 3, 4))
    assert message in str(err.value)
