"""rnnlib.train's RNN + linear head regression model (chapters 5 and 6) against torch autograd."""
import numpy as np
import pytest
import torch

from rnnlib import train
from rnnlib.torch import torch_io
from rnnlib.optim import Adam
from rnnlib.data import adding_problem
from rnnlib.gradcheck import rel_error


@pytest.mark.parametrize("O", [1, 3])
def test_rnn_regression_step_matches_torch_autograd(O):
    """MSE of a linear read-out of the last RNN state: the loss and every gradient."""
    params = train.rnn_regression_params(2, 5, np.random.default_rng(0), O=O)
    X, y = adding_problem(4, 12, seed=1)
    y = np.repeat(y, O, axis=1) * np.arange(1, O + 1)
    loss, grads = train.rnn_regression_step(params, (X, y))
    rnn = torch_io.to_torch(params, torch.nn.RNN(2, 5, batch_first=True).double())
    head = torch.nn.Linear(5, O).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(params["W_out"]))
        head.bias.copy_(torch.tensor(params["b_out"]))
    out, _ = rnn(torch.tensor(X))
    pred = head(out[:, -1])
    np.testing.assert_allclose(train.rnn_regression_forward(params, X)[0], pred.detach().numpy(), rtol=1e-12)
    t_loss = torch.mean((pred - torch.tensor(y)) ** 2)
    t_loss.backward()
    assert abs(loss - t_loss.item()) < 1e-12
    theirs = {"W_ih": rnn.weight_ih_l0.grad, "W_hh": rnn.weight_hh_l0.grad, "b_ih": rnn.bias_ih_l0.grad,
              "b_hh": rnn.bias_hh_l0.grad, "W_out": head.weight.grad, "b_out": head.bias.grad}
    assert set(grads) == set(theirs)
    for name, g in theirs.items():
        assert rel_error(grads[name], g.numpy()) < 1e-7, name


def test_rnn_regression_params_shapes_range_and_seed():
    p = train.rnn_regression_params(3, 4, 7)
    shapes = {"W_ih": (4, 3), "W_hh": (4, 4), "b_ih": (4,), "b_hh": (4,), "W_out": (1, 4), "b_out": (1,)}
    assert {k: v.shape for k, v in p.items()} == shapes
    assert all(np.all(np.abs(v) <= 0.5) for v in p.values())  # U(-1/sqrt(4), 1/sqrt(4))
    same = train.rnn_regression_params(3, 4, np.random.default_rng(7))  # an int seed or a Generator
    assert all(np.array_equal(p[k], same[k]) for k in p)
    assert not np.array_equal(p["W_ih"], train.rnn_regression_params(3, 4, 8)["W_ih"])


def test_fit_with_rnn_regression_step_learns_the_sum_of_the_inputs():
    """The step trains: a few hundred Adam steps on y = sum of x (T = 3) reduce the MSE tenfold."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (256, 3, 1))
    y = X.sum(axis=1) / 3
    params = train.rnn_regression_params(1, 8, 0)
    start = train.rnn_regression_step(params, (X, y))[0]
    train.fit(train.rnn_regression_step, params, Adam(params, lr=1e-2),
              lambda e: train.iterate_minibatches(X, y, 32, seed=e), 30, progress=False)
    assert train.rnn_regression_step(params, (X, y))[0] < start / 10


def test_rnn_regression_on_the_fast_layers_gives_the_same_numbers():
    params = train.rnn_regression_params(2, 5, 0, O=2)
    X, y = adding_problem(6, 9, seed=2)
    y = np.repeat(y, 2, axis=1)
    from rnnlib import fast, sequence
    pred, (hs, rnn_cache, _) = train.rnn_regression_forward(params, X, fast)
    pred_plain, (hs_plain, _, _) = train.rnn_regression_forward(params, X)
    assert rel_error(pred, pred_plain) < 1e-12 and rel_error(hs, hs_plain) < 1e-12
    loss, grads = train.rnn_regression_step(params, (X, y), layers=fast)
    loss_plain, grads_plain = train.rnn_regression_step(params, (X, y), layers=sequence)
    assert abs(loss - loss_plain) < 1e-14 and set(grads) == set(grads_plain)
    assert all(rel_error(grads[k], grads_plain[k]) < 1e-12 for k in grads)


def test_rnn_regression_params_head_draws_after_the_rnn():
    """The RNN's four arrays are cells.init_params' draws; the head's two come after them."""
    from rnnlib import cells
    p = train.rnn_regression_params(3, 4, 7, O=2)
    rng = np.random.default_rng(7)
    rnn = cells.init_params(3, 4, rng)
    assert all(np.array_equal(p[k], rnn[k]) for k in rnn)
    np.testing.assert_array_equal(p["W_out"], rng.uniform(-0.5, 0.5, (2, 4)))
    np.testing.assert_array_equal(p["b_out"], rng.uniform(-0.5, 0.5, 2))
    assert np.abs(p["W_out"]).max() > 0.3  # drawn from the full U(-1/sqrt(H), 1/sqrt(H))


def test_rnn_regression_step_runs_forward_and_backward_on_the_given_layers():
    from types import SimpleNamespace

    from rnnlib import fast
    calls = []
    counting = SimpleNamespace(rnn_forward=lambda *a: calls.append("forward") or fast.rnn_forward(*a),
                               rnn_backward=lambda *a: calls.append("backward") or fast.rnn_backward(*a))
    params = train.rnn_regression_params(2, 3, 0)
    X, y = adding_problem(4, 8, seed=0)
    train.rnn_regression_step(params, (X, y), layers=counting)
    assert calls == ["forward", "backward"]
