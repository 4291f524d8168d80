"""How far a gradient travels back in time: the norms of ``∂s_T / ∂s_t`` from the backward step functions.

For a recurrent state ``s`` (``h``, or the LSTM's cell state ``c``) the Jacobian of the last state with
respect to an earlier one is a product of one step Jacobian per step in between. Seeding the backward
pass at step ``T`` with the identity matrix, one batch row per unit (row ``k`` carries the gradient of
unit ``k`` of ``s_T``), turns the gradient that arrives at ``s_t`` into the Jacobian, row by row.
For the LSTM's ``c`` this is the ``c``-block of the Jacobian of the state pair ``(h_T, c_T)`` with
respect to ``(h_t, c_t)``: it includes the paths that leave the cell through ``h`` and come back
through the gates.
"""
import numpy as np

from . import cells
from ._checks import check_shape

# kind -> (step forward, step backward, number of states)
STEPS = {"rnn": (cells.rnn_step_forward, cells.rnn_step_backward, 1),
         "gru": (cells.gru_step_forward, cells.gru_step_backward, 1),
         "lstm": (cells.lstm_step_forward, cells.lstm_step_backward, 2)}


def state_jacobian_norms(kind, x, params, state="h"):
    """Spectral norms ``||∂s_T / ∂s_{T-k}||_2`` for ``k = 0, ..., T-1`` (index = distance ``T - t``).

    ``kind``: ``'rnn'``, ``'lstm'`` or ``'gru'``; ``x``: one input sequence, shape ``(T, D)``;
    ``params``: ``{W_ih, W_hh, b_ih, b_hh}`` of one layer (hidden size ``H``); ``state``: ``'h'``, or
    ``'c'`` for the LSTM's cell state. The run starts from the zero state; ``s_t`` is the state after
    ``t`` steps, so entry 0 is 1 (the identity) and the last entry is ``||∂s_T / ∂s_1||``.
    Returns a float array of length ``T``.
    """
    if kind not in STEPS:
        raise ValueError(f"kind: expected 'rnn', 'lstm' or 'gru', got {kind!r}")
    if state not in ("h", "c") or (state == "c" and kind != "lstm"):
        raise ValueError(f"state: expected 'h'{' or ' + repr('c') if kind == 'lstm' else ''}, got {state!r}")
    x = check_shape("x", x, (None, np.shape(params["W_ih"])[1]))
    forward, backward, n_states = STEPS[kind]
    follow = 1 if state == "c" else 0
    T, H = x.shape[0], params["W_hh"].shape[1]
    x_rows = np.repeat(x[None], H, axis=0)  # (H, T, D): one copy of the sequence per row of the Jacobian
    states, caches = [np.zeros((H, H), dtype=x.dtype)] * n_states, []
    for t in range(T):
        *states, cache = forward(x_rows[:, t], *states, **params)
        caches.append(cache)
    grads = [np.zeros((H, H), dtype=x.dtype)] * n_states
    grads[follow] = np.eye(H, dtype=x.dtype)
    norms = [1.0]
    for t in range(T - 1, 0, -1):
        grads = list(backward(*grads, caches[t])[1:1 + n_states])  # (dh_prev[, dc_prev]) after dx
        norms.append(np.linalg.norm(grads[follow], 2))
    return np.array(norms)
