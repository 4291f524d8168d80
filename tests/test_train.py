"""rnnlib.train: the loop trains a tiny linear regression written as a NumPy closure."""
import re

import numpy as np
import pytest

from rnnlib.optim import SGD, Adam
from rnnlib.train import fit, iterate_minibatches


def linear_problem(n=256, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    w_true, b_true = np.array([[1.5, -2.0, 0.5]]), np.array([0.3])
    y = X @ w_true.T + b_true + 0.01 * rng.standard_normal((n, 1))
    return X, y, w_true, b_true


def step_fn(params, batch):
    """Forward, MSE loss and backward of y = X @ W_out.T + b_out."""
    X, y = batch
    pred = X @ params["W_out"].T + params["b_out"]
    diff = pred - y
    loss = np.mean(diff ** 2)
    dpred = 2 * diff / diff.size
    return loss, {"W_out": dpred.T @ X, "b_out": dpred.sum(axis=0)}


def fresh_params():
    return {"W_out": np.zeros((1, 3)), "b_out": np.zeros(1)}


def test_fit_decreases_the_loss_and_finds_the_weights():
    X, y, w_true, b_true = linear_problem()
    params = fresh_params()
    val = lambda p: step_fn(p, (X, y))[0]  # noqa: E731
    history = fit(step_fn, params, Adam(params, lr=0.05),
                  lambda epoch: iterate_minibatches(X, y, 32, seed=epoch),
                  epochs=30, val_fn=val, progress=False)
    losses = history["train_loss"]
    assert len(losses) == len(history["val_loss"]) == len(history["grad_norm"]) == 30
    assert losses[-1] < 0.01 * losses[0]
    assert history["val_loss"][-1] < 1e-3
    np.testing.assert_allclose(params["W_out"], w_true, atol=0.02)
    np.testing.assert_allclose(params["b_out"], b_true, atol=0.02)


def test_fit_with_a_list_of_batches_and_clipping():
    X, y, *_ = linear_problem(seed=1)
    params = fresh_params()
    batches = list(iterate_minibatches(X, y, 64, shuffle=False))
    history = fit(step_fn, params, SGD(params, lr=0.1), batches, epochs=20, clip=0.5, progress=False)
    assert history["val_loss"] == []
    assert history["train_loss"][-1] < 0.05 * history["train_loss"][0]
    assert history["grad_norm"][0] > 0.5  # clipping was active at the start
    assert all(a >= b for a, b in zip(history["train_loss"], history["train_loss"][1:]))


def test_fit_refuses_generators_and_a_foreign_optimizer():
    X, y, *_ = linear_problem()
    params = fresh_params()
    with pytest.raises(ValueError, match="batches"):
        fit(step_fn, params, SGD(params, lr=0.1), iterate_minibatches(X, y, 32), epochs=2, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        fit(step_fn, params, SGD(fresh_params(), lr=0.1), [(X, y)], epochs=1, progress=False)


def test_iterate_minibatches_covers_every_row_once():
    X = np.arange(10).reshape(10, 1).astype(float)
    y = X * 2
    batches = list(iterate_minibatches(X, y, 4, shuffle=True, seed=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[0][:, 0] for b in batches])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, np.arange(10))
    assert all(np.array_equal(yb, xb * 2) for xb, yb in batches)
    in_order = np.concatenate([b[0][:, 0] for b in iterate_minibatches(X, y, 4, shuffle=False)])
    np.testing.assert_array_equal(in_order, np.arange(10))
    with pytest.raises(ValueError, match="y"):
        next(iterate_minibatches(X, y[:5], 4))


def test_fit_history_is_the_mean_loss_and_the_gradient_norm():
    """Per epoch: the MEAN of the batch losses (not their sum) and the mean global gradient norm
    (the norm, not its square), with and without clipping; the optimiser gets the clipped gradient."""
    params = {"w": np.zeros(2), "b": np.zeros(1)}
    batches = [(1.0, 3.0), (2.0, 6.0), (6.0, 9.0)]  # (loss, scale): gradient [3, 4] * scale / 5 ...

    def known_step(params, batch):
        loss, scale = batch
        return loss, {"w": np.array([3.0, 4.0]) * scale / 5, "b": np.zeros(1)}  # ... of norm `scale`

    history = fit(known_step, params, SGD(params, lr=0.0), batches, epochs=2, progress=False)
    assert history["train_loss"] == [3.0, 3.0]
    assert history["grad_norm"] == pytest.approx([6.0, 6.0], rel=1e-15)
    history = fit(known_step, params, SGD(params, lr=1.0), batches, epochs=1, clip=3.0, progress=False)
    assert history["train_loss"] == [3.0] and history["grad_norm"] == pytest.approx([6.0], rel=1e-15)
    # every step was clipped to norm 3 (less 1e-6 relative): w moved by 3 * 3 in the direction -[3, 4] / 5
    np.testing.assert_allclose(params["w"], -9.0 * np.array([0.6, 0.8]), rtol=1e-6)


def test_fit_calls_val_fn_after_each_epoch_and_refuses_empty_epochs():
    params = {"w": np.ones(1)}
    calls = []

    def val_fn(p):
        calls.append(float(p["w"][0]))
        return 10.0 * p["w"][0]

    step = lambda p, batch: (1.0, {"w": np.ones(1)})  # noqa: E731
    history = fit(step, params, SGD(params, lr=0.5), [None], epochs=2, val_fn=val_fn, progress=False)
    assert calls == [0.5, 0.0] and history["val_loss"] == [5.0, 0.0]
    with pytest.raises(ValueError, match="^batches: epoch 0 had no batches$"):
        fit(step, params, SGD(params, lr=0.5), [], epochs=1, progress=False)
    with pytest.raises(ValueError, match="^batches: epoch 1 had no batches$"):
        fit(step, params, SGD(params, lr=0.5), lambda e: [None] if e == 0 else [], epochs=2, progress=False)


def test_fit_messages_and_progress_bar(capsys):
    X, y, *_ = linear_problem(n=8)
    params = fresh_params()
    with pytest.raises(ValueError) as err:
        fit(step_fn, params, SGD(fresh_params(), lr=0.1), [(X, y)], epochs=1, progress=False)
    assert str(err.value) == "optimizer: it was built on a different params dict; build it on this one"
    with pytest.raises(ValueError) as err:
        fit(step_fn, params, SGD(params, lr=0.1), iter([(X, y)]), epochs=1, progress=False)
    assert str(err.value) == ("batches: got an iterator, which would be empty after one epoch; pass a list "
                              "or a function epoch -> iterable")
    capsys.readouterr()
    fit(step_fn, params, SGD(params, lr=0.1), [(X, y)], epochs=2, progress=False)
    assert capsys.readouterr().err == ""
    fit(step_fn, params, SGD(params, lr=0.1), [(X, y)], epochs=2, val_fn=lambda p: 0.125, progress=True)
    shown = capsys.readouterr().err
    assert re.search(r"(^|\r)epochs: ", shown) and "train=" in shown and "val=0.125" in shown
    fit(step_fn, params, SGD(params, lr=0.1), [(X, y)], epochs=1)  # the bar is on by default
    assert re.search(r"(^|\r)epochs: ", capsys.readouterr().err)


def test_iterate_minibatches_message_and_default_shuffle():
    X, y = np.arange(6.0).reshape(6, 1), np.arange(6.0).reshape(6, 1)
    with pytest.raises(ValueError) as err:
        next(iterate_minibatches(X, y[:5], 2))
    assert str(err.value) == "y: expected 6 rows (as many as X), got shape (5, 1)"
    default = np.concatenate([b[0][:, 0] for b in iterate_minibatches(X, y, 2)])
    seeded = np.concatenate([b[0][:, 0] for b in iterate_minibatches(X, y, 2, shuffle=True, seed=0)])
    np.testing.assert_array_equal(default, seeded)  # shuffled with seed 0 by default
    assert [len(b[0]) for b in iterate_minibatches(X, y, 4)] == [4, 2]
