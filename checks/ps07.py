"""Checks for problem set 7 (chapter 8): one GRU step, forward and backward, and parameter counts.

Same design as ps06: students write ``gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh) -> (h,
cache)`` and ``gru_step_backward(dh, cache) -> (dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)`` with a cache
of their own design; the backward is graded by calling the student's forward and then the student's
backward on the same fresh inputs, so a correct answer never depends on rnnlib's cache layout.
"""
from rnnlib import cells
from checks.grading import check_backward_through_forward, check_function, check_returned

BACKWARD_OUTPUTS = ("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")


def random_gru_args(rng, with_upstream=False):
    """Random shapes and float64 values for one GRU step (and an upstream gradient ``dh``)."""
    B, D, H = (int(rng.integers(1, n)) for n in (5, 5, 7))
    args = [("x", rng.standard_normal((B, D))), ("h_prev", rng.standard_normal((B, H)) * 0.5),
            ("W_ih", rng.standard_normal((3 * H, D)) * 0.5), ("W_hh", rng.standard_normal((3 * H, H)) * 0.5),
            ("b_ih", rng.standard_normal(3 * H) * 0.5), ("b_hh", rng.standard_normal(3 * H) * 0.5)]
    if with_upstream:
        args.append(("dh", rng.standard_normal((B, H))))
    return args


def _first_of_two(student_forward):
    """``student_forward`` returning only ``h``, after checking that it returns ``(h, cache)``."""
    def forward(*args):
        return check_returned("gru_step_forward", student_forward(*args), ("h", "cache"))[0]
    return forward


def forward_h(gru_step_forward):
    """The new hidden state of the student's forward."""
    check_function(_first_of_two(gru_step_forward), lambda *a: cells.gru_step_forward(*a)[0], random_gru_args,
                   name="gru_step_forward", output_names=("h",))


def _check_backward(gru_step_forward, gru_step_backward, keep):
    check_backward_through_forward(gru_step_forward, gru_step_backward, cells.gru_step_forward,
                                   cells.gru_step_backward, lambda rng: random_gru_args(rng, with_upstream=True),
                                   check_forward=lambda: forward_h(gru_step_forward), n_upstream=1,
                                   output_names=BACKWARD_OUTPUTS, keep=keep)


def backward_inputs(gru_step_forward, gru_step_backward):
    """``dx`` and ``dh_prev``."""
    _check_backward(gru_step_forward, gru_step_backward, (0, 1))


def backward_input_weights(gru_step_forward, gru_step_backward):
    """``dW_ih`` and ``db_ih``."""
    _check_backward(gru_step_forward, gru_step_backward, (2, 4))


def backward_hidden_weights(gru_step_forward, gru_step_backward):
    """``dW_hh`` and ``db_hh`` (where ``b_hn`` inside the reset product differs from ``b_in``)."""
    _check_backward(gru_step_forward, gru_step_backward, (3, 5))


def torch_param_count(module_name, input_size, hidden_size):
    """Parameters of ``torch.nn.<module_name>(input_size, hidden_size)``, counted on the module."""
    import torch

    module = getattr(torch.nn, module_name)(input_size, hidden_size)
    return sum(p.numel() for p in module.parameters())


def param_counts(gru_param_count, lstm_param_count):
    def inputs(rng):
        return [("input_size", int(rng.integers(1, 300))), ("hidden_size", int(rng.integers(1, 300)))]

    check_function(gru_param_count, lambda D, H: torch_param_count("GRU", D, H), inputs, name="gru_param_count",
                   output_names=("count",), rtol=0, atol=0)
    check_function(lstm_param_count, lambda D, H: torch_param_count("LSTM", D, H), inputs,
                   name="lstm_param_count", output_names=("count",), rtol=0, atol=0)
