"""The GRU of rnnlib (cell and sequence) against torch autograd and finite differences."""
import numpy as np
import pytest
import torch

from rnnlib import cells, gradcheck, sequence
from torch_helpers import EPS, SHAPES, TOL, assert_all_close, copy_into, gru_params, weight_grads


@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_gru_step_matches_torch_autograd(rng, B, T, D, H):
    p = gru_params(rng, D, H)
    x, h_prev, dh = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    h, cache = cells.gru_step_forward(x, h_prev, **p)
    grads = cells.gru_step_backward(dh, cache)

    cell = copy_into(torch.nn.GRUCell(D, H).double(), p, "")
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h_prev, requires_grad=True)
    h_t = cell(xt, ht)
    (h_t * torch.tensor(dh)).sum().backward()
    assert_all_close(["h"], [h], [h_t.detach().numpy()])
    expected = [xt.grad.numpy(), ht.grad.numpy()] + weight_grads(cell, "")
    assert_all_close(["dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh"], grads, expected)


@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_gru_sequence_matches_torch_autograd(rng, B, T, D, H):
    p = gru_params(rng, D, H)
    x, h0, dhs = rng.standard_normal((B, T, D)), rng.standard_normal((B, H)), rng.standard_normal((B, T, H))
    hs, cache = sequence.gru_forward(x, h0, **p)
    grads = sequence.gru_backward(dhs, cache)

    m = copy_into(torch.nn.GRU(D, H, batch_first=True).double(), p, "_l0")
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    out, h_n = m(xt, h0t)
    (out * torch.tensor(dhs)).sum().backward()
    assert_all_close(["hs", "h_n"], [hs, hs[:, -1]], [out.detach().numpy(), h_n[0].detach().numpy()])
    expected = [xt.grad.numpy(), h0t.grad[0].numpy()] + weight_grads(m, "_l0")
    assert_all_close(["dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh"], grads, expected)


def test_gru_b_hn_sits_inside_the_reset_product(rng):
    """torch's placement: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), so b_in and b_hn differ."""
    D, H = 3, 4
    p = gru_params(rng, D, H)
    x, h_prev = rng.standard_normal((2, D)), rng.standard_normal((2, H))
    h, cache = cells.gru_step_forward(x, h_prev, **p)
    moved = {**p, "b_ih": p["b_ih"].copy(), "b_hh": p["b_hh"].copy()}
    moved["b_ih"][2 * H:] += moved["b_hh"][2 * H:]  # what b_hn would be if it sat outside the product
    moved["b_hh"][2 * H:] = 0.0
    assert np.max(np.abs(cells.gru_step_forward(x, h_prev, **moved)[0] - h)) > 1e-3
    *_, db_ih, db_hh = cells.gru_step_backward(np.ones_like(h), cache)
    np.testing.assert_array_equal(db_ih[:2 * H], db_hh[:2 * H])  # r and z: plain biases
    assert np.max(np.abs(db_ih[2 * H:] - db_hh[2 * H:])) > 1e-3  # n: db_hn = r * db_in


def test_gru_zero_initial_state_is_the_default(rng):
    p = gru_params(rng, 3, 4)
    x = rng.standard_normal((2, 5, 3))
    hs, _ = sequence.gru_forward(x, None, **p)
    out, _ = copy_into(torch.nn.GRU(3, 4, batch_first=True).double(), p, "_l0")(torch.tensor(x))
    assert gradcheck.rel_error(hs, out.detach().numpy()) < TOL


def test_gru_sequence_equals_repeated_steps(rng):
    B, T, D, H = 2, 6, 3, 4
    p = gru_params(rng, D, H)
    x, dhs, h0 = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    hs, cache = sequence.gru_forward(x, h0, **p)
    seq_grads = sequence.gru_backward(dhs, cache)

    h, step_caches = h0, []
    for t in range(T):
        h, step_cache = cells.gru_step_forward(x[:, t], h, **p)
        step_caches.append(step_cache)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)
    dh = np.zeros((B, H))
    dx = np.empty_like(x)
    sums = [0.0] * 4
    for t in reversed(range(T)):
        dx[:, t], dh, *dparams = cells.gru_step_backward(dhs[:, t] + dh, step_caches[t])
        sums = [s + d for s, d in zip(sums, dparams)]
    for got, exp in zip(seq_grads, [dx, dh] + sums):
        np.testing.assert_allclose(got, exp, rtol=1e-10, atol=1e-13)


def test_gru_step_backward_by_finite_differences(rng):
    B, D, H = 2, 3, 2
    arrays = dict(x=rng.standard_normal((B, D)), h_prev=rng.standard_normal((B, H)), **gru_params(rng, D, H))
    w = rng.standard_normal((B, H))

    def loss():
        return float(np.sum(cells.gru_step_forward(**arrays)[0] * w))

    grads = dict(zip(arrays, cells.gru_step_backward(w, cells.gru_step_forward(**arrays)[1])))
    errors = gradcheck.check_gradients(loss, arrays, grads, EPS)
    assert max(errors.values()) < TOL, errors


def test_gru_backward_by_finite_differences(rng):
    B, T, D, H = 2, 4, 3, 2
    arrays = dict(x=rng.standard_normal((B, T, D)), h0=rng.standard_normal((B, H)), **gru_params(rng, D, H))
    w = rng.standard_normal((B, T, H))

    def loss():
        return float(np.sum(sequence.gru_forward(**arrays)[0] * w))

    grads = dict(zip(arrays, sequence.gru_backward(w, sequence.gru_forward(**arrays)[1])))
    errors = gradcheck.check_gradients(loss, arrays, grads, EPS)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_float32_and_float64_are_kept(rng, dtype):
    B, T, D, H = 2, 5, 3, 4
    p = gru_params(rng, D, H, dtype)
    x, h0 = rng.standard_normal((B, T, D)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)
    hs, cache = sequence.gru_forward(x, h0, **p)
    grads = sequence.gru_backward(np.ones_like(hs), cache)
    h, step_cache = cells.gru_step_forward(x[:, 0], h0, **p)
    step_grads = cells.gru_step_backward(np.ones_like(h), step_cache)
    assert all(a.dtype == dtype for a in (hs, h, *grads, *step_grads))
    ref, _ = sequence.gru_forward(x.astype(np.float64), h0.astype(np.float64),
                                  **{k: v.astype(np.float64) for k, v in p.items()})
    np.testing.assert_allclose(hs, ref, atol=1e-5 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("call,message", [
    (lambda p: cells.gru_step_forward(np.zeros((2, 4)), np.zeros((2, 4)), **p), "x: expected shape (?, 3), got (2, 4)"),
    (lambda p: cells.gru_step_forward(np.zeros((2, 3)), np.zeros((3, 4)), **p), "h_prev: expected shape (2, 4), got (3, 4)"),
    (lambda p: cells.gru_step_backward(np.zeros((2, 5)), cells.gru_step_forward(np.zeros((2, 3)), np.zeros((2, 4)), **p)[1]),
     "dh: expected shape (2, 4), got (2, 5)"),
    (lambda p: sequence.gru_forward(np.zeros((2, 3)), None, **p), "x: expected shape (?, ?, 3), got (2, 3)"),
    (lambda p: sequence.gru_forward(np.zeros((2, 5, 3)), np.zeros((2, 5)), **p), "h0: expected shape (2, 4), got (2, 5)"),
    (lambda p: sequence.gru_forward(np.zeros((2, 5, 3)), None, **{**p, "W_hh": np.zeros((16, 4))}),
     "W_hh: expected shape (12, 4) for hidden size 4, got (16, 4)"),
    (lambda p: sequence.gru_forward(np.zeros((2, 5, 3)), None, **{**p, "b_hh": np.zeros(4)}),
     "b_hh: expected shape (12,), got (4,)"),
    (lambda p: sequence.gru_forward(np.zeros((2, 5, 3), dtype=np.int64), None, **p), "x: expected dtype float32 or float64"),
    (lambda p: sequence.gru_forward(np.zeros((2, 5, 3)), np.zeros((2, 4), dtype=np.float32), **p),
     "h0: expected dtype float64 (the dtype of x), got float32"),
    (lambda p: sequence.gru_backward(np.zeros((2, 4, 4)), sequence.gru_forward(np.zeros((2, 5, 3)), None, **p)[1]),
     "dhs: expected shape (2, 5, 4), got (2, 4, 4)"),
    (lambda p: sequence.gru_backward(np.zeros((2, 5, 4), dtype=np.float32), sequence.gru_forward(np.zeros((2, 5, 3)), None, **p)[1]),
     "share one dtype, got dhs=float32, x=float64"),
])
def test_gru_bad_arguments_raise_value_error_naming_them(rng, call, message):
    with pytest.raises(ValueError) as err:
        call(gru_params(rng, 3, 4))
    assert message in str(err.value)
