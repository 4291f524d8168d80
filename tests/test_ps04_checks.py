"""ps04's checks on answers the notebook's tests cannot show: copiers, answers just outside a tolerance,
and answers of the wrong form (optimisers without ``params``, steps without a dict of gradients, ...).

ps04 grades classes and loops, not single functions, so the generic tests of
``test_checks_accept_solutions.py`` reach only part of it. Seeds fixed; messages reviewed.
"""
import numpy as np
import pytest

from checks import ps04 as checks
from checks.grading import GradingError
from visible_helpers import fixed_grading_seeds, solution_namespace  # noqa: F401 (a fixture)

COPIED = r"calls the rnnlib reference \(.+\) instead of computing the answer itself: this part scores 0$"


@pytest.fixture(scope="module")
def ns():
    return solution_namespace("ps04")


def copying_adam(ns):
    from rnnlib import optim

    class Adam(optim.Adam):
        pass

    return Adam


def test_copiers_score_0(ns, fixed_grading_seeds):
    from rnnlib import data, losses, train

    with pytest.raises(GradingError, match=r"^Adam " + COPIED):
        checks.adam(copying_adam(ns))

    def epoch_with_a_reference_loss(step_fn, optimizer, X, y, batch_size, seed):
        losses.mse(np.zeros(1), np.zeros(1))
        return ns["train_epoch"](step_fn, optimizer, X, y, batch_size, seed)

    with pytest.raises(GradingError, match=r"^train_epoch " + COPIED):
        checks.train_epoch(epoch_with_a_reference_loss, ns["linear_step"], ns["SGD"])

    def scaler(X_train, X_val, X_test):
        s = data.StandardScaler().fit(X_train.reshape(-1, X_train.shape[-1]))
        return (s.transform(X_train), s.transform(X_val), s.transform(X_test), s.mean, s.std)

    with pytest.raises(GradingError, match=r"^scale_splits " + COPIED):
        checks.scale_splits(scaler)
    with pytest.raises(GradingError, match=r"^weather_step " + COPIED):
        checks.weather_step(train.rnn_regression_step)

    def fit_with_the_scaler(X_train, y_train, X_val, seed):
        data.StandardScaler().fit(X_train.reshape(-1, X_train.shape[-1]))
        return ns["fit_and_predict"](X_train, y_train, X_val, seed)

    with pytest.raises(GradingError, match=r"^fit_and_predict " + COPIED):
        checks.beats_persistence(fit_with_the_scaler)


def test_answers_just_outside_the_tolerance_fail(ns, fixed_grading_seeds):
    """Adam and scale_splits are graded to 1e-7 relative, train_epoch to 1e-9, and the second call of
    fit_and_predict must repeat the first to 1e-9: the same arithmetic agrees to rounding."""
    class OffAdam(ns["Adam"]):
        def step(self, grads):  # the parameters end 3e-7 (relative) away from Adam's, whatever the steps
            if getattr(self, "off", False):
                for p in self.params.values():
                    p /= 1 + 3e-7
            super().step(grads)
            for p in self.params.values():
                p *= 1 + 3e-7
            self.off = True

    with pytest.raises(GradingError, match="values differ"):
        checks.adam(OffAdam)

    def off_scale(*splits):
        return tuple(out * (1 + 3e-7) for out in ns["scale_splits"](*splits))

    with pytest.raises(GradingError, match="values differ"):
        checks.scale_splits(off_scale)

    def off_epoch(*args):
        return ns["train_epoch"](*args) * (1 + 3e-9)

    with pytest.raises(GradingError, match="returned mean losses of the 2 epochs: 2 of 2 values differ"):
        checks.train_epoch(off_epoch, ns["linear_step"], ns["SGD"])
    calls = []

    def drifting(X_train, y_train, X_val, seed):
        calls.append(1)
        return ns["fit_and_predict"](X_train, y_train, X_val, seed) * (1 + 1e-8 * len(calls))

    with pytest.raises(GradingError, match="a second call with the same seed gave other forecasts"):
        checks.beats_persistence(drifting)


def test_answers_of_the_wrong_form_get_a_message(ns, fixed_grading_seeds):
    class KeepsNoParams(ns["Adam"]):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            self.weights = self.__dict__.pop("params")

        def step(self, grads):
            self.params = self.weights
            super().step(grads)
            del self.params

    with pytest.raises(GradingError, match=r"raised GradingError: the optimiser must keep the parameter dict it was built on as its "
                                           r"attribute `params`, with keys \['W', 'b'\] \(AttributeError: "):
        checks.adam(KeepsNoParams)
    with pytest.raises(GradingError, match=r"train_epoch must return the mean loss, one number; it returned 'low'"):
        checks.train_epoch(lambda *args: (ns["train_epoch"](*args), "low")[1], ns["linear_step"], ns["SGD"])
    step = ns["weather_step"]
    with pytest.raises(GradingError, match=r"weather_step must return a pair \(loss, grads\)"):
        checks.weather_step(lambda params, batch: step(params, batch)[0])
    with pytest.raises(GradingError, match=r"weather_step's grads must be a dict with the keys \['W_ih', 'W_hh', "
                                           r"'b_ih', 'b_hh', 'W_out', 'b_out'\] \(TypeError: "):
        checks.weather_step(lambda params, batch: (step(params, batch)[0], list(step(params, batch)[1].values())))
    fit = ns["fit_and_predict"]
    # (the fifth: persistence plus precipitation minus wind, in the units drawn: the RMSE depends on them;
    # the sixth: persistence itself, which does not beat persistence)
    for answer, message in [
            (lambda *args: fit(*args)[:-1], r"expected forecasts of shape \(365, 1\), got \(364, 1\)"),
            (lambda *args: fit(*args) * np.nan, "the forecasts contain nan or inf"),
            (lambda *args: [["warm"]] * 365, "the forecasts could not be read as an array of numbers"),
            (lambda X_train, y_train, X_val, seed: X_val[:, -1, :1] + X_val[:, -1, 2:3] - X_val[:, -1, 3:4],
             r"validation RMSE \d+\.\d+ °C, persistence 2\.\d+ °C \(in °C\): the forecasts must beat persistence"),
            (lambda X_train, y_train, X_val, seed: X_val[:, -1, :1].copy(),
             r"validation RMSE (2\.\d+) °C, persistence \1 °C \(in °C\): the forecasts must beat persistence"),
            (lambda *args: 1 / 0, r"^fit_and_predict\(X_train \(728, 3, 4\), y_train \(728, 1\), X_val \(365, 3, 4\), "
                                  r"seed=0\) \[units seed \d+\] raised ZeroDivisionError: division by zero$")]:
        with pytest.raises(GradingError, match=message):
            checks.beats_persistence(answer)
