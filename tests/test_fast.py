"""rnnlib.fast computes what the plain reference (rnnlib.sequence) computes: forward and backward,
float64 to a relative error of 1e-12, float32 to float32's precision, the same errors for bad input."""
import numpy as np
import pytest

from rnnlib import cells, fast, gradcheck, sequence

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# (B, T, D, H): every size 1 somewhere, then a few drawn at random (fixed seed)
SHAPES = [(1, 1, 1, 1), (1, 4, 3, 2), (3, 1, 2, 5), (2, 5, 4, 1)] + [
    tuple(int(n) for n in np.random.default_rng(7).integers(1, 9, 4)) for _ in range(3)] + [
    (2, 2 * fast.STEPS_PER_BLOCK + 3, 3, 4)]  # two full blocks of the LSTM's block-wise work, then a partial one


def run(module, kind, x, h0, c0, params, dhs, dc_last):
    """Forward and backward of ``kind`` from ``module``: ``(hs, cell states or None, grads)``."""
    if kind == "lstm":
        hs, cache = module.lstm_forward(x, h0, c0, **params)
        return hs, module.lstm_cell_states(cache), module.lstm_backward(dhs, cache, dc_last)
    hs, cache = getattr(module, f"{kind}_forward")(x, h0, **params)
    return hs, None, getattr(module, f"{kind}_backward")(dhs, cache)


def inputs(rng, kind, B, T, D, H, dtype):
    params = cells.init_params(D, H, rng, gates=GATES[kind], dtype=dtype)
    params = {k: 2 * v for k, v in params.items()}  # larger weights: gates away from 1/2
    x, dhs = rng.standard_normal((B, T, D)).astype(dtype), rng.standard_normal((B, T, H)).astype(dtype)
    h0, c0, dc_last = (rng.standard_normal((B, H)).astype(dtype) for _ in range(3))
    return x, h0, c0 if kind == "lstm" else None, params, dhs, dc_last if kind == "lstm" else None


@pytest.mark.parametrize("kind", GATES)
@pytest.mark.parametrize("B,T,D,H", SHAPES)
def test_fast_equals_plain_float64(rng, kind, B, T, D, H):
    args = inputs(rng, kind, B, T, D, H, np.float64)
    hs, cs, grads = run(sequence, kind, *args)
    hs_f, cs_f, grads_f = run(fast, kind, *args)
    assert hs_f.shape == hs.shape and gradcheck.rel_error(hs_f, hs) <= 1e-12
    if kind == "lstm":
        assert cs_f.shape == cs.shape and gradcheck.rel_error(cs_f, cs) <= 1e-12
    assert len(grads_f) == len(grads)
    for k, (g_f, g) in enumerate(zip(grads_f, grads)):
        assert g_f.shape == g.shape and g_f.dtype == np.float64, k
        assert gradcheck.rel_error(g_f, g) <= 1e-12, (k, gradcheck.rel_error(g_f, g))


@pytest.mark.parametrize("kind", GATES)
def test_fast_without_initial_state_starts_from_zeros(rng, kind):
    x, _, _, params, dhs, _ = inputs(rng, kind, 2, 3, 4, 5, np.float64)
    zeros = np.zeros((2, 5))
    for h0, c0 in ((None, None), (zeros, zeros if kind == "lstm" else None)):
        hs, cs, grads = run(sequence, kind, x, h0, c0, params, dhs, None)
        hs_f, cs_f, grads_f = run(fast, kind, x, h0, c0, params, dhs, None)
        assert gradcheck.rel_error(hs_f, hs) <= 1e-12
        assert all(gradcheck.rel_error(a, b) <= 1e-12 for a, b in zip(grads_f, grads))


@pytest.mark.parametrize("kind", GATES)
@pytest.mark.parametrize("B,T,D,H", SHAPES[:4])
def test_fast_equals_plain_float32(rng, kind, B, T, D, H):
    args32 = inputs(rng, kind, B, T, D, H, np.float32)
    hs, cs, grads = run(fast, kind, *args32)
    to64 = [None if a is None else ({k: v.astype(np.float64) for k, v in a.items()} if isinstance(a, dict)
                                    else a.astype(np.float64)) for a in args32]
    hs_ref, cs_ref, grads_ref = run(sequence, kind, *to64)
    assert hs.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(hs, hs_ref, rtol=1e-5, atol=1e-5)
    if kind == "lstm":
        assert cs.dtype == np.float32
        np.testing.assert_allclose(cs, cs_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(g_ref).max()))


@pytest.mark.parametrize("kind", GATES)
def test_fast_rejects_what_plain_rejects_with_the_same_message(rng, kind):
    x, h0, c0, params, dhs, dc_last = inputs(rng, kind, 2, 3, 4, 5, np.float64)
    lstm = kind == "lstm"
    bad_calls = {
        "x shape": lambda m: run(m, kind, x[0], h0, c0, params, dhs, dc_last),
        "x dtype": lambda m: run(m, kind, x.astype(np.float32), h0, c0, params, dhs, dc_last),
        "h0 shape": lambda m: run(m, kind, x, h0[:1], c0, params, dhs, dc_last),
        "h0 dtype": lambda m: run(m, kind, x, h0.astype(np.float32), c0, params, dhs, dc_last),
        "dhs shape": lambda m: run(m, kind, x, h0, c0, params, dhs[:, 1:], dc_last),
        "dhs dtype": lambda m: run(m, kind, x, h0, c0, params, dhs.astype(np.float32), dc_last),
        "W_hh": lambda m: run(m, kind, x, h0, c0, {**params, "W_hh": params["W_hh"][1:]}, dhs, dc_last),
    }
    if lstm:
        bad_calls["c0 shape"] = lambda m: run(m, kind, x, h0, c0[:, 1:], params, dhs, dc_last)
        bad_calls["dc_last shape"] = lambda m: run(m, kind, x, h0, c0, params, dhs, dc_last[:1])
        bad_calls["dc_last dtype"] = lambda m: run(m, kind, x, h0, c0, params, dhs, dc_last.astype(np.float32))
    for what, call in bad_calls.items():
        messages = []
        for module in (sequence, fast):
            with pytest.raises(ValueError) as err:
                call(module)
            messages.append(str(err.value))
        assert messages[0] == messages[1], what


def test_fast_lstm_leaves_its_inputs_alone(rng):
    x, h0, c0, params, dhs, dc_last = inputs(rng, "lstm", 2, 3, 4, 5, np.float64)
    copies = [a.copy() for a in (x, h0, c0, dhs, dc_last, *params.values())]
    run(fast, "lstm", x, h0, c0, params, dhs, dc_last)
    assert all(np.array_equal(a, b) for a, b in zip(copies, (x, h0, c0, dhs, dc_last, *params.values())))


@pytest.mark.parametrize("kind", GATES)
def test_empty_sequences(rng, kind):
    """T = 0: no step, the gradients of the initial states are the upstream ones (zeros, dc_last)."""
    args = inputs(rng, kind, 2, 0, 3, 4, np.float64)
    for module in (sequence, fast):
        hs, cs, grads = run(module, kind, *args)
        assert hs.shape == (2, 0, 4) and grads[0].shape == (2, 0, 3)
        assert grads[1].shape == (2, 4) and grads[1].dtype == np.float64 and not grads[1].any()  # dh0
        if kind == "lstm":
            assert cs.shape == (2, 0, 4)
            assert grads[2].shape == (2, 4) and np.array_equal(grads[2], args[-1])  # dc0 = dc_last
        assert all(np.array_equal(g, np.zeros_like(g)) for g in grads[-4:])  # weights: nothing to add


@pytest.mark.parametrize("kind", GATES)
def test_fast_float32_works_in_float32(rng, kind):
    """Every array the fast forward keeps for the backward is float32, not a silent float64 copy."""
    x, h0, c0, params, dhs, dc_last = inputs(rng, kind, 2, 3, 4, 5, np.float32)
    if kind == "lstm":
        _, cache = fast.lstm_forward(x, h0, c0, **params)
    else:
        _, cache = getattr(fast, f"{kind}_forward")(x, h0, **params)
    arrays = [a for a in cache if isinstance(a, np.ndarray)]
    assert len(arrays) >= 4 and all(a.dtype == np.float32 for a in arrays)
