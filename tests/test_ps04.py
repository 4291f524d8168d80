"""ps04 graded for plausible wrong answers: partial credit and messages that say what is wrong."""
from nbgrader_helpers import autograde, course_copy, feedback_html, make_submission, solution_answers

ADAM_WITHOUT_BIAS_CORRECTION = '''class Adam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads):
        b1, b2 = self.betas
        for k, p in self.params.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * grads[k]
            self.v[k] = b2 * self.v[k] + (1 - b2) * grads[k] ** 2
            p -= self.lr * self.m[k] / (np.sqrt(self.v[k]) + self.eps)   # no bias correction
'''
ADAM_CALLS_REFERENCE = '''from rnnlib import optim

class Adam(optim.Adam):
    pass
'''
EPOCH_WITHOUT_SHUFFLE = '''def train_epoch(step_fn, optimizer, X, y, batch_size, seed):
    batch_losses = []
    for start in range(0, len(X), batch_size):    # always the same order: the seed is ignored
        loss, grads = step_fn(optimizer.params, (X[start:start + batch_size], y[start:start + batch_size]))
        optimizer.step(grads)
        batch_losses.append(loss)
    return float(np.mean(batch_losses))
'''


def test_partial_credit_and_messages(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps04")
    make_submission(course, "ps04", "wrong", {**good, "adam": ADAM_WITHOUT_BIAS_CORRECTION,
                                               "epoch": EPOCH_WITHOUT_SHUFFLE})
    make_submission(course, "ps04", "copier", {**good, "adam": ADAM_CALLS_REFERENCE})
    cells, totals = autograde(course, "ps04")

    wrong = cells["wrong"]
    assert wrong["test-adam"][0] == 0 and wrong["test-epoch"][0] == 0 and wrong["test-scale"][0] == 3
    # Part 4 trains with the student's own pieces: right RNN and step, but this Adam and this epoch do not beat
    # persistence (3.00 against 2.96 °C).
    assert wrong["test-own-rnn"][0] == 1 and wrong["test-weather-step"][0] == 2 and wrong["test-weather"][0] == 0
    assert "must beat persistence" in wrong["test-weather"][2]
    assert totals["wrong"] == 3 + 1 + 2
    # Hidden checks run first, so these are their messages: which output, how far off, on what input.
    assert "Adam (several steps): output params['W'] after the steps" in wrong["test-adam"][2]
    assert "largest error" in wrong["test-adam"][2] and "grads_W (" in wrong["test-adam"][2]
    assert "train_epoch" in wrong["test-epoch"][2] and "largest error" in wrong["test-epoch"][2]

    copier = cells["copier"]
    # the reference Adam also trains part 4's forecaster: that part scores 0 too
    assert copier["test-adam"][0] == 0 and copier["test-weather"][0] == 0 and totals["copier"] == 16 - 4 - 3
    assert "Adam calls the rnnlib reference" in copier["test-adam"][2]

    html = feedback_html(course, "wrong", "ps04")
    assert "largest error" in html and "checks.adam" not in html


def test_hidden_checks_catch_what_the_visible_tests_miss(fixed_grading_seeds):
    """Wrong answers that pass the visible asserts fail the hidden checks, with a message naming the
    function, the inputs and the largest error."""
    import numpy as np
    import pytest

    from checks import ps04 as checks
    from checks.grading import GradingError

    class AdamEpsInsideSqrt:  # right on the visible example (eps is negligible there), wrong in general
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
            self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
            self.m = {k: np.zeros_like(p) for k, p in params.items()}
            self.v = {k: np.zeros_like(p) for k, p in params.items()}
            self.t = 0

        def step(self, grads):
            self.t += 1
            b1, b2 = self.betas
            for k, p in self.params.items():
                self.m[k] = b1 * self.m[k] + (1 - b1) * grads[k]
                self.v[k] = b2 * self.v[k] + (1 - b2) * grads[k] ** 2
                m_hat, v_hat = self.m[k] / (1 - b1 ** self.t), self.v[k] / (1 - b2 ** self.t)
                p -= self.lr * m_hat / np.sqrt(v_hat + self.eps)

    with pytest.raises(GradingError, match=r"Adam \(several steps\).*largest error"):
        checks.adam(AdamEpsInsideSqrt)

    def epoch_drops_last_batch(step_fn, optimizer, X, y, batch_size, seed):
        order = np.random.default_rng(seed).permutation(len(X))
        batch_losses = []
        for start in range(0, len(X) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            loss, grads = step_fn(optimizer.params, (X[idx], y[idx]))
            optimizer.step(grads)
            batch_losses.append(loss)
        return float(np.mean(batch_losses))

    with pytest.raises(GradingError, match=r"(?s)train_epoch.*batch_size=\d.*largest error"):
        checks.train_epoch(epoch_drops_last_batch, checks.linear_step_fn, checks.PlainSGD)

    def scale_own_statistics(X_train, X_val, X_test):  # the blog post's pitfall
        def own(X):
            return (X - X.mean(axis=(0, 1))) / X.std(axis=(0, 1))
        return own(X_train), own(X_val), own(X_test), X_train.mean(axis=(0, 1)), X_train.std(axis=(0, 1))

    with pytest.raises(GradingError, match=r"scale_splits: output X_val scaled"):
        checks.scale_splits(scale_own_statistics)

    def calls_train_reference(step_fn, optimizer, X, y, batch_size, seed):
        from rnnlib.train import iterate_minibatches
        batch_losses = []
        for batch in iterate_minibatches(X, y, batch_size, seed=seed):
            loss, grads = step_fn(optimizer.params, batch)
            optimizer.step(grads)
            batch_losses.append(loss)
        return float(np.mean(batch_losses))

    with pytest.raises(GradingError, match=r"^train_epoch calls the rnnlib reference \(iterate_minibatches\)"):
        checks.train_epoch(calls_train_reference, checks.linear_step_fn, checks.PlainSGD)

    def scale_per_step(X_train, X_val, X_test):  # statistics per (day, feature) instead of per feature
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        return (X_train - mean) / std, (X_val - mean) / std, (X_test - mean) / std, mean, std

    with pytest.raises(GradingError, match=r"scale_splits: output"):
        checks.scale_splits(scale_per_step)


# ---- slips: each fails a visible test with a message that points at it, and the grader names it ----
import pytest  # noqa: E402

from checks import ps04 as checks  # noqa: E402
from nbgrader_helpers import run_answers  # noqa: E402
from visible_helpers import check_slip, fixed_grading_seeds  # noqa: E402,F401 (a fixture)

GOOD = solution_answers("ps04")
# (answer cell, text in the solution, slipped text, visible test, fragment of its message, grading check,
#  fragment of its message)
SLIPS = [
    ("scale", "std = X_train.std(axis=axes)", "std = X_train.std(axis=axes, ddof=1)", "test-scale",
     "population std (ddof=0)", None, None),
    ("scale", "return (X_train - mean) / std,", "X_train -= mean\n    return X_train / std,", "test-scale",
     "scale_splits changed X_train", None, None),
    ("own-rnn", "h_prev = hs[:, t - 1] if t > 0 else h0", "h_prev = hs[:, t - 1]", "test-own-rnn",
     "rnn_backward: dW_hh differs from central differences", "own_rnn", "instead of h0"),
    ("weather-step", "dhs[:, -1] = dpred @ params[\"W_out\"]", "dhs[:] = (dpred @ params[\"W_out\"])[:, None]",
     "test-weather-step", "only the last state gets a gradient from above", "weather_step",
     "sent to every state, not only the last"),
    ("weather-fit", "* y_std + y_mean", "", "test-weather", "check the scaling of inputs AND targets",
     "beats_persistence", "undo the targets' scaling"),
    ("weather-fit", "rng = np.random.default_rng(seed)", "rng = np.random.default_rng()", "test-weather",
     "the same seed must give the same forecasts", None, None),
]


@pytest.mark.parametrize("cell, old, new, test_id, visible, check, graded", SLIPS)
def test_slip_fails_a_visible_test_and_the_grader_names_it(cell, old, new, test_id, visible, check, graded,
                                                           fixed_grading_seeds):
    functions = {"own_rnn": ("rnn_forward", "rnn_backward"), "weather_step": ("weather_step",),
                 "beats_persistence": ("fit_and_predict",), None: ()}[check]
    check_slip("ps04", cell, [(old, new)], test_id, visible, check and getattr(checks, check), graded, functions)


def test_part_4_passes_in_any_units_and_fast(fixed_grading_seeds):
    """The solution beats persistence on the grader's re-scaled data (units drawn at random each time)."""
    import time

    namespace = run_answers(*GOOD.values())
    start = time.perf_counter()
    for _ in range(2):
        checks.beats_persistence(namespace["fit_and_predict"])
    assert time.perf_counter() - start < 20  # two checks (four trainings), well inside a grading cell's minute
