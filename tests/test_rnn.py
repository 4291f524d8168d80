"""The vanilla RNN of rnnlib against torch autograd, finite differences and the seed-003 example."""
import numpy as np
import pytest
import torch

from rnnlib import cells, gradcheck, losses, sequence
from rnnlib.torch import torch_io

TOL = 1e-7


def rnn_params(rng, D, H, dtype=np.float64):
    return cells.init_params(D, H, rng, dtype=dtype)


def torch_rnn(params):
    H, D = params["W_ih"].shape
    m = torch.nn.RNN(D, H, batch_first=True).double()
    return torch_io.to_torch(params, m)


@pytest.mark.parametrize("B,T,D,H", [(1, 1, 1, 1), (3, 5, 4, 6), (2, 9, 7, 3)])
def test_rnn_forward_backward_match_torch_autograd(rng, B, T, D, H):
    p = rnn_params(rng, D, H)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    dhs = rng.standard_normal((B, T, H))
    hs, cache = sequence.rnn_forward(x, h0, **p)
    grads = sequence.rnn_backward(dhs, cache)

    m = torch_rnn(p)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, hT = m(xt, h0t)
    (out * torch.tensor(dhs)).sum().backward()
    assert gradcheck.rel_error(hs, out.detach().numpy()) < TOL
    assert gradcheck.rel_error(hs[:, -1], hT[0].detach().numpy()) < TOL
    expected = [xt.grad, h0t.grad[0], m.weight_ih_l0.grad, m.weight_hh_l0.grad, m.bias_ih_l0.grad,
                m.bias_hh_l0.grad]
    for name, got, exp in zip(["dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh"], grads, expected):
        assert got.shape == tuple(exp.shape), name
        assert gradcheck.rel_error(got, exp.numpy()) < TOL, name


def test_rnn_step_matches_torch_autograd(rng):
    B, D, H = 4, 3, 5
    p = rnn_params(rng, D, H)
    x, h_prev, dh = rng.standard_normal((B, D)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    h, cache = cells.rnn_step_forward(x, h_prev, **p)
    grads = cells.rnn_step_backward(dh, cache)
    cell = torch.nn.RNNCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor(p["W_ih"]))
        cell.weight_hh.copy_(torch.tensor(p["W_hh"]))
        cell.bias_ih.copy_(torch.tensor(p["b_ih"]))
        cell.bias_hh.copy_(torch.tensor(p["b_hh"]))
    xt, ht = torch.tensor(x, requires_grad=True), torch.tensor(h_prev, requires_grad=True)
    out = cell(xt, ht)
    (out * torch.tensor(dh)).sum().backward()
    assert gradcheck.rel_error(h, out.detach().numpy()) < TOL
    expected = [xt.grad, ht.grad, cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad, cell.bias_hh.grad]
    for got, exp in zip(grads, expected):
        assert gradcheck.rel_error(got, exp.numpy()) < TOL


def test_sequence_equals_repeated_steps(rng):
    p = rnn_params(rng, 3, 4)
    x = rng.standard_normal((2, 6, 3))
    hs, _ = sequence.rnn_forward(x, None, **p)
    h = np.zeros((2, 4))
    for t in range(6):
        h, _ = cells.rnn_step_forward(x[:, t], h, **p)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)


def test_rnn_backward_by_finite_differences(rng):
    B, T, D, H = 2, 4, 3, 3
    p = rnn_params(rng, D, H)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    W_out, b_out = rng.standard_normal((2, H)), rng.standard_normal(2)
    y = rng.standard_normal((B, T, 2))

    def loss_and_grads():
        hs, c = sequence.rnn_forward(x, h0, **p)
        pred, lc = sequence.linear_forward(hs, W_out, b_out)
        loss, dpred = losses.mse(pred, y)
        dhs, dW_out, db_out = sequence.linear_backward(dpred, lc)
        dx, dh0, dW_ih, dW_hh, db_ih, db_hh = sequence.rnn_backward(dhs, c)
        return loss, dict(x=dx, h0=dh0, W_ih=dW_ih, W_hh=dW_hh, b_ih=db_ih, b_hh=db_hh, W_out=dW_out, b_out=db_out)

    _, grads = loss_and_grads()
    arrays = dict(x=x, h0=h0, **p, W_out=W_out, b_out=b_out)
    errors = gradcheck.check_gradients(lambda: loss_and_grads()[0], arrays, grads)
    assert max(errors.values()) < 1e-7, errors


def test_gradcheck_catches_a_wrong_gradient(rng):
    x = rng.standard_normal(5)
    good = gradcheck.check_gradients(lambda: float(np.sum(x ** 3)), {"x": x}, {"x": 3 * x ** 2})
    bad = gradcheck.check_gradients(lambda: float(np.sum(x ** 3)), {"x": x}, {"x": 2 * x ** 2})
    assert good["x"] < 1e-8 and bad["x"] > 1e-2


def test_seed_003_worked_example():
    """The 2-step example of seed 003: [h, x] @ W with W (3, 2), one bias, a linear output."""
    W = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    p = {"W_hh": W[:2].T.copy(), "W_ih": W[2:].T.copy(), "b_ih": np.array([0.1, -0.1]), "b_hh": np.zeros(2)}
    x = np.array([1.0, 2.0]).reshape(1, 2, 1)
    hs, _ = sequence.rnn_forward(x, None, **p)
    ys, _ = sequence.linear_forward(hs, np.array([[1.0, 2.0]]), np.array([0.1]))
    np.testing.assert_array_equal(np.round(hs[0], 3), [[0.537, 0.462], [0.860, 0.884]])
    np.testing.assert_array_equal(np.round(ys[0, :, 0], 2), [1.56, 2.73])
    # The concatenated form of the seed gives the same states.
    h = np.zeros(2)
    for t, xt in enumerate([1.0, 2.0]):
        h = np.tanh(np.concatenate([h, [xt]]) @ W + np.array([0.1, -0.1]))
        np.testing.assert_allclose(h, hs[0, t], rtol=1e-15)


def test_linear_and_losses_match_torch(rng):
    h = rng.standard_normal((2, 3, 4))
    W, b = rng.standard_normal((5, 4)), rng.standard_normal(5)
    dy = rng.standard_normal((2, 3, 5))
    y, c = sequence.linear_forward(h, W, b)
    dh, dW, db = sequence.linear_backward(dy, c)
    ht, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (h, W, b))
    yt = torch.nn.functional.linear(ht, Wt, bt)
    (yt * torch.tensor(dy)).sum().backward()
    for got, exp in [(y, yt.detach()), (dh, ht.grad), (dW, Wt.grad), (db, bt.grad)]:
        assert gradcheck.rel_error(got, exp.numpy()) < TOL

    logits = rng.standard_normal((2, 3, 5))
    targets = rng.integers(0, 5, (2, 3))
    loss, dlogits = losses.softmax_cross_entropy(logits, targets)
    lt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(lt.reshape(-1, 5), torch.tensor(targets).reshape(-1))
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    assert gradcheck.rel_error(dlogits, lt.grad.numpy()) < TOL

    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    value, dpred = losses.mse(pred, target)
    pt = torch.tensor(pred, requires_grad=True)
    ref = torch.nn.functional.mse_loss(pt, torch.tensor(target))
    ref.backward()
    assert abs(value - ref.item()) < 1e-12
    assert gradcheck.rel_error(dpred, pt.grad.numpy()) < TOL


def test_softmax_cross_entropy_is_stable_for_large_logits():
    loss, d = losses.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert np.isfinite(loss) and abs(loss - 1000.0) < 1e-9 and np.all(np.isfinite(d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_are_kept(rng, dtype):
    p = rnn_params(rng, 3, 4, dtype)
    x = rng.standard_normal((2, 5, 3)).astype(dtype)
    hs, c = sequence.rnn_forward(x, None, **p)
    grads = sequence.rnn_backward(np.ones_like(hs), c)
    assert hs.dtype == dtype and all(g.dtype == dtype for g in grads)
    ref, _ = sequence.rnn_forward(x.astype(np.float64), None, **{k: v.astype(np.float64) for k, v in p.items()})
    np.testing.assert_allclose(hs, ref, atol=1e-5 if dtype == np.float32 else 1e-14)


def test_torch_io_round_trip_is_bit_identical():
    m = torch.nn.RNN(3, 4, batch_first=True).double()
    p = torch_io.from_torch(m)
    m2 = torch_io.to_torch(p, torch.nn.RNN(3, 4, batch_first=True).double())
    for name, param in m.named_parameters():
        assert torch.equal(param, getattr(m2, name))


@pytest.mark.parametrize("call,message", [
    (lambda p: cells.rnn_step_forward(np.zeros((2, 4)), np.zeros((2, 4)), **p), "x: expected shape (?, 3), got (2, 4)"),
    (lambda p: cells.rnn_step_forward(np.zeros((2, 3)), np.zeros((3, 4)), **p), "h_prev: expected shape (2, 4), got (3, 4)"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 3)), None, **p), "x: expected shape (?, ?, 3), got (2, 3)"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 5, 3)), np.zeros((2, 5)), **p), "h0: expected shape (2, 4), got (2, 5)"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 5, 3), dtype=np.int64), None, **p), "x: expected dtype float32 or float64"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 5, 3), dtype=np.float32), None, **p), "share one dtype"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 5, 3)), None, **{**p, "b_hh": np.zeros(3)}), "b_hh: expected shape (4,), got (3,)"),
    (lambda p: sequence.rnn_forward(np.zeros((2, 5, 3)), None, **{**p, "W_hh": np.zeros((4, 3))}), "W_hh: expected shape (3, 3)"),
])
def test_bad_arguments_raise_value_error_naming_them(rng, call, message):
    with pytest.raises(ValueError) as err:
        call(rnn_params(rng, 3, 4))
    assert message in str(err.value)
