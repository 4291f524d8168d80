"""rnnlib.jacobian.state_jacobian_norms against the Jacobians of torch autograd."""
import numpy as np
import pytest
import torch

from rnnlib import gradcheck
from rnnlib.torch import torch_io
from rnnlib.jacobian import state_jacobian_norms

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_norms(module, x, state):
    """||∂s_T/∂s_{T-k}||_2 for k = 0..T-1, each Jacobian from torch.autograd.functional.jacobian."""
    T, H = x.shape[0], module.hidden_size
    xt = torch.tensor(x)[None]  # (1, T, D)
    lstm = isinstance(module, torch.nn.LSTM)
    zeros = torch.zeros(1, 1, H, dtype=torch.float64)
    states = [(zeros, zeros)]  # states[t]: (h_t, c_t) after t steps
    for t in range(T):
        _, s = module(xt[:, t:t + 1], states[-1] if lstm else states[-1][0])
        states.append(s if lstm else (s, zeros))
    norms = []
    for k in range(T):
        h_t, c_t = states[T - k]

        def last_state(s_t):
            h, c = (h_t, s_t) if state == "c" else (s_t, c_t)
            for t in range(T - k, T):
                _, out = module(xt[:, t:t + 1], (h, c) if lstm else h)
                h, c = out if lstm else (out, c)
            return (c if state == "c" else h).reshape(H)

        jac = torch.autograd.functional.jacobian(last_state, (c_t if state == "c" else h_t).detach())
        norms.append(torch.linalg.matrix_norm(jac.reshape(H, H), ord=2).item())
    return np.array(norms)


@pytest.mark.parametrize("kind,state", [("rnn", "h"), ("gru", "h"), ("lstm", "h"), ("lstm", "c")])
def test_state_jacobian_norms_match_torch_autograd(rng, kind, state):
    T, D, H = 6, 2, 5
    torch.manual_seed(1)
    module = MODULES[kind](D, H, batch_first=True).double()
    params = torch_io.from_torch(module)
    params["b_ih"] += 1.0  # move off the initialisation so that gates are not all near 1/2
    torch_io.to_torch(params, module)
    x = rng.standard_normal((T, D))
    got = state_jacobian_norms(kind, x, params, state)
    assert got.shape == (T,) and got[0] == 1.0
    assert gradcheck.rel_error(got, torch_norms(module, x, state)) < 1e-10


def test_state_jacobian_norms_rnn_is_the_product_of_step_jacobians(rng):
    """For the RNN, ∂h_T/∂h_t = prod of W_hh^T diag(1 - h^2) factors (row-vector convention)."""
    T, D, H = 5, 3, 4
    p = {"W_ih": rng.standard_normal((H, D)), "W_hh": rng.standard_normal((H, H)) / 2,
         "b_ih": rng.standard_normal(H), "b_hh": np.zeros(H)}
    x = rng.standard_normal((T, D))
    hs, h = [], np.zeros(H)
    for t in range(T):
        h = np.tanh(x[t] @ p["W_ih"].T + h @ p["W_hh"].T + p["b_ih"])
        hs.append(h)
    jac, expected = np.eye(H), [1.0]
    for t in range(T - 1, 0, -1):  # d h_{t+1} / d h_t = diag(1 - h_{t+1}^2) W_hh, in column form
        jac = jac @ (np.diag(1 - hs[t] ** 2) @ p["W_hh"])
        expected.append(np.linalg.norm(jac, 2))
    np.testing.assert_allclose(state_jacobian_norms("rnn", x, p), expected, rtol=1e-10)


@pytest.mark.parametrize("kind,x_shape,state,message", [
    ("tanh", (4, 3), "h", "kind: expected 'rnn', 'lstm' or 'gru', got 'tanh'"),
    ("gru", (4, 3), "c", "state: expected 'h', got 'c'"),
    ("lstm", (4, 3), "z", "state: expected 'h' or 'c', got 'z'"),
    ("rnn", (1, 4, 3), "h", "x: expected shape (?, 3), got (1, 4, 3)"),
    ("rnn", (4, 2), "h", "x: expected shape (?, 3), got (4, 2)"),
])
def test_state_jacobian_norms_bad_arguments_raise_value_error(rng, kind, x_shape, state, message):
    gates = {"lstm": 4, "gru": 3}.get(kind, 1)
    p = {"W_ih": np.zeros((gates * 4, 3)), "W_hh": np.zeros((gates * 4, 4)), "b_ih": np.zeros(gates * 4),
         "b_hh": np.zeros(gates * 4)}
    with pytest.raises(ValueError) as err:
        state_jacobian_norms(kind, np.zeros(x_shape), p, state)
    assert message in str(err.value)


@pytest.mark.parametrize("kind,state", [("rnn", "h"), ("gru", "h"), ("lstm", "h"), ("lstm", "c")])
def test_state_jacobian_norms_in_float32(rng, kind, state):
    """float32 inputs and weights work (the states start in x's dtype) and agree with float64."""
    from rnnlib import cells
    p = cells.init_params(3, 4, rng, gates={"rnn": 1, "lstm": 4, "gru": 3}[kind])
    x = rng.standard_normal((6, 3))
    norms64 = state_jacobian_norms(kind, x, p, state)
    norms32 = state_jacobian_norms(kind, x.astype(np.float32), {k: v.astype(np.float32) for k, v in p.items()}, state)
    np.testing.assert_allclose(norms32, norms64, rtol=1e-4)
