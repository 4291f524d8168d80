"""ps07 graded for plausible wrong answers: partial credit and messages that say what is wrong."""
import pytest

from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, run_answers, solution_answers
from rnnlib import cells
from checks import ps07
from checks.grading import GradingError

CELLS = ("test-forward", "test-backward-inputs", "test-backward-ih", "test-backward-hh", "test-cho")

# Cho et al.'s placement of the reset gate (before the product): the forward is wrong, so is every backward.
CHO_FORWARD = '''def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    H = h_prev.shape[1]
    a_i = x @ W_ih.T + b_ih
    a_h = h_prev @ W_hh.T + b_hh
    r = sigmoid(a_i[:, :H] + a_h[:, :H])
    z = sigmoid(a_i[:, H:2 * H] + a_h[:, H:2 * H])
    hn = (r * h_prev) @ W_hh[2 * H:].T + b_hh[2 * H:]
    n = np.tanh(a_i[:, 2 * H:] + hn)
    return (1.0 - z) * n + z * h_prev, dict(x=x, h_prev=h_prev, r=r, z=z, n=n, hn=hn, W_ih=W_ih, W_hh=W_hh)
'''
# Forward right; the backward gives b_hh the gradient of b_ih (as in the RNN and the LSTM) and W_hh
# the matching wrong one: only the hidden-weight cell fails.
SAME_BIAS_GRADS = '''def gru_step_backward(dh, cache):
    k = cache
    r, z, n = k["r"], k["z"], k["n"]
    da_n = dh * (1.0 - z) * (1.0 - n ** 2)
    da_z = dh * (k["h_prev"] - n) * z * (1.0 - z)
    da_r = da_n * k["hn"] * r * (1.0 - r)
    da_i = np.concatenate([da_r, da_z, da_n], axis=1)
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)
    dx = da_i @ k["W_ih"]
    dh_prev = dh * z + da_h @ k["W_hh"]
    return dx, dh_prev, da_i.T @ k["x"], da_i.T @ k["h_prev"], da_i.sum(axis=0), da_i.sum(axis=0)
'''
# Forward right; the backward forgets the direct path z * h_prev into dh_prev.
NO_DIRECT_PATH = SAME_BIAS_GRADS.replace("dh_prev = dh * z + da_h", "dh_prev = da_h").replace(
    'da_i.T @ k["h_prev"], da_i.sum(axis=0), da_i.sum(axis=0)', 'da_h.T @ k["h_prev"], da_i.sum(axis=0), da_h.sum(axis=0)')
COPIER = '''from rnnlib import cells


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return cells.gru_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)


def gru_step_backward(dh, cache):
    return cells.gru_step_backward(dh, cache)
'''


def scores(per_cell):
    return [per_cell[k][0] for k in CELLS]


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps07")
    make_submission(course, "ps07", "cho", {**good, "forward": CHO_FORWARD})
    make_submission(course, "ps07", "samebias", {**good, "backward": SAME_BIAS_GRADS})
    make_submission(course, "ps07", "copier", {**good, "forward": COPIER, "backward": "pass"})
    cells_, totals = autograde(course, "ps07")

    assert scores(cells_["cho"]) == [0, 0, 0, 0, 1] and totals["cho"] == 1
    assert "gru_step_forward: output h:" in cells_["cho"]["test-forward"][2]
    assert "graded on the cache of YOUR gru_step_forward" in cells_["cho"]["test-backward-hh"][2]

    assert scores(cells_["samebias"]) == [3, 2, 2, 0, 1] and totals["samebias"] == 8
    assert "gru_step_backward: output dW_hh:" in cells_["samebias"]["test-backward-hh"][2]

    assert totals["copier"] == 1
    assert "calls the rnnlib reference" in cells_["copier"]["test-forward"][2]

    html = feedback_html(course, "samebias", "ps07")
    assert "output dW_hh" in html and "largest error" in html and "checks.backward" not in html


def test_hidden_checks_directly(fixed_grading_seeds):
    """The hidden checks on their own, including the message for a backward graded through a wrong forward."""
    good = solution_answers("ps07")
    ns = run_answers(good["forward"], good["backward"], good["cho"])
    ps07.forward_h(ns["gru_step_forward"])
    ps07.backward_inputs(ns["gru_step_forward"], ns["gru_step_backward"])
    ps07.backward_input_weights(ns["gru_step_forward"], ns["gru_step_backward"])
    ps07.backward_hidden_weights(ns["gru_step_forward"], ns["gru_step_backward"])
    ps07.forward_cho(ns["gru_step_forward_cho"])

    cho = run_answers(CHO_FORWARD)
    with pytest.raises(GradingError, match="graded on the cache of YOUR gru_step_forward"):
        ps07.backward_inputs(cho["gru_step_forward"], ns["gru_step_backward"])
    wrong = run_answers(SAME_BIAS_GRADS)
    with pytest.raises(GradingError, match="output db_hh|output dW_hh"):
        ps07.backward_hidden_weights(ns["gru_step_forward"], wrong["gru_step_backward"])
    nodirect = run_answers(NO_DIRECT_PATH)
    with pytest.raises(GradingError, match="output dh_prev: .* values differ"):
        ps07.backward_inputs(ns["gru_step_forward"], nodirect["gru_step_backward"])
    ps07.backward_hidden_weights(ns["gru_step_forward"], nodirect["gru_step_backward"])  # only dh_prev is wrong
    with pytest.raises(GradingError, match="calls the rnnlib reference"):
        ps07.forward_h(lambda *a: cells.gru_step_forward(*a))
    with pytest.raises(GradingError, match="must return 2 values"):
        ps07.forward_h(lambda *a: ns["gru_step_forward"](*a)[0])
    with pytest.raises(GradingError, match="what you get with torch's form"):
        ps07.forward_cho(lambda *a: ns["gru_step_forward"](*a)[0])


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

N_LINE = "n = np.tanh(a_i[:, 2 * H:] + r * hn)"
# (answer cell, [(text in the solution, slipped text)], visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("forward", [(N_LINE, "n = np.tanh(a_i[:, 2 * H:] + r * (h_prev @ W_hh[2 * H:].T) + b_hh[2 * H:])")],
     "test-forward", "b_hn included, after the product", "forward_h", "b_hn outside the reset product"),
    ("forward", [(N_LINE, "n = np.tanh(a_i[:, 2 * H:] + (r * h_prev) @ W_hh[2 * H:].T + b_hh[2 * H:])")],
     "test-forward", "b_hn included, after the product", "forward_h", "Cho et al.'s form"),
    ("forward", [("h = (1.0 - z) * n + z * h_prev", "h = z * n + (1.0 - z) * h_prev")], "test-forward",
     "does z keep the OLD state?", "forward_h", "z and 1 - z swapped"),
    ("forward", [("r = sigmoid(a_i[:, :H] + a_h[:, :H])", "r = sigmoid(a_i[:, H:2 * H] + a_h[:, H:2 * H])"),
                 ("z = sigmoid(a_i[:, H:2 * H] + a_h[:, H:2 * H])", "z = sigmoid(a_i[:, :H] + a_h[:, :H])")],
     "test-forward", "which rows are z?", "forward_h", "in the order z, r, n"),
    ("forward", [("a_h = h_prev @ W_hh.T + b_hh ", "a_h = h_prev @ W_hh.T ")], "test-forward", "is b_hh added?",
     "forward_h", "b_hh left out"),
    ("forward", [("n = np.tanh(a_i[:, 2 * H:] + r * hn)", "n = sigmoid(a_i[:, 2 * H:] + r * hn)")], "test-forward",
     "is n a tanh?", "forward_h", "a sigmoid for n"),
    ("backward", [("np.concatenate([da_r, da_z, da_n * r], axis=1)", "np.concatenate([da_r, da_z, da_n], axis=1)")],
     "test-backward-hh", "rows of gate(s) n: check your derivation", "backward_hidden_weights",
     "da_n, not da_n \\* r, in the n rows"),
    ("backward", [("dh_prev = dh * z + da_h", "dh_prev = da_h")], "test-backward-inputs",
     "h_prev reaches h_t directly", "backward_inputs", "the direct path from h_prev"),
    ("backward", [('da_r = da_n * k["hn"] * r * (1.0 - r)',
                   'da_r = da_n * (k["h_prev"] @ k["W_hh"][2 * H:].T) * r * (1.0 - r)'), ("k = cache", "k = cache; H = k['r'].shape[1]")],
     "test-backward-ih", "check your derivation of the reset gate's gradient", "backward_input_weights",
     "without b_hn"),
]


@pytest.mark.parametrize("cell, replacements, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, replacements, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    functions = ("gru_step_forward",) + (("gru_step_backward",) if "backward" in check else ())
    check_slip("ps07", cell, replacements, test_id, visible, getattr(ps07, check), graded, functions)
