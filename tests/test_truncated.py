"""rnnlib.truncated: truncated BPTT against torch autograd with detach() every k steps (float64, rel err
< 1e-7), against finite differences of the chunked loss, and the chunk-by-chunk training loop."""
import numpy as np
import pytest
import torch

from rnnlib import sequence, truncated
from rnnlib.gradcheck import numerical_gradient, rel_error

NAMES = ("dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh")


def random_problem(rng, B, T, D, H):
    params = {"W_ih": rng.standard_normal((H, D)) * 0.6, "W_hh": rng.standard_normal((H, H)) * 0.6,
              "b_ih": rng.standard_normal(H) * 0.2, "b_hh": rng.standard_normal(H) * 0.2}
    x, h0, dhs = rng.standard_normal((B, T, D)), rng.standard_normal((B, H)) * 0.5, rng.standard_normal((B, T, H))
    return params, x, h0, dhs


def torch_detach_every_k(params, x, h0, dhs, k):
    """The loss sum(hs * dhs) with the state detached every k steps; gradients by autograd."""
    tp = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
    tx, th0 = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    h, outs = th0, []
    for t in range(x.shape[1]):
        if t > 0 and t % k == 0:
            h = h.detach()
        h = torch.tanh(tx[:, t] @ tp["W_ih"].T + tp["b_ih"] + h @ tp["W_hh"].T + tp["b_hh"])
        outs.append(h)
    (torch.stack(outs, dim=1) * torch.tensor(dhs)).sum().backward()
    grad = lambda t: np.zeros(t.shape) if t.grad is None else t.grad.numpy()  # noqa: E731
    return (grad(tx), grad(th0), grad(tp["W_ih"]), grad(tp["W_hh"]), grad(tp["b_ih"]), grad(tp["b_hh"]))


@pytest.mark.parametrize("B,T,D,H,k", [(3, 7, 2, 4, 1), (3, 7, 2, 4, 2), (2, 9, 3, 5, 3), (4, 10, 1, 3, 4),
                                       (2, 6, 2, 3, 6), (2, 5, 2, 3, 50), (1, 1, 1, 1, 1)])
def test_matches_torch_detach_every_k(B, T, D, H, k):
    rng = np.random.default_rng(B * 100 + T * 10 + k)
    params, x, h0, dhs = random_problem(rng, B, T, D, H)
    _, cache = sequence.rnn_forward(x, h0, **params)
    ours = truncated.rnn_backward_truncated(dhs, cache, k)
    theirs = torch_detach_every_k(params, x, h0, dhs, k)
    for name, a, b in zip(NAMES, ours, theirs):
        assert a.shape == b.shape, name
        assert rel_error(a, b) < 1e-7, (name, rel_error(a, b))


def test_k_at_least_T_is_full_bptt_and_k_below_T_is_not(rng):
    params, x, h0, dhs = random_problem(rng, 2, 8, 3, 4)
    _, cache = sequence.rnn_forward(x, h0, **params)
    full = sequence.rnn_backward(dhs, cache)
    for k in (8, 9, 1000):
        for a, b in zip(truncated.rnn_backward_truncated(dhs, cache, k), full):
            assert rel_error(a, b) < 1e-12
    cut = truncated.rnn_backward_truncated(dhs, cache, 3)
    assert rel_error(cut[3], full[3]) > 1e-3  # the recurrent weights' gradient loses the long paths


def test_matches_finite_differences_of_the_chunked_loss(rng):
    """The truncated gradient is the exact gradient of a loss in which each chunk starts from a constant
    state (the one the full forward pass reached there)."""
    T, k = 7, 3
    params, x, h0, dhs = random_problem(rng, 2, T, 2, 3)
    hs_fixed, cache = sequence.rnn_forward(x, h0, **params)
    bounds = truncated.chunk_bounds(T, k)

    def chunked_loss():
        total = 0.0
        for start, stop in bounds:
            h_in = h0 if start == 0 else hs_fixed[:, start - 1]
            hs, _ = sequence.rnn_forward(x[:, start:stop], h_in, **params)
            total += float(np.sum(hs * dhs[:, start:stop]))
        return total

    ours = dict(zip(NAMES, truncated.rnn_backward_truncated(dhs, cache, k)))
    for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
        num = numerical_gradient(chunked_loss, params[name])
        assert rel_error(ours["d" + name], num) < 1e-7, name
    assert rel_error(ours["dx"], numerical_gradient(chunked_loss, x)) < 1e-7
    assert rel_error(ours["dh0"], numerical_gradient(chunked_loss, h0)) < 1e-7


def test_checks_arguments(rng):
    params, x, h0, dhs = random_problem(rng, 2, 4, 2, 3)
    _, cache = sequence.rnn_forward(x, h0, **params)
    for bad_k in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="k: expected a positive integer"):
            truncated.rnn_backward_truncated(dhs, cache, bad_k)
    with pytest.raises(ValueError, match="dhs: expected shape"):
        truncated.rnn_backward_truncated(dhs[:, :-1], cache, 2)
    assert truncated.chunk_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]


class Recorder:
    """An optimiser that only records the gradients it is given (the weights do not change)."""

    def __init__(self, params):
        self.params, self.grads = params, []

    def step(self, grads):
        self.grads.append(grads)


def test_fit_tbptt_carries_the_state_and_adds_up_to_the_truncated_gradient(rng):
    T, k = 10, 4
    params, x, h0, dhs = random_problem(rng, 2, T, 2, 3)
    hs_full, cache = sequence.rnn_forward(x, h0, **params)
    states_in = []

    def chunk_step(p, x_chunk, g_chunk, h):
        states_in.append(h)
        hs, c = sequence.rnn_forward(x_chunk, h, **p)
        loss = float(np.sum(hs * g_chunk))
        _, _, dW_ih, dW_hh, db_ih, db_hh = sequence.rnn_backward(g_chunk, c)
        return loss, {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db_ih, "b_hh": db_hh}, hs[:, -1]

    opt = Recorder(params)
    history = truncated.fit_tbptt(chunk_step, params, opt, x, dhs, k, epochs=2, h0=h0, progress=False)
    assert len(opt.grads) == 2 * 3 and len(history["train_loss"]) == 2
    # Each chunk starts from the state the previous chunk ended in; every epoch starts again from h0.
    expected_in = [h0, hs_full[:, 3], hs_full[:, 7]] * 2
    for got, want in zip(states_in, expected_in):
        assert rel_error(got, want) < 1e-12
    ref = dict(zip(NAMES, truncated.rnn_backward_truncated(dhs, cache, k)))
    for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
        summed = sum(g[name] for g in opt.grads[:3])
        assert rel_error(summed, ref["d" + name]) < 1e-12, name


def test_fit_tbptt_checks_shapes(rng):
    params, x, _, dhs = random_problem(rng, 2, 6, 2, 3)
    with pytest.raises(ValueError) as err:
        truncated.fit_tbptt(lambda *a: None, params, Recorder(params), x, dhs[:, :-1], 2, 1, progress=False)
    assert str(err.value) == "Y: expected shape (2, 6) + (...) to match X (B, T, D) = (2, 6, 2), got (2, 5, 3)"


def test_fit_tbptt_passes_fit_options_on(rng, capsys):
    """clip=, val_fn= and progress= reach rnnlib.train.fit."""
    params, x, h0, dhs = random_problem(rng, 2, 6, 2, 3)

    def chunk_step(p, x_chunk, g_chunk, h):
        return 1.0, {k: np.full_like(v, 10.0) for k, v in p.items()}, np.zeros((2, 3))

    opt = Recorder(params)
    history = truncated.fit_tbptt(chunk_step, params, opt, x, dhs, 3, 1, clip=1.0, val_fn=lambda p: 0.5,
                                  progress=False)
    assert history["val_loss"] == [0.5] and capsys.readouterr().err == ""
    norms = [np.sqrt(sum(np.sum(g ** 2) for g in grads.values())) for grads in opt.grads]
    assert len(norms) == 2 and max(norms) == pytest.approx(1.0, rel=1e-5)  # clipped


def test_truncated_backward_of_an_empty_sequence_and_in_float32(rng):
    params, x, h0, dhs = random_problem(rng, 2, 0, 2, 3)
    _, cache = sequence.rnn_forward(x, h0, **params)
    dx, dh0, dW_ih, dW_hh, db_ih, db_hh = truncated.rnn_backward_truncated(dhs, cache, 2)
    assert dx.shape == (2, 0, 2)
    assert dh0.shape == (2, 3) and dh0.dtype == np.float64 and not dh0.any()
    assert all(np.array_equal(g, np.zeros_like(g)) for g in (dW_ih, dW_hh, db_ih, db_hh))
    params, x, h0, dhs = random_problem(rng, 2, 5, 2, 3)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    _, cache = sequence.rnn_forward(x.astype(np.float32), h0.astype(np.float32), **p32)
    grads = truncated.rnn_backward_truncated(dhs.astype(np.float32), cache, 2)
    assert all(g.dtype == np.float32 for g in grads)
