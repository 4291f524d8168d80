"""Checks for problem set 1 (chapter 2): a forward pass by hand and in code."""
import numpy as np

from rnnlib import cells, sequence
from checks.grading import check_function, check_value, random_rnn_args


# The hand-worked exercise of ps01 (seed 003's layout: [h, x] @ W with a 2-unit state, 1 input).
HAND = dict(W=np.array([[0.2, -0.3], [0.4, 0.1], [-0.5, 0.6]]), b=np.array([0.0, 0.2]),
                 w_out=np.array([2.0, -1.0]), b_out=-0.1, X=[0.5, -1.0])


def hand_reference():
    """Pre-activation at t0, states and outputs at t0 and t1 of :data:`HAND`, computed by rnnlib."""
    p, H = HAND, 2
    params = dict(W_ih=p["W"][H:].T, W_hh=p["W"][:H].T, b_ih=p["b"], b_hh=np.zeros(H))
    x = np.array(p["X"], dtype=np.float64).reshape(1, -1, 1)
    hs, _ = sequence.rnn_forward(x, None, **params)
    ys, _ = sequence.linear_forward(hs, p["w_out"][None, :], np.array([p["b_out"]]))
    a0 = x[0, 0] @ params["W_ih"].T + p["b"]
    return dict(a0=a0, h0=hs[0, 0], y0=ys[0, 0, 0], h1=hs[0, 1], y1=ys[0, 1, 0])


def by_hand_t0(a0, h0, y0):
    ref = hand_reference()
    check_value("a0 (pre-activation at t0)", a0, ref["a0"])
    check_value("h0 (state at t0)", h0, ref["h0"])
    check_value("y0 (output at t0)", y0, ref["y0"])


def by_hand_t1(h1, y1):
    ref = hand_reference()
    check_value("h1 (state at t1)", h1, ref["h1"])
    check_value("y1 (output at t1)", y1, ref["y1"])


def split_weights_reference(W, hidden_size):
    """``[h, x] @ W`` with W (H + D, H) -> PyTorch's ``(W_ih (H, D), W_hh (H, H))``."""
    return W[hidden_size:].T, W[:hidden_size].T


def split_weights(split_weights):
    def inputs(rng):
        D, H = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        return [("W", rng.standard_normal((H + D, H))), ("hidden_size", H)]

    check_function(split_weights, split_weights_reference, inputs, name="split_weights",
                   output_names=("W_ih", "W_hh"), rtol=0, atol=0)


def rnn_step(rnn_step):
    from checks.ps02 import STEP_SLIPS

    check_function(rnn_step, lambda *a: cells.rnn_step_forward(*a)[0], random_rnn_args, name="rnn_step",
                   output_names=("h",), slips=STEP_SLIPS)


def rnn_forward_output_reference(x, h0, W_ih, W_hh, b_ih, b_hh, W_out, b_out):
    hs, _ = sequence.rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh)
    ys, _ = sequence.linear_forward(hs, W_out, b_out)
    return hs, ys


def rnn_forward_output(rnn_forward_output):
    check_function(rnn_forward_output, rnn_forward_output_reference,
                   lambda rng: random_rnn_args(rng, with_output=True, sequence_input=True),
                   name="rnn_forward_output", output_names=("hs", "ys"))


def last_states_reference(hs, lengths):
    return np.stack([hs[b, L - 1] for b, L in enumerate(lengths)])


def last_states(last_states):
    def inputs(rng):
        B, T, H = (int(rng.integers(2, n)) for n in (6, 8, 5))
        lengths = rng.integers(1, T + 1, B)
        lengths[rng.integers(B)] = T  # the longest one fills the batch
        return [("hs", rng.standard_normal((B, T, H))), ("lengths", lengths)]

    check_function(last_states, last_states_reference, inputs, name="last_states", output_names=("last",),
                   rtol=0, atol=0, slips={"hs[:, -1] (the state after the padding)": lambda hs, L: hs[:, -1],
                                          "hs[b, lengths[b]] (one step too far)":
                                              lambda hs, L: hs[np.arange(len(L)), np.minimum(L, hs.shape[1] - 1)]})
