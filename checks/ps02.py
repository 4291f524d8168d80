"""Checks for problem set 2 (chapter 3, a NumPy RNN): the step and sequence forward passes with
rnnlib's signatures, and the two losses.

Only the first output of the forward functions (``h``, ``hs``) is graded: a student's cache may hold
whatever their own backward pass needs.
"""
import numpy as np

from rnnlib import cells, losses, sequence
from checks.grading import GradingError, check_function, random_rnn_args


def _what(value):
    """A short description of a returned value, for messages."""
    if isinstance(value, np.ndarray):
        return f"one array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    return f"a {type(value).__name__}"


def first_of_pair(fn, name, first):
    """Wrap ``fn`` (which must return ``(first, cache)``) so that the wrapper returns ``first`` only."""
    if not callable(fn):
        raise GradingError(f"{name} is not a function (got {type(fn).__name__})")

    def call(*args):
        out = fn(*args)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise GradingError(f"{name} must return a pair ({first}, cache); it returned {_what(out)}")
        return out[0]

    return call


def _step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return cells.rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)[0]


# Known slips, each with the reference's signature: the grader says so when a wrong answer matches one.
STEP_SLIPS = {
    "b_hh left out": lambda x, h, W_ih, W_hh, b_ih, b_hh: _step(x, h, W_ih, W_hh, b_ih, 0 * b_hh),
    "b_ih left out": lambda x, h, W_ih, W_hh, b_ih, b_hh: _step(x, h, W_ih, W_hh, 0 * b_ih, b_hh),
    "W_hh not transposed (h_prev @ W_hh)": lambda x, h, W_ih, W_hh, b_ih, b_hh: _step(x, h, W_ih, W_hh.T, b_ih, b_hh),
    "no tanh": lambda x, h, W_ih, W_hh, b_ih, b_hh: np.arctanh(_step(x, h, W_ih, W_hh, b_ih, b_hh)),
}


def _forward_slip(step_slip=None, from_h0_every_step=False, ignore_h0=False):
    """A sequence forward that repeats a step slip, starts every step from h0, or ignores h0."""
    def forward(x, h0, W_ih, W_hh, b_ih, b_hh):
        B, T, _ = x.shape
        h0 = np.zeros((B, W_hh.shape[0])) if h0 is None or ignore_h0 else h0
        h, hs = h0, []
        for t in range(T):
            h = (step_slip or _step)(x[:, t], h0 if from_h0_every_step else h, W_ih, W_hh, b_ih, b_hh)
            hs.append(h)
        return np.stack(hs, axis=1)
    return forward


def forward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        **{name: _forward_slip(step_slip=fn) for name, fn in STEP_SLIPS.items()},
        "h0 ignored (every sequence starts from zeros)": _forward_slip(ignore_h0=True),
        "the state not carried from step to step (every step starts from h0)": _forward_slip(from_h0_every_step=True),
    }


def rnn_step_forward(rnn_step_forward):
    check_function(first_of_pair(rnn_step_forward, "rnn_step_forward", "h"), _step, random_rnn_args,
                   name="rnn_step_forward", output_names=("h",), slips=STEP_SLIPS)


def rnn_forward(rnn_forward):
    student = first_of_pair(rnn_forward, "rnn_forward", "hs")
    reference = lambda *a: sequence.rnn_forward(*a)[0]  # noqa: E731

    def with_h0(rng):
        return random_rnn_args(rng, sequence_input=True)

    def without_h0(rng):
        args = random_rnn_args(rng, sequence_input=True)
        args[1] = ("h0", None)
        return args

    check_function(student, reference, with_h0, name="rnn_forward", output_names=("hs",), slips=forward_slips())
    check_function(student, reference, without_h0, name="rnn_forward", output_names=("hs",), trials=2,
                   slips=forward_slips())


def _loss_shape(rng):
    """(B, C) for a many-to-one output or (B, T, C) for a many-to-many output."""
    B, T, C = (int(rng.integers(1, n)) for n in (6, 6, 7))
    return (B, C) if rng.random() < 0.5 else (B, T, C)


def _rescaled(loss_fn, factor):
    """``loss_fn`` with its loss and gradient multiplied by ``factor(first argument, second argument)``."""
    def wrong(a, b):
        loss, grad = loss_fn(a, b)
        f = factor(a, b)
        return loss * f, grad * f
    return wrong


def mse_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {  # the more specific first: with B = 1 the first two are the same
        "the mean over the first axis only (divided by B, not by the number of elements)":
            _rescaled(losses.mse, lambda p, y: p.size / p.shape[0]),
        "a sum instead of a mean": _rescaled(losses.mse, lambda p, y: p.size),
        "the factor 2 left out of the gradient": lambda p, y: (losses.mse(p, y)[0], losses.mse(p, y)[1] / 2),
    }


def ce_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {  # the gradient's slip first: with the loss right, "a sum" would explain its dlogits as well
        "the gradient not divided by the number of positions":
            lambda z, k: (losses.softmax_cross_entropy(z, k)[0], losses.softmax_cross_entropy(z, k)[1] * k.size),
        "the mean over B only, not over all B * T positions":
            _rescaled(losses.softmax_cross_entropy, lambda z, k: k.size / k.shape[0]),
        "a sum instead of a mean": _rescaled(losses.softmax_cross_entropy, lambda z, k: k.size),
    }


def mse(mse):
    def inputs(rng):
        shape = _loss_shape(rng)
        return [("pred", rng.standard_normal(shape)), ("target", rng.standard_normal(shape))]

    check_function(mse, losses.mse, inputs, name="mse", output_names=("loss", "dpred"), slips=mse_slips())


def _ce_inputs(scale, huge=False):
    def inputs(rng):
        shape = _loss_shape(rng)
        C = shape[-1] + 1  # at least 2 classes
        shape = shape[:-1] + (C,)
        logits = rng.standard_normal(shape) * scale
        if huge:  # at least one logit above 1000: exp overflows to inf in float64
            logits.flat[rng.integers(logits.size)] = scale * (1.0 + rng.random())
        return [("logits", logits), ("targets", rng.integers(0, C, shape[:-1]))]

    return inputs


def softmax_cross_entropy(softmax_cross_entropy):
    check_function(softmax_cross_entropy, losses.softmax_cross_entropy, _ce_inputs(2.0),
                   name="softmax_cross_entropy", output_names=("loss", "dlogits"), slips=ce_slips())


def softmax_cross_entropy_stable(softmax_cross_entropy):
    """Logits in the hundreds and thousands: ``exp`` overflows unless the maximum is subtracted."""
    check_function(softmax_cross_entropy, losses.softmax_cross_entropy, _ce_inputs(1000.0, huge=True),
                   name="softmax_cross_entropy", output_names=("loss", "dlogits"))
