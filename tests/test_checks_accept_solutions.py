"""Every hidden check accepts the solution, run in this process.

Each solution notebook (``solutions/psNN/psNN.ipynb``, hidden tests included) is run cell by cell in
one namespace, as nbgrader runs it, but in this process and in seconds: so a mutation tool sees which
check ran (``benchmarks/mutation.py --package checks``), and a check that starts rejecting right answers
fails here. The other half, that each check rejects wrong answers and names the slip, is in the
``test_psNN.py`` files. The grading seeds are fixed (1, 2, 3, ...) so that a run is repeatable; the
nbgrader tests (``test_assignments.py``) grade the solutions with fresh seeds.
"""
import contextlib
import io

import nbformat
import pytest

from nbgrader_helpers import ROOT
from visible_helpers import fixed_grading_seeds, solution_namespace  # noqa: F401 (a fixture)

PROBLEM_SETS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())


def hidden_test_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "### BEGIN HIDDEN TESTS" in c.source]


def test_every_problem_set_has_hidden_checks():
    assert len(PROBLEM_SETS) >= 10
    for ps in PROBLEM_SETS:
        nb = nbformat.read(ROOT / "solutions" / ps / f"{ps}.ipynb", as_version=4)
        cells = hidden_test_cells(nb)
        assert cells and all(f"from checks import {ps} as checks" in c.source for c in cells), ps


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_solution_passes_every_hidden_check(ps, fixed_grading_seeds):
    solution_namespace(ps)  # every cell, hidden tests included: a check that fails raises


# ---- near misses: a check must reject the solution's outputs moved a little, or a lot ----
import ast  # noqa: E402
import inspect  # noqa: E402

import numpy as np  # noqa: E402


def _moved(value, size, by_hand=False):
    """``value`` moved off: a float by 1e-3 * (1 + |x|) (1e-2 ``by_hand``) ("small") or 2 + 2|x| ("big"),
    an integer by 1 or 2 + 2|x|; None for anything else (a cache, a model, a string)."""
    def move(x):
        if size == "small":
            return x + 1 if is_int else x + (1e-2 if by_hand else 1e-3) * (1 + abs(x))
        return x + 2 + 2 * abs(x)

    if isinstance(value, bool) or value is None:
        return None
    is_int = isinstance(value, (int, np.integer)) or (
        isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer))
    if isinstance(value, (float, int, np.floating, np.integer)):
        return type(value)(move(value)) if not isinstance(value, np.generic) else move(value)
    if isinstance(value, np.ndarray) and (np.issubdtype(value.dtype, np.floating) or is_int):
        return move(value).astype(value.dtype)
    if type(value).__module__.startswith("torch") and hasattr(value, "is_floating_point"):
        is_int = not value.is_floating_point() and value.dtype != __import__("torch").bool
        if value.is_floating_point() or is_int:
            return move(value)
    return None


def _move_outputs(fn, size, index):
    """``fn`` with its outputs moved: all of them (``index`` None) or the output ``index`` of a tuple.
    The wrapper's ``moved`` list says whether it ever changed anything."""
    moved, widths = [], []

    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        widths.append(len(out) if isinstance(out, tuple) else None)
        if isinstance(out, tuple):
            items = list(out)
            for k, item in enumerate(items):
                if index is None or k == index:
                    if isinstance(item, dict):
                        values = {key: _moved(v, size) for key, v in item.items()}
                        changed = any(v is not None for v in values.values())
                        new = {key: item[key] if v is None else v for key, v in values.items()}
                    else:
                        new = _moved(item, size)
                        changed = new is not None
                    if changed:
                        items[k] = new
                        moved.append(k)
            return tuple(items)
        new = _moved(out, size) if index is None else None
        if new is not None:
            moved.append(None)
            return new
        return out

    wrapper.moved, wrapper.widths = moved, widths
    return wrapper


def hidden_blocks(ps):
    """``[(grade_id, the hidden tests' source, the names passed to the checks)]`` of a solution notebook."""
    nb = nbformat.read(ROOT / "solutions" / ps / f"{ps}.ipynb", as_version=4)
    blocks = []
    for cell in hidden_test_cells(nb):
        source = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        names = [arg.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "checks"
                 for arg in node.args if isinstance(arg, ast.Name)]
        blocks.append((cell.metadata["nbgrader"]["grade_id"], source, names))
    return blocks


def near_misses(namespace, name):
    """``(what, value or wrapper)``: the answer ``name`` moved off, every way that applies to it. For a
    function, the moves of single outputs follow only when the moves of all of them changed something,
    one for each output the function returned (a model or a cache is not moved)."""
    value = namespace[name]
    if not inspect.isfunction(value):
        for size in ("small", "big"):
            moved = _moved(value, size, by_hand=True)
            if moved is not None:
                yield f"{name} moved ({size})", moved
        return
    first = _move_outputs(value, "small", None)
    yield f"every output of {name} moved (small)", first
    if not first.moved:
        return
    yield f"every output of {name} moved (big)", _move_outputs(value, "big", None)
    width = max((w for w in first.widths if w is not None), default=0)
    for k in range(width if width > 1 else 0):
        yield f"output {k} of {name} moved (big)", _move_outputs(value, "big", k)


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_checks_reject_near_misses(ps, fixed_grading_seeds):
    """Each answer the checks grade, moved off by a little or a lot, fails a check with a GradingError: so a
    check's tolerance, or an output no check compares, cannot go unnoticed. A small move is 1e-3 relative
    for a function's outputs and 1e-2 for a number computed by hand (graded to 0.005). A set's checks may
    share the outputs out (ps06 grades h and c in two parts), so a move counts as rejected when a check
    of the set rejects it. The moves no check rejects, on purpose, are listed in NOT_GRADED."""
    from checks.grading import GradingError

    namespace = solution_namespace(ps)
    rejected, applied = {}, set()
    for grade_id, source, names in hidden_blocks(ps):
        for name in names:
            for what, answer in near_misses(namespace, name):
                trial = {**namespace, name: answer}
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        exec(compile(source, f"{ps} {grade_id}", "exec"), trial)  # noqa: S102
                except GradingError:
                    rejected.setdefault(what, []).append(grade_id)
                if getattr(answer, "moved", True):
                    applied.add(what)
    accepted = sorted(applied - set(rejected))
    assert accepted == sorted(NOT_GRADED.get(ps, {})), (
        f"{ps}: moves no check rejects (left) and the list of those not graded on purpose (right)")


# Moves of an answer that no check rejects, on purpose: what -> why.
NOT_GRADED = {
    "ps04": {"every output of fit_and_predict moved (small)":
             "part 4 is graded on beating persistence on validation, not on matching the solution's predictions"},
}


def _raises_not_implemented(*args, **kwargs):
    raise NotImplementedError


# Answers a check is given only to explain another answer's failure: (set, cell, name) -> why.
ONLY_FOR_MESSAGES = {("ps10", "test-decoder", "attention_forward"):
                     "checked only when decoder_step is wrong, to add that attention_forward is wrong too"}
MALFORMED = {  # what a half-done notebook hands a check, for a function answer and for a value answer
    "function": {"not a function (None)": None, "not a function (a number)": 0, "the stub (raises NotImplementedError)": _raises_not_implemented,
                 "a function returning None": lambda *args, **kwargs: None,
                 "a function returning a string": lambda *args, **kwargs: "h",
                 "a function returning three empty tuples": lambda *args, **kwargs: ((), (), ())},
    "value": {"None": None, "...": Ellipsis, "a string": "0.5"},
}


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_checks_answer_malformed_answers_with_a_message(ps, fixed_grading_seeds):
    """A missing, unfinished or wrongly typed answer fails its check with a GradingError that says so, not
    with the grader's own traceback (the messages are compared with the reviewed ones)."""
    from checks.grading import GradingError

    namespace = solution_namespace(ps)
    crashed = []
    for grade_id, source, names in hidden_blocks(ps):
        for name in names:
            kind = "function" if inspect.isfunction(namespace[name]) else "value"
            if inspect.isclass(namespace[name]) or (ps, grade_id, name) in ONLY_FOR_MESSAGES:
                continue  # a class answer (an optimiser, a model) is graded through its instances' methods
            for what, answer in MALFORMED[kind].items():
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        exec(compile(source, f"{ps} {grade_id}", "exec"), {**namespace, name: answer})  # noqa: S102
                except GradingError:
                    continue
                except Exception as exc:  # noqa: BLE001
                    crashed.append(f"{grade_id}: {name} = {what}: {type(exc).__name__}: {exc}")
                else:
                    crashed.append(f"{grade_id}: {name} = {what}: accepted")
    assert not crashed, f"{ps}: " + "\n".join(crashed)


# ---- every known slip is named: a student who makes exactly that slip is told so ----
WITHOUT_SLIPS = {"ps09"}  # PyTorch models trained by the student: graded on accuracy and behaviour, not values


def record_comparisons(monkeypatch):
    """Make every check_function call of the checks also land in the returned list, as (args, kwargs)."""
    import importlib

    from checks import grading

    calls, real = [], grading.check_function

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    for ps in PROBLEM_SETS + ["grading"]:
        module = importlib.import_module(f"checks.{ps}")
        if getattr(module, "check_function", None) is real:
            monkeypatch.setattr(module, "check_function", recording)
    return calls, real


@pytest.mark.parametrize("ps", PROBLEM_SETS)
def test_every_known_slip_is_named(ps, fixed_grading_seeds):
    """For each comparison a check makes on the solution that lists known slips, each slip's own function,
    handed in as the answer, fails the comparison with a message that names a slip; and every slip is
    named itself by at least one comparison of the set (a slip that never differs from the reference on
    the checks' inputs, or that an earlier slip of its table always explains, could never be named)."""
    from checks.grading import GradingError

    with pytest.MonkeyPatch.context() as patch:
        calls, check_function = record_comparisons(patch)
        solution_namespace(ps)
    named, never = {}, set()
    for args, kwargs in calls:
        student, reference, make_inputs = args
        for slip, slip_fn in (kwargs.get("slips") or {}).items():
            never.add(slip)
            try:
                check_function(slip_fn, reference, make_inputs, **{**kwargs, "allow_reference": True})
            except GradingError as err:
                assert "\nYour " in str(err) and " what you get with " in str(err), f"{slip!r} not named:\n{err}"
                if f" what you get with {slip}." in str(err):
                    named[slip] = str(err)
    assert named or ps in WITHOUT_SLIPS, f"{ps}: no comparison lists known slips"
    assert never <= set(named), f"{ps}: slips never named by any comparison: {sorted(never - set(named))}"
