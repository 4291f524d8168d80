"""Run a released notebook's visible tests in this process, with chosen answers, in seconds.

Used to show that a plausible wrong answer (a "slip": b_hh left out, W_hh transposed, ...) fails a
visible test with a message that points at it, as a student who runs the notebook would see it.
"""
import contextlib
import io

import itertools
import sys

import nbformat
import pytest

from nbgrader_helpers import ROOT, solution_answers


def run_visible(ps, answers=None):
    """Run every code cell of ``exercises/ps/ps.ipynb`` in order in one namespace, with the solution's
    answers and ``answers`` ({grade_id: source}) in the answer cells. Returns ``{grade_id: message}``
    for every graded test cell: ``None`` if it passed, else ``"ExceptionName: message"``; an error in a
    cell that is not a test is recorded under its grade_id (or ``cell N``) the same way."""
    return run_notebook(ps, answers)[0]


def run_notebook(ps, answers=None):
    """:func:`run_visible`'s results and the namespace the notebook left (its functions, for the hidden checks)."""
    sources = {**solution_answers(ps), **(answers or {})}
    nb = nbformat.read(ROOT / "exercises" / ps / f"{ps}.ipynb", as_version=4)
    namespace, results = {"__name__": "__main__"}, {}
    for n, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        key = meta.get("grade_id") or f"cell {n}"
        source = sources[key] if meta.get("solution") else cell.source
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, key, "exec"), namespace)  # noqa: S102 (our notebooks, our slips)
        except Exception as exc:  # noqa: BLE001 (what the student would see)
            results[key] = f"{type(exc).__name__}: {exc}"
        else:
            if meta.get("grade"):
                results[key] = None
    return results, namespace


def solution_namespace(ps):
    """The namespace that the solution notebook ``solutions/ps/ps.ipynb`` leaves when every code cell runs in
    order, hidden tests included (their checks raise if they reject the solution)."""
    import types

    nb = nbformat.read(ROOT / "solutions" / ps / f"{ps}.ipynb", as_version=4)
    ipython = types.SimpleNamespace(run_line_magic=lambda *args: None)
    namespace = {"__name__": "__main__", "get_ipython": lambda: ipython}
    for n, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            key = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {n}"
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, f"{ps} {key}", "exec"), namespace)  # noqa: S102 (our own solutions)
    return namespace


def check_slip(ps, cell, replacements, test_id, visible, check=None, graded=None, functions=()):
    """Make a slip in the solution's answer ``cell`` (``replacements``: ``[(text, slipped text)]``, each
    text found once) and show that the visible test ``test_id`` fails with a message containing
    ``visible``; if a hidden ``check`` is given, calling it on the notebook's ``functions`` raises a
    :class:`GradingError` whose message matches the regular expression ``graded``."""
    from checks.grading import GradingError

    slipped = solution_answers(ps)[cell]
    for old, new in replacements:
        assert slipped.count(old) == 1, f"{ps} {cell}: {old!r} is not in the solution once"
        slipped = slipped.replace(old, new)
    results, namespace = run_notebook(ps, {cell: slipped})
    message = results.get(test_id)
    assert message is not None, f"{ps}: the slip in {cell} passes the visible test {test_id}"
    assert visible in message, f"{ps} {test_id}: {visible!r} not in {message!r}"
    if check is not None:
        with pytest.raises(GradingError, match=graded):
            check(*(namespace[name] for name in functions))


def assert_slip_caught(ps, answers, test_id, *fragments):
    """The visible test ``test_id`` fails for ``answers`` with a message containing every fragment;
    returns the message."""
    message = run_visible(ps, answers).get(test_id)
    assert message is not None, f"{ps}: the slip {sorted(answers)} passes the visible test {test_id}"
    for fragment in fragments:
        assert fragment in message, f"{ps} {test_id}: {fragment!r} not in {message!r}"
    return message


@pytest.fixture
def fixed_grading_seeds(monkeypatch, request):
    """The hidden checks draw their inputs from seeds 1, 2, 3, ... instead of fresh random ones, so that
    a test of a grading message does not depend on luck (a slip that shows only when T > 1, say).

    The messages the checks raise during the test must then be the reviewed ones
    (:mod:`grading_messages`): a test that passes with a changed message fails at teardown."""
    from checks import grading
    from grading_messages import Recorder

    seeds = itertools.count(1)
    real = grading.secrets.randbits

    def randbits(bits):  # only the checks' draws: NumPy also calls secrets.randbits (for an unseeded Generator)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        drawn = real(bits)  # (fails as the real one would, for a bad ``bits``)
        return next(seeds) if caller.startswith("checks") else drawn

    monkeypatch.setattr(grading.secrets, "randbits", randbits)
    recorder = Recorder(monkeypatch)
    yield
    recorder.compare(request.node.nodeid)
