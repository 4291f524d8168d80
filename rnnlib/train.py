"""A small training loop for NumPy models.

A model is a dict of parameter arrays plus a function that, for one batch, runs the forward and
backward pass::

    def step_fn(params, batch):          # batch is whatever your batches yield, e.g. (X, y)
        ...forward, loss, backward...
        return loss, grads               # a float and a dict shaped like params

``fit`` calls it on every batch, optionally clips the gradient norm, lets the optimiser update
``params`` in place, and records the mean training loss of each epoch.

:func:`rnn_regression_step` is such a function for the course's first model: a tanh RNN whose last
state goes through a linear head, trained with the mean squared error (chapters 5 and 6).
"""
import numpy as np
from tqdm.auto import tqdm

from rnnlib import losses, sequence
from rnnlib.cells import init_params
from rnnlib.optim import clip_grad_norm


def rnn_regression_params(D, H, seed, O=1):
    """Parameters of a tanh RNN (``W_ih, W_hh, b_ih, b_hh``, from :func:`rnnlib.cells.init_params`)
    and a linear head (``W_out`` (O, H), ``b_out`` (O,)), all drawn like torch.nn.RNN / nn.Linear:
    U(-1/sqrt(H), 1/sqrt(H)). ``seed``: an int or a ``numpy.random.Generator`` (used as it is)."""
    rng = np.random.default_rng(seed)
    rnn = init_params(D, H, rng)  # drawn first, then the head
    s = 1.0 / np.sqrt(H)
    return {**rnn, "W_out": rng.uniform(-s, s, (O, H)), "b_out": rng.uniform(-s, s, O)}


def rnn_regression_forward(params, X, layers=sequence):
    """Predictions (N, O) from the last state of the RNN over X (N, T, D), from the zero
    state, and the caches of both layers ``(hs, rnn_cache, head_cache)``.
    ``layers``: the module whose ``rnn_forward`` runs the RNN, ``rnnlib.sequence``
    or ``rnnlib.fast`` (the same numbers, faster)."""
    rnn_params = [params[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh")]
    hs, rnn_cache = layers.rnn_forward(X, None, *rnn_params)
    pred, head_cache = sequence.linear_forward(hs[:, -1], params["W_out"], params["b_out"])
    return pred, (hs, rnn_cache, head_cache)


def rnn_regression_step(params, batch, layers=sequence):
    """One minibatch ``(X, y)``: forward, MSE loss, backward (full BPTT).
    Returns ``(loss, grads)``: the ``step_fn`` of :func:`fit` for the parameters of
    :func:`rnn_regression_params`. ``layers`` as in :func:`rnn_regression_forward`."""
    X, y = batch
    pred, (hs, rnn_cache, head_cache) = rnn_regression_forward(params, X, layers)
    loss, dpred = losses.mse(pred, y)
    dh_last, dW_out, db_out = sequence.linear_backward(dpred, head_cache)
    dhs = np.zeros_like(hs)
    dhs[:, -1] = dh_last                       # the loss sees only the last state
    _, _, dW_ih, dW_hh, db_ih, db_hh = layers.rnn_backward(dhs, rnn_cache)
    return loss, {"W_ih": dW_ih, "W_hh": dW_hh, "b_ih": db_ih, "b_hh": db_hh,
                  "W_out": dW_out, "b_out": db_out}


def iterate_minibatches(X, y, batch_size, shuffle=True, seed=0):
    """Yield ``(X[idx], y[idx])`` for consecutive groups of ``batch_size`` rows (the last may be smaller).

    With ``shuffle=True`` the rows are visited in an order drawn from ``seed``; pass a different
    seed each epoch (e.g. the epoch number) to see the data in a new order every time.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected {X.shape[0]} rows (as many as X), got shape {y.shape}")
    order = np.random.default_rng(seed).permutation(len(X)) if shuffle else np.arange(len(X))
    for start in range(0, len(X), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]


def fit(step_fn, params, optimizer, batches, epochs, clip=None, val_fn=None, progress=True):
    """Train ``params`` in place for ``epochs`` epochs; return the history.

    * ``batches``: either a function ``epoch -> iterable of batches`` (reshuffle every epoch, e.g.
      ``lambda e: iterate_minibatches(X, y, 32, seed=e)``) or a re-iterable collection such as a
      list. A generator would be empty after the first epoch, so it is refused.
    * ``optimizer``: built on this same ``params`` dict (``Adam(params, ...)``); its ``step``
      updates the arrays in place.
    * ``clip``: if given, the global gradient norm is clipped to it before each step.
    * ``val_fn``: if given, ``val_fn(params) -> float`` is called after each epoch.

    Returns ``{"train_loss": [...], "val_loss": [...], "grad_norm": [...]}``: per epoch the mean
    of the batch losses, the validation loss (empty without ``val_fn``) and the mean gradient norm
    before clipping.
    """
    if optimizer.params is not params:
        raise ValueError("optimizer: it was built on a different params dict; build it on this one")
    if not callable(batches) and iter(batches) is batches:
        raise ValueError("batches: got an iterator, which would be empty after one epoch; pass a list "
                         "or a function epoch -> iterable")
    history = {"train_loss": [], "val_loss": [], "grad_norm": []}
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        losses, norms = [], []
        for batch in (batches(epoch) if callable(batches) else batches):
            loss, grads = step_fn(params, batch)
            if clip is not None:
                norms.append(clip_grad_norm(grads, clip))
            else:
                norms.append(float(np.sqrt(sum(np.sum(g * g) for g in grads.values()))))
            optimizer.step(grads)
            losses.append(float(loss))
        if not losses:
            raise ValueError(f"batches: epoch {epoch} had no batches")
        history["train_loss"].append(float(np.mean(losses)))
        history["grad_norm"].append(float(np.mean(norms)))
        shown = {"train": f"{history['train_loss'][-1]:.4g}"}
        if val_fn is not None:
            history["val_loss"].append(float(val_fn(params)))
            shown["val"] = f"{history['val_loss'][-1]:.4g}"
        bar.set_postfix(shown)
    return history
