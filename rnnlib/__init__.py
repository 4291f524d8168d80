"""rnnlib: the reference implementations of the RNN course (NumPy, batch-first, row vectors)."""
__version__ = "0.1.0"
