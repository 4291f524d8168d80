"""What hidden tests call: compare a student's function with the reference implementation.

Every check draws its inputs when grading runs, from a seed chosen then (and printed in the
message, so a failure can be reproduced), so an answer cannot be fitted to known inputs. A failed
check raises :class:`GradingError` (an ``AssertionError``, which nbgrader scores as 0 for that cell)
with a message that says what differs: the call, the input shapes, which output, its shape, the
largest error and where it is. An answer that merely calls the rnnlib reference fails with a message
that says so.
"""
import secrets
import sys
from contextlib import contextmanager

import numpy as np

from checks.allowlist import reference_in_message


class GradingError(AssertionError):
    """A check failed; the message is meant for the student."""


def describe_args(args):
    """``[('x', array)]`` -> ``"x (3, 4) float64"`` for messages."""
    parts = []
    for name, value in args:
        if isinstance(value, np.ndarray):
            parts.append(f"{name} {value.shape} {value.dtype}")
        else:
            parts.append(f"{name}={value!r}")
    return ", ".join(parts)


def compare_arrays(label, got, expected, rtol, atol):
    """Raise :class:`GradingError` unless ``got`` matches the array ``expected``."""
    if isinstance(got, tuple):
        raise GradingError(f"{label}: expected one array of shape {np.shape(expected)}, got a tuple of {len(got)} values")
    if not isinstance(got, (np.ndarray, np.generic, float, int, list)):
        raise GradingError(f"{label}: expected an array of shape {np.shape(expected)}, got {type(got).__name__}")
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradingError(f"{label}: could not be read as an array of numbers") from None
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise GradingError(f"{label}: expected shape {expected.shape}, got shape {got.shape}")
    if not np.all(np.isfinite(got)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
        raise GradingError(f"{label}: contains {got[where]} at index {where}")
    err = np.abs(got - expected)
    bad = err > atol + rtol * np.abs(expected)
    if np.any(bad):
        where = np.unravel_index(np.argmax(np.where(bad, err, -1)), err.shape)
        where = tuple(int(i) for i in where)
        raise GradingError(
            f"{label}: {int(bad.sum())} of {bad.size} values differ; largest error {err.max():.3g}; "
            f"at index {where} got {got[where]:.6g}, expected {expected[where]:.6g}")


def fresh_values(args):
    """The values of ``[(name, value)]``, arrays copied: each call gets inputs nobody has written into."""
    return [np.copy(v) if isinstance(v, np.ndarray) else v for _, v in args]


def check_returned(name, got, output_names):
    """``got``, after checking that ``name`` returned a tuple or list of one value per name in ``output_names``."""
    if not isinstance(got, (tuple, list)) or len(got) != len(output_names):
        n = len(got) if isinstance(got, (tuple, list)) else 1
        raise GradingError(f"{name} must return {len(output_names)} values ({', '.join(output_names)}), "
                           f"it returned {n}")
    return got


def compare_outputs(name, got, expected, output_names, rtol, atol):
    """Compare one output or a tuple of outputs, naming each one in messages."""
    if len(output_names) == 1:
        compare_arrays(f"{name}: output {output_names[0]}", got, expected, rtol, atol)
        return
    check_returned(name, got, output_names)
    for out_name, g, e in zip(output_names, got, expected):
        compare_arrays(f"{name}: output {out_name}", g, e, rtol, atol)


def definition_code(module, value):
    """The code objects of ``value``, a function or a class (its methods), written in ``module``'s own file.

    A decorated function counts by the function it wraps: ``@torch.no_grad()`` gives every function it
    decorates, the student's too, the same wrapper code. Code the module only shares is left out: the
    methods of a namedtuple class are those of every namedtuple."""
    import inspect
    import os

    candidates = list(vars(value).values()) if inspect.isclass(value) else [value]
    functions = [inspect.unwrap(f) for f in candidates if inspect.isfunction(f)]

    def stem(path):  # (a module installed without its source runs from mod.pyc beside where mod.py was)
        return os.path.splitext(os.path.realpath(path))[0]

    return {f.__code__ for f in functions if stem(f.__code__.co_filename) == stem(module.__file__)}


def reference_code():
    """The code objects of the rnnlib reference, :data:`checks.allowlist.REFERENCE` (a class with all
    its methods): what a student might call instead of writing the answer.

    Watched only where the student's code runs in this process (tests, plain nbgrader). In the course's
    sandbox the reference a problem set grades is not importable at all (``build_student_rnnlib``), and
    nothing the student's kernel reports counts."""
    import importlib

    from checks.allowlist import REFERENCE

    codes = set()
    for module_name, names in REFERENCE.items():
        if module_name.startswith("rnnlib.torch.") and module_name not in sys.modules:
            continue  # not imported, so not called (and importing it would import torch)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:  # (a name missing from rnnlib fails loudly: it would leave a reference unwatched)
            codes |= definition_code(module, getattr(module, name))
    return codes


def reference_call_error(name, called):
    """The error of an answer ``name`` that called the reference functions ``called`` (their names)."""
    return GradingError(f"{name} calls the rnnlib reference ({', '.join(sorted(set(called)))}) instead of "
                        f"computing the answer itself: this part scores 0")


def forbid_calls(fn, name, codes):
    """``fn``, raising :func:`reference_call_error` if a call of it runs any of the code objects ``codes``.

    Use with ``check_function(..., allow_reference=True)``: this watch then replaces the check's own."""
    def run(*args):
        with watch_calls(codes) as called:
            out = fn(*args)
        if called:
            raise reference_call_error(name, called)
        return out

    return run


@contextmanager
def watch_calls(codes):
    """Record, in the yielded list, any call in this process to a function whose code object is in ``codes``."""
    seen = []

    def profiler(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.append(frame.f_code.co_name)

    previous = sys.getprofile()
    sys.setprofile(profiler)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


def matching_slip(slips, args, got, expected, output_names, rtol, atol):
    """The sentence naming the first known slip that explains the wrong outputs of ``got``: every output
    that differs from ``expected`` equals that slip's output, computed here on the same ``args``; or ``""``."""
    def same(a, b):
        try:
            compare_arrays("", a, b, rtol, atol)
        except GradingError:
            return False
        return True

    single = len(output_names) == 1
    got, expected = ((got,), (expected,)) if single else (got, expected)
    if not isinstance(got, (tuple, list)) or len(got) != len(output_names):
        return ""
    wrong = [k for k in range(len(output_names)) if not same(got[k], expected[k])]
    for slip_name, slip_fn in (slips or {}).items():
        try:
            slipped = slip_fn(*fresh_values(args))
        except Exception:  # noqa: BLE001 (a slip that does not apply to these inputs)
            continue
        slipped = (slipped,) if single else slipped
        if wrong and all(same(got[k], slipped[k]) for k in wrong):
            names = [output_names[k] for k in wrong]
            names = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            return f"\nYour {names} {'is' if len(wrong) == 1 else 'are'} what you get with {slip_name}."
    return ""


def check_function(student_fn, reference_fn, make_inputs, *, name, output_names=("output",), trials=3,
                   rtol=1e-6, atol=1e-8, allow_reference=False, slips=None):
    """Check ``student_fn`` against ``reference_fn`` on ``trials`` fresh random inputs.

    make_inputs(rng) -> list of ``(argument name, value)`` passed positionally to both functions.
    ``slips`` maps a known mistake, said as "the result with ...", e.g. ``"b_hh left out"``, to a function
    with the reference's signature that makes that mistake: a wrong answer that matches one is told so.
    Returns the number of trials passed (all of them); raises :class:`GradingError` otherwise.
    """
    if not callable(student_fn):
        raise GradingError(f"{name} is not a function (got {type(student_fn).__name__})")
    codes = set() if allow_reference else reference_code()
    for trial in range(trials):
        seed = secrets.randbits(32)
        args = make_inputs(np.random.default_rng(seed))
        expected = reference_fn(*fresh_values(args))
        call = f"{name}({describe_args(args)}) [seed {seed}]"
        try:
            with watch_calls(codes) as called:
                got = student_fn(*fresh_values(args))
        except NotImplementedError:
            raise GradingError(f"{name} is not implemented yet (it raised NotImplementedError)") from None
        except Exception as exc:  # the student's error, reported as a message
            missing = reference_in_message(exc) if type(exc).__name__ == "NotAvailable" else None
            if missing:  # the sandbox's restricted rnnlib: the reference is not there to call
                called.append(missing)
            else:
                raise GradingError(f"{call} raised {type(exc).__name__}: {exc}") from None
        if called:
            raise reference_call_error(name, called)
        try:
            compare_outputs(name, got, expected, output_names, rtol, atol)
        except GradingError as err:
            slip = matching_slip(slips, args, got, expected, output_names, rtol, atol)
            raise GradingError(f"for {call}:\n{err}{slip}") from None
    return trials


def check_backward_through_forward(student_forward, student_backward, reference_forward, reference_backward,
                                   make_inputs, *, check_forward, n_upstream, output_names, keep, slips=None):
    """Check a student's backward on the cache of the student's own forward.

    A cache is of the student's own design, so a backward can only be graded together with the forward
    that made it: each side (student, reference) runs its forward on the forward's arguments, takes the
    forward's last output as the cache and calls its backward as ``backward(*upstream, cache)``. The
    backward's outputs at indices ``keep`` are compared; ``output_names`` names all of them, in order.
    ``make_inputs(rng)`` draws the forward's arguments followed by the ``n_upstream`` upstream gradients.

    ``check_forward()`` (the forward's own checks) runs first: if it fails, the message says that the
    forward must be fixed before its backward can be graded. Messages name the two functions as the
    reference functions are named (``lstm_step_forward``, ``lstm_step_backward``). ``slips`` maps a
    known mistake to a backward with the reference backward's signature (it gets the reference's cache).
    """
    forward_name, backward_name = reference_forward.__name__, reference_backward.__name__
    try:
        check_forward()
    except GradingError as err:
        raise GradingError(f"{backward_name} is graded on the cache of YOUR {forward_name}, which is not "
                           f"right yet; fix it first. Its check says:\n{err}") from None

    def student(*args):
        *_, cache = student_forward(*args[:-n_upstream])
        grads = check_returned(backward_name, student_backward(*args[-n_upstream:], cache), output_names)
        return tuple(grads[k] for k in keep)

    def through_reference_forward(backward):
        def run(*args):
            *_, cache = reference_forward(*args[:-n_upstream])
            grads = backward(*args[-n_upstream:], cache)
            return tuple(grads[k] for k in keep)
        return run

    return check_function(student, through_reference_forward(reference_backward), make_inputs,
                          name=f"{forward_name} then {backward_name}", output_names=tuple(output_names[k] for k in keep),
                          slips={slip: through_reference_forward(fn) for slip, fn in (slips or {}).items()})


def random_rnn_args(rng, with_output=False, sequence_input=False):
    """Random shapes and float64 values for one RNN layer (and an output layer)."""
    B, T, D, H, O = (int(rng.integers(1, n)) for n in (5, 7, 5, 7, 4))
    x = rng.standard_normal((B, T, D) if sequence_input else (B, D))
    args = [("x", x), ("h0" if sequence_input else "h_prev", rng.standard_normal((B, H)) * 0.5),
            ("W_ih", rng.standard_normal((H, D)) * 0.5), ("W_hh", rng.standard_normal((H, H)) * 0.5),
            ("b_ih", rng.standard_normal(H) * 0.1), ("b_hh", rng.standard_normal(H) * 0.1)]
    if with_output:
        args += [("W_out", rng.standard_normal((O, H))), ("b_out", rng.standard_normal(O))]
    return args


def check_value(name, got, expected, *, rtol=0.0, atol=5e-3):
    """Check a number or array a student computed (for example by hand) against the expected one."""
    if got is None or got is Ellipsis:
        raise GradingError(f"{name} has no value yet")
    compare_arrays(name, got, expected, rtol, atol)
    return True
