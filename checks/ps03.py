"""Checks for problem set 3 (chapter 4, backpropagation through time).

The backward functions receive caches made from the outputs of the rnnlib reference forward pass, in
the layouts the notebook documents (the same tuples as rnnlib's own caches)::

    rnn_step_backward(dh, cache)    cache = (x, h_prev, h, W_ih, W_hh)
    rnn_backward(dhs, cache)        cache = (x, h0, hs, W_ih, W_hh)            (h0 an array, zeros if None)
    fixed_backward(dys, cache)      cache = (x, h0, hs, W_ih, W_hh, W_out)     (RNN + linear output layer)

so a student's backward is graded on its own, whatever their forward pass keeps.

``numerical_gradient(f, x, eps)`` takes a function ``f`` of no arguments that reads ``x``. When the
course's grader runs hidden tests outside the student's kernel, a function cannot be sent to the
kernel, so the notebook defines ``gradient_probe`` (a locked cell): it builds ``f`` in the kernel from
plain numbers, calls the student's ``numerical_gradient`` and returns the gradient, ``x`` after the call
(it must be restored) and the names of the functions that called ``f`` (to tell whether the student's
function just called ``rnnlib.gradcheck.numerical_gradient``).
"""
import numpy as np

from rnnlib import cells, gradcheck, sequence
from checks.grading import GradingError, check_function, random_rnn_args

GRADIENT_NAMES = ("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")
SEQUENCE_GRADIENT_NAMES = ("dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh")
MODEL_GRADIENT_NAMES = SEQUENCE_GRADIENT_NAMES + ("dW_out", "db_out")


class Cache(tuple):
    """A cache tuple that messages show as the shapes of its arrays."""

    names = ()

    def __repr__(self):
        parts = [f"{n} {np.shape(v)}" for n, v in zip(self.names, self)]
        return "(" + ", ".join(parts) + ")"


def make_cache(names, values):
    cache = Cache(values)
    cache.names = names
    return cache


def step_inputs(rng):
    args = dict(random_rnn_args(rng))
    h, _ = cells.rnn_step_forward(*args.values())
    cache = make_cache(("x", "h_prev", "h", "W_ih", "W_hh"),
                       (args["x"], args["h_prev"], h, args["W_ih"], args["W_hh"]))
    return [("dh", rng.standard_normal(h.shape)), ("cache", cache)]


# Known slips, each with the reference's signature: the grader says so when a wrong answer matches one.

def _step_slip(*, transposed_dW=False, derivative_at_h_prev=False, no_derivative=False):
    def backward(dh, cache):
        x, h_prev, h, W_ih, W_hh = cache
        da = dh if no_derivative else dh * (1.0 - (h_prev if derivative_at_h_prev else h) ** 2)
        dW_ih, dW_hh = (x.T @ da, h_prev.T @ da) if transposed_dW else (da.T @ x, da.T @ h_prev)
        return da @ W_ih, da @ W_hh, dW_ih, dW_hh, da.sum(axis=0), da.sum(axis=0)
    return backward


def step_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the tanh derivative taken at h_prev, not at h (1 - h_prev**2)": _step_slip(derivative_at_h_prev=True),
        "the tanh derivative (1 - h**2) left out": _step_slip(no_derivative=True),
        "dW_hh transposed (h_prev.T @ da)": _step_slip(transposed_dW=True),
    }


def _bptt_slip(*, dW_hh_state="entering", forward_loop=False, recurrence_from_dh=False):
    """BPTT with a slip: ``dW_hh_state`` "wrap" (hs[:, t - 1] also at t = 0) or "after" (hs[:, t]), the
    loop over time in forward order, or the gradient sent to the previous step from dh instead of da."""
    def backward(dhs, cache):
        x, h0, hs, W_ih, W_hh = cache
        B, T, H = hs.shape
        dx, dW_ih, dW_hh, db = np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(H)
        dh_next = np.zeros((B, H))
        for t in (range(T) if forward_loop else reversed(range(T))):
            h_prev = {"entering": hs[:, t - 1] if t > 0 else h0, "wrap": hs[:, t - 1], "after": hs[:, t]}[dW_hh_state]
            dh = dhs[:, t] + dh_next
            da = dh * (1.0 - hs[:, t] ** 2)
            dx[:, t] = da @ W_ih
            dW_ih += da.T @ x[:, t]
            dW_hh += da.T @ h_prev
            db += da.sum(axis=0)
            dh_next = (dh if recurrence_from_dh else da) @ W_hh
        return dx, dh_next, dW_ih, dW_hh, db, db.copy()
    return backward


def bptt_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the state entering step 0 taken as hs[:, t - 1] = hs[:, -1] (the last state) instead of h0":
            _bptt_slip(dW_hh_state="wrap"),
        "the loop over time not reversed": _bptt_slip(forward_loop=True),
        "the gradient sent to step t - 1 from dh_t instead of da_t (the tanh skipped on the way back)":
            _bptt_slip(recurrence_from_dh=True),
    }


def rnn_step_backward(rnn_step_backward):
    check_function(rnn_step_backward, lambda dh, cache: cells.rnn_step_backward(dh, tuple(cache)), step_inputs,
                   name="rnn_step_backward", output_names=GRADIENT_NAMES, slips=step_slips())


def sequence_inputs(rng, last_only=False):
    args = dict(random_rnn_args(rng, sequence_input=True))
    hs, _ = sequence.rnn_forward(*args.values())
    cache = make_cache(("x", "h0", "hs", "W_ih", "W_hh"), (args["x"], args["h0"], hs, args["W_ih"], args["W_hh"]))
    dhs = rng.standard_normal(hs.shape)
    if last_only:  # a many-to-one loss: only the last state gets a gradient from above
        dhs[:, :-1] = 0.0
    return [("dhs", dhs), ("cache", cache)]


def rnn_backward(rnn_backward):
    reference = lambda dhs, cache: sequence.rnn_backward(dhs, tuple(cache))  # noqa: E731
    check_function(rnn_backward, reference, sequence_inputs, name="rnn_backward",
                   output_names=SEQUENCE_GRADIENT_NAMES, slips=bptt_slips())
    check_function(rnn_backward, reference, lambda rng: sequence_inputs(rng, last_only=True), name="rnn_backward",
                   output_names=SEQUENCE_GRADIENT_NAMES, trials=2, slips=bptt_slips())


# ------------------------------------------------------------------------------------------------
# Central differences

def probe_function(x, A, c):
    """The function the probe builds (the same formula as the notebook's ``gradient_probe``)."""
    return float(np.sum(c * np.tanh(x @ A)) + np.sum(x ** 3) / 3)


def probe_inputs(rng):
    n, d, k = (int(rng.integers(1, m)) for m in (5, 5, 4))
    return [("x", rng.standard_normal((n, d))), ("A", rng.standard_normal((d, k))),
            ("c", rng.standard_normal((n, k))), ("eps", float(rng.uniform(0.01, 0.05)))]


def numerical_gradient_reference(x, A, c, eps):
    grad = gradcheck.numerical_gradient(lambda: probe_function(x, A, c), x, eps)
    return grad, x


def numerical_gradient(numerical_gradient, gradient_probe):
    """Grade ``numerical_gradient`` through the notebook's ``gradient_probe`` on random functions
    ``f(x) = sum(c * tanh(x @ A)) + sum(x**3) / 3`` with a random step ``eps`` in [0.01, 0.05] (large
    enough that ignoring ``eps`` or using a one-sided difference is visible)."""
    if not callable(numerical_gradient):
        raise GradingError(f"numerical_gradient is not a function (got {type(numerical_gradient).__name__})")
    if not callable(gradient_probe):
        raise GradingError("gradient_probe, defined in a locked cell of the notebook, is missing or was "
                           "overwritten: run the notebook from the top")
    callers = set()

    def student(x, A, c, eps):
        out = gradient_probe(numerical_gradient, x, A, c, eps)
        try:
            grad, x_after, called_by = out
        except (TypeError, ValueError):
            raise GradingError("gradient_probe (a locked cell) was changed: restore it") from None
        callers.update(str(name) for name in called_by)
        return grad, x_after

    check_function(student, numerical_gradient_reference, probe_inputs, name="numerical_gradient",
                   output_names=("gradient", "x after the call (numerical_gradient must restore x)"),
                   rtol=1e-7, atol=1e-9)
    used = sorted(name for name in callers if name.startswith("rnnlib."))
    if used:
        raise GradingError(f"numerical_gradient calls the rnnlib reference ({', '.join(used)}) instead of "
                           f"computing the answer itself: this part scores 0")


# ------------------------------------------------------------------------------------------------
# Find the two bugs: an RNN with a linear output layer at every step

def model_inputs(rng):
    args = dict(random_rnn_args(rng, with_output=True, sequence_input=True))
    W_out, b_out = args.pop("W_out"), args.pop("b_out")
    hs, _ = sequence.rnn_forward(*args.values())
    ys, _ = sequence.linear_forward(hs, W_out, b_out)
    cache = make_cache(("x", "h0", "hs", "W_ih", "W_hh", "W_out"),
                       (args["x"], args["h0"], hs, args["W_ih"], args["W_hh"], W_out))
    return [("dys", rng.standard_normal(ys.shape)), ("cache", cache)]


def model_backward_reference(dys, cache):
    """Gradients of an RNN + linear output layer, from rnnlib's linear_backward and rnn_backward."""
    x, h0, hs, W_ih, W_hh, W_out = cache
    _, linear_cache = sequence.linear_forward(hs, W_out, np.zeros(W_out.shape[0]))  # the bias plays no part
    dhs, dW_out, db_out = sequence.linear_backward(dys, linear_cache)
    return sequence.rnn_backward(dhs, (x, h0, hs, W_ih, W_hh)) + (dW_out, db_out)


def _model_slip(bptt):
    """The model's gradients with the recurrence's part computed by ``bptt`` (a slipped rnn_backward)."""
    def backward(dys, cache):
        x, h0, hs, W_ih, W_hh, W_out = cache
        _, linear_cache = sequence.linear_forward(hs, W_out, np.zeros(W_out.shape[0]))
        dhs, dW_out, db_out = sequence.linear_backward(dys, linear_cache)
        return bptt(dhs, (x, h0, hs, W_ih, W_hh)) + (dW_out, db_out)
    return backward


def model_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "only the recurrence fixed (dW_hh still uses hs[:, t], the state after step t)":
            _model_slip(_bptt_slip(dW_hh_state="after")),
        "only dW_hh fixed (the gradient to step t - 1 still from dh, not da)": _model_slip(_bptt_slip(recurrence_from_dh=True)),
        "dW_hh taken from hs[:, t - 1] also at t = 0 (the last state, not h0)": _model_slip(_bptt_slip(dW_hh_state="wrap")),
    }


def fixed_backward(fixed_backward):
    check_function(fixed_backward, model_backward_reference, model_inputs, name="fixed_backward",
                   output_names=MODEL_GRADIENT_NAMES, slips=model_slips())
