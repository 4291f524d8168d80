"""Checks for problem set 4 (chapter 5, training): Adam on a dict of arrays, one training epoch over
minibatches, and scaling a chronological split with training statistics only.

The checks only pass plain data (arrays, numbers, dicts) to the student's code, or objects that the
student's notebook itself defined (its classes, the notebook's ``linear_step`` and ``SGD``), so they
work the same whether the student's functions are called directly or through the course grader's
proxies into a sandboxed kernel. Results are read back the same way: the parameters an optimiser holds
are read from its ``params`` attribute after the steps.

Besides the functions that :func:`checks.grading.check_function` watches (``rnnlib.optim``, ...), an
answer here must not call ``rnnlib.train`` (the minibatch loop) or ``rnnlib.data.StandardScaler``
(the scaler): :func:`forbid_reference_calls` adds those to the watch.
"""
import importlib

import numpy as np

from rnnlib import optim
from checks.grading import GradingError, check_function, definition_code, forbid_calls, reference_code


def module_code(module_name):
    """The code objects of every function and method written in the file of ``module_name``
    (:func:`checks.grading.definition_code`)."""
    module = importlib.import_module(module_name)
    return set().union(*(definition_code(module, value) for value in vars(module).values()))


def forbid_reference_calls(student_fn, name, extra_modules):
    """Wrap ``student_fn`` so that calling any rnnlib reference, including the functions and methods
    of ``extra_modules``, fails with the usual "calls the rnnlib reference" message.

    Use with ``check_function(..., allow_reference=True)``: the wrapper does the watching, over the
    union of :func:`checks.grading.reference_code` and the extra modules.
    """
    if not callable(student_fn):
        raise GradingError(f"{name} is not a function (got {type(student_fn).__name__})")
    return forbid_calls(student_fn, name, reference_code().union(*(module_code(m) for m in extra_modules)))


def reraise_reference_calls(check):
    """Run ``check()``; if it failed because of a reference call, raise that message alone (shorter)."""
    try:
        return check()
    except GradingError as err:
        text = str(err)
        marker = "raised GradingError: "
        if marker in text and "calls the rnnlib reference" in text:
            raise GradingError(text.split(marker, 1)[1]) from None
        raise


# ----------------------------------------------------------------------------------------------
# 1. Adam


def read_params(optimizer, names):
    """The arrays ``optimizer.params[name]`` after training, with a clear message if they are missing."""
    try:
        params = optimizer.params
        return tuple(np.asarray(params[name]) for name in names)
    except Exception as exc:  # noqa: BLE001 (the student's object)
        raise GradingError(f"the optimiser must keep the parameter dict it was built on as its attribute "
                           f"`params`, with keys {list(names)} ({type(exc).__name__}: {exc})") from None


def run_adam(adam_class, W, b, grads_W, grads_b, lr, beta1, beta2, eps):
    """Build ``adam_class({"W": W, "b": b}, ...)``, take ``len(grads_W)`` steps and return the
    parameters it holds afterwards (``opt.params["W"]``, ``opt.params["b"]``)."""
    opt = adam_class({"W": W, "b": b}, lr=lr, betas=(beta1, beta2), eps=eps)
    for t in range(len(grads_W)):
        opt.step({"W": grads_W[t].copy(), "b": grads_b[t].copy()})
    return read_params(opt, ("W", "b"))


def _adam_inputs(rng):
    """Random shapes, 2 to 6 steps, gradients of very different sizes, and random hyper-parameters."""
    n_steps = int(rng.integers(2, 7))
    shape_W = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    shape_b = (shape_W[0],)
    scale_W, scale_b = 10.0 ** rng.uniform(-3, 1, 2)
    return [("W", rng.standard_normal(shape_W)), ("b", rng.standard_normal(shape_b)),
            ("grads_W", rng.standard_normal((n_steps, *shape_W)) * scale_W),
            ("grads_b", rng.standard_normal((n_steps, *shape_b)) * scale_b),
            ("lr", float(10.0 ** rng.uniform(-3, -1))), ("beta1", float(rng.uniform(0.5, 0.95))),
            ("beta2", float(rng.uniform(0.9, 0.9999))), ("eps", float(10.0 ** rng.uniform(-8, -2)))]


def adam(Adam):
    student = forbid_reference_calls(lambda *a: run_adam(Adam, *a), "Adam", ["rnnlib.optim"])
    reraise_reference_calls(lambda: check_function(
        student, lambda *a: run_adam(optim.Adam, *a), _adam_inputs, name="Adam (several steps)",
        output_names=("params['W'] after the steps", "params['b'] after the steps"),
        trials=4, rtol=1e-7, atol=1e-10, allow_reference=True))


# ----------------------------------------------------------------------------------------------
# 2. One training epoch


class PlainSGD:
    """Plain gradient descent for the checks (``rnnlib.optim.SGD`` would count as a reference call)."""

    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self, grads):
        for name, p in self.params.items():
            p -= self.lr * grads[name]


def linear_step_fn(params, batch):
    """The fixed tiny problem: a linear model on flattened windows, mean squared error. (loss, grads).

    The notebook defines the same function as ``linear_step`` (so that it exists in the student's kernel)."""
    X, y = batch
    Xf = X.reshape(len(X), -1)
    diff = Xf @ params["w"] + params["b"] - y
    return float(np.mean(diff ** 2)), {"w": 2.0 * Xf.T @ diff / diff.size, "b": 2.0 * diff.sum(axis=0) / diff.size}


def tiny_problem():
    """11 windows of 2 steps x 3 features and their targets, the same every time."""
    rng = np.random.default_rng(404)
    X = rng.standard_normal((11, 2, 3))
    y = X.reshape(11, -1) @ rng.standard_normal((6, 1)) + 0.1 * rng.standard_normal((11, 1))
    return X, y


def train_epoch_reference(step_fn, optimizer, X, y, batch_size, seed):
    """One epoch in the order ``default_rng(seed).permutation(N)``; returns the mean batch loss."""
    order = np.random.default_rng(seed).permutation(len(X))
    batch_losses = []
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        loss, grads = step_fn(optimizer.params, (X[idx], y[idx]))
        optimizer.step(grads)
        batch_losses.append(float(loss))
    return float(np.mean(batch_losses))


def run_epochs(train_epoch, step_fn, sgd_class, batch_size, seed, lr):
    """Two epochs (seeds ``seed`` and ``seed + 1``) of ``train_epoch`` on the tiny problem from fixed
    initial weights, with plain SGD; returns the two mean losses and the final weights."""
    X, y = tiny_problem()
    optimizer = sgd_class({"w": np.full((6, 1), 0.1), "b": np.zeros(1)}, lr)
    losses = [train_epoch(step_fn, optimizer, X, y, batch_size, seed + e) for e in range(2)]
    try:
        losses = np.array(losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradingError(f"train_epoch must return the mean loss, one number; the two epochs returned "
                           f"{losses[0]!r} and {losses[1]!r}") from None
    return (losses, *read_params(optimizer, ("w", "b")))


def _epoch_inputs(rng):
    batch_size = int(rng.choice([2, 3, 4, 5]))  # 11 rows: the last batch is always smaller
    return [("batch_size", batch_size), ("seed", int(rng.integers(0, 2 ** 31))),
            ("lr", float(rng.uniform(0.05, 0.2)))]


def train_epoch(train_epoch, linear_step, SGD):
    """``linear_step`` and ``SGD``: the notebook's copies of :func:`linear_step_fn` and :class:`PlainSGD`."""
    student = forbid_reference_calls(lambda *a: run_epochs(train_epoch, linear_step, SGD, *a), "train_epoch",
                                     ["rnnlib.train"])
    reraise_reference_calls(lambda: check_function(
        student, lambda *a: run_epochs(train_epoch_reference, linear_step_fn, PlainSGD, *a), _epoch_inputs,
        name="train_epoch (2 epochs on an 11-window linear problem)",
        output_names=("returned mean losses of the 2 epochs", "w after 2 epochs", "b after 2 epochs"),
        trials=3, rtol=1e-9, atol=1e-12, allow_reference=True))


# ----------------------------------------------------------------------------------------------
# 3. Scaling with training statistics only


def scale_splits_reference(X_train, X_val, X_test):
    """Standardise every feature (last axis) with the TRAINING mean and population std."""
    axes = tuple(range(X_train.ndim - 1))
    mean, std = X_train.mean(axis=axes), X_train.std(axis=axes)
    return (X_train - mean) / std, (X_val - mean) / std, (X_test - mean) / std, mean, std


def _split_inputs(rng):
    """Three splits of windows (N, T, D) whose features drift from split to split."""
    T, D = int(rng.integers(2, 5)), int(rng.integers(1, 5))
    level, spread = rng.uniform(-20, 20, D), 10.0 ** rng.uniform(-1, 1, D)
    splits = []
    for name, drift in [("X_train", 0.0), ("X_val", 0.5), ("X_test", 1.0)]:
        N = int(rng.integers(3, 30))
        shift = drift * spread * rng.uniform(0.5, 2.0, D)
        splits.append((name, level + shift + spread * rng.standard_normal((N, T, D))))
    return splits


def scale_splits(scale_splits):
    student = forbid_reference_calls(scale_splits, "scale_splits", ["rnnlib.data"])
    reraise_reference_calls(lambda: check_function(
        student, scale_splits_reference, _split_inputs, name="scale_splits",
        output_names=("X_train scaled", "X_val scaled", "X_test scaled", "mean", "std"),
        trials=4, rtol=1e-7, atol=1e-9, allow_reference=True))


# ----------------------------------------------------------------------------------------------
# 4. The student's own RNN on Seattle's weather


def own_rnn(rnn_forward, rnn_backward):
    """The student's ps02 forward and ps03 backward, pasted into ps04, graded by the same checks."""
    from checks import ps02, ps03

    ps02.rnn_forward(rnn_forward)
    ps03.rnn_backward(rnn_backward)


WEATHER_PARAMS = ("W_ih", "W_hh", "b_ih", "b_hh", "W_out", "b_out")


def _weather_step_inputs(rng):
    B, D, H = int(rng.integers(1, 7)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    return [("W_ih", rng.standard_normal((H, D)) * 0.5), ("W_hh", rng.standard_normal((H, H)) * 0.5),
            ("b_ih", rng.standard_normal(H) * 0.1), ("b_hh", rng.standard_normal(H) * 0.1),
            ("W_out", rng.standard_normal((1, H))), ("b_out", rng.standard_normal(1)),
            ("X", rng.standard_normal((B, int(rng.integers(1, 5)), D))), ("y", rng.standard_normal((B, 1)))]


def _as_outputs(step_fn):
    """``step_fn(params, (X, y))`` called on positional arrays, returning ``(loss, *grads in WEATHER_PARAMS order)``."""
    def run(*arrays):
        params = dict(zip(WEATHER_PARAMS, arrays[:6]))
        out = step_fn(params, tuple(arrays[6:]))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise GradingError("weather_step must return a pair (loss, grads)")
        loss, grads = out
        try:
            return (loss, *(grads[k] for k in WEATHER_PARAMS))
        except (KeyError, TypeError) as exc:
            raise GradingError(f"weather_step's grads must be a dict with the keys {list(WEATHER_PARAMS)} "
                               f"({type(exc).__name__}: {exc})") from None
    return run


def _weather_step_slip(params, batch):
    """The reference step with the loss's gradient sent to every state (not only the last)."""
    from rnnlib import sequence, train

    loss, grads = train.rnn_regression_step(params, batch)
    X, y = batch
    hs, cache = sequence.rnn_forward(X, None, *(params[k] for k in WEATHER_PARAMS[:4]))
    dpred = 2.0 * (hs[:, -1] @ params["W_out"].T + params["b_out"] - y) / y.size
    dhs = np.repeat((dpred @ params["W_out"])[:, None], hs.shape[1], axis=1)
    _, _, *recurrent = sequence.rnn_backward(dhs, cache)
    return loss, {**grads, **dict(zip(WEATHER_PARAMS[:4], recurrent))}


def weather_step(weather_step):
    from rnnlib import train

    student = forbid_reference_calls(_as_outputs(weather_step), "weather_step", ["rnnlib.train"])
    reraise_reference_calls(lambda: check_function(
        student, _as_outputs(train.rnn_regression_step), _weather_step_inputs, name="weather_step",
        output_names=("loss",) + tuple(f"grads[{k!r}]" for k in WEATHER_PARAMS), trials=3, allow_reference=True,
        slips={"the loss's gradient sent to every state, not only the last": _as_outputs(_weather_step_slip)}))


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2)))


def beats_persistence(fit_and_predict):
    """``fit_and_predict(X_train, y_train, X_val, seed=0)`` on the Seattle split of chapter 5 in other
    units (temperatures ``a T + b`` with ``a``, ``b`` drawn now, precipitation and wind rescaled; a
    pipeline that scales with training statistics gives the same forecasts, an answer that looks the
    targets up does not): the validation RMSE must be below persistence's, and the same seed must give
    the same forecasts."""
    import secrets

    from rnnlib import data

    student = forbid_reference_calls(fit_and_predict, "fit_and_predict", ["rnnlib.train", "rnnlib.data"])
    X, y, dates = data.seattle_windows()
    train, val, _ = data.chronological_split(X, y, dates)
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(1.5, 2.0), rng.uniform(20.0, 40.0)
    scale = np.array([a, a, rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0)])
    shift = np.array([b, b, 0.0, 0.0])
    X_train, X_val = train.X * scale + shift, val.X * scale + shift
    y_train, y_val = train.y * a + b, val.y * a + b
    call = f"fit_and_predict(X_train {X_train.shape}, y_train {y_train.shape}, X_val {X_val.shape}, seed=0) [units seed {seed}]"

    def run():
        try:
            out = student(X_train.copy(), y_train.copy(), X_val.copy(), 0)
        except GradingError:
            raise
        except NotImplementedError:
            raise GradingError("fit_and_predict is not implemented yet (it raised NotImplementedError)") from None
        except Exception as exc:  # noqa: BLE001 (the student's error, reported as a message)
            raise GradingError(f"{call} raised {type(exc).__name__}: {exc}") from None
        try:
            out = np.asarray(out, dtype=np.float64)
        except (TypeError, ValueError):
            raise GradingError(f"{call}: the forecasts could not be read as an array of numbers") from None
        if out.shape != y_val.shape:
            raise GradingError(f"{call}: expected forecasts of shape {y_val.shape}, got {out.shape}")
        if not np.all(np.isfinite(out)):
            raise GradingError(f"{call}: the forecasts contain nan or inf")
        return out

    forecast = reraise_reference_calls(run)
    mine, persistence = _rmse(forecast, y_val) / a, _rmse(X_val[:, -1, :1], y_val) / a
    if not mine < persistence:
        raise GradingError(f"{call}: validation RMSE {mine:.3f} °C, persistence {persistence:.3f} °C (in °C): the "
                           f"forecasts must beat persistence. Do you scale inputs and targets with the training "
                           f"statistics (whatever the units), and undo the targets' scaling?")
    if not np.allclose(reraise_reference_calls(run), forecast, rtol=1e-9, atol=1e-9):
        raise GradingError(f"{call}: a second call with the same seed gave other forecasts: draw every random "
                           f"number from np.random.default_rng(seed)")
