"""rnnlib.optim against torch.optim and torch.nn.utils, float64, several steps."""
import numpy as np
import pytest
import torch

from rnnlib.optim import SGD, Adam, Momentum, clip_grad_norm, clip_grad_value

SHAPES = {"W_ih": (4, 3), "W_hh": (4, 4), "b_ih": (4,), "b_hh": (4,), "W_out": (2, 4), "b_out": (2,)}


def rel_err(a, b):
    return np.max(np.abs(a - b) / np.maximum(1e-12, np.abs(a) + np.abs(b)))


def make_params(rng, dtype=np.float64):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def run_both(ours_cls, torch_cls, ours_kw, torch_kw, n_steps=6, seed=0):
    """Apply the same random gradients to both optimisers; return the largest relative error."""
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    ours = ours_cls(params, **ours_kw)
    theirs = torch_cls(list(tparams.values()), **torch_kw)
    worst = 0.0
    for _ in range(n_steps):
        grads = {k: rng.standard_normal(v.shape) * 3.0 for k, v in params.items()}
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k].copy())
        ours.step(grads)
        theirs.step()
        for k in params:
            worst = max(worst, rel_err(params[k], tparams[k].detach().numpy()))
    return worst


def test_sgd_matches_torch():
    assert run_both(SGD, torch.optim.SGD, {"lr": 0.1}, {"lr": 0.1}) < 1e-7


@pytest.mark.parametrize("mu", [0.9, 0.5])
def test_momentum_matches_torch(mu):
    err = run_both(Momentum, torch.optim.SGD, {"lr": 0.05, "momentum": mu}, {"lr": 0.05, "momentum": mu})
    assert err < 1e-7


@pytest.mark.parametrize("kw", [{}, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}])
def test_adam_matches_torch(kw):
    assert run_both(Adam, torch.optim.Adam, kw, kw, n_steps=10) < 1e-7


def test_steps_update_the_arrays_in_place_and_keep_float32(rng):
    for opt_cls in (SGD, Momentum, Adam):
        params = make_params(rng, np.float32)
        before = {k: v for k, v in params.items()}
        copies = {k: v.copy() for k, v in params.items()}
        opt = opt_cls(params, lr=0.1)
        opt.step({k: np.ones_like(v) for k, v in params.items()})
        for k in params:
            assert params[k] is before[k]  # same array object, changed in place
            assert params[k].dtype == np.float32
            assert not np.allclose(params[k], copies[k])


def test_sgd_one_step_by_hand():
    params = {"w": np.array([1.0, -2.0])}
    SGD(params, lr=0.5).step({"w": np.array([2.0, 4.0])})
    np.testing.assert_array_equal(params["w"], [0.0, -4.0])


def test_adam_first_step_is_lr_times_sign():
    # After one step m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
    g = np.array([3.0, -0.5, 1e-3])
    params = {"w": np.zeros(3)}
    Adam(params, lr=0.1).step({"w": g})
    np.testing.assert_allclose(params["w"], -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(params["w"][:2], [-0.1, 0.1], rtol=1e-7)


def test_bad_grads_raise_naming_the_argument(rng):
    params = make_params(rng)
    opt = Adam(params)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    grads["W_hh"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"grads\['W_hh'\]: expected shape \(4, 4\), got \(4, 3\)"):
        opt.step(grads)
    missing = {k: np.zeros_like(v) for k, v in params.items() if k != "b_out"}
    with pytest.raises(ValueError, match="grads: expected keys"):
        opt.step(missing)
    wrong_dtype = {k: np.zeros_like(v, dtype=np.float32) for k, v in params.items()}
    with pytest.raises(ValueError, match=r"grads\['W_ih'\]: expected dtype float64"):
        opt.step(wrong_dtype)
    with pytest.raises(ValueError, match="params"):
        SGD({"w": [1.0, 2.0]}, lr=0.1)


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e6])
def test_clip_grad_norm_matches_torch(rng, max_norm):
    grads = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    tensors = []
    for v in grads.values():
        t = torch.zeros(v.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(v.copy())
        tensors.append(t)
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    norm = clip_grad_norm(grads, max_norm)
    assert isinstance(norm, float)
    assert abs(norm - expected_norm) / expected_norm < 1e-12
    for v, t in zip(grads.values(), tensors):
        assert rel_err(v, t.grad.numpy()) < 1e-12
    after = np.sqrt(sum(np.sum(v * v) for v in grads.values()))
    assert after <= max_norm + 1e-9 or max_norm > expected_norm


def test_clip_grad_norm_value_and_direction():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # global norm 5
    norm = clip_grad_norm(grads, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(grads["a"], [3.0 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(grads["b"], [[4.0 / (5 + 1e-6)]])
    small = {"a": np.array([0.3, 0.4])}
    assert clip_grad_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small["a"], [0.3, 0.4])  # below the threshold: untouched


def test_clip_grad_value_matches_torch(rng):
    grads = {k: rng.standard_normal(s) * 2 for k, s in SHAPES.items()}
    tensors = []
    for v in grads.values():
        t = torch.zeros(v.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(v.copy())
        tensors.append(t)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    before = {k: v for k, v in grads.items()}
    assert clip_grad_value(grads, 0.7) is None
    for k, t in zip(grads, tensors):
        assert grads[k] is before[k]
        np.testing.assert_array_equal(grads[k], t.grad.numpy())
        assert np.abs(grads[k]).max() <= 0.7


def test_value_clipping_changes_direction_norm_clipping_does_not():
    g1 = {"w": np.array([10.0, 1.0])}
    g2 = {"w": np.array([10.0, 1.0])}
    clip_grad_norm(g1, 1.0)
    clip_grad_value(g2, 1.0)
    assert g1["w"][0] / g1["w"][1] == pytest.approx(10.0)
    np.testing.assert_array_equal(g2["w"], [1.0, 1.0])
