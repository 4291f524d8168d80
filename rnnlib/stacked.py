"""Deep and bidirectional recurrent networks: layers and directions, as ``torch.nn.RNN/LSTM/GRU``.

Layer ``l`` reads the output of layer ``l - 1`` (layer 0 reads ``x``). A bidirectional layer runs
two independent recurrences over the same input: the forward one in time order, the reverse one on
the time-reversed sequence, whose outputs are reversed back so that both describe the same time
step; the two are concatenated along the features, ``out[:, t] = [h_forward_t, h_reverse_t]``, so the
next layer's input has ``2H`` features. All sequences in a batch have the same length T.

Shapes as torch with ``batch_first=True``: ``x (B, T, D)`` -> ``out (B, T, num_directions * H)``;
initial and final states ``(num_layers * num_directions, B, H)``, entry ``layer * num_directions +
direction`` (direction 1 is the reverse one). The final state of the reverse direction is its state
after reading the whole reversed sequence, i.e. its output at ``t = 0``.

``layers`` holds the parameters: ``layers[l][d]`` is the dict ``{W_ih, W_hh, b_ih, b_hh}`` of layer
``l``, direction ``d``, as :func:`rnnlib.torch.torch_io.stack_from_torch` returns it. No dropout between
layers (torch's default ``dropout=0``).
"""
import numpy as np

from rnnlib import sequence
from rnnlib._checks import check_same_dtype, check_shape
from rnnlib.cells import check_rnn_params

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
PARAM_NAMES = ("W_ih", "W_hh", "b_ih", "b_hh")


def check_layers(kind, layers, bidirectional):
    """Validate the nested parameter lists; return ``(D, H)`` (input and hidden size)."""
    if kind not in GATES:
        raise ValueError(f"kind: expected one of {sorted(GATES)}, got {kind!r}")
    num_directions = 2 if bidirectional else 1
    if len(layers) == 0:
        raise ValueError("layers: expected at least one layer, got none")
    D_in = H = None
    for l, directions in enumerate(layers):
        if len(directions) != num_directions:
            raise ValueError(f"layers[{l}]: expected {num_directions} direction(s) (bidirectional="
                             f"{bidirectional}), got {len(directions)}")
        for d, params in enumerate(directions):
            where = f"layers[{l}][{d}]"
            if set(params) != set(PARAM_NAMES):
                raise ValueError(f"{where}: expected the keys {list(PARAM_NAMES)}, got {sorted(params)}")
            try:
                D, H_ld = check_rnn_params(*(params[k] for k in PARAM_NAMES), gates=GATES[kind])
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
            if H is None:
                D_in, H = D, H_ld  # layer 0 fixes the input and hidden sizes
            elif H_ld != H:
                raise ValueError(f"{where}: W_hh: expected shape {(GATES[kind] * H, H)} (the hidden size of "
                                 f"layers[0][0]), got {params['W_hh'].shape}")
            elif D != (D_in if l == 0 else num_directions * H):
                expected = (GATES[kind] * H, D_in if l == 0 else num_directions * H)
                raise ValueError(f"{where}: W_ih: expected shape {expected}, got {params['W_ih'].shape}")
    return D_in, H


def initial_states(name, s0, shape, dtype):
    """``s0 (L * num_directions, B, H)`` or None as a list of per-(layer, direction) ``(B, H)`` or None."""
    if s0 is None:
        return [None] * shape[0]
    s0 = check_shape(name, s0, shape)
    if s0.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)} (the dtype of x), got {s0.dtype}")
    return list(s0)


def run_forward(kind, x, h0, c0, params):
    """One layer, one direction: ``(hs, c_last or None, cache)``."""
    if kind == "lstm":
        hs, cache = sequence.lstm_forward(x, h0, c0, **params)
        return hs, sequence.lstm_cell_states(cache)[:, -1], cache
    forward = sequence.gru_forward if kind == "gru" else sequence.rnn_forward
    hs, cache = forward(x, h0, **params)
    return hs, None, cache


def run_backward(kind, dhs, dc_last, cache):
    """Backward of :func:`run_forward`: ``(dx, dh0, dc0 or None, grads)``."""
    if kind == "lstm":
        dx, dh0, dc0, *grads = sequence.lstm_backward(dhs, cache, dc_last)
    else:
        backward = sequence.gru_backward if kind == "gru" else sequence.rnn_backward
        (dx, dh0, *grads), dc0 = backward(dhs, cache), None
    return dx, dh0, dc0, dict(zip(PARAM_NAMES, grads))


def stacked_forward(kind, x, layers, h0=None, c0=None, bidirectional=False):
    """Run a deep, optionally bidirectional, RNN / LSTM / GRU over ``x (B, T, D)``.

    kind: ``'rnn'`` (tanh), ``'lstm'`` or ``'gru'``; layers: ``layers[l][d]`` parameter dicts;
    h0, c0: ``(num_layers * num_directions, B, H)`` or None (zeros); ``c0`` only for an LSTM.

    Returns ``(out, state, cache)`` like torch's ``(output, h_n)`` / ``(output, (h_n, c_n))``:
    out (B, T, num_directions * H); state is ``h_n`` for the RNN and the GRU and ``(h_n, c_n)`` for
    the LSTM, each ``(num_layers * num_directions, B, H)``.
    """
    D, H = check_layers(kind, layers, bidirectional)
    x = check_shape("x", x, (None, None, D))
    if kind != "lstm" and c0 is not None:
        raise ValueError(f"c0: only an LSTM has a cell state, got c0 for kind {kind!r}")
    num_directions = 2 if bidirectional else 1
    B = x.shape[0]
    shape = (len(layers) * num_directions, B, H)
    h0s = initial_states("h0", h0, shape, x.dtype)
    c0s = initial_states("c0", c0, shape, x.dtype)
    h_n = np.empty(shape, dtype=x.dtype)
    c_n = np.empty(shape, dtype=x.dtype)
    caches = []
    inp = x
    for l, directions in enumerate(layers):
        outs, layer_caches = [], []
        for d, params in enumerate(directions):
            k = l * num_directions + d
            seq = inp if d == 0 else inp[:, ::-1]  # the reverse direction reads time backwards
            hs, c_last, cache = run_forward(kind, seq, h0s[k], c0s[k], params)
            h_n[k] = hs[:, -1]
            if c_last is not None:
                c_n[k] = c_last
            outs.append(hs if d == 0 else hs[:, ::-1])  # ... and its outputs are put back in time order
            layer_caches.append(cache)
        inp = np.concatenate(outs, axis=2)  # (B, T, num_directions * H): the next layer's input
        caches.append(layer_caches)
    state = (h_n, c_n) if kind == "lstm" else h_n
    return inp, state, (kind, H, inp.shape, caches)


def stacked_backward(dout, cache, dstate=None):
    """Backward of :func:`stacked_forward`.

    dout (B, T, num_directions * H): upstream gradient of ``out``. dstate, optional: that of the final
    state, shaped like the forward's ``state`` (``dh_n``, or ``(dh_n, dc_n)`` for the LSTM; either
    entry of the pair may be None); None means the loss does not use it.

    Returns ``(dx, dstate0, dlayers)``: dx (B, T, D); dstate0 the gradient of the initial state,
    shaped like ``state`` (``dh0`` or ``(dh0, dc0)``); ``dlayers[l][d]`` a dict with the keys of
    ``layers[l][d]``.
    """
    kind, H, out_shape, caches = cache
    dout = check_shape("dout", dout, out_shape)
    B = out_shape[0]
    num_directions = len(caches[0])
    shape = (len(caches) * num_directions, B, H)
    dh_n, dc_n = dstate if kind == "lstm" and dstate is not None else (dstate, None)
    dh_n = np.zeros(shape, dout.dtype) if dh_n is None else check_shape("dh_n", dh_n, shape)
    dc_n = np.zeros(shape, dout.dtype) if dc_n is None else check_shape("dc_n", dc_n, shape)
    check_same_dtype(dout=dout, dh_n=dh_n, dc_n=dc_n)
    dh0 = np.empty(shape, dtype=dout.dtype)
    dc0 = np.empty(shape, dtype=dout.dtype)
    dlayers = [[None] * num_directions for _ in caches]
    dinp = dout
    for l in reversed(range(len(caches))):
        dx = 0.0
        for d, layer_cache in enumerate(caches[l]):
            k = l * num_directions + d
            dhs = dinp[..., d * H:(d + 1) * H]
            dhs = (dhs if d == 0 else dhs[:, ::-1]).copy()  # into the direction's own time order
            dhs[:, -1] += dh_n[k]  # h_n is the direction's last state
            dseq, dh0[k], dc0_k, dlayers[l][d] = run_backward(kind, dhs, dc_n[k], layer_cache)
            if dc0_k is not None:
                dc0[k] = dc0_k
            dx = dx + (dseq if d == 0 else dseq[:, ::-1])
        dinp = dx
    dstate0 = (dh0, dc0) if kind == "lstm" else dh0
    return dinp, dstate0, dlayers
