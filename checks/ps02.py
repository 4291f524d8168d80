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


def rnn_step_forward(rnn_step_forward):
    check_function(first_of_pair(rnn_step_forward, "rnn_step_forward", "h"),
                   lambda *a: cells.rnn_step_forward(*a)[0], random_rnn_args,
                   name="rnn_step_forward", output_names=("h",))


def rnn_forward(rnn_forward):
    student = first_of_pair(rnn_forward, "rnn_forward", "hs")
    reference = lambda *a: sequence.rnn_forward(*a)[0]  # noqa: E731

    def with_h0(rng):
        return random_rnn_args(rng, sequence_input=True)

    def without_h0(rng):
        args = random_rnn_args(rng, sequence_input=True)
        args[1] = ("h0", None)
        return args

    check_function(student, reference, with_h0, name="rnn_forward", output_names=("hs",))
    check_function(student, reference, without_h0, name="rnn_forward", output_names=("hs",), trials=2)


def _loss_shape(rng):
    """(B, C) for a many-to-one output or (B, T, C) for a many-to-many output."""
    B, T, C = (int(rng.integers(1, n)) for n in (6, 6, 7))
    return (B, C) if rng.random() < 0.5 else (B, T, C)


def mse(mse):
    def inputs(rng):
        shape = _loss_shape(rng)
        return [("pred", rng.standard_normal(shape)), ("target", rng.standard_normal(shape))]

    check_function(mse, losses.mse, inputs, name="mse", output_names=("loss", "dpred"))


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
                   name="softmax_cross_entropy", output_names=("loss", "dlogits"))


def softmax_cross_entropy_stable(softmax_cross_entropy):
    """Logits in the hundreds and thousands: ``exp`` overflows unless the maximum is subtracted."""
    check_function(softmax_cross_entropy, losses.softmax_cross_entropy, _ce_inputs(1000.0, huge=True),
                   name="softmax_cross_entropy", output_names=("loss", "dlogits"))
