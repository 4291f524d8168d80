"""Checks for problem set 6 (chapter 7): one LSTM step, forward and backward.

Design: students write BOTH ``lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh) -> (h, c,
cache)`` and ``lstm_step_backward(dh, dc, cache) -> (dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih,
db_hh)`` with a cache of their own design. The backward is graded by calling the student's forward
and then the student's backward on the same fresh inputs, and comparing the gradients with rnnlib's.
A correct student therefore never depends on the layout of rnnlib's cache. Because the backward is
graded through the student's forward, its checks first check that forward and say so if it is wrong.
"""

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


def forward_h(lstm_step_forward):
    """The new hidden state ``h`` of the student's forward (first output)."""
    check_function(lambda *a: _three_values(lstm_step_forward)(*a)[0], lambda *a: _reference_forward(*a)[0],
                   random_lstm_args, name="lstm_step_forward", output_names=("h",))


def forward_c(lstm_step_forward):
    """The new cell state ``c`` of the student's forward (second output)."""
    check_function(lambda *a: _three_values(lstm_step_forward)(*a)[1], lambda *a: _reference_forward(*a)[1],
                   random_lstm_args, name="lstm_step_forward", output_names=("c",))


def _check_backward(lstm_step_forward, lstm_step_backward, keep):
    def check_forward():
        forward_h(lstm_step_forward)
        forward_c(lstm_step_forward)

    check_backward_through_forward(lstm_step_forward, lstm_step_backward, cells.lstm_step_forward,
                                   cells.lstm_step_backward, lambda rng: random_lstm_args(rng, with_upstream=True),
                                   check_forward=check_forward, n_upstream=2, output_names=BACKWARD_OUTPUTS, keep=keep)


def backward_inputs(lstm_step_forward, lstm_step_backward):
    """``dx``, ``dh_prev``, ``dc_prev``: the gradients that flow to the input and to the previous step."""
    _check_backward(lstm_step_forward, lstm_step_backward, (0, 1, 2))


def backward_weights(lstm_step_forward, lstm_step_backward):
    """``dW_ih``, ``dW_hh``, ``db_ih``, ``db_hh`` in torch's shapes and gate order."""
    _check_backward(lstm_step_forward, lstm_step_backward, (3, 4, 5, 6))

