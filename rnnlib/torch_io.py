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
