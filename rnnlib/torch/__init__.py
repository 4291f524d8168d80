"""The torch-based part of rnnlib: weight copies to and from ``torch.nn.RNN/LSTM/GRU``
(:mod:`rnnlib.torch.torch_io`) and the models of the GPU chapter (:mod:`rnnlib.torch.models`).

Everything else in rnnlib is NumPy only; this subpackage needs PyTorch (``pip install "rnnlib[torch]"``).
"""
import torch  # noqa: F401  (fail here, with a clear ImportError, when PyTorch is missing)
