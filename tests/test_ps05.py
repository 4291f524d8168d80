"""ps05 graded for plausible wrong answers: partial credit and messages that say what is wrong."""
import re

import numpy as np
import pytest

from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, run_answers, solution_answers
from checks import ps05 as checks
from checks.grading import GradingError

CLIP_EACH_ARRAY = '''def clip_grad_norm(grads, max_norm):
    total = 0.0
    for g in grads.values():                  # clips every array on its own: the direction changes
        n = float(np.linalg.norm(g))
        total += n * n
        if n > max_norm:
            g *= max_norm / n
    return float(np.sqrt(total))
'''
TBPTT_CALLS_REFERENCE = '''from rnnlib import truncated

def rnn_backward_truncated(dhs, x, h0, hs, W_ih, W_hh, k):
    return truncated.rnn_backward_truncated(dhs, (x, h0, hs, W_ih, W_hh), k)
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps05")
    make_submission(course, "ps05", "wrong", {**good, "clip": CLIP_EACH_ARRAY})
    make_submission(course, "ps05", "copier", {**good, "tbptt": TBPTT_CALLS_REFERENCE})
    cells, totals = autograde(course, "ps05")

    wrong = cells["wrong"]
    # part 3 right (3 + 1 points); the written answer (2 points) waits for a person
    assert wrong["test-clip"][0] == 0 and wrong["test-tbptt"][0] == 4 and totals["wrong"] == 4 + 3 + 1
    assert "clip_grad_norm (global norm above max_norm)" in wrong["test-clip"][2]
    assert "after the call (scaled in place)" in wrong["test-clip"][2] and "largest error" in wrong["test-clip"][2]

    copier = cells["copier"]
    assert copier["test-tbptt"][0] == 0 and totals["copier"] == 3 + 3 + 1
    assert "rnn_backward_truncated calls the rnnlib reference" in copier["test-tbptt"][2]
    html = feedback_html(course, "wrong", "ps05")
    assert "largest error" in html and "checks.clip_grad_norm" not in html


def _solution(name):
    return run_answers(solution_answers("ps05")[name])


def test_the_solutions_pass_the_hidden_checks(fixed_grading_seeds):
    checks.clip_grad_norm(_solution("clip")["clip_grad_norm"])
    checks.rnn_backward_truncated(_solution("tbptt")["rnn_backward_truncated"])


def test_hidden_checks_catch_what_the_visible_tests_miss(fixed_grading_seeds):
    def clip_into_new_arrays(grads, max_norm):  # right values, but the caller's arrays stay unclipped
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
        if norm > max_norm:
            for name in grads:
                grads[name] = grads[name] * (max_norm / norm)
        return norm

    with pytest.raises(GradingError, match=r"grads\['W_ih'\] after the call \(scaled in place\)"):
        checks.clip_grad_norm(clip_into_new_arrays)

    def returns_clipped_norm(grads, max_norm):
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
        if norm > max_norm:
            for g in grads.values():
                g *= max_norm / norm
        return min(norm, max_norm)

    with pytest.raises(GradingError, match=r"returned norm \(before clipping\)"):
        checks.clip_grad_norm(returns_clipped_norm)

    solution = _solution("tbptt")["rnn_backward_truncated"]

    def ignores_k(dhs, x, h0, hs, W_ih, W_hh, k):  # full BPTT
        return solution(dhs, x, h0, hs, W_ih, W_hh, hs.shape[1])

    with pytest.raises(GradingError, match=r"(?s)rnn_backward_truncated\(dhs \(.*k=\d+\).*largest error"):
        checks.rnn_backward_truncated(ignores_k)

    def cuts_at_the_wrong_step(dhs, x, h0, hs, W_ih, W_hh, k):  # boundaries where (t + 1) % k == 0
        B, T, H = hs.shape
        da, dh_next, dh0 = np.zeros_like(hs), np.zeros((B, H)), None
        for t in reversed(range(T)):
            da[:, t] = (dhs[:, t] + dh_next) * (1.0 - hs[:, t] ** 2)
            dh_next = da[:, t] @ W_hh
            if t == 0:
                dh0 = dh_next
            if (t + 1) % k == 0:
                dh_next = np.zeros((B, H))
        h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)
        db = da.sum(axis=(0, 1))
        return (da @ W_ih, dh0, np.einsum("bth,btd->hd", da, x), np.einsum("bth,btk->hk", da, h_prev), db, db)

    # Right for k = 1 only: a check draws four k's at random, so give it three chances to draw k > 1.
    messages = []
    for _ in range(3):
        try:
            checks.rnn_backward_truncated(cuts_at_the_wrong_step)
        except GradingError as err:
            messages.append(str(err))
            break
    assert messages and re.search(r"rnn_backward_truncated: output \w+: \d+ of \d+ values differ", messages[0])


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

# (answer cell, text in the solution, slipped text, visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("clip", "norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))\n    if norm > max_norm:\n"
             "        for g in grads.values():\n            g *= max_norm / (norm + 1e-6)",
     "norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))\n    for g in grads.values():\n"
     "        n = float(np.linalg.norm(g))\n        if n > max_norm:\n            g *= max_norm / n",
     "test-clip", "one GLOBAL norm over all the arrays", "clip_grad_norm", "each array clipped by its own norm"),
    ("tbptt", "if t % k == 0:", "if t == 0 or t % k == k - 1:", "test-tbptt", "at the first step t of a chunk",
     "rnn_backward_truncated", "the cuts one step early"),
    ("tbptt", "h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)",
     "h_prev = np.concatenate([hs[:, -1:], hs[:, :-1]], axis=1)", "test-tbptt", "the state entering step 0 is h0",
     "rnn_backward_truncated", r"hs\[:, -1\] instead of h0"),
    ("tbptt", "dh = dhs[:, t] + dh_next", "dhs[:, t] += dh_next\n        dh = dhs[:, t]", "test-tbptt",
     "rnn_backward_truncated changed dhs", None, None),
    ("jac", "J = J @ ((1.0 - hs[s] ** 2)[:, None] * W_hh)", "J = J @ ((1.0 - hs[s - 1] ** 2)[:, None] * W_hh)",
     "test-jac", "with the state AFTER step s", "jacobian_norms", "at the state before the step"),
    ("jac", "J = J @ ((1.0 - hs[s] ** 2)[:, None] * W_hh)", "J = ((1.0 - hs[s] ** 2)[:, None] * W_hh) @ J",
     "test-jac", "each new factor multiplies on the right", "jacobian_norms", "multiplied on the left"),
    ("jac", "J = J @ ((1.0 - hs[s] ** 2)[:, None] * W_hh)", "J = J @ W_hh", "test-jac",
     "central-difference Jacobian", "jacobian_norms", "the tanh derivative left out"),
    ("jac", "return np.array(norms)", "return np.array(norms[::-1])", "test-jac", "is entry k the distance k",
     "jacobian_norms", "instead of by distance"),
    ("rho", "np.max(np.abs(np.linalg.eigvals(W)))", "np.linalg.norm(W, 2)", "test-rho", "not the largest singular value",
     "spectral_radius", "the largest singular value"),
    ("rho", "np.max(np.abs(np.linalg.eigvals(W)))", "np.max(np.linalg.eigvals(W).real)", "test-rho",
     "the largest ABSOLUTE value", "spectral_radius", "the largest real part"),
]


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    check_slip("ps05", cell, [(old, new)], test_id, visible, check and getattr(checks, check), graded, (check,))


def test_the_written_interpretation_is_a_manually_graded_answer():
    import nbformat

    from nbgrader_helpers import ROOT

    release = nbformat.read(ROOT / "exercises" / "ps05" / "ps05.ipynb", as_version=4)
    (cell,) = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "interpret"]
    meta = cell.metadata["nbgrader"]
    assert cell.cell_type == "markdown" and meta["solution"] and meta["grade"] and meta["points"] == 2
    assert cell.source.strip() == "YOUR ANSWER HERE"   # the model answer stays in the source
