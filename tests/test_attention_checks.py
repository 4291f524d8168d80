"""rnnlib.attention at its edges (found by mutation testing, see benchmarks/mutation.py): scores too large
for exp without the max shift, and every argument check named exactly (the gradients themselves are
tested against torch in test_attention.py)."""
import numpy as np
import pytest

from rnnlib import attention


def message(call):
    with pytest.raises(ValueError) as err:
        call()
    return str(err.value)


def test_masked_softmax_shifts_each_row_by_its_own_max():
    """exp(1000) overflows: the weights only come out right if each row is shifted by its max first."""
    s = np.array([[[1000.0, 0.0, 999.0], [-5.0, -5.0, 0.0]]])
    with np.errstate(all="raise", under="ignore"):
        a = attention.masked_softmax(s)
        a_masked = attention.masked_softmax(s, np.array([[[True, False, True], [False, False, False]]]))
    e = np.exp([0.0, -1000.0, -1.0])
    np.testing.assert_allclose(a[0, 0], e / e.sum(), rtol=1e-15)
    np.testing.assert_allclose(a_masked[0, 0], [1 / (1 + np.exp(-1.0)), 0.0, np.exp(-1.0) / (1 + np.exp(-1.0))],
                               rtol=1e-15)
    np.testing.assert_array_equal(a_masked[0, 1], 0.0)  # a fully masked row


def additive_args(dtype=np.float64, B=2, Tq=3, Tk=4, Dq=5, Dk=6, dv=2, A=7):
    rng = np.random.default_rng(0)
    return {"q": rng.standard_normal((B, Tq, Dq)), "k": rng.standard_normal((B, Tk, Dk)),
            "v": rng.standard_normal((B, Tk, dv)), "W_q": rng.standard_normal((A, Dq)),
            "W_k": rng.standard_normal((A, Dk)), "w": rng.standard_normal(A)}


def test_additive_attention_checks_with_exact_messages():
    args = additive_args()
    assert message(lambda: attention.additive_attention_forward(**{**args, "w": np.zeros((7, 1))})) == (
        "w: expected shape (?,), got (7, 1)")
    for name in ("q", "W_q", "W_k", "w"):
        bad = {**args, name: args[name].astype(np.float32)}
        listed = ", ".join(f"{n}={'float32' if n == name else 'float64'}" for n in ("q", "W_q", "W_k", "w"))
        if name == "q":  # q is checked against k and v first
            listed = "q=float32, k=float64, v=float64"
        assert message(lambda: attention.additive_attention_forward(**bad)) == (
            f"arguments must share one dtype, got {listed}")
    out, cache = attention.additive_attention_forward(**args)
    assert message(lambda: attention.additive_attention_backward(np.zeros((2, 3, 3)), cache)) == (
        "dout: expected shape (2, 3, 2), got (2, 3, 3)")


def test_queries_keys_and_values_share_one_dtype():
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 6))
    for name in ("k", "v"):
        args = {"q": q, "k": k, "v": v}
        args[name] = args[name].astype(np.float32)
        listed = ", ".join(f"{n}={'float32' if n == name else 'float64'}" for n in ("q", "k", "v"))
        assert message(lambda: attention.attention_forward(**args)) == f"arguments must share one dtype, got {listed}"
