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
    with pytest.raises(GradingError, match=r"train_epoch must return the mean loss, one number; the two epochs "
                                           r"returned 'low' and 'low'"):
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


def test_adams_inputs_cover_what_they_promise():
    """2 to 6 steps, W of 1-4 x 1-4, gradients from 1e-3 to 10 times a standard normal (W's and b's each),
    and hyper-parameters in the ranges of practice (beta2 below 0.9999: Adam's bias correction matters)."""
    draws = [dict(checks._adam_inputs(np.random.default_rng(seed))) for seed in range(400)]
    assert {len(d["grads_W"]) for d in draws} == {2, 3, 4, 5, 6}
    assert {d["W"].shape[0] for d in draws} == {1, 2, 3, 4} == {d["W"].shape[1] for d in draws}
    assert all(d["b"].shape == d["W"].shape[:1] and d["grads_b"].shape[1:] == d["b"].shape for d in draws)
    for name in ("grads_W", "grads_b"):
        rms = np.array([np.sqrt(np.mean(d[name] ** 2)) for d in draws])
        assert rms.min() < 3e-3 and 3 < rms.max() < 40, (name, rms.min(), rms.max())
    for name, low, high in [("lr", 1e-3, 1e-1), ("beta1", 0.5, 0.95), ("beta2", 0.9, 0.9999), ("eps", 1e-8, 1e-2)]:
        values = np.array([d[name] for d in draws])
        assert low <= values.min() < low + 0.1 * (high - low) and high - 0.1 * (high - low) < values.max() < high


class Nudged:
    """The notebook's Adam, with the parameter ``name`` moved by ``by`` (absolute) after every step."""

    def __init__(self, ns, name, by):
        self.adam, self.name, self.by = ns["Adam"], name, by

    def __call__(self, params, **kwargs):
        adam = self.adam(params, **kwargs)
        step = adam.step

        def nudged_step(grads):
            step(grads)
            adam.params[self.name] += self.by
        adam.step = nudged_step
        return adam


def test_adam_names_the_parameter_that_is_wrong_and_holds_small_entries_to_1e_10(ns, fixed_grading_seeds):
    with pytest.raises(GradingError, match=r"output params\['b'\] after the steps: \d+ of \d+ values differ"):
        checks.adam(Nudged(ns, "b", 1e-4))
    with pytest.raises(GradingError, match=r"output params\['W'\] after the steps: \d+ of \d+ values differ"):
        checks.adam(Nudged(ns, "W", 1e-4))
    # 5e-9 in all is below 1e-7 relative for entries above 0.05; the entries nearer 0 are held to 1e-10
    with pytest.raises(GradingError, match=r"values differ; largest error \d\.\d+e-09; "):
        checks.adam(Nudged(ns, "W", 5e-9 / 6))


def test_train_epoch_names_the_weight_that_is_wrong(ns, fixed_grading_seeds):
    """An epoch loop that moves w (or b) after the last epoch's losses: the message names that weight."""
    for name in ("w", "b"):
        calls = []

        def epoch(step_fn, optimizer, X, y, batch_size, seed, _name=name):
            loss = ns["train_epoch"](step_fn, optimizer, X, y, batch_size, seed)
            calls.append(seed)
            if len(calls) % 2 == 0:  # the second epoch of a run
                optimizer.params[_name] += 1e-3
            return loss

        with pytest.raises(GradingError, match=rf"output {name} after 2 epochs: \d+ of \d+ values differ"):
            checks.train_epoch(epoch, ns["linear_step"], ns["SGD"])


def test_an_epoch_that_returns_no_number_shows_what_it_returned(ns, fixed_grading_seeds):
    returned = iter([1.0, "low"] * 3)
    with pytest.raises(GradingError, match=r"train_epoch must return the mean loss, one number; the two epochs "
                                           r"returned 1.0 and 'low'$"):
        checks.train_epoch(lambda *args: (ns["train_epoch"](*args), next(returned))[1], ns["linear_step"], ns["SGD"])


def test_the_second_forecast_must_repeat_the_first_to_1e_9_absolute(ns, fixed_grading_seeds):
    """Forecasts of 10-80 (the units drawn) repeated 5e-9 + 1e-9 |x| away: over 1e-9 + 1e-9 |x|, they fail."""
    calls = []

    def drifting(X_train, y_train, X_val, seed):
        calls.append(1)
        out = ns["fit_and_predict"](X_train, y_train, X_val, seed)
        return out if len(calls) == 1 else out + 5e-9 + 1e-9 * np.abs(out)

    with pytest.raises(GradingError, match="a second call with the same seed gave other forecasts"):
        checks.beats_persistence(drifting)


def test_methods_count_as_references_and_namedtuples_do_not(ns, fixed_grading_seeds):
    """A method of an rnnlib.data class is a reference call; a namedtuple of the student's is not, although
    its methods share their code with rnnlib.data's namedtuples."""
    import collections

    from rnnlib import data

    def with_vocab(*splits):
        data.Vocab("abc").encode("ab")
        return ns["scale_splits"](*splits)

    with pytest.raises(GradingError, match=r"^scale_splits " + COPIED):
        checks.scale_splits(with_vocab)
    Splits = collections.namedtuple("Splits", "train val test mean std")

    def with_namedtuple(*splits):
        out = Splits(*ns["scale_splits"](*splits))
        repr(out)
        return tuple(out._replace(mean=out.mean))

    checks.scale_splits(with_namedtuple)
