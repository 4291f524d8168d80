"""Shared pieces of the tests that compare rnnlib's gated cells and sequences with torch autograd
(test_lstm.py, test_gru.py; test_stacked.py takes the tolerances)."""
import numpy as np
import torch

from rnnlib import cells, gradcheck
from rnnlib.torch.torch_io import NAMES

TOL = 1e-7
EPS = 1e-5  # finite-difference step: balances truncation (eps^2) and rounding (1e-16 |loss| / eps)
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 2, 5), (3, 5, 4, 6)]  # (B, T, D, H)


def lstm_params(rng, D, H, dtype=np.float64):
    return cells.init_params(D, H, rng, gates=4, dtype=dtype)


def gru_params(rng, D, H, dtype=np.float64):
    return cells.init_params(D, H, rng, gates=3, dtype=dtype)


def copy_into(module, params, suffix):
    """Copy ``params`` into a torch cell (``suffix=""``) or the first layer of a module (``suffix="_l0"``)."""
    with torch.no_grad():
        for name, torch_name in NAMES.items():
            getattr(module, torch_name + suffix).copy_(torch.tensor(params[name]))
    return module


def weight_grads(module, suffix):
    """The gradients of ``weight_ih, weight_hh, bias_ih, bias_hh`` (+ ``suffix``), as NumPy arrays."""
    return [getattr(module, n + suffix).grad.numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def assert_all_close(names, got, expected):
    """Equal shapes and relative error below ``TOL``, pair by pair; the assertion names the pair."""
    for name, g, e in zip(names, got, expected):
        assert g.shape == e.shape, name
        assert gradcheck.rel_error(g, e) < TOL, name
