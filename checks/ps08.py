"""Checks for problem set 8 (chapter 9): a deep bidirectional LSTM forward pass in NumPy.

Students get an LSTM step (plain NumPy, in the notebook) and write a layer over time, a bidirectional
layer and a stack of bidirectional layers that must match ``torch.nn.LSTM(num_layers=..,
bidirectional=True, batch_first=True)`` after a weight copy. The weights come as the nested lists of
dicts of :func:`rnnlib.torch.torch_io.stack_from_torch`: ``layers[l][d]`` with ``d = 1`` the reverse
direction. Every check draws random shapes when it runs and compares with PyTorch itself and with
:mod:`rnnlib.stacked`.
"""

import numpy as np

from rnnlib import sequence, stacked
from rnnlib.torch import torch_io
from checks.grading import check_function


class Layers(list):
    """The nested parameter lists, printed by their shapes in messages (not their values)."""

    def __repr__(self):
        l0 = self[0][0]
        return (f"<{len(self)} layer(s) x {len(self[0])} direction(s) of {{W_ih, W_hh, b_ih, b_hh}}; "
                f"layer 0: W_ih {l0['W_ih'].shape}, W_hh {l0['W_hh'].shape}>")


def torch_lstm(D, H, num_layers, seed):
    """A float64 ``nn.LSTM(D, H, num_layers, bidirectional=True, batch_first=True)`` with torch's own init."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.LSTM(D, H, num_layers=num_layers, bidirectional=True, batch_first=True).double()


def _sizes(rng):
    return (int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 6)), int(rng.integers(1, 6)))


def _one_direction_inputs(rng):
    B, T, D, H = _sizes(rng)
    params = torch_io.from_torch(torch_lstm(D, H, 1, int(rng.integers(2**31))))
    return [("x", rng.standard_normal((B, T, D))), ("params", params),
            ("h0", rng.standard_normal((B, H)) * 0.5), ("c0", rng.standard_normal((B, H)) * 0.5)]


def lstm_layer_reference(x, params, h0, c0):
    hs, cache = sequence.lstm_forward(x, h0, c0, **params)
    return hs, hs[:, -1], sequence.lstm_cell_states(cache)[:, -1]


def lstm_layer(lstm_layer):
    check_function(lstm_layer, lstm_layer_reference, _one_direction_inputs, name="lstm_layer",
                   output_names=("hs", "h_T", "c_T"),
                   slips={"h0 and c0 ignored (zeros)": lambda x, p, h0, c0: lstm_layer_reference(x, p, 0 * h0, 0 * c0),
                          "h0 and c0 swapped": lambda x, p, h0, c0: lstm_layer_reference(x, p, c0, h0)})


def _bidirectional_inputs(rng):
    B, T, D, H = _sizes(rng)
    (fwd, bwd), = torch_io.stack_from_torch(torch_lstm(D, H, 1, int(rng.integers(2**31))))
    return [("x", rng.standard_normal((B, T, D))), ("params_fwd", fwd), ("params_bwd", bwd),
            ("h0", rng.standard_normal((2, B, H)) * 0.5), ("c0", rng.standard_normal((2, B, H)) * 0.5)]


def bidirectional_layer_reference(x, params_fwd, params_bwd, h0, c0):
    out, (h_n, c_n), _ = stacked.stacked_forward("lstm", x, [[params_fwd, params_bwd]], h0, c0, bidirectional=True)
    return out, h_n, c_n


def _bidirectional_slip(reverse_input=True, reverse_back=True, swap_directions_h0=False):
    def forward(x, params_fwd, params_bwd, h0, c0):
        f, b = (1, 0) if swap_directions_h0 else (0, 1)
        hs_f, h_f, c_f = lstm_layer_reference(x, params_fwd, h0[f], c0[f])
        hs_b, h_b, c_b = lstm_layer_reference(x[:, ::-1] if reverse_input else x, params_bwd, h0[b], c0[b])
        hs_b = hs_b[:, ::-1] if reverse_back else hs_b
        return np.concatenate([hs_f, hs_b], axis=2), np.stack([h_f, h_b]), np.stack([c_f, c_b])
    return forward


def bidirectional_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the backward direction's states not put back in time order": _bidirectional_slip(reverse_back=False),
        "the backward direction run over x in time order (not reversed)": _bidirectional_slip(reverse_input=False,
                                                                                              reverse_back=False),
        "h0[1], c0[1] given to the forward direction and h0[0], c0[0] to the backward one":
            _bidirectional_slip(swap_directions_h0=True),
    }


def bidirectional_layer(bidirectional_layer):
    check_function(bidirectional_layer, bidirectional_layer_reference, _bidirectional_inputs,
                   name="bidirectional_layer", output_names=("out", "h_n", "c_n"), slips=bidirectional_slips())


def _stack_inputs(rng):
    B, T, D, H = _sizes(rng)
    num_layers = int(rng.integers(2, 4))
    layers = Layers(torch_io.stack_from_torch(torch_lstm(D, H, num_layers, int(rng.integers(2**31)))))
    S = 2 * num_layers
    return [("x", rng.standard_normal((B, T, D))), ("layers", layers),
            ("h0", rng.standard_normal((S, B, H)) * 0.5), ("c0", rng.standard_normal((S, B, H)) * 0.5)]


def stack_torch_reference(x, layers, h0, c0):
    """``nn.LSTM(num_layers=len(layers), bidirectional=True, batch_first=True)`` holding ``layers``."""
    import torch

    D, H = layers[0][0]["W_ih"].shape[1], layers[0][0]["W_hh"].shape[1]
    module = torch_io.stack_to_torch(layers, torch_lstm(D, H, len(layers), 0))
    with torch.no_grad():
        out, (h_n, c_n) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    return out.numpy(), h_n.numpy(), c_n.numpy()


def stack_rnnlib_reference(x, layers, h0, c0):
    out, (h_n, c_n), _ = stacked.stacked_forward("lstm", x, layers, h0, c0, bidirectional=True)
    return out, h_n, c_n


def stacked_bilstm(stacked_bilstm):
    """Against PyTorch itself, then against :func:`rnnlib.stacked.stacked_forward`, on fresh inputs."""
    check_function(stacked_bilstm, stack_torch_reference, _stack_inputs, name="stacked_bilstm",
                   output_names=("out", "h_n", "c_n"), trials=2, rtol=1e-6, atol=1e-8, slips=STACK_SLIPS)
    check_function(stacked_bilstm, stack_rnnlib_reference, _stack_inputs, name="stacked_bilstm",
                   output_names=("out", "h_n", "c_n"), trials=2, slips=STACK_SLIPS)


def _states_of_layer_l_at_l(x, layers, h0, c0):
    """The stack with layer l's initial states read from entries l, l + 1 (not 2l, 2l + 1)."""
    pick = np.concatenate([np.arange(l, l + 2) for l in range(len(layers))])
    return stack_rnnlib_reference(x, layers, h0[pick], c0[pick])


STACK_SLIPS = {"layer l's initial states read from h0[l:l + 2] instead of h0[2 * l:2 * l + 2]":
               _states_of_layer_l_at_l}


def lstm_param_count_reference(input_size, hidden_size, num_layers, bidirectional):
    """Parameters of ``torch.nn.LSTM(input_size, hidden_size, num_layers, bidirectional=...)``, counted."""
    import torch

    with torch.device("meta"):
        module = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional)
    return sum(p.numel() for p in module.parameters())


def lstm_param_count(lstm_param_count):
    def inputs(rng):
        return [("input_size", int(rng.integers(1, 200))), ("hidden_size", int(rng.integers(1, 200))),
                ("num_layers", int(rng.integers(1, 5))), ("bidirectional", bool(rng.integers(2)))]

    def one_bias(D, H, L, bi):
        return lstm_param_count_reference(D, H, L, bi) - (2 if bi else 1) * L * 4 * H

    def same_input_size(D, H, L, bi):
        return (2 if bi else 1) * L * 4 * H * (D + H + 2)

    check_function(lstm_param_count, lstm_param_count_reference, inputs, name="lstm_param_count",
                   output_names=("count",), trials=6, rtol=0, atol=0,
                   slips={"one bias vector per gate block instead of two (b_ih and b_hh)": one_bias,
                          "every layer's input size taken as input_size (the layers above read H or 2H)":
                              same_input_size})
