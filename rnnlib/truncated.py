"""Truncated backpropagation through time (TBPTT) for the tanh RNN of :mod:`rnnlib.sequence`.

Full BPTT sends the gradient of every loss back through every earlier step. Truncated BPTT cuts the
recurrence into **chunks of k steps** and lets no gradient cross a chunk boundary:

    steps    0 .. k-1 | k .. 2k-1 | 2k .. 3k-1 | ...      (the last chunk may be shorter)

The forward pass is unchanged (the state flows on from chunk to chunk); only the backward pass is cut.
A loss at step ``t`` reaches the states and the weights of its own chunk only, so it flows back between
1 and ``k`` steps: ``t - (t // k) * k + 1`` steps. This is exactly what PyTorch computes when the state
is detached every k steps::

    h = h0
    for t in range(T):
        if t > 0 and t % k == 0:
            h = h.detach()
        h = cell(x[:, t], h)

(the variant often written TBPTT(k, k); Williams & Peng's more general TBPTT(k1, k2), where every
loss flows back exactly k2 steps, costs more and is not what ``detach`` gives). With ``k >= T`` nothing
is cut and the result is that of :func:`rnnlib.sequence.rnn_backward`.

Two ways to use it:

* :func:`rnn_backward_truncated` takes the cache of one forward pass over the whole sequence and
  returns the truncated gradient, for fixed weights (the reference the problem set is graded on);
* :func:`fit_tbptt` trains on long sequences chunk by chunk: forward over a chunk from the state the
  previous chunk ended in, full BPTT inside the chunk, an optimiser step, and on to the next chunk.
  Nothing flows back into the previous chunk, whose state is a plain array by then. With a learning
  rate of zero the chunk gradients add up to :func:`rnn_backward_truncated`'s (tested); with
  training, each chunk's gradient is taken at the weights of that moment.
"""
import numpy as np

from rnnlib import sequence
from rnnlib._checks import check_shape
from rnnlib.train import fit


def check_k(k):
    """The truncation length must be a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer (steps per chunk), got {k!r}")
    return int(k)


def chunk_bounds(T, k):
    """``[(start, stop), ...]`` of the chunks of ``k`` steps that cover ``range(T)``, in time order."""
    k = check_k(k)
    return [(s, min(s + k, T)) for s in range(0, T, k)]


def rnn_backward_truncated(dhs, cache, k):
    """Backward pass of :func:`rnnlib.sequence.rnn_forward` with the recurrence cut every ``k`` steps.

    ``dhs (B, T, H)`` and ``cache`` as for :func:`rnnlib.sequence.rnn_backward`. Inside each chunk the
    gradient is full BPTT (computed by ``rnn_backward`` on that chunk, entered from the state the
    previous chunk ended in); across chunk boundaries nothing flows. Returns
    ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)``: ``dx`` for every step, ``dh0`` the gradient that reaches
    the initial state through the first chunk, and the weight gradients summed over all chunks.
    """
    x, h0, hs, W_ih, W_hh = cache
    dhs = check_shape("dhs", dhs, hs.shape)
    k = check_k(k)
    H = hs.shape[2]
    dx = np.empty_like(x)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(H, dtype=hs.dtype)
    dh0 = np.zeros_like(h0)  # replaced by the first chunk's (stays zero for an empty sequence)
    for start, stop in chunk_bounds(hs.shape[1], k):
        h_in = h0 if start == 0 else hs[:, start - 1]  # the state entering the chunk, a constant here
        chunk_cache = (x[:, start:stop], h_in, hs[:, start:stop], W_ih, W_hh)  # rnn_forward's cache layout
        dx_c, dh_in, dW_ih_c, dW_hh_c, db_c, _ = sequence.rnn_backward(dhs[:, start:stop], chunk_cache)
        dx[:, start:stop] = dx_c
        dW_ih += dW_ih_c
        dW_hh += dW_hh_c
        db += db_c
        if start == 0:
            dh0 = dh_in  # later chunks' dh_in would go to a detached state: dropped
    return dx, dh0, dW_ih, dW_hh, db, db.copy()


def fit_tbptt(chunk_step, params, optimizer, X, Y, k, epochs, h0=None, **fit_kwargs):
    """Train on long sequences ``X (B, T, D)``, targets ``Y (B, T, ...)``, chunk by chunk, carrying the state.

    ``chunk_step(params, x_chunk, y_chunk, h) -> (loss, grads, h_last)`` runs the forward pass over one
    chunk from the state ``h (B, H)`` (``None`` = zeros, at the start of each epoch, unless ``h0`` is
    given), the loss, and full BPTT inside the chunk; ``h_last`` is the state after the chunk's last step,
    the starting state of the next chunk. Every epoch walks the chunks of ``k`` steps in time order and
    the optimiser steps after each one. Built on :func:`rnnlib.train.fit` (progress bar, clipping with
    ``clip=``, ``val_fn=``), whose history it returns; a "batch" there is one chunk.
    """
    k = check_k(k)
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 3 or Y.shape[:2] != X.shape[:2]:
        raise ValueError(f"Y: expected shape {X.shape[:2]} + (...) to match X (B, T, D) = {X.shape}, got {Y.shape}")
    chunks = [(start, X[:, start:stop], Y[:, start:stop]) for start, stop in chunk_bounds(X.shape[1], k)]
    carried = {}

    def step_fn(params, chunk):
        start, x_chunk, y_chunk = chunk
        h = h0 if start == 0 else carried["h"]
        loss, grads, carried["h"] = chunk_step(params, x_chunk, y_chunk, h)
        return loss, grads

    return fit(step_fn, params, optimizer, chunks, epochs, **fit_kwargs)
