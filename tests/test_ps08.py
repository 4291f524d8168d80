"""ps08 graded for plausible wrong answers: partial credit, messages that say what is wrong, and an
answer that calls rnnlib's stack scores 0 for that part."""
import numpy as np
import pytest

from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, solution_answers
from checks import ps08
from checks.grading import GradingError

NOT_REVERSED_BACK = '''def bidirectional_layer(x, params_fwd, params_bwd, h0, c0):
    hs_f, h_f, c_f = lstm_layer(x, params_fwd, h0[0], c0[0])
    hs_b, h_b, c_b = lstm_layer(x[:, ::-1], params_bwd, h0[1], c0[1])
    out = np.concatenate([hs_f, hs_b], axis=2)          # forgot to put the backward states back in time order
    return out, np.stack([h_f, h_b]), np.stack([c_f, c_b])
'''
ONE_BIAS_COUNT = '''def lstm_param_count(input_size, hidden_size, num_layers, bidirectional):
    H, dirs = hidden_size, 2 if bidirectional else 1
    total = 0
    for l in range(num_layers):
        D = input_size if l == 0 else dirs * H
        total += dirs * 4 * H * (D + H + 1)             # one bias vector per gate, as in the papers
    return total
'''
CALLS_STACKED = '''from rnnlib import stacked

def stacked_bilstm(x, layers, h0, c0):
    out, (h_n, c_n), _ = stacked.stacked_forward("lstm", x, layers, h0, c0, bidirectional=True)
    return out, h_n, c_n
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps08")
    make_submission(course, "ps08", "wrong", {**good, "bi": NOT_REVERSED_BACK, "count": ONE_BIAS_COUNT})
    make_submission(course, "ps08", "copier", {**good, "stack": CALLS_STACKED})
    cells, totals = autograde(course, "ps08")

    wrong = cells["wrong"]
    assert wrong["test-layer"][0] == 2
    assert wrong["test-bi"][0] == 0 and wrong["test-count"][0] == 0
    assert wrong["test-stack"][0] == 0  # built on the wrong bidirectional layer
    assert totals["wrong"] == 2
    assert "bidirectional_layer: output out" in wrong["test-bi"][2] and "largest error" in wrong["test-bi"][2]
    assert "lstm_param_count: output count" in wrong["test-count"][2]

    copier = cells["copier"]
    assert copier["test-stack"][0] == 0 and "calls the rnnlib reference" in copier["test-stack"][2]
    assert totals["copier"] == 10 - 3
    html = feedback_html(course, "wrong", "ps08")
    assert "largest error" in html and "checks.bidirectional_layer" not in html


def test_the_two_references_agree_and_the_layers_print_short():
    rng = np.random.default_rng(0)
    for _ in range(3):
        args = [v for _, v in ps08._stack_inputs(rng)]
        for a, b in zip(ps08.stack_torch_reference(*args), ps08.stack_rnnlib_reference(*args)):
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-12
        assert len(repr(args[1])) < 200 and "layer(s)" in repr(args[1])


def test_stack_check_rejects_a_direction_major_state_layout(fixed_grading_seeds):
    def direction_major(x, layers, h0, c0):  # h0[d * L + l] instead of PyTorch's h0[2 * l + d]
        L = len(layers)
        h0 = h0.reshape(2, L, *h0.shape[1:]).transpose(1, 0, 2, 3).reshape(h0.shape)
        c0 = c0.reshape(2, L, *c0.shape[1:]).transpose(1, 0, 2, 3).reshape(c0.shape)
        return ps08.stack_torch_reference(x, layers, h0, c0)  # torch itself, with the states mixed up

    with pytest.raises(GradingError, match=r"stacked_bilstm: output (out|h_n|c_n): \d+ of \d+ values differ"):
        ps08.stacked_bilstm(direction_major)
    ps08.stacked_bilstm(ps08.stack_torch_reference)  # torch with the right layout passes


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

# (answer cell, text in the solution, slipped text, visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("layer", "h, c = h0, c0", "h, c = np.zeros_like(h0), np.zeros_like(c0)", "test-layer",
     "does the loop start from h0 and c0", "lstm_layer", "h0 and c0 ignored"),
    ("bi", "out = np.concatenate([hs_f, hs_b[:, ::-1]], axis=2)", "out = np.concatenate([hs_f, hs_b], axis=2)",
     "test-bi", "put them back in time order", "bidirectional_layer", "not put back in time order"),
    ("bi", "lstm_layer(x[:, ::-1], params_bwd, h0[1], c0[1])", "lstm_layer(x[:, ::-1], params_bwd, h0[0], c0[0])",
     "test-bi", "from h0[1], c0[1]", None, None),
    ("stack", "h0[2 * l:2 * l + 2], c0[2 * l:2 * l + 2]", "h0[l:l + 2], c0[l:l + 2]", "test-stack",
     "layer l starts from h0[2 * l:2 * l + 2]", "stacked_bilstm", r"read from h0\[l:l \+ 2\]"),
    ("count", "total += dirs * 4 * H * (D + H + 2)", "total += dirs * 4 * H * (D + H + 1)", "test-count",
     "TWO bias vectors", "lstm_param_count", "one bias vector"),
    ("count", "D = input_size if l == 0 else dirs * H", "D = input_size", "test-count", "not input_size",
     "lstm_param_count", "every layer's input size"),
]


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    check_slip("ps08", cell, [(old, new)], test_id, visible, check and getattr(ps08, check), graded, (check,))



def test_parameter_counts_are_graded_exactly(fixed_grading_seeds):
    """A count off by one fails, even among millions (4 layers of 199 units, both directions: 2.5 million)."""
    ps08.lstm_param_count(ps08.lstm_param_count_reference)
    with pytest.raises(GradingError, match="values differ"):
        ps08.lstm_param_count(lambda *args: ps08.lstm_param_count_reference(*args) + 1)
