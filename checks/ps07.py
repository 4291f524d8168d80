"""Checks for problem set 7 (chapter 8): one GRU step, forward and backward, and Cho et al.'s form.

Same design as ps06: students write ``gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh) -> (h,
cache)`` and ``gru_step_backward(dh, cache) -> (dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)`` with a cache
of their own design; the backward is graded by calling the student's forward and then the student's
backward on the same fresh inputs, so a correct answer never depends on rnnlib's cache layout.
"""
import numpy as np

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


# Known slips, each with the reference's signature: the grader says so when a wrong answer matches one.

def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _forward_slip(order=(0, 1, 2), reset_before=False, b_hn_outside=False, z_swapped=False, with_b_hh=True,
                  n_act=np.tanh):
    def forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
        H = h_prev.shape[1]
        b_hh = b_hh if with_b_hh else np.zeros_like(b_hh)
        a_i = np.split(x @ W_ih.T + b_ih, 3, axis=1)
        a_h = np.split(h_prev @ W_hh.T, 3, axis=1)
        b_h = np.split(b_hh, 3)
        (a_ir, a_iz, a_in), (a_hr, a_hz, a_hn), (b_hr, b_hz, b_hn) = ([p[k] for k in order] for p in (a_i, a_h, b_h))
        W_hn = W_hh[order[2] * H:(order[2] + 1) * H]
        r, z = _sigmoid(a_ir + a_hr + b_hr), _sigmoid(a_iz + a_hz + b_hz)
        if reset_before:
            n = n_act(a_in + (r * h_prev) @ W_hn.T + b_hn)
        elif b_hn_outside:
            n = n_act(a_in + r * a_hn + b_hn)
        else:
            n = n_act(a_in + r * (a_hn + b_hn))
        return z * n + (1 - z) * h_prev if z_swapped else (1 - z) * n + z * h_prev
    return forward


def forward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the reset gate applied to h_prev before the product (Cho et al.'s form, not torch's)":
            _forward_slip(reset_before=True),
        "b_hn outside the reset product": _forward_slip(b_hn_outside=True),
        "z and 1 - z swapped (h = z * n + (1 - z) * h_prev)": _forward_slip(z_swapped=True),
        "the gates read in the order z, r, n": _forward_slip(order=(1, 0, 2)),
        "b_hh left out": _forward_slip(with_b_hh=False),
        "a sigmoid for n instead of tanh": _forward_slip(n_act=_sigmoid),
    }


def _backward_slip(*, hidden_n_without_r=False, no_direct_path=False, reset_without_b_hn=False):
    """The backward (rnnlib's cache) with a slip in the reset gate's gradient or the split of da_n by r."""
    def backward(dh, cache):
        x, h_prev, r, z, n, a_hn, W_ih, W_hh = cache
        H = h_prev.shape[1]
        da_n = dh * (1 - z) * (1 - n ** 2)
        da_z = dh * (h_prev - n) * z * (1 - z)
        hn = h_prev @ W_hh[2 * H:].T if reset_without_b_hn else a_hn
        da_r = da_n * hn * r * (1 - r)
        da_i = np.concatenate([da_r, da_z, da_n], axis=1)
        da_h = np.concatenate([da_r, da_z, da_n if hidden_n_without_r else da_n * r], axis=1)
        dh_prev = da_h @ W_hh + (0.0 if no_direct_path else dh * z)
        return da_i @ W_ih, dh_prev, da_i.T @ x, da_h.T @ h_prev, da_i.sum(axis=0), da_h.sum(axis=0)
    return backward


def backward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "da_n, not da_n * r, in the n rows of the hidden part (r scales h_prev @ W_hn.T + b_hn)":
            _backward_slip(hidden_n_without_r=True),
        "the direct path from h_prev to h_t (through z * h_prev) left out": _backward_slip(no_direct_path=True),
        "the reset gate's gradient taken with h_prev @ W_hn.T, without b_hn": _backward_slip(reset_without_b_hn=True),
    }


def forward_h(gru_step_forward):
    """The new hidden state of the student's forward."""
    check_function(_first_of_two(gru_step_forward), lambda *a: cells.gru_step_forward(*a)[0], random_gru_args,
                   name="gru_step_forward", output_names=("h",), slips=forward_slips())


def _check_backward(gru_step_forward, gru_step_backward, keep):
    check_backward_through_forward(gru_step_forward, gru_step_backward, cells.gru_step_forward,
                                   cells.gru_step_backward, lambda rng: random_gru_args(rng, with_upstream=True),
                                   check_forward=lambda: forward_h(gru_step_forward), n_upstream=1,
                                   output_names=BACKWARD_OUTPUTS, keep=keep, slips=backward_slips())


def backward_inputs(gru_step_forward, gru_step_backward):
    """``dx`` and ``dh_prev``."""
    _check_backward(gru_step_forward, gru_step_backward, (0, 1))


def backward_input_weights(gru_step_forward, gru_step_backward):
    """``dW_ih`` and ``db_ih``."""
    _check_backward(gru_step_forward, gru_step_backward, (2, 4))


def backward_hidden_weights(gru_step_forward, gru_step_backward):
    """``dW_hh`` and ``db_hh`` (where ``b_hn`` inside the reset product differs from ``b_in``)."""
    _check_backward(gru_step_forward, gru_step_backward, (3, 5))


def forward_cho(gru_step_forward_cho):
    """Cho et al.'s GRU: the reset applied to h_prev before the product, b_hn outside it."""
    check_function(gru_step_forward_cho, forward_slips()["the reset gate applied to h_prev before the product (Cho et "
                                                       "al.'s form, not torch's)"], random_gru_args,
                   name="gru_step_forward_cho", output_names=("h",),
                   slips={"torch's form (the reset after the product)": lambda *a: cells.gru_step_forward(*a)[0]})
