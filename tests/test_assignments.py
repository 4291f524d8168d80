"""Every problem set, through the real nbgrader CLI: the committed release is what nbgrader makes from
the source, the worked solution scores full marks, the untouched release scores 0, and feedback never
shows hidden tests."""
import json

import pytest

from nbgrader_helpers import ROOT, autograde, course_copy, feedback_html, make_submission, nbgrader, solution_answers

PROBLEM_SETS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def test_there_are_problem_sets():
    assert "ps01" in PROBLEM_SETS


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_every_problem_set_has_an_allow_list(ps):
    """The grading sandbox gives a set's kernel only what checks.allowlist.ALLOWED lists for it (an
    unlisted set gets an empty rnnlib); tests/test_allowlist.py checks the lists against the notebooks."""
    from checks import allowlist

    assert ps in allowlist.ALLOWED, f"add {ps} to checks.allowlist.ALLOWED (what its notebook imports from rnnlib)"


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_committed_release_matches_nbgrader_output(tmp_path, ps):
    course = course_copy(tmp_path)
    nbgrader(course, "generate_assignment", ps, "--force", "--no-db")
    made = json.loads((course / "exercises" / ps / f"{ps}.ipynb").read_text())
    committed = json.loads((ROOT / "exercises" / ps / f"{ps}.ipynb").read_text())
    assert made == committed, f"exercises/{ps} is stale: run `make exercises` and commit"


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_solution_outputs_are_cleared_and_release_has_no_solutions(ps):
    source = json.loads((ROOT / "solutions" / ps / f"{ps}.ipynb").read_text())
    for cell in source["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "store solutions with outputs cleared"
    release = (ROOT / "exercises" / ps / f"{ps}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "from checks import"):
        assert marker not in release


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_solution_scores_full_and_release_scores_zero(tmp_path, ps):
    course = course_copy(tmp_path)
    make_submission(course, ps, "solved", solution_answers(ps))
    make_submission(course, ps, "blank")
    cells, totals = autograde(course, ps)
    max_score = sum(m for _, m, _ in cells["solved"].values())
    assert max_score > 0
    failed = {k: v[2] for k, v in cells["solved"].items() if v[0] < v[1]}
    assert not failed, f"the solution of {ps} fails: {failed}"
    assert totals["solved"] == max_score
    assert totals["blank"] == 0
    for student in ("solved", "blank"):
        html = feedback_html(course, student, ps)
        for leak in ("BEGIN HIDDEN", "from checks import", "run_line_magic"):
            assert leak not in html, f"{student}'s feedback shows hidden test source ({leak!r})"
