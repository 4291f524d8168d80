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


def exact_message(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize("cls", [SGD, Momentum, Adam])
def test_optimisers_check_params_and_grads_with_exact_messages(cls):
    kw = {"lr": 0.1}
    exact_message(lambda: cls([np.zeros(2)], **kw), "params: expected a non-empty dict of arrays, got list")
    exact_message(lambda: cls({}, **kw), "params: expected a non-empty dict of arrays, got dict")
    exact_message(lambda: cls({"w": [1.0]}, **kw),
                  "params['w']: expected a NumPy array (updated in place), got list")
    exact_message(lambda: cls({"w": np.zeros(2, dtype=np.int64)}, **kw),
                  "params['w']: expected dtype float32 or float64, got int64")
    params = {"a": np.zeros(2), "b": np.zeros((1, 2))}
    opt = cls(params, **kw)
    exact_message(lambda: opt.step({"a": np.zeros(2)}), "grads: expected keys ['a', 'b'], got ['a']")
    exact_message(lambda: opt.step([np.zeros(2)]), "grads: expected keys ['a', 'b'], got list")
    exact_message(lambda: opt.step({"a": np.zeros(2), "b": np.zeros(2)}),
                  "grads['b']: expected shape (1, 2), got (2,)")
    exact_message(lambda: opt.step({"a": np.zeros(2, dtype=np.float32), "b": np.zeros((1, 2))}),
                  "grads['a']: expected dtype float64 (the parameter's), got float32")
    exact_message(lambda: opt.step({"a": np.zeros(2, dtype=np.int64), "b": np.zeros((1, 2))}),
                  "grads['a']: expected dtype float32 or float64, got int64")


@pytest.mark.parametrize("clip", [clip_grad_norm, clip_grad_value])
def test_clipping_checks_its_argument_and_writes_back_into_the_dict(clip):
    exact_message(lambda: clip([np.zeros(2)], 1.0), "grads: expected a non-empty dict of arrays, got list")
    exact_message(lambda: clip({}, 1.0), "grads: expected a non-empty dict of arrays, got dict")
    exact_message(lambda: clip({"w": np.zeros(2, dtype=np.int64)}, 1.0),
                  "grads['w']: expected dtype float32 or float64, got int64")
    grads = {"w": [3.0, -4.0]}  # a list: clipped into a new array, which the dict must hold afterwards
    clip(grads, 1.0)
    assert isinstance(grads["w"], np.ndarray)
    expected = [0.6, -0.8] if clip is clip_grad_norm else [1.0, -1.0]
    np.testing.assert_allclose(grads["w"], expected, rtol=1e-6)


def test_clipping_keeps_float32_and_updates_in_place():
    for clip, max_value in ((clip_grad_norm, 1.0), (clip_grad_value, 0.5)):
        g = np.array([3.0, -4.0], dtype=np.float32)
        grads = {"w": g}
        clip(grads, max_value)
        assert grads["w"] is g and g.dtype == np.float32 and np.abs(g).max() <= 1.0


def test_defaults_are_torchs():
    """Momentum 0.9 and Adam's lr 1e-3, betas (0.9, 0.999), eps 1e-8 unless told otherwise."""
    assert run_both(Momentum, torch.optim.SGD, {"lr": 0.01}, {"lr": 0.01, "momentum": 0.9}) < 1e-12
    assert run_both(Adam, torch.optim.Adam, {}, {}) < 1e-12
    assert run_both(Adam, torch.optim.Adam, {"eps": 1e-2}, {"eps": 1e-2}) < 1e-12
    params = {"w": np.zeros(1)}
    Adam(params).step({"w": np.array([1e-9])})  # eps matters when |g| is tiny: 1e-3 * 1e-9 / (1e-9 + 1e-8)
    assert params["w"][0] == pytest.approx(-1e-3 / 11, rel=1e-6)


def test_clip_grad_norm_leaves_a_gradient_at_the_threshold_alone():
    """coef = max_norm / (norm + 1e-6) is exactly 1 here: nothing is rescaled or replaced."""
    as_given = [0.5]
    grads = {"w": as_given}
    assert clip_grad_norm(grads, 0.5 + 1e-6) == 0.5
    assert grads["w"] is as_given
