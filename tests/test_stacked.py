"""Deep and bidirectional stacks of rnnlib against nn.RNN / nn.LSTM / nn.GRU, and the torch_io copies."""
import numpy as np
import pytest
import torch

from rnnlib import gradcheck, sequence, stacked
from rnnlib.torch import torch_io
from torch_helpers import EPS, TOL

# Through two layers some weight gradients are ~1e-4 while the difference quotient is only accurate to
# ~1e-10 absolute, so the element-wise relative error of a correct gradient reaches a few 1e-7 (a wrong
# one gives 1e-2 or worse). The exact comparison is the one against torch autograd above (< 1e-7).
FD_TOL = 1e-6
MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_module(kind, D, H, num_layers=2, bidirectional=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return MODULES[kind](D, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).to(dtype)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("B,T,D,H,num_layers,bidirectional", [
    (3, 5, 4, 6, 2, True),  # the course's case: two layers, both directions
    (1, 1, 2, 3, 2, True),  # B = 1, T = 1
    (2, 4, 3, 2, 3, False),
    (2, 6, 5, 4, 1, True),
])
def test_stack_matches_torch_forward_and_gradients(rng, kind, B, T, D, H, num_layers, bidirectional):
    m = torch_module(kind, D, H, num_layers, bidirectional)
    layers = torch_io.stack_from_torch(m)
    S = num_layers * (2 if bidirectional else 1)
    x = rng.standard_normal((B, T, D))
    h0, c0 = rng.standard_normal((S, B, H)), rng.standard_normal((S, B, H))
    dout = rng.standard_normal((B, T, (2 if bidirectional else 1) * H))
    dh_n, dc_n = rng.standard_normal((S, B, H)), rng.standard_normal((S, B, H))

    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    if kind == "lstm":
        out, (h_n, c_n), cache = stacked.stacked_forward(kind, x, layers, h0, c0, bidirectional)
        dx, (dh0, dc0), dlayers = stacked.stacked_backward(dout, cache, (dh_n, dc_n))
        out_t, (h_n_t, c_n_t) = m(xt, (h0t, c0t))
        got, expected = [out, h_n, c_n, dx, dh0, dc0], [out_t, h_n_t, c_n_t, xt, h0t, c0t]
        loss = (out_t * torch.tensor(dout)).sum() + (h_n_t * torch.tensor(dh_n)).sum() + (c_n_t * torch.tensor(dc_n)).sum()
    else:
        out, h_n, cache = stacked.stacked_forward(kind, x, layers, h0, None, bidirectional)
        dx, dh0, dlayers = stacked.stacked_backward(dout, cache, dh_n)
        out_t, h_n_t = m(xt, h0t)
        got, expected = [out, h_n, dx, dh0], [out_t, h_n_t, xt, h0t]
        loss = (out_t * torch.tensor(dout)).sum() + (h_n_t * torch.tensor(dh_n)).sum()
    loss.backward()
    n_values = len(got) // 2
    expected = [e.detach().numpy() for e in expected[:n_values]] + [e.grad.numpy() for e in expected[n_values:]]
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape and gradcheck.rel_error(g, e) < TOL, i
    for layer, per_direction in enumerate(dlayers):
        for d, grads in enumerate(per_direction):
            for name, g in grads.items():
                e = getattr(m, torch_io.torch_name(name, layer, d == 1)).grad.numpy()
                assert g.shape == e.shape and gradcheck.rel_error(g, e) < TOL, (layer, d, name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_stack_default_states_and_loss_on_output_only(rng, kind):
    m = torch_module(kind, 3, 4)
    x, dout = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 8))
    out, _, cache = stacked.stacked_forward(kind, x, torch_io.stack_from_torch(m), bidirectional=True)
    dx, _, _ = stacked.stacked_backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    out_t, _ = m(xt)
    (out_t * torch.tensor(dout)).sum().backward()
    assert gradcheck.rel_error(out, out_t.detach().numpy()) < TOL
    assert gradcheck.rel_error(dx, xt.grad.numpy()) < TOL


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_one_layer_one_direction_is_the_sequence_function(rng, kind):
    m = torch_module(kind, 3, 4, num_layers=1, bidirectional=False)
    p = torch_io.from_torch(m)
    x, h0 = rng.standard_normal((2, 5, 3)), rng.standard_normal((1, 2, 4))
    out, state, _ = stacked.stacked_forward(kind, x, [[p]], h0)
    forward = {"rnn": sequence.rnn_forward, "gru": sequence.gru_forward}.get(kind)
    hs = sequence.lstm_forward(x, h0[0], None, **p)[0] if kind == "lstm" else forward(x, h0[0], **p)[0]
    np.testing.assert_array_equal(out, hs)


def test_reverse_direction_reads_the_reversed_sequence(rng):
    m = torch_module("gru", 3, 4, num_layers=1, bidirectional=True)
    layers = torch_io.stack_from_torch(m)
    x = rng.standard_normal((2, 5, 3))
    out, h_n, _ = stacked.stacked_forward("gru", x, layers, bidirectional=True)
    hs_reverse, _ = sequence.gru_forward(x[:, ::-1], None, **layers[0][1])
    np.testing.assert_allclose(out[..., 4:], hs_reverse[:, ::-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(h_n[1], out[:, 0, 4:])  # the reverse direction ends at t = 0
    np.testing.assert_array_equal(h_n[0], out[:, -1, :4])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_stack_backward_by_finite_differences(rng, kind):
    B, T, D, H, L = 2, 3, 2, 2, 2
    layers = torch_io.stack_from_torch(torch_module(kind, D, H, L))
    arrays = {"x": rng.standard_normal((B, T, D)), "h0": rng.standard_normal((2 * L, B, H))}
    if kind == "lstm":
        arrays["c0"] = rng.standard_normal((2 * L, B, H))
    params = {f"l{layer}d{d}.{name}": p[name] for layer, ps in enumerate(layers) for d, p in enumerate(ps) for name in p}
    w, wh, wc = rng.standard_normal((B, T, 2 * H)), rng.standard_normal((2 * L, B, H)), rng.standard_normal((2 * L, B, H))

    def forward():
        out, state, cache = stacked.stacked_forward(kind, arrays["x"], layers, arrays["h0"], arrays.get("c0"), True)
        h_n, c_n = state if kind == "lstm" else (state, np.zeros_like(state))
        return float(np.sum(out * w) + np.sum(h_n * wh) + np.sum(c_n * wc)), cache

    _, cache = forward()
    dx, dstate0, dlayers = stacked.stacked_backward(w, cache, (wh, wc) if kind == "lstm" else wh)
    grads = {"x": dx, **dict(zip(["h0", "c0"], dstate0 if kind == "lstm" else [dstate0]))}
    grads.update({f"l{layer}d{d}.{name}": g[name] for layer, gs in enumerate(dlayers) for d, g in enumerate(gs) for name in g})
    errors = gradcheck.check_gradients(lambda: forward()[0], {**arrays, **params}, grads, EPS)
    assert max(errors.values()) < FD_TOL, errors


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stack_round_trip_is_bit_identical(rng, kind, dtype):
    m = torch_module(kind, 3, 4, num_layers=2, bidirectional=True, dtype=dtype)
    layers = torch_io.stack_from_torch(m)
    assert [len(d) for d in layers] == [2, 2] and layers[1][0]["W_ih"].shape == (stacked.GATES[kind] * 4, 8)
    m2 = torch_io.stack_to_torch(layers, torch_module(kind, 3, 4, dtype=dtype, seed=1))
    for name, param in m.named_parameters():
        assert torch.equal(param, getattr(m2, name)), name
    # and NumPy -> torch -> NumPy, float64 arrays into a float64 module
    if dtype == torch.float64:
        arrays = [[{k: rng.standard_normal(v.shape) for k, v in p.items()} for p in ps] for ps in layers]
        back = torch_io.stack_from_torch(torch_io.stack_to_torch(arrays, m2))
        for ps, qs in zip(arrays, back):
            for p, q in zip(ps, qs):
                for k in p:
                    np.testing.assert_array_equal(p[k], q[k])


def test_stack_from_torch_covers_every_parameter():
    m = torch_module("lstm", 3, 4, num_layers=3, bidirectional=True)
    layers = torch_io.stack_from_torch(m, dtype=np.float32)
    assert sum(len(p) for ps in layers for p in ps) == len(list(m.parameters()))
    assert all(a.dtype == np.float32 for ps in layers for p in ps for a in p.values())
    assert torch_io.module_kind(m) == "lstm"


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_stack_float32_is_kept(rng, kind):
    m = torch_module(kind, 3, 4, dtype=torch.float32)
    layers = torch_io.stack_from_torch(m, dtype=np.float32)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out, state, cache = stacked.stacked_forward(kind, x, layers, bidirectional=True)
    dx, dstate0, dlayers = stacked.stacked_backward(np.ones_like(out), cache)
    arrays = [out, dx, *np.atleast_1d(state), *np.atleast_1d(dstate0)]
    arrays += [g for gs in dlayers for grads in gs for g in grads.values()]
    assert all(a.dtype == np.float32 for a in arrays)
    out_t, _ = m(torch.tensor(x))
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-5)


def bad_call(name, rng):
    m = torch_module("lstm", 3, 4)
    layers = torch_io.stack_from_torch(m)
    x = np.zeros((2, 5, 3))
    if name == "kind":
        return stacked.stacked_forward("elman", x, layers, bidirectional=True)
    if name == "directions":
        return stacked.stacked_forward("lstm", x, layers)
    if name == "layer1":
        layers[1][0]["W_ih"] = np.zeros((16, 4))
        return stacked.stacked_forward("lstm", x, layers, bidirectional=True)
    if name == "keys":
        del layers[0][1]["b_hh"]
        return stacked.stacked_forward("lstm", x, layers, bidirectional=True)
    if name == "gates":
        return stacked.stacked_forward("gru", x, layers, bidirectional=True)
    if name == "x":
        return stacked.stacked_forward("lstm", np.zeros((2, 5, 4)), layers, bidirectional=True)
    if name == "h0":
        return stacked.stacked_forward("lstm", x, layers, np.zeros((2, 2, 4)), bidirectional=True)
    if name == "c0":
        gru = torch_io.stack_from_torch(torch_module("gru", 3, 4))
        return stacked.stacked_forward("gru", x, gru, None, np.zeros((4, 2, 4)), bidirectional=True)
    if name == "dout":
        _, _, cache = stacked.stacked_forward("lstm", x, layers, bidirectional=True)
        return stacked.stacked_backward(np.zeros((2, 5, 4)), cache)
    if name == "dc_n":
        _, _, cache = stacked.stacked_forward("lstm", x, layers, bidirectional=True)
        return stacked.stacked_backward(np.zeros((2, 5, 8)), cache, (None, np.zeros((4, 2, 5))))
    if name == "to_torch":
        return torch_io.stack_to_torch(layers[:1], m)
    if name == "relu":
        return torch_io.stack_from_torch(torch.nn.RNN(3, 4, nonlinearity="relu"))
    if name == "proj":
        return torch_io.stack_from_torch(torch.nn.LSTM(3, 4, proj_size=2))


@pytest.mark.parametrize("name,message", [
    ("kind", "kind: expected one of ['gru', 'lstm', 'rnn'], got 'elman'"),
    ("directions", "layers[0]: expected 1 direction(s) (bidirectional=False), got 2"),
    ("layer1", "layers[1][0]: W_ih: expected shape (16, 8), got (16, 4)"),
    ("keys", "layers[0][1]: expected the keys"),
    ("gates", "layers[0][0]: W_hh: expected shape (12, 4) for hidden size 4, got (16, 4)"),
    ("x", "x: expected shape (?, ?, 3), got (2, 5, 4)"),
    ("h0", "h0: expected shape (4, 2, 4), got (2, 2, 4)"),
    ("c0", "c0: only an LSTM has a cell state"),
    ("dout", "dout: expected shape (2, 5, 8), got (2, 5, 4)"),
    ("dc_n", "dc_n: expected shape (4, 2, 4), got (4, 2, 5)"),
    ("to_torch", "layers: expected 2 layers (num_layers), got 1"),
    ("relu", "module: expected nonlinearity 'tanh', got 'relu'"),
    ("proj", "module: expected proj_size=0, got 2"),
])
def test_stack_bad_arguments_raise_value_error_naming_them(rng, name, message):
    with pytest.raises(ValueError) as err:
        bad_call(name, rng)
    assert message in str(err.value)


def test_stack_checks_with_exact_messages():
    """Each check names its argument; messages compared whole (a mangled name or number is caught)."""
    from rnnlib import cells

    def layer(D, H, seed, dtype=np.float64):
        return cells.init_params(D, H, seed, gates=4, dtype=dtype)

    def message(call):
        with pytest.raises(ValueError) as err:
            call()
        return str(err.value)

    x = np.zeros((2, 5, 3))
    assert message(lambda: stacked.stacked_forward("lstm", x, [])) == "layers: expected at least one layer, got none"
    two_sizes = [[layer(3, 4, 0), layer(3, 5, 1)]]  # the reverse direction has another hidden size
    assert message(lambda: stacked.stacked_forward("lstm", x, two_sizes, bidirectional=True)) == (
        "layers[0][1]: W_hh: expected shape (16, 4) (the hidden size of layers[0][0]), got (20, 5)")
    other_input = [[layer(3, 4, 0), layer(2, 4, 1)]]  # layer 0 reads x: D = 3 in both directions
    assert message(lambda: stacked.stacked_forward("lstm", x, other_input, bidirectional=True)) == (
        "layers[0][1]: W_ih: expected shape (16, 3), got (16, 2)")
    layers = [[layer(3, 4, 0), layer(3, 4, 1)], [layer(8, 4, 2), layer(8, 4, 3)]]
    for name in ("h0", "c0"):
        kw = {name: np.zeros((4, 2, 4), dtype=np.float32)}
        assert message(lambda: stacked.stacked_forward("lstm", x, layers, bidirectional=True, **kw)) == (
            f"{name}: expected dtype float64 (the dtype of x), got float32")
        layers32 = [[{k: v.astype(np.float32) for k, v in p.items()} for p in ds] for ds in layers]
        kw = {name: np.zeros((4, 2, 4))}
        assert message(lambda: stacked.stacked_forward("lstm", x.astype(np.float32), layers32, bidirectional=True,
                                                       **kw)) == f"{name}: expected dtype float32 (the dtype of x), got float64"
    out, _, cache = stacked.stacked_forward("lstm", x, layers, bidirectional=True)
    dout, zeros = np.zeros_like(out), np.zeros((4, 2, 4))
    assert message(lambda: stacked.stacked_backward(dout, cache, (np.zeros((4, 2, 5)), None))) == (
        "dh_n: expected shape (4, 2, 4), got (4, 2, 5)")
    for bad in ("dout", "dh_n", "dc_n"):
        args = {"dout": dout, "dh_n": zeros, "dc_n": zeros}
        args[bad] = args[bad].astype(np.float32)
        listed = ", ".join(f"{n}={'float32' if n == bad else 'float64'}" for n in ("dout", "dh_n", "dc_n"))
        assert message(lambda: stacked.stacked_backward(args["dout"], cache, (args["dh_n"], args["dc_n"]))) == (
            f"arguments must share one dtype, got {listed}")
