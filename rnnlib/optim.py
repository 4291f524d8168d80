"""Optimisers and gradient clipping on a dict of NumPy arrays.

Parameters live in a dict ``{"W_ih": array, "W_hh": array, ...}``; a backward pass returns the
gradients as a dict with the same keys and shapes. An optimiser keeps a reference to the
parameter dict and its ``step(grads)`` changes those arrays IN PLACE (``p -= ...``), so every
closure that holds the dict sees the new values, as with ``torch.optim``.

The update rules are PyTorch's, written out (``g`` the gradient, ``t`` the step count)::

    SGD        p -= lr * g
    Momentum   v = mu * v + g;  p -= lr * v                      (torch.optim.SGD(momentum=mu))
    Adam       m = b1 * m + (1 - b1) * g
               v = b2 * v + (1 - b2) * g * g
               p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)

Adam is the optimiser of the blog post that chapter 5 starts from (a NumPy RNN trained on made-up
weather), vectorised: one line per array instead of a loop per number.
"""
import math

import numpy as np

from rnnlib._checks import as_float_array


def _check_params(params):
    """Parameters must be a non-empty dict of float ndarrays (in-place updates need real arrays)."""
    if not isinstance(params, dict) or not params:
        raise ValueError(f"params: expected a non-empty dict of arrays, got {type(params).__name__}")
    for name, p in params.items():
        if not isinstance(p, np.ndarray):
            raise ValueError(f"params[{name!r}]: expected a NumPy array (updated in place), "
                             f"got {type(p).__name__}")
        as_float_array(f"params[{name!r}]", p)


def _check_grads(params, grads):
    """``grads`` must have exactly the keys of ``params``, each with its shape and dtype."""
    if not isinstance(grads, dict) or set(grads) != set(params):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise ValueError(f"grads: expected keys {sorted(params)}, got {got}")
    for name, p in params.items():
        g = as_float_array(f"grads[{name!r}]", grads[name])
        if g.shape != p.shape:
            raise ValueError(f"grads[{name!r}]: expected shape {p.shape}, got {g.shape}")
        if g.dtype != p.dtype:
            raise ValueError(f"grads[{name!r}]: expected dtype {p.dtype} (the parameter's), got {g.dtype}")


class SGD:
    """Plain gradient descent: ``p -= lr * g``."""

    def __init__(self, params, lr):
        _check_params(params)
        self.params, self.lr = params, lr

    def step(self, grads):
        _check_grads(self.params, grads)
        for name, p in self.params.items():
            p -= self.lr * grads[name]


class Momentum:
    """SGD with (heavy-ball) momentum in PyTorch's form: ``v = mu*v + g; p -= lr*v``.

    The velocity starts at zero, so the first step is a plain SGD step (PyTorch starts its buffer
    at ``g``, which is the same thing). Note this is not the ``v = mu*v - lr*g`` form of some
    textbooks; the two agree only while ``lr`` is constant.
    """

    def __init__(self, params, lr, momentum=0.9):
        _check_params(params)
        self.params, self.lr, self.momentum = params, lr, momentum
        self.v = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads):
        _check_grads(self.params, grads)
        for name, p in self.params.items():
            v = self.v[name]
            v *= self.momentum
            v += grads[name]
            p -= self.lr * v


class Adam:
    """Adam (Kingma & Ba 2014) exactly as ``torch.optim.Adam`` computes it (no weight decay).

    ``m`` and ``v`` are running means of the gradient and of its square; dividing by
    ``1 - beta**t`` removes their bias towards the zero they start from.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        _check_params(params)
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, grads):
        _check_grads(self.params, grads)
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1 ** self.t)
        sqrt_bc2 = math.sqrt(1 - b2 ** self.t)
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= step_size * m / (np.sqrt(v) / sqrt_bc2 + self.eps)


def clip_grad_norm(grads, max_norm):
    """Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(sum of g**2 over every array)``; if it exceeds ``max_norm`` every
    array is multiplied IN PLACE by ``max_norm / (norm + 1e-6)``, the same factor (and the same
    ``1e-6``) as ``torch.nn.utils.clip_grad_norm_``. The direction of the update is kept, only its
    length is capped (Pascanu, Mikolov & Bengio 2013). Returns the norm BEFORE clipping, a float.
    """
    if not isinstance(grads, dict) or not grads:
        raise ValueError(f"grads: expected a non-empty dict of arrays, got {type(grads).__name__}")
    arrays = {name: as_float_array(f"grads[{name!r}]", g) for name, g in grads.items()}
    total_norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in arrays.values()))
    coef = max_norm / (total_norm + 1e-6)
    if coef < 1.0:
        for name, g in arrays.items():
            g *= g.dtype.type(coef)
            grads[name] = g
    return total_norm


def clip_grad_value(grads, clip):
    """Clip every gradient element to ``[-clip, clip]`` IN PLACE (like ``clip_grad_value_``).

    Unlike :func:`clip_grad_norm` this changes the direction of the gradient: large components
    are cut while small ones are kept (Mikolov's element-wise clipping).
    """
    if not isinstance(grads, dict) or not grads:
        raise ValueError(f"grads: expected a non-empty dict of arrays, got {type(grads).__name__}")
    for name, g in grads.items():
        g = as_float_array(f"grads[{name!r}]", g)
        np.clip(g, -clip, clip, out=g)
        grads[name] = g
