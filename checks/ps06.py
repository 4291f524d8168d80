"""Checks for problem set 6 (chapter 7): one LSTM step, forward and backward.

Design: students write BOTH ``lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh) -> (h, c,
cache)`` and ``lstm_step_backward(dh, dc, cache) -> (dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih,
db_hh)`` with a cache of their own design. The backward is graded by calling the student's forward
and then the student's backward on the same fresh inputs, and comparing the gradients with rnnlib's.
A correct student therefore never depends on the layout of rnnlib's cache. Because the backward is
graded through the student's forward, its checks first check that forward and say so if it is wrong.
"""

import numpy as np

from rnnlib import cells
from checks.grading import check_backward_through_forward, check_function, check_returned

FORWARD_OUTPUTS = ("h", "c", "cache")
BACKWARD_OUTPUTS = ("dx", "dh_prev", "dc_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")


def random_lstm_args(rng, with_upstream=False):
    """Random shapes and float64 values for one LSTM step (and upstream gradients ``dh``, ``dc``)."""
    B, D, H = (int(rng.integers(1, n)) for n in (5, 5, 7))
    args = [("x", rng.standard_normal((B, D))), ("h_prev", rng.standard_normal((B, H)) * 0.5),
            ("c_prev", rng.standard_normal((B, H))),
            ("W_ih", rng.standard_normal((4 * H, D)) * 0.5), ("W_hh", rng.standard_normal((4 * H, H)) * 0.5),
            ("b_ih", rng.standard_normal(4 * H) * 0.1), ("b_hh", rng.standard_normal(4 * H) * 0.1)]
    if with_upstream:
        args += [("dh", rng.standard_normal((B, H))), ("dc", rng.standard_normal((B, H)))]
    return args


def _three_values(student_forward):
    """``student_forward`` returning only ``(h, c)``, after checking that it returns three values."""
    def forward(*args):
        h, c, _ = check_returned("lstm_step_forward", student_forward(*args), FORWARD_OUTPUTS)
        return h, c
    return forward


def _reference_forward(*args):
    h, c, _ = cells.lstm_step_forward(*args)
    return h, c


# Known slips, each with the reference's signature: the grader says so when a wrong answer matches one.

def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _forward_slip(order=(0, 1, 2, 3), g_act=np.tanh, tanh_on_c=True, input_gate=True, with_b_hh=True):
    """The step with its gate blocks read in ``order`` (of i, f, g, o), or another slip."""
    def forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
        a = np.split(x @ W_ih.T + b_ih + h_prev @ W_hh.T + (b_hh if with_b_hh else 0.0), 4, axis=1)
        a_i, a_f, a_g, a_o = (a[k] for k in order)
        c = _sigmoid(a_f) * c_prev + (_sigmoid(a_i) if input_gate else 1.0) * g_act(a_g)
        return _sigmoid(a_o) * (np.tanh(c) if tanh_on_c else c), c
    return forward


def forward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the gates read in the order i, f, o, g (CS231n's) instead of torch's i, f, g, o": _forward_slip(order=(0, 1, 3, 2)),
        "the gates read in the order f, i, g, o": _forward_slip(order=(1, 0, 2, 3)),
        "b_hh left out": _forward_slip(with_b_hh=False),
        "a sigmoid for g instead of tanh": _forward_slip(g_act=_sigmoid),
        "h = o * c (no tanh on c)": _forward_slip(tanh_on_c=False),
        "the input gate left out (c = f * c_prev + g)": _forward_slip(input_gate=False),
    }


def _backward_slip(*, dc_only=False, dc_prev_from_dc=False, forget_with_c=False):
    """The backward (rnnlib's cache) with the path through h_t left out of delta c, dc_prev = dc * f,
    or the forget gate's gradient taken with c_t instead of c_{t-1}."""
    def backward(dh, dc, cache):
        x, h_prev, c_prev, i, f, g, o, tanh_c, W_ih, W_hh = cache
        delta_c = dc if dc_only else dc + dh * o * (1.0 - tanh_c ** 2)
        c_for_f = np.arctanh(tanh_c) if forget_with_c else c_prev
        da = np.concatenate([delta_c * g * i * (1 - i), delta_c * c_for_f * f * (1 - f), delta_c * i * (1 - g ** 2),
                             dh * tanh_c * o * (1 - o)], axis=1)
        db = da.sum(axis=0)
        return da @ W_ih, da @ W_hh, (dc if dc_prev_from_dc else delta_c) * f, da.T @ x, da.T @ h_prev, db, db
    return backward


def backward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "dc_prev = dc * f (the path from the loss through h_t = o * tanh(c_t) to c_t left out)":
            _backward_slip(dc_prev_from_dc=True),
        "the path through h_t left out of the cell's gradient (dc alone)": _backward_slip(dc_only=True),
        "the forget gate's gradient taken with c_t instead of c_{t-1}": _backward_slip(forget_with_c=True),
    }


def forward_h(lstm_step_forward):
    """The new hidden state ``h`` of the student's forward (first output)."""
    check_function(lambda *a: _three_values(lstm_step_forward)(*a)[0], lambda *a: _reference_forward(*a)[0],
                   random_lstm_args, name="lstm_step_forward", output_names=("h",),
                   slips={k: (lambda fn: lambda *a: fn(*a)[0])(fn) for k, fn in forward_slips().items()})


def forward_c(lstm_step_forward):
    """The new cell state ``c`` of the student's forward (second output)."""
    check_function(lambda *a: _three_values(lstm_step_forward)(*a)[1], lambda *a: _reference_forward(*a)[1],
                   random_lstm_args, name="lstm_step_forward", output_names=("c",),
                   slips={k: (lambda fn: lambda *a: fn(*a)[1])(fn) for k, fn in forward_slips().items()})


def _check_backward(lstm_step_forward, lstm_step_backward, keep):
    def check_forward():
        forward_h(lstm_step_forward)
        forward_c(lstm_step_forward)

    check_backward_through_forward(lstm_step_forward, lstm_step_backward, cells.lstm_step_forward,
                                   cells.lstm_step_backward, lambda rng: random_lstm_args(rng, with_upstream=True),
                                   check_forward=check_forward, n_upstream=2, output_names=BACKWARD_OUTPUTS, keep=keep,
                                   slips=backward_slips())


def backward_inputs(lstm_step_forward, lstm_step_backward):
    """``dx``, ``dh_prev``, ``dc_prev``: the gradients that flow to the input and to the previous step."""
    _check_backward(lstm_step_forward, lstm_step_backward, (0, 1, 2))


def backward_weights(lstm_step_forward, lstm_step_backward):
    """``dW_ih``, ``dW_hh``, ``db_ih``, ``db_hh`` in torch's shapes and gate order."""
    _check_backward(lstm_step_forward, lstm_step_backward, (3, 4, 5, 6))

