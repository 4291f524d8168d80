"""Every argument check of the recurrent cells and layers, one argument at a time: a wrong shape or a
wrong dtype raises ValueError whose message names that argument, the expected and the actual value;
and the weight initialiser draws what torch draws."""
import numpy as np
import pytest

from rnnlib import cells, fast, sequence

B, T, D, H = 2, 5, 3, 4
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
STEP = {"rnn": (cells.rnn_step_forward, cells.rnn_step_backward),
        "lstm": (cells.lstm_step_forward, cells.lstm_step_backward),
        "gru": (cells.gru_step_forward, cells.gru_step_backward)}


def params(kind, dtype=np.float64):
    return cells.init_params(D, H, 0, gates=GATES[kind], dtype=dtype)


def step_inputs(kind):
    rng = np.random.default_rng(1)
    names = ["x", "h_prev", "c_prev"] if kind == "lstm" else ["x", "h_prev"]
    return {n: rng.standard_normal((B, D if n == "x" else H)) for n in names}


def raises(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize("kind", GATES)
def test_step_forward_checks_each_input_shape(kind):
    forward = STEP[kind][0]
    good = step_inputs(kind)
    raises(lambda: forward(**{**good, "x": np.zeros((B, D + 1))}, **params(kind)),
           f"x: expected shape (?, {D}), got ({B}, {D + 1})")
    raises(lambda: forward(**{**good, "x": np.zeros(D)}, **params(kind)), f"x: expected shape (?, {D}), got ({D},)")
    for name in good:
        if name != "x":
            raises(lambda: forward(**{**good, name: np.zeros((B + 1, H))}, **params(kind)),
                   f"{name}: expected shape ({B}, {H}), got ({B + 1}, {H})")


@pytest.mark.parametrize("kind", GATES)
def test_step_forward_checks_each_weight(kind):
    forward, g = STEP[kind][0], GATES[kind]
    good, p = step_inputs(kind), params(kind)
    raises(lambda: forward(**good, **{**p, "W_hh": np.zeros(((g + 1) * H, H))}),
           f"W_hh: expected shape ({g * H}, {H}) for hidden size {H}, got ({(g + 1) * H}, {H})")
    raises(lambda: forward(**good, **{**p, "W_hh": np.zeros(g * H)}),
           f"W_hh: expected shape (?, ?), got ({g * H},)")
    raises(lambda: forward(**good, **{**p, "W_ih": np.zeros((g * H + 1, D))}),
           f"W_ih: expected shape ({g * H}, ?), got ({g * H + 1}, {D})")
    for b in ("b_ih", "b_hh"):
        raises(lambda: forward(**good, **{**p, b: np.zeros(g * H + 1)}),
               f"{b}: expected shape ({g * H},), got ({g * H + 1},)")
    for name in p:  # the weights are checked first, together
        listed = ", ".join(f"{n}={'float32' if n == name else 'float64'}" for n in p)
        raises(lambda: forward(**good, **{**p, name: p[name].astype(np.float32)}),
               f"arguments must share one dtype, got {listed}")
    with pytest.raises(ValueError, match="^W_ih: expected dtype float32 or float64, got int64$"):
        forward(**good, **{**p, "W_ih": np.zeros((g * H, D), dtype=np.int64)})


@pytest.mark.parametrize("kind", GATES)
def test_step_forward_needs_one_dtype_for_inputs_and_weights(kind):
    forward = STEP[kind][0]
    good = step_inputs(kind)
    for name in good:  # one input in float32, the rest float64
        listed = ", ".join(f"{n}={'float32' if n == name else 'float64'}" for n in [*good, "W_ih"])
        raises(lambda: forward(**{**good, name: good[name].astype(np.float32)}, **params(kind)),
               f"arguments must share one dtype, got {listed}")
    all32 = {n: a.astype(np.float32) for n, a in good.items()}  # inputs float32, weights float64
    listed = ", ".join(f"{n}=float32" for n in good)
    raises(lambda: forward(**all32, **params(kind)), f"arguments must share one dtype, got {listed}, W_ih=float64")
    out = forward(**all32, **params(kind, np.float32))  # all float32: fine
    assert all(a.dtype == np.float32 for a in out[:-1])


@pytest.mark.parametrize("kind", GATES)
def test_step_backward_checks_the_upstream_gradients(kind):
    forward, backward = STEP[kind]
    *_, cache = forward(**step_inputs(kind), **params(kind))
    names = ["dh", "dc"] if kind == "lstm" else ["dh"]
    good = {n: np.ones((B, H)) for n in names}
    for name in names:
        raises(lambda: backward(*{**good, name: np.ones((B, H + 1))}.values(), cache),
               f"{name}: expected shape ({B}, {H}), got ({B}, {H + 1})")


def sequence_call(module, kind, x, h0=None, c0=None, p=None):
    p = params(kind) if p is None else p
    if kind == "lstm":
        return module.lstm_forward(x, h0, c0, **p)
    return getattr(module, f"{kind}_forward")(x, h0, **p)


@pytest.mark.parametrize("module", [sequence, fast], ids=["sequence", "fast"])
@pytest.mark.parametrize("kind", GATES)
def test_sequence_layers_check_their_arguments(module, kind):
    g = GATES[kind]
    x = np.zeros((B, T, D))
    raises(lambda: sequence_call(module, kind, np.zeros((B, D))), f"x: expected shape (?, ?, {D}), got ({B}, {D})")
    raises(lambda: sequence_call(module, kind, x.astype(np.float32)),
           "arguments must share one dtype, got x=float32, W_ih=float64")
    raises(lambda: sequence_call(module, kind, x, p={**params(kind), "W_hh": np.zeros((H, H + 1))}),
           f"W_hh: expected shape ({g * (H + 1)}, {H + 1}) for hidden size {H + 1}, got ({H}, {H + 1})")
    states = ["h0", "c0"] if kind == "lstm" else ["h0"]
    for name in states:
        kw = {name: np.zeros((B, H + 1))}
        raises(lambda: sequence_call(module, kind, x, **kw), f"{name}: expected shape ({B}, {H}), got ({B}, {H + 1})")
        kw = {name: np.zeros((B, H), dtype=np.float32)}
        raises(lambda: sequence_call(module, kind, x, **kw),
               f"{name}: expected dtype float64 (the dtype of x), got float32")
        kw = {name: np.zeros((B, H))}
        raises(lambda: sequence_call(module, kind, x.astype(np.float32), p=params(kind, np.float32), **kw),
               f"{name}: expected dtype float32 (the dtype of x), got float64")
    hs, cache = sequence_call(module, kind, x)
    backward = getattr(module, f"{kind}_backward")
    raises(lambda: backward(np.zeros((B, T, H + 1)), cache), f"dhs: expected shape ({B}, {T}, {H}), got ({B}, {T}, {H + 1})")
    raises(lambda: backward(np.zeros((B, T, H), dtype=np.float32), cache),
           "arguments must share one dtype, got dhs=float32, x=float64")
    if kind == "lstm":
        raises(lambda: backward(np.zeros((B, T, H)), cache, np.zeros((B + 1, H))),
               f"dc_last: expected shape ({B}, {H}), got ({B + 1}, {H})")
        raises(lambda: backward(np.zeros((B, T, H)), cache, np.zeros((B, H), dtype=np.float32)),
               "arguments must share one dtype, got dc_last=float32, x=float64")


@pytest.mark.parametrize("module", [sequence, fast], ids=["sequence", "fast"])
@pytest.mark.parametrize("kind", GATES)
def test_given_zero_state_equals_no_state_and_inputs_are_left_alone(module, kind):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, D))
    zeros = np.zeros((B, H))
    states = {"h0": zeros, "c0": zeros} if kind == "lstm" else {"h0": zeros}
    hs_none, cache = sequence_call(module, kind, x)
    hs_zero, _ = sequence_call(module, kind, x, **states)
    np.testing.assert_array_equal(hs_none, hs_zero)
    dhs, dc_last = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    kept = dhs.copy(), dc_last.copy()
    backward = getattr(module, f"{kind}_backward")
    backward(dhs, cache, dc_last) if kind == "lstm" else backward(dhs, cache)
    np.testing.assert_array_equal(dhs, kept[0])
    np.testing.assert_array_equal(dc_last, kept[1])


@pytest.mark.parametrize("gates", [1, 3, 4])
def test_init_params_draws_like_torch_in_a_fixed_order(gates):
    p = cells.init_params(5, 16, 3, gates=gates)
    s = 1 / np.sqrt(16)
    rng = np.random.default_rng(3)  # the same draws, in the order W_ih, W_hh, b_ih, b_hh
    expected = {"W_ih": rng.uniform(-s, s, (gates * 16, 5)), "W_hh": rng.uniform(-s, s, (gates * 16, 16)),
                "b_ih": rng.uniform(-s, s, gates * 16), "b_hh": rng.uniform(-s, s, gates * 16)}
    assert list(p) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(p[name], expected[name])
    assert all(np.abs(a).max() > 0.9 * s for a in p.values())  # the bound is 1/sqrt(H), not smaller
    p32 = cells.init_params(5, 16, 3, gates=gates, dtype=np.float32)
    assert all(a.dtype == np.float32 for a in p32.values())
    np.testing.assert_array_equal(p32["W_hh"], expected["W_hh"].astype(np.float32))
    gen = np.random.default_rng(3)
    assert np.array_equal(cells.init_params(5, 16, gen, gates=gates)["W_ih"], expected["W_ih"])
    assert not np.array_equal(cells.init_params(5, 16, gen, gates=gates)["W_ih"], expected["W_ih"])  # advanced


def test_sigmoid():
    a = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 40.0, 800.0])
    with np.errstate(all="raise", under="ignore"):
        s = cells.sigmoid(a)
    np.testing.assert_allclose(s[1:-1], 1 / (1 + np.exp(-a[1:-1])), rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert cells.sigmoid(np.float32([1.0])).dtype == np.float32


def test_linear_layer_checks_its_arguments():
    W, b, h = np.zeros((2, 4)), np.zeros(2), np.zeros((5, 4))
    raises(lambda: sequence.linear_forward(h, np.zeros(4), b), "W: expected shape (?, ?), got (4,)")
    raises(lambda: sequence.linear_forward(h, W, np.zeros(3)), "b: expected shape (2,), got (3,)")
    raises(lambda: sequence.linear_forward(np.zeros((5, 3)), W, b), "h: expected shape (..., 4), got (5, 3)")
    raises(lambda: sequence.linear_forward(np.float64(1.0), W, b), "h: expected shape (..., 4), got ()")
    raises(lambda: sequence.linear_forward(h.astype(np.float32), W, b),
           "arguments must share one dtype, got h=float32, W=float64, b=float64")
    for name, args in (("W", (h, W.astype(np.float32), b)), ("b", (h, W, b.astype(np.float32)))):
        listed = ", ".join(f"{n}={'float32' if n == name else 'float64'}" for n in ("h", "W", "b"))
        raises(lambda: sequence.linear_forward(*args), f"arguments must share one dtype, got {listed}")
    y, _ = sequence.linear_forward(np.ones(4), W + 1.0, b)  # one vector h (H,) is fine: y (O,)
    np.testing.assert_array_equal(y, [4.0, 4.0])
    _, cache = sequence.linear_forward(np.zeros((3, 5, 4)), W, b)
    raises(lambda: sequence.linear_backward(np.zeros((3, 5, 3)), cache), "dy: expected shape (3, 5, 2), got (3, 5, 3)")


@pytest.mark.parametrize("module", [sequence, fast], ids=["sequence", "fast"])
@pytest.mark.parametrize("kind", GATES)
def test_float32_stays_float32_everywhere(module, kind):
    """Cell states and gradients too, also when the state and dc_last are left out (zeros)."""
    x = np.random.default_rng(3).standard_normal((B, T, D)).astype(np.float32)
    hs, cache = sequence_call(module, kind, x, p=params(kind, np.float32))
    backward = getattr(module, f"{kind}_backward")
    grads = backward(np.ones_like(hs), cache)
    assert hs.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    if kind == "lstm":
        assert module.lstm_cell_states(cache).dtype == np.float32
