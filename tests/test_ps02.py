"""ps02 graded for plausible wrong answers: partial credit and messages that say what is wrong."""
from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, solution_answers

STEP_WITHOUT_CACHE = '''def rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)   # forgot the cache
'''
FORWARD_IGNORES_H0 = '''def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    B, T, D = x.shape
    h = np.zeros((B, W_hh.shape[0]))          # always starts from zeros, even when h0 is given
    hs = []
    for t in range(T):
        h = np.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs.append(h)
    return np.stack(hs, axis=1), None
'''
NAIVE_SOFTMAX = '''def softmax_cross_entropy(logits, targets):
    e = np.exp(logits)                        # overflows for logits above about 709
    p = e / e.sum(axis=-1, keepdims=True)
    onehot = np.eye(logits.shape[-1])[targets]
    n = targets.size
    return float(-(onehot * np.log(p)).sum() / n), (p - onehot) / n
'''
MSE_SUMS = '''def mse(pred, target):
    diff = pred - target
    return float((diff ** 2).sum()), 2.0 * diff     # a sum, not a mean
'''
MSE_CALLS_REFERENCE = '''from rnnlib import losses

def mse(pred, target):
    return losses.mse(pred, target)
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps02")
    make_submission(course, "ps02", "wrong", {**good, "step": STEP_WITHOUT_CACHE, "forward": FORWARD_IGNORES_H0,
                                               "mse": MSE_SUMS, "ce": NAIVE_SOFTMAX})
    make_submission(course, "ps02", "copier", {**good, "mse": MSE_CALLS_REFERENCE})
    cells, totals = autograde(course, "ps02")

    wrong = cells["wrong"]
    assert wrong["test-step"][0] == 0 and wrong["test-forward"][0] == 0 and wrong["test-mse"][0] == 0
    # The naive softmax is right for moderate logits and wrong (nan) for large ones: partial credit.
    assert wrong["test-ce"][0] == 3 and wrong["test-stable"][0] == 0
    assert totals["wrong"] == 3
    assert "must return a pair (h, cache)" in wrong["test-step"][2]
    assert "rnn_forward: output hs" in wrong["test-forward"][2] and "largest error" in wrong["test-forward"][2]
    assert "mse: output loss" in wrong["test-mse"][2]
    assert "softmax_cross_entropy: output loss: contains nan" in wrong["test-stable"][2]

    copier = cells["copier"]
    assert copier["test-mse"][0] == 0 and "calls the rnnlib reference (mse)" in copier["test-mse"][2]
    assert totals["copier"] == 12 - 1
    html = feedback_html(course, "wrong", "ps02")
    assert "must return a pair" in html and "checks.rnn_step_forward" not in html


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
import pytest  # noqa: E402

from checks import ps02 as checks  # noqa: E402
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

# (answer cell, text replaced in the solution, slipped text, visible test, fragment of its message,
#  grading check, fragment of its message)
SLIPS = [
    ("step", "+ b_hh)", ")", "test-step", "is b_hh added?", "rnn_step_forward", "with b_hh left out"),
    ("step", "h_prev @ W_hh.T", "h_prev @ W_hh", "test-step", "is W_hh transposed?", "rnn_step_forward",
     "W_hh not transposed"),
    ("step", "np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)", "x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh",
     "test-step", "chapter 2's first state", "rnn_step_forward", "with no tanh"),
    ("forward", "+ b_ih + b_hh", "+ b_ih", "test-forward", "is b_hh added?", "rnn_forward", "b_hh left out"),
    ("forward", "h @ W_hh.T", "h0 @ W_hh.T", "test-forward", "does step 1 start from the state after step 0",
     "rnn_forward", "the state not carried"),
    ("forward", "    h = h0\n", "    h = h0\n    h[...] = 0.0\n", "test-forward", "rnn_forward changed h0", None, None),
    ("mse", ".mean()", ".sum()", "test-mse", "the mean of the squared errors", "mse",
     "a sum instead of a mean|the mean over the first axis"),
    ("mse", "2.0 * diff / diff.size", "2.0 * diff / len(diff)", "test-mse", "N = 4, the number of elements", None, None),
    ("ce", "n = targets.size", "n = targets.shape[0]", "test-ce", "all B * T = 6 positions", "softmax_cross_entropy",
     "the mean over B only"),
    ("ce", "z = logits - logits.max(axis=-1, keepdims=True)", "logits -= logits.max(axis=-1, keepdims=True); z = logits",
     "test-ce", "changed logits", None, None),
    ("ce", "np.exp(z).sum(axis=-1, keepdims=True)", "np.exp(z).sum(axis=0, keepdims=True)", "test-ce",
     "the softmax sums over the last axis", None, None),
    ("ce", "z = logits - logits.max(axis=-1, keepdims=True)", "z = logits", "test-stable",
     "subtract the largest logit of EACH position", None, None),
    ("ce", "z = logits - logits.max(axis=-1, keepdims=True)", "z = logits - logits.max()", "test-stable",
     "subtract the largest logit of EACH position", None, None),
]
CHECKS = {"rnn_step_forward": checks.rnn_step_forward, "rnn_forward": checks.rnn_forward, "mse": checks.mse,
          "softmax_cross_entropy": checks.softmax_cross_entropy}


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    check_slip("ps02", cell, [(old, new)], test_id, visible, check and CHECKS[check], graded, (check,))
