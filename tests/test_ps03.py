"""ps03 graded for plausible wrong answers: partial credit and messages that say what is wrong; and the
cache layouts the notebook documents are rnnlib's."""
import numpy as np

from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, solution_answers
from rnnlib import cells, sequence

FORWARD_DIFFERENCE = '''def numerical_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    f0 = f()
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        grad[i] = (f() - f0) / eps          # one-sided: O(eps) error
        x[i] = old
    return grad
'''
GRADIENT_CALLS_REFERENCE = '''import rnnlib.gradcheck

def numerical_gradient(f, x, eps=1e-6):
    return rnnlib.gradcheck.numerical_gradient(f, x, eps)
'''
STEP_CALLS_REFERENCE = '''from rnnlib import cells

def rnn_step_backward(dh, cache):
    return cells.rnn_step_backward(dh, cache)
'''
# The seed's second bug: hs[:, t - 1] at t = 0 is the LAST state, not h0.
BPTT_WRAPS_AROUND = '''def rnn_backward(dhs, cache):
    x, h0, hs, W_ih, W_hh = cache
    T = hs.shape[1]
    dx = np.zeros_like(x)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(hs.shape[2])
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        step = rnn_step_backward(dhs[:, t] + dh_next, (x[:, t], hs[:, t - 1], hs[:, t], W_ih, W_hh))
        dx[:, t], dh_next = step[0], step[1]
        dW_ih += step[2]
        dW_hh += step[3]
        db += step[4]
    return dx, dh_next, dW_ih, dW_hh, db, db.copy()
'''


def only_second_fix(good_fix):
    """The repaired backward with fix 1 undone (dW_hh uses the state after step t again)."""
    fixed_line = "dW_hh += da.T @ (hs[:, t - 1] if t > 0 else h0)"
    assert fixed_line in good_fix
    return good_fix.replace(fixed_line, "dW_hh += da.T @ hs[:, t]")


def test_documented_caches_are_rnnlib_caches(rng):
    """The notebook documents the cache tuples; the checks build them from rnnlib's outputs."""
    x, h, W_ih, W_hh, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((4, 3)), \
        rng.standard_normal((4, 4)), rng.standard_normal(4)
    h1, cache = cells.rnn_step_forward(x, h, W_ih, W_hh, b, b)
    assert len(cache) == 5 and all(c is v for c, v in zip(cache, (x, h, h1, W_ih, W_hh)))
    xs = rng.standard_normal((2, 5, 3))
    hs, cache = sequence.rnn_forward(xs, None, W_ih, W_hh, b, b)
    assert len(cache) == 5 and cache[0] is xs and cache[2] is hs and cache[3] is W_ih and cache[4] is W_hh
    assert np.array_equal(cache[1], np.zeros((2, 4)))


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps03")
    make_submission(course, "ps03", "wrong", {**good, "numgrad": FORWARD_DIFFERENCE, "seq": BPTT_WRAPS_AROUND,
                                               "bugs-fix": only_second_fix(good["bugs-fix"])})
    make_submission(course, "ps03", "copier", {**good, "numgrad": GRADIENT_CALLS_REFERENCE,
                                                "step": STEP_CALLS_REFERENCE})
    cells_, totals = autograde(course, "ps03")

    wrong = cells_["wrong"]
    assert wrong["test-numgrad"][0] == 0 and wrong["test-seq"][0] == 0 and wrong["test-bugs"][0] == 0
    assert wrong["test-step"][0] == 3
    assert totals["wrong"] == 3
    assert "numerical_gradient: output gradient" in wrong["test-numgrad"][2]
    assert "rnn_backward: output dW_hh" in wrong["test-seq"][2]
    assert "fixed_backward: output dW_hh" in wrong["test-bugs"][2]

    copier = cells_["copier"]
    assert copier["test-numgrad"][0] == 0
    # In the grading sandbox rnnlib.gradcheck.numerical_gradient is a five-point stencil (checks/allowlist.py,
    # SUBSTITUTES): an answer that calls it is off by O(eps^2) from the two-point difference asked for.
    assert "numerical_gradient: output gradient" in copier["test-numgrad"][2]
    # ... and rnnlib.cells has no rnn_step_backward there: the message says why
    assert copier["test-step"][0] == 0 and "calls the rnnlib reference" in copier["test-step"][2]
    # rnn_backward calls the student's rnn_step_backward, which calls the reference: also 0.
    assert copier["test-seq"][0] == 0
    assert totals["copier"] == 4
    html = feedback_html(course, "wrong", "ps03")
    assert "output dW_hh" in html and "checks.fixed_backward" not in html


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
import pytest  # noqa: E402

from checks import ps03 as checks  # noqa: E402
from checks.grading import GradingError  # noqa: E402
from nbgrader_helpers import run_answers  # noqa: E402
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

GOOD = solution_answers("ps03")
# (answer cell, text replaced in the solution, slipped text, visible test, fragment of its message,
#  grading check, fragment of its message)
SLIPS = [
    ("numgrad", "(f_plus - f_minus) / (2 * eps)", "(f_plus - f_minus) / eps", "test-numgrad", "(2 eps)", None, None),
    ("step", "da = dh * (1.0 - h ** 2)", "da = dh * (1.0 - h_prev ** 2)", "test-step", "the state AFTER the step",
     "rnn_step_backward", "the tanh derivative taken at h_prev"),
    ("step", "da.T @ h_prev", "h_prev.T @ da", "test-step", "not transposed (h_prev.T @ da)", "rnn_step_backward",
     r"dW_hh transposed \(h_prev.T @ da\)"),
    ("step", "db = da.sum(axis=0)", "db = da", "test-step", "sum da over the batch (axis 0)", None, None),
    ("seq", "h_prev = hs[:, t - 1] if t > 0 else h0", "h_prev = hs[:, t - 1]", "test-seq",
     "the state entering step 0 is h0", "rnn_backward", "instead of h0"),
    ("seq", "for t in reversed(range(T)):", "for t in range(T):", "test-seq", "loop backwards", "rnn_backward",
     "the loop over time not reversed"),
    ("seq", "rnn_step_backward(dhs[:, t] + dh_next,", "rnn_step_backward(dh_next,", "test-seq", "add dhs[:, t]",
     None, None),
    ("seq", "step = rnn_step_backward(dhs[:, t] + dh_next,", "dhs[:, t] += dh_next\n        step = rnn_step_backward(dhs[:, t],",
     "test-seq", "rnn_backward changed dhs", None, None),
]
CHECKS = {"rnn_step_backward": checks.rnn_step_backward, "rnn_backward": checks.rnn_backward}


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    check_slip("ps03", cell, [(old, new)], test_id, visible, check and CHECKS[check], graded, (check,))


@pytest.mark.parametrize("undo, graded", [("first", "only the recurrence fixed"), ("second", "only dW_hh fixed")])
def test_half_fixed_backward_is_named(undo, graded, fixed_grading_seeds):
    fix = GOOD["bugs-fix"]
    if undo == "first":
        fix = only_second_fix(fix)
    else:
        fix = fix.replace("dh_next = da @ W_hh", "dh_next = dh @ W_hh")
    namespace = run_answers(*{**GOOD, "bugs-fix": fix}.values())
    with pytest.raises(GradingError, match=graded):
        checks.fixed_backward(namespace["fixed_backward"])


def _probe_and_solution():
    from visible_helpers import run_notebook

    namespace = run_notebook("ps03")[1]
    return namespace["gradient_probe"], namespace["numerical_gradient"]


def test_numerical_gradient_that_calls_the_reference_scores_0(fixed_grading_seeds):
    """Run in this process (plain nbgrader), the probe reports who called f: rnnlib's own numerical_gradient
    is named and the part scores 0."""
    from rnnlib import gradcheck

    probe, _ = _probe_and_solution()
    with pytest.raises(GradingError, match=r"calls the rnnlib reference \(rnnlib\.gradcheck\.numerical_gradient\)"):
        checks.numerical_gradient(lambda f, x, eps=1e-6: gradcheck.numerical_gradient(f, x, eps), probe)


@pytest.mark.parametrize("relative, absolute", [(3e-7, 0.0), (-3e-7, 0.0), (0.0, 5e-9)])
def test_numerical_gradient_is_graded_to_1e_7(relative, absolute, fixed_grading_seeds):
    """The same central difference with the same eps agrees with the reference to rounding (about 1e-12
    relative), so the check is tight (rtol 1e-7, atol 1e-9): an answer off by 3e-7 relative, or by 5e-9
    where the gradient is small, fails it."""
    probe, solution = _probe_and_solution()
    checks.numerical_gradient(solution, probe)

    def slightly_off(f, x, eps=1e-6):
        return solution(f, x, eps) * (1 + relative) + absolute

    with pytest.raises(GradingError, match="output gradient"):
        checks.numerical_gradient(slightly_off, probe)
