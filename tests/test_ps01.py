"""ps01 graded for plausible wrong answers: partial credit and messages that say what is wrong."""
from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, solution_answers

WRONG_STEP = '''def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T)   # forgot b_hh
'''
CALLS_REFERENCE = '''from rnnlib.cells import rnn_step_forward

def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)[0]
'''
UNTRANSPOSED_SPLIT = '''def split_weights(W, hidden_size):
    return W[hidden_size:], W[:hidden_size]   # forgot the transposes
'''
HAND_T1_ROUNDED_WRONG = '''h1 = np.array([0.56, -0.30])
y1 = 1.30
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps01")
    make_submission(course, "ps01", "wrong", {**good, "step": WRONG_STEP, "split": UNTRANSPOSED_SPLIT,
                                               "hand-t1": HAND_T1_ROUNDED_WRONG})
    make_submission(course, "ps01", "copier", {**good, "step": CALLS_REFERENCE})
    cells, totals = autograde(course, "ps01")

    wrong = cells["wrong"]
    assert wrong["test-hand-t0"][0] == 2 and wrong["test-padded"][0] == 2
    assert wrong["test-step"][0] == 0 and wrong["test-split"][0] == 0 and wrong["test-hand-t1"][0] == 0
    # The forward pass uses the student's own (wrong) rnn_step, so it fails too.
    assert wrong["test-forward"][0] == 0
    assert totals["wrong"] == 4
    assert "largest error" in wrong["test-step"][2] and "rnn_step" in wrong["test-step"][2]
    # untransposed weights: a shape error, or (when H == D) wrong values
    assert "split_weights: output W_ih:" in wrong["test-split"][2]
    assert "h1 (state at t1)" in wrong["test-hand-t1"][2]

    copier = cells["copier"]
    assert copier["test-step"][0] == 0
    assert "calls the rnnlib reference" in copier["test-step"][2]
    # The forward pass calls the student's rnn_step, which calls the reference: also 0.
    assert totals["copier"] == 14 - 3 - 3
    html = feedback_html(course, "wrong", "ps01")
    assert "largest error" in html and "checks.rnn_step" not in html


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
import pytest  # noqa: E402

import numpy as np  # noqa: E402

from checks import ps01 as checks  # noqa: E402
from checks.grading import GradingError  # noqa: E402
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

# (answer cell, text in the solution, slipped text, visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("hand-t0", "np.array([0.0, 0.0, X[0]])", "np.array([X[0], 0.0, 0.0])", "test-hand-t0", "not [x, h]", None, None),
    ("hand-t1", "np.concatenate([h0, [X[1]]])", "np.array([0.0, 0.0, X[1]])", "test-hand-t1",
     "not the initial state", None, None),
    ("hand-t1", "np.concatenate([h0, [X[1]]])", "np.concatenate([a0, [X[1]]])", "test-hand-t1",
     "not the pre-activation a0", None, None),
    ("step", "return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)", "return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T)",
     "test-step", "is b_hh added?", "rnn_step", "b_hh left out"),
    ("step", "return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)", "return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh + b_hh)",
     "test-step", "is W_hh transposed?", "rnn_step", "W_hh not transposed"),
    ("forward", "    h = h0\n", "    h = np.zeros_like(h0)\n", "test-forward", "start from h0 (not zeros)", None, None),
    ("forward", "h = rnn_step(x[:, t], h,", "h = rnn_step(x[:, t], h0,", "test-forward",
     "does step 1 start from the state after step 0?", None, None),
    ("padded", "hs[np.arange(hs.shape[0]), np.asarray(lengths) - 1]", "hs[:, -1]", "test-padded",
     "hs[:, -1] is the state after the padding", "last_states", "the state after the padding"),
    ("padded", "np.asarray(lengths) - 1]", "np.minimum(lengths, hs.shape[1] - 1)]", "test-padded", "off-by-one",
     "last_states", "one step too far"),
]


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    check_slip("ps01", cell, [(old, new)], test_id, visible, check and getattr(checks, check), graded, (check,))


@pytest.mark.parametrize("check, reference", [(checks.split_weights, checks.split_weights_reference),
                                              (checks.last_states, checks.last_states_reference)])
def test_slicing_answers_are_graded_exactly(check, reference, fixed_grading_seeds):
    """split_weights and last_states only pick values out of their input, so they are compared exactly:
    a value one rounding step away (an answer that recomputes instead of slicing) is not a copy."""
    check(reference)

    def one_step_off(*args):
        out = reference(*args)
        return tuple(np.nextafter(o, np.inf) for o in out) if isinstance(out, tuple) else np.nextafter(out, np.inf)

    with pytest.raises(GradingError, match="values differ"):
        check(one_step_off)
