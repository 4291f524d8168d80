"""ps10 graded for plausible wrong answers: partial credit, and messages (visible and hidden) that
point at the slip: no 1/sqrt(d), softmax over the wrong axis, mask inverted, mask applied after the
softmax, the backward without its scale, the old state as the query, greedy for beam search."""
import numpy as np
import pytest

from checks import ps10
from checks.grading import GradingError
import nbformat

from nbgrader_helpers import ROOT, autograde, course_copy, feedback_html, make_submission, run_answers, solution_answers
from visible_helpers import assert_slip_caught, fixed_grading_seeds, run_visible  # noqa: F401 (a fixture)

GOOD = solution_answers("ps10")
TESTS = ("test-forward", "test-forward-mask", "test-backward", "test-decoder", "test-beam")


def forward_with(line_from, line_to):
    """The solution's attention_forward with one line changed."""
    assert line_from in GOOD["forward"]
    return GOOD["forward"].replace(line_from, line_to)


SCALE = "S = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])"
NO_SCALE = forward_with(SCALE, "S = q @ k.transpose(0, 2, 1)")
# the softmax over the queries: max, sum (and the masked-row test) along axis 1
WRONG_AXIS = GOOD["forward"].replace("axis=-1", "axis=1")
INVERTED = forward_with("S = np.where(mask, S, -np.inf)", "S = np.where(~mask, S, -np.inf)")
AFTER_SOFTMAX = '''def attention_forward(q, k, v, mask=None):
    S = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    e = np.exp(S - S.max(axis=-1, keepdims=True))
    a = e / e.sum(axis=-1, keepdims=True)
    if mask is not None:
        a = a * mask
    return a @ v, (q, k, v, a)
'''
NO_SCALE_BACKWARD = GOOD["backward"].replace(" / np.sqrt(q.shape[-1])", "")
QUERY_H_PREV = GOOD["decoder"].replace("attention_forward(h[:, None, :]", "attention_forward(h_prev[:, None, :]")
GREEDY = '''def beam_search(step, state, beam_size, max_len, sos, eos):
    tokens, score = [], 0.0
    for _ in range(max_len):
        log_probs, state = step(tokens[-1] if tokens else sos, state)
        t = int(np.argmax(log_probs))
        tokens.append(t)
        score += float(log_probs[t])
        if t == eos:
            break
    return tokens, score
'''
COPIER = '''from rnnlib.attention import attention_forward as _reference


def attention_forward(q, k, v, mask=None):
    return _reference(q, k, v, mask)
'''


def test_slips_are_real_edits():
    for slip in (NO_SCALE, WRONG_AXIS, INVERTED, NO_SCALE_BACKWARD, QUERY_H_PREV):
        assert slip not in GOOD.values()
    assert WRONG_AXIS.count("axis=1") == 2  # the max and the sum


@pytest.mark.parametrize("forward,test_id,fragment", [
    (NO_SCALE, "test-forward", "no 1/sqrt(d) scaling"),
    (WRONG_AXIS, "test-forward", "the softmax over the queries (axis 1)"),
    (INVERTED, "test-forward-mask", "the mask inverted"),
    (AFTER_SOFTMAX, "test-forward-mask", "the mask applied after the softmax"),
])
def test_visible_forward_tests_name_the_slip(forward, test_id, fragment):
    assert_slip_caught("ps10", {"forward": forward}, test_id, fragment)


def test_visible_tests_of_the_other_parts():
    assert_slip_caught("ps10", {"backward": NO_SCALE_BACKWARD}, "test-backward", "dq", "1/sqrt(d)")
    assert_slip_caught("ps10", {"decoder": QUERY_H_PREV}, "test-decoder", "the query is the NEW state h")
    assert_slip_caught("ps10", {"beam": GREEDY}, "test-beam", "with a beam of 2, the best sequence is [4, 2]")
    results = run_visible("ps10")
    assert all(results[t] is None for t in TESTS), results


@pytest.mark.usefixtures("fixed_grading_seeds")
def test_hidden_checks_name_the_slip(fixed_grading_seeds):
    ns = run_answers(GOOD["forward"], GOOD["backward"], GOOD["decoder"], GOOD["beam"])
    run_answers_gru = run_answers(GOOD["forward"], _gru_source(), GOOD["decoder"])
    ps10.forward(ns["attention_forward"])
    ps10.forward_mask(ns["attention_forward"])
    ps10.backward(ns["attention_forward"], ns["attention_backward"])
    ps10.decoder_step(run_answers_gru["decoder_step"], run_answers_gru["attention_forward"])
    make_gru_step = run_answers(_gru_source(), _given("beam-model"))["make_gru_step"]
    ps10.beam(ns["beam_search"], make_gru_step)

    for forward, check, fragment in ((NO_SCALE, ps10.forward, "no 1/sqrt(d)"),
                                     (WRONG_AXIS, ps10.forward, "the softmax over the queries"),
                                     (INVERTED, ps10.forward_mask, "the mask inverted"),
                                     (AFTER_SOFTMAX, ps10.forward_mask, "the mask applied after the softmax")):
        with pytest.raises(GradingError, match="output out: .*values differ") as err:
            check(run_answers(forward)["attention_forward"])
        assert fragment in str(err.value)
    with pytest.raises(GradingError, match="graded on the cache of YOUR attention_forward"):
        ps10.backward(run_answers(AFTER_SOFTMAX)["attention_forward"], ns["attention_backward"])
    with pytest.raises(GradingError, match=r"output dq: .*values differ(.|\n)*1/sqrt\(d\) left out"):
        ps10.backward(ns["attention_forward"], run_answers(NO_SCALE_BACKWARD)["attention_backward"])
    bad = run_answers(GOOD["forward"], _gru_source(), QUERY_H_PREV)
    with pytest.raises(GradingError, match="output logits: (.|\n)*previous state h_prev as the query"):
        ps10.decoder_step(bad["decoder_step"], bad["attention_forward"])
    bad = run_answers(NO_SCALE, _gru_source(), GOOD["decoder"])
    with pytest.raises(GradingError, match="Your attention_forward is not right yet either"):
        ps10.decoder_step(bad["decoder_step"], bad["attention_forward"])
    with pytest.raises(GradingError, match="greedy decoding"):
        ps10.beam(run_answers(GREEDY)["beam_search"], make_gru_step)
    with pytest.raises(GradingError, match="calls the rnnlib reference"):
        ps10.forward(run_answers(COPIER)["attention_forward"])


def _given(grade_id):
    """The source of a given (locked, not graded) code cell of the notebook."""
    nb = nbformat.read(ROOT / "solutions" / "ps10" / "ps10.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _gru_source():
    """The notebook's ``gru_step`` (the decoder step and ``make_gru_step`` call it), without the example."""
    return _given("gru").split("# an example")[0]


def test_hidden_beam_models_tell_beam_search_from_greedy(fixed_grading_seeds):
    """Every random model of the hidden beam check is one where beam search finds a more probable
    output than greedy decoding, so a greedy answer fails every trial."""
    for seed in range(20):
        args = [v for _, v in ps10.random_beam_args(np.random.default_rng(seed))]
        tokens, beam_score = ps10.reference_beam(*args)
        greedy_tokens, greedy_score = ps10._greedy(*args)
        assert tokens != greedy_tokens and beam_score > greedy_score


def test_notebook_model_equals_the_reference_model():
    """The notebook's make_gru_step (what the student's beam search runs on) is the grader's model."""
    make_gru_step = run_answers(_gru_source(), _given("beam-model"))["make_gru_step"]
    args = [v for _, v in ps10.random_beam_args(np.random.default_rng(0))]
    ours, theirs = make_gru_step(*args[:7]), ps10.make_gru_step(*args[:7])
    h = args[7]
    for token in (1, 3, 0, 2):
        (lp, h), (lp_ref, h_ref) = ours(token, h), theirs(token, h)
        np.testing.assert_allclose(lp, lp_ref, rtol=1e-12)
        np.testing.assert_allclose(h, h_ref, rtol=1e-12)


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    make_submission(course, "ps10", "after", {**GOOD, "forward": AFTER_SOFTMAX})
    make_submission(course, "ps10", "backscale", {**GOOD, "backward": NO_SCALE_BACKWARD})
    make_submission(course, "ps10", "hprev", {**GOOD, "decoder": QUERY_H_PREV})
    make_submission(course, "ps10", "greedy", {**GOOD, "beam": GREEDY})
    cells, totals = autograde(course, "ps10")

    def scores(student):
        return [cells[student][t][0] for t in TESTS]

    assert scores("after") == [2, 0, 0, 0, 3]
    assert "the mask applied after the softmax" in cells["after"]["test-forward-mask"][2]
    assert scores("backscale") == [2, 2, 0, 3, 3] and totals["backscale"] == 10
    assert "1/sqrt(d)" in cells["backscale"]["test-backward"][2]
    assert scores("hprev") == [2, 2, 3, 0, 3]
    assert "h_prev as the query" in cells["hprev"]["test-decoder"][2]
    assert scores("greedy") == [2, 2, 3, 3, 0]
    assert "greedy decoding" in cells["greedy"]["test-beam"][2]

    html = feedback_html(course, "hprev", "ps10")
    assert "largest error" in html and "checks.decoder_step" not in html and "HIDDEN TESTS" not in html


def test_beam_search_copier_scores_0_and_the_score_is_graded_to_1e_9(fixed_grading_seeds):
    from rnnlib.torch import seq2seq

    from visible_helpers import solution_namespace

    ns = solution_namespace("ps10")
    with pytest.raises(GradingError, match=r"raised GradingError: beam_search calls the rnnlib reference \(beam_search\) instead of "
                                           r"computing the answer itself: this part scores 0$"):
        ps10.beam(lambda *args: seq2seq.beam_search(*args), ns["make_gru_step"])

    def off(*args):
        tokens, score = ns["beam_search"](*args)
        return tokens, score * (1 + 3e-9)

    with pytest.raises(GradingError, match="output score: 1 of 1 values differ"):
        ps10.beam(off, ns["make_gru_step"])
