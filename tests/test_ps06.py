"""ps06 graded for plausible wrong answers: partial credit and messages that say what is wrong.

The backward is graded through the student's own forward (their own cache), so a wrong forward also
costs the backward cells, with a message that says the forward has to be fixed first.
"""
import re

import pytest

from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, run_answers, solution_answers
from rnnlib import cells
from checks import ps06
from checks.grading import GradingError

# Forward right, backward with dW_ih transposed (x.T @ da instead of da.T @ x).
TRANSPOSED_DW = '''def lstm_step_backward(dh, dc, cache):
    k = cache
    i, f, g, o, tanh_c = k["i"], k["f"], k["g"], k["o"], k["tanh_c"]
    dc_total = dc + dh * o * (1.0 - tanh_c ** 2)
    da = np.concatenate([dc_total * g * i * (1.0 - i), dc_total * k["c_prev"] * f * (1.0 - f),
                         dc_total * i * (1.0 - g ** 2), dh * tanh_c * o * (1.0 - o)], axis=1)
    db = da.sum(axis=0)
    return da @ k["W_ih"], da @ k["W_hh"], dc_total * f, k["x"].T @ da, da.T @ k["h_prev"], db, db
'''
# Forward with h = o * c (tanh forgotten): h wrong, c right, so both backward cells fail too.
NO_TANH_H = '''def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    H = h_prev.shape[1]
    a = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
    i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    h = o * c
    return h, c, dict(x=x, h_prev=h_prev, c_prev=c_prev, i=i, f=f, g=g, o=o, tanh_c=np.tanh(c), W_ih=W_ih, W_hh=W_hh)
'''
# Backward without the path from dh into the cell state: every gradient except the output gate's is off.
NO_DH_INTO_C = TRANSPOSED_DW.replace("dc_total = dc + dh * o * (1.0 - tanh_c ** 2)", "dc_total = dc").replace(
    'k["x"].T @ da', 'da.T @ k["x"]')
COPIER_FORWARD = '''from rnnlib import cells


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh):
    return cells.lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)
'''
COPIER_BACKWARD = '''def lstm_step_backward(dh, dc, cache):
    return cells.lstm_step_backward(dh, dc, cache)
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps06")
    make_submission(course, "ps06", "transposed", {**good, "backward": TRANSPOSED_DW})
    make_submission(course, "ps06", "notanh", {**good, "forward": NO_TANH_H})
    make_submission(course, "ps06", "copier", {**good, "forward": COPIER_FORWARD, "backward": COPIER_BACKWARD})
    cells, totals = autograde(course, "ps06")

    t = cells["transposed"]
    assert [t[k][0] for k in ("test-forward-h", "test-forward-c", "test-backward-inputs", "test-backward-weights")] \
        == [2, 2, 3, 0]
    assert totals["transposed"] == 7
    # dW_ih transposed is (D, 4H): its shape is wrong unless the draw made D = 4H (H = 1, D = 4), and then
    # its values are (fresh seeds here: D and H are drawn from 1-4 and 1-6, so 1 run in 24)
    assert re.search(r"output dW_ih: (expected shape|\d+ of \d+ values differ)", t["test-backward-weights"][2])

    n = cells["notanh"]
    assert [n[k][0] for k in ("test-forward-h", "test-forward-c", "test-backward-inputs", "test-backward-weights")] \
        == [0, 2, 0, 0]
    assert "lstm_step_forward: output h:" in n["test-forward-h"][2] and "values differ" in n["test-forward-h"][2]
    assert "graded on the cache of YOUR lstm_step_forward" in n["test-backward-inputs"][2]

    c = cells["copier"]
    assert totals["copier"] == 0
    assert "calls the rnnlib reference" in c["test-forward-h"][2]
    assert "calls the rnnlib reference" in c["test-backward-weights"][2]

    html = feedback_html(course, "notanh", "ps06")
    assert "largest error" in html and "fix it first" in html and "checks.backward" not in html


def test_hidden_checks_directly(fixed_grading_seeds):
    """The hidden checks on their own: exact messages for a wrong forward and for a copier."""
    good = solution_answers("ps06")
    ns = run_answers(good["forward"], good["backward"])
    ps06.forward_h(ns["lstm_step_forward"])
    ps06.forward_c(ns["lstm_step_forward"])
    ps06.backward_inputs(ns["lstm_step_forward"], ns["lstm_step_backward"])
    ps06.backward_weights(ns["lstm_step_forward"], ns["lstm_step_backward"])

    bad = run_answers(NO_TANH_H)
    with pytest.raises(GradingError, match="output h: .* values differ"):
        ps06.forward_h(bad["lstm_step_forward"])
    with pytest.raises(GradingError, match="graded on the cache of YOUR lstm_step_forward"):
        ps06.backward_inputs(bad["lstm_step_forward"], ns["lstm_step_backward"])
    nodh = run_answers(NO_DH_INTO_C)
    with pytest.raises(GradingError, match="output dx: .* values differ"):
        ps06.backward_inputs(ns["lstm_step_forward"], nodh["lstm_step_backward"])
    with pytest.raises(GradingError, match="output dW_ih: .* values differ"):
        ps06.backward_weights(ns["lstm_step_forward"], nodh["lstm_step_backward"])
    with pytest.raises(GradingError, match="calls the rnnlib reference"):
        ps06.forward_c(lambda *a: cells.lstm_step_forward(*a))
    with pytest.raises(GradingError, match="must return 3 values"):
        ps06.forward_c(lambda *a: cells.lstm_step_forward(*a)[:2])



# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
import pytest  # noqa: E402

from checks import ps06 as checks  # noqa: E402
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

G_ROWS, O_ROWS = "g = np.tanh(a[:, 2 * H:3 * H])", "o = sigmoid(a[:, 3 * H:])"
# (answer cell, [(text in the solution, slipped text)], visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("forward", [(G_ROWS, "g = np.tanh(a[:, 3 * H:])"), (O_ROWS, "o = sigmoid(a[:, 2 * H:3 * H])")],
     "test-forward-c", "which rows are g?", "forward_c", "in the order i, f, o, g"),
    ("forward", [(G_ROWS, "g = sigmoid(a[:, 2 * H:3 * H])")], "test-forward-c", "is g a tanh", "forward_c",
     "a sigmoid for g instead of tanh"),
    ("forward", [("+ h_prev @ W_hh.T + b_hh", "+ h_prev @ W_hh.T")], "test-forward-h", "is b_hh added?", "forward_h",
     "b_hh left out"),
    ("forward", [("h = o * tanh_c", "h = o * c")], "test-forward-h", "is there a tanh on c?", "forward_h",
     r"h = o \* c \(no tanh on c\)"),
    ("backward", [("dc_prev = dc_total * f", "dc_prev = dc * f")], "test-backward-inputs",
     "AND through h_t = o * tanh(c_t)", "backward_inputs", r"dc_prev = dc \* f"),
    ("backward", [('dc_total * k["c_prev"] * f', 'dc_total * np.arctanh(tanh_c) * f')], "test-backward-weights",
     "gate(s) f: check your forget-gate derivation", "backward_weights", "with c_t instead of c_{t-1}"),
    ("backward", [("db = da.sum(axis=0)", "db = da")], "test-backward-weights", "sum da over the batch (axis 0)",
     None, None),
    ("backward", [("dc_total = dc + dh * o * (1.0 - tanh_c ** 2)", "dc_total = dc")], "test-backward-inputs",
     "AND through h_t", "backward_inputs", "the path through h_t left out of the cell's gradient"),
]


@pytest.mark.parametrize("cell, replacements, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, replacements, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    functions = ("lstm_step_forward",) + (("lstm_step_backward",) if "backward" in (check or "") else ())
    check_slip("ps06", cell, replacements, test_id, visible, check and getattr(checks, check), graded, functions)
