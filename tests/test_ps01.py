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
HAND_T1_ROUNDED_WRONG = '''s1 = np.array([0.56, -0.30])
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
    assert wrong["test-hand-t0"][0] == 2 and wrong["test-count"][0] == 2
    assert wrong["test-step"][0] == 0 and wrong["test-split"][0] == 0 and wrong["test-hand-t1"][0] == 0
    # The forward pass uses the student's own (wrong) rnn_step, so it fails too.
    assert wrong["test-forward"][0] == 0
    assert totals["wrong"] == 4
    assert "largest error" in wrong["test-step"][2] and "rnn_step" in wrong["test-step"][2]
    # untransposed weights: a shape error, or (when H == D) wrong values
    assert "split_weights: output W_ih:" in wrong["test-split"][2]
    assert "s1 (state at t1)" in wrong["test-hand-t1"][2]

    copier = cells["copier"]
    assert copier["test-step"][0] == 0
    assert "calls the rnnlib reference" in copier["test-step"][2]
    # The forward pass calls the student's rnn_step, which calls the reference: also 0.
    assert totals["copier"] == 14 - 3 - 3
    html = feedback_html(course, "wrong", "ps01")
    assert "largest error" in html and "checks.rnn_step" not in html
