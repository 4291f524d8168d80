"""checks/grading.py on its own: the comparison, the messages, the slip search and the reference-call watch.

The problem sets' tests use these through their checks; here each branch is driven directly, with fixed
grading seeds, so that its message is one of the reviewed ones (tests/grading_messages.py).
"""
import sys

import numpy as np
import pytest

from checks import grading
from checks.allowlist import REFERENCE_MESSAGE
from checks.grading import GradingError, check_function, check_value, compare_arrays, random_rnn_args
from rnnlib import cells
from visible_helpers import fixed_grading_seeds  # noqa: F401 (a fixture)


def step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)


def reference_step(*args):
    return cells.rnn_step_forward(*args)[0]


@pytest.mark.parametrize("got, message", [
    ((np.zeros(2), np.zeros(2)), "expected one array of shape (2,), got a tuple of 2 values"),
    ({"a": 1}, "expected an array of shape (2,), got dict"),
    (["a", "b"], "could not be read as an array of numbers"),
    (np.zeros(3), "expected shape (2,), got shape (3,)"),
    (np.array([1.0, np.nan]), "contains nan at index (1,)"),
    (np.array([1.0, -np.inf]), "contains -inf at index (1,)"),
    (np.array([1.0, 2.5]), "1 of 2 values differ; largest error 0.5; at index (1,) got 2.5, expected 2"),
    (np.array([1.25, 2.5]), "2 of 2 values differ; largest error 0.5; at index (1,) got 2.5, expected 2"),
    (np.array([1.0, 2.0 + 3e-6]), "1 of 2 values differ; largest error 3e-06"),
])
def test_compare_arrays_says_what_differs(got, message, fixed_grading_seeds):
    with pytest.raises(GradingError) as err:
        compare_arrays("out", got, np.array([1.0, 2.0]), rtol=1e-6, atol=1e-8)
    assert str(err.value) == f"out: {message}" or str(err.value).startswith(f"out: {message}")


@pytest.mark.parametrize("got", [np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9], np.float64(3.0)])
def test_compare_arrays_accepts_equal_values(got):
    expected = np.array(3.0) if np.ndim(got) == 0 else np.array([1.0, 2.0])
    compare_arrays("out", got, expected, rtol=1e-6, atol=1e-8)
    compare_arrays("out", expected * (1 + 5e-7), expected, rtol=1e-6, atol=0)  # within rtol


def test_compare_arrays_tolerance_is_atol_plus_rtol_times_expected():
    expected = np.array([0.0, 100.0])
    compare_arrays("out", expected + [0.9e-8, 0.9e-4], expected, rtol=1e-6, atol=1e-8)
    for off in ([1.1e-8, 0.0], [0.0, 1.1e-4]):
        with pytest.raises(GradingError, match="1 of 2 values differ"):
            compare_arrays("out", expected + off, expected, rtol=1e-6, atol=1e-8)


def test_check_function_passes_a_right_answer_and_counts_its_trials(fixed_grading_seeds):
    assert check_function(step, reference_step, random_rnn_args, name="step", output_names=("h",)) == 3
    assert check_function(step, reference_step, random_rnn_args, name="step", trials=5) == 5


def test_check_function_messages(fixed_grading_seeds):
    with pytest.raises(GradingError, match=r"^step is not a function \(got int\)$"):
        check_function(3, reference_step, random_rnn_args, name="step")
    with pytest.raises(GradingError, match=r"^step is not implemented yet \(it raised NotImplementedError\)$"):
        check_function(lambda *a: (_ for _ in ()).throw(NotImplementedError), reference_step, random_rnn_args,
                       name="step")
    with pytest.raises(GradingError, match=r"^step\(x \(\d, \d\) float64, h_prev .*\[seed \d+\] raised ZeroDivisionError: "):
        check_function(lambda *a: 1 / 0, reference_step, random_rnn_args, name="step")
    with pytest.raises(GradingError, match=r"^for step\(x .*\[seed \d\]:\nstep: output h: \d+ of \d+ values differ"):
        check_function(lambda *a: step(*a) + 1.0, reference_step, random_rnn_args, name="step", output_names=("h",))


def test_the_arguments_are_described_with_shapes_and_values():
    assert grading.describe_args([("x", np.zeros((2, 3))), ("k", 3), ("mode", "sum")]) == \
        "x (2, 3) float64, k=3, mode='sum'"


def test_check_function_gives_each_call_its_own_copy_of_the_inputs(fixed_grading_seeds):
    def writes_into_h_prev(x, h_prev, W_ih, W_hh, b_ih, b_hh):
        h_prev += 1.0  # a student who writes into an input must not change what the reference sees
        return step(x, h_prev - 1.0, W_ih, W_hh, b_ih, b_hh)

    check_function(writes_into_h_prev, reference_step, random_rnn_args, name="step")

    def reference_that_writes(x, h_prev, *rest):
        out = reference_step(x, h_prev, *rest)
        h_prev[...] = 0.0
        return out

    check_function(step, reference_that_writes, random_rnn_args, name="step")


def test_a_call_of_the_reference_scores_0(fixed_grading_seeds):
    def copier(*args):
        return cells.rnn_step_forward(*args)[0]

    with pytest.raises(GradingError, match=r"^step calls the rnnlib reference \(rnn_step_forward\) instead of "
                                           r"computing the answer itself: this part scores 0$"):
        check_function(copier, reference_step, random_rnn_args, name="step")
    check_function(copier, reference_step, random_rnn_args, name="step", allow_reference=True)


def test_the_restricted_packages_refusal_counts_as_a_call_of_the_reference(fixed_grading_seeds):
    class NotAvailable(ImportError):
        pass

    message = REFERENCE_MESSAGE.format(module="rnnlib.cells", name="rnn_step_forward", assignment="ps02")

    def copier_in_the_sandbox(*args):
        raise NotAvailable(message)

    with pytest.raises(GradingError, match=r"^step calls the rnnlib reference \(rnn_step_forward\)"):
        check_function(copier_in_the_sandbox, reference_step, random_rnn_args, name="step")

    def other_refusal(*args):
        raise NotAvailable("rnnlib.data.adding_problem is not available while ps02 is graded")

    with pytest.raises(GradingError, match=r"raised NotAvailable: rnnlib\.data\.adding_problem is not available"):
        check_function(other_refusal, reference_step, random_rnn_args, name="step")


def test_the_reference_code_is_every_listed_function_and_method():
    from checks.allowlist import REFERENCE
    from rnnlib import data

    codes = grading.reference_code()
    assert cells.rnn_step_forward.__code__ in codes and cells.lstm_step_backward.__code__ in codes
    assert data.StandardScaler.fit.__code__ in codes and data.StandardScaler.transform.__code__ in codes
    assert step.__code__ not in codes
    assert len(codes) >= sum(len(names) for module, names in REFERENCE.items() if not module.startswith("rnnlib.torch"))


def test_watch_calls_records_only_the_watched_code_and_restores_the_profiler():
    def watched():
        return 1

    def other():
        return 2

    previous = sys.getprofile()
    with grading.watch_calls({watched.__code__}) as seen:
        other(), watched(), watched()
    assert seen == ["watched", "watched"] and sys.getprofile() is previous


def test_check_returned_counts_the_values():
    assert grading.check_returned("f", (1, 2), ("a", "b")) == (1, 2)
    with pytest.raises(GradingError, match=r"^f must return 2 values \(a, b\), it returned 3$"):
        grading.check_returned("f", (1, 2, 3), ("a", "b"))
    with pytest.raises(GradingError, match=r"^f must return 2 values \(a, b\), it returned 1$"):
        grading.check_returned("f", np.zeros(2), ("a", "b"))


def test_the_slip_named_is_the_one_that_explains_every_wrong_output(fixed_grading_seeds):
    def three(x):
        return x, 2 * x, 3 * x

    def inputs(rng):
        return [("x", rng.standard_normal(3))]

    slips = {"a slip that does not apply": lambda x: 1 / 0 if True else x,
             "the first doubled": lambda x: (2 * x, 2 * x, 3 * x),
             "the last two doubled": lambda x: (x, 4 * x, 6 * x),  # before the next: it explains b and c too
             "all three doubled": lambda x: (2 * x, 4 * x, 6 * x)}
    cases = [(slips["the first doubled"], "Your a is what you get with the first doubled."),
             (slips["all three doubled"], "Your a, b and c are what you get with all three doubled."),
             (slips["the last two doubled"], "Your b and c are what you get with the last two doubled."),
             (lambda x: (x, 2 * x, -x), None)]
    for answer, sentence in cases:
        with pytest.raises(GradingError) as err:
            check_function(answer, three, inputs, name="three", output_names=("a", "b", "c"), slips=slips,
                           allow_reference=True)
        assert str(err.value).endswith(sentence) if sentence else "what you get with" not in str(err.value)


def test_a_backward_is_graded_on_the_students_own_forward(fixed_grading_seeds):
    from rnnlib import cells as ref

    def forward_check():
        check_function(lambda *a: ref.rnn_step_forward(*a)[0] + 1.0, reference_step, random_rnn_args,
                       name="rnn_step_forward", allow_reference=True)

    def inputs(rng):
        args = random_rnn_args(rng)
        B, H = args[1][1].shape
        return args + [("dh", rng.standard_normal((B, H)))]

    with pytest.raises(GradingError, match=r"^rnn_step_backward is graded on the cache of YOUR rnn_step_forward, "
                                           r"which is not right yet; fix it first\. Its check says:\nfor "):
        grading.check_backward_through_forward(
            ref.rnn_step_forward, ref.rnn_step_backward, ref.rnn_step_forward, ref.rnn_step_backward, inputs,
            check_forward=forward_check, n_upstream=1, output_names=("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih",
                                                                     "db_hh"), keep=(0,))


def test_check_value(fixed_grading_seeds):
    assert check_value("y0", 0.5004, 0.5)
    for missing in (None, Ellipsis):
        with pytest.raises(GradingError, match=r"^y0 has no value yet$"):
            check_value("y0", missing, 0.5)
    with pytest.raises(GradingError, match=r"^y0: 1 of 1 values differ; largest error 0\.006"):
        check_value("y0", 0.506, 0.5)


def test_only_the_restricted_packages_own_error_counts_as_a_reference_call(fixed_grading_seeds):
    """A student's own error that merely says the words is reported as their error, not as a copy."""
    message = REFERENCE_MESSAGE.format(module="rnnlib.cells", name="rnn_step_forward", assignment="ps02")

    def says_the_words(*args):
        raise ValueError(message)

    with pytest.raises(GradingError, match=r"\] raised ValueError: rnnlib\.cells\.rnn_step_forward is the rnnlib"):
        check_function(says_the_words, reference_step, random_rnn_args, name="step")


def test_torch_references_are_watched_once_imported_and_never_imported_by_the_watch(monkeypatch):
    import importlib

    from rnnlib.torch import seq2seq

    import inspect

    # imported: a copier calls them (greedy_decode through torch.no_grad's wrapper, every no_grad function's code)
    codes = grading.reference_code()
    assert seq2seq.beam_search.__code__ in codes and inspect.unwrap(seq2seq.greedy_decode).__code__ in codes
    assert seq2seq.greedy_decode.__code__ not in codes
    imported, real = [], importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: imported.append(name) or real(name, *a))
    for name in [m for m in sys.modules if m.startswith("rnnlib.torch.")]:
        monkeypatch.delitem(sys.modules, name)
    codes = grading.reference_code()
    assert not [name for name in imported if name.startswith("rnnlib.torch")], imported
    assert seq2seq.beam_search.__code__ not in codes and cells.rnn_step_forward.__code__ in codes


def test_every_reference_name_is_watched_by_code_of_its_own():
    """Each name of REFERENCE gives code objects, all written in rnnlib's own files: none is left unwatched,
    and none is code that other functions share (a decorator's wrapper, a namedtuple's methods)."""
    import importlib

    from checks.allowlist import REFERENCE
    from rnnlib.torch import seq2seq  # noqa: F401 (imported: its references are watched)

    for module_name, names in REFERENCE.items():
        module = importlib.import_module(module_name)
        for name in names:
            codes = grading.definition_code(module, getattr(module, name))
            assert codes and all(c.co_filename == module.__file__ for c in codes), (module_name, name)


def test_a_right_answer_using_no_grad_or_a_namedtuple_is_not_a_reference_call():
    """torch.no_grad() as a decorator gives every function the same wrapper code, seq2seq's greedy_decode
    included; a namedtuple's methods are every namedtuple's. Neither makes an answer a copier."""
    import collections

    import torch
    from rnnlib.torch import seq2seq  # noqa: F401 (imported: its references are watched)

    Pair = collections.namedtuple("Pair", "h unused")

    @torch.no_grad()
    def quiet(x):
        return x

    def step(x, h, W_ih, W_hh, b_ih, b_hh):
        quiet(0)
        pair = Pair(np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh), None)._replace(unused=1)
        repr(pair)
        return pair.h

    assert check_function(step, reference_step, random_rnn_args, name="rnn_step") == 3


def test_every_reviewed_message_belongs_to_a_test_that_exists():
    """tests/golden/grading_messages.json keeps an entry per test: a test renamed or removed leaves one
    behind (GRADING_MESSAGES=update only writes), and it must go."""
    import json

    from grading_messages import GOLDEN
    from nbgrader_helpers import ROOT

    golden = json.loads(GOLDEN.read_text())
    sources = {f: (ROOT / f).read_text() for f in {key.partition("::")[0] for key in golden}}
    gone = [key for key in golden
            if f"def {key.partition('::')[2].split('[')[0]}(" not in sources[key.partition("::")[0]]]
    assert not gone, gone
