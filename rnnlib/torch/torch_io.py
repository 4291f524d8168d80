"""Copy weights between rnnlib (dicts of NumPy arrays) and ``torch.nn.RNN`` / ``LSTM`` / ``GRU``.

PyTorch names a layer's weights ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
``bias_hh_l{k}``, with a ``_reverse`` suffix for the backward direction of a bidirectional layer.
rnnlib calls the same arrays ``W_ih``, ``W_hh``, ``b_ih``, ``b_hh``, with the same shapes, so a copy
is a rename. torch is imported lazily: the NumPy parts of rnnlib do not need it.
"""
import numpy as np

NAMES = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}


def torch_name(name, layer=0, reverse=False):
    """``('W_ih', 1, True)`` -> ``'weight_ih_l1_reverse'``."""
    return f"{NAMES[name]}_l{layer}" + ("_reverse" if reverse else "")


def from_torch(module, layer=0, reverse=False, dtype=np.float64):
    """One layer (and direction) of a torch recurrent module as a dict of NumPy arrays."""
    if reverse and not module.bidirectional:
        raise ValueError("reverse: the module is not bidirectional")
    if not 0 <= layer < module.num_layers:
        raise ValueError(f"layer: expected 0 <= layer < {module.num_layers}, got {layer}")
    return {name: getattr(module, torch_name(name, layer, reverse)).detach().cpu().numpy().astype(dtype)
            for name in NAMES}


def to_torch(params, module, layer=0, reverse=False):
    """Copy a dict ``{W_ih, W_hh, b_ih, b_hh}`` into one layer (and direction) of a torch module."""
    import torch

    for name in NAMES:
        target = getattr(module, torch_name(name, layer, reverse))
        value = np.asarray(params[name])
        if value.shape != tuple(target.shape):
            raise ValueError(f"{name}: expected shape {tuple(target.shape)}, got {value.shape}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(value).to(target.dtype))
    return module


def module_kind(module):
    """``'rnn'``, ``'lstm'`` or ``'gru'`` (the ``kind`` of :func:`rnnlib.stacked.stacked_forward`).

    Raises ``ValueError`` for what rnnlib does not implement: another module, ``bias=False``, a relu
    RNN, an LSTM with ``proj_size > 0``.
    """
    import torch

    kinds = [(torch.nn.LSTM, "lstm"), (torch.nn.GRU, "gru"), (torch.nn.RNN, "rnn")]
    kind = next((k for cls, k in kinds if isinstance(module, cls)), None)
    if kind is None:
        raise ValueError(f"module: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    if not module.bias:
        raise ValueError("module: expected bias=True (rnnlib layers have b_ih and b_hh), got bias=False")
    if kind == "rnn" and module.nonlinearity != "tanh":
        raise ValueError(f"module: expected nonlinearity 'tanh', got {module.nonlinearity!r}")
    if kind == "lstm" and module.proj_size != 0:
        raise ValueError(f"module: expected proj_size=0, got {module.proj_size}")
    return kind


def directions(module):
    """``(False,)`` or ``(False, True)``: the ``reverse`` flags of a module's directions."""
    return (False, True) if module.bidirectional else (False,)


def stack_from_torch(module, dtype=np.float64):
    """Every layer and direction of a torch module: ``layers[l][d]`` is the dict of layer ``l``,
    direction ``d`` (1 = reverse), the ``layers`` argument of :func:`rnnlib.stacked.stacked_forward`."""
    module_kind(module)
    return [[from_torch(module, layer, reverse, dtype) for reverse in directions(module)]
            for layer in range(module.num_layers)]


def stack_to_torch(layers, module):
    """Copy ``layers[l][d]`` (as from :func:`stack_from_torch`) into every layer and direction of ``module``."""
    module_kind(module)
    if len(layers) != module.num_layers:
        raise ValueError(f"layers: expected {module.num_layers} layers (num_layers), got {len(layers)}")
    for layer, per_direction in enumerate(layers):
        if len(per_direction) != len(directions(module)):
            raise ValueError(f"layers[{layer}]: expected {len(directions(module))} direction(s) "
                             f"(bidirectional={module.bidirectional}), got {len(per_direction)}")
        for params, reverse in zip(per_direction, directions(module)):
            to_torch(params, module, layer, reverse)
    return module
