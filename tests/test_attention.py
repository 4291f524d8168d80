"""rnnlib.attention against torch autograd (float64), torch's scaled_dot_product_attention and
central differences; masks (none, causal, padding, fully masked row), T = 1, argument checks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlib import attention, gradcheck
from torch_helpers import EPS, TOL

SHAPES = [(1, 1, 1, 1, 1), (2, 3, 4, 5, 2), (3, 5, 5, 4, 3), (2, 4, 1, 3, 6)]  # (B, Tq, Tk, d, dv)


def causal(Tq, Tk):
    """Query i may attend to keys 0..i (the last Tq keys line up with the queries)."""
    return np.tril(np.ones((Tq, Tk), dtype=bool), k=Tk - Tq)


def padding(rng, B, Tk):
    """(B, 1, Tk): each sequence has a random length 1..Tk; keys past it are padding."""
    lengths = rng.integers(1, Tk + 1, size=B)
    return (np.arange(Tk) < lengths[:, None])[:, None, :]


def masks(rng, B, Tq, Tk):
    """The masks every test runs through: none, causal, padding, and one with a fully masked row."""
    full_row = rng.random((B, Tq, Tk)) < 0.6
    full_row[0, -1] = False  # query Tq-1 of batch 0 may attend to nothing
    return {"none": None, "causal": causal(Tq, Tk), "padding": padding(rng, B, Tk), "full_row": full_row}


def torch_sdpa(q, k, v, mask, dout):
    """torch autograd through the formula written out (masked row -> 0, as rnnlib defines it)."""
    qt, kt, vt = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    s = qt @ kt.transpose(1, 2) / np.sqrt(q.shape[-1])
    if mask is not None:
        m = torch.tensor(np.broadcast_to(mask, s.shape))
        s = s.masked_fill(~m, float("-inf"))
        a = torch.softmax(s, dim=-1).nan_to_num(0.0)  # fully masked row: NaN -> 0
        a = a.masked_fill(~m, 0.0)
    else:
        a = torch.softmax(s, dim=-1)
    out = a @ vt
    (out * torch.tensor(dout)).sum().backward()
    return out.detach().numpy(), qt.grad.numpy(), kt.grad.numpy(), vt.grad.numpy()


def draw(rng, B, Tq, Tk, d, dv):
    return (rng.standard_normal((B, Tq, d)), rng.standard_normal((B, Tk, d)),
            rng.standard_normal((B, Tk, dv)), rng.standard_normal((B, Tq, dv)))


def assert_close(names, got, expected):
    for name, g, e in zip(names, got, expected):
        assert g.shape == e.shape, name
        assert not np.isnan(g).any(), name
        assert gradcheck.rel_error(g, e) < TOL, (name, gradcheck.rel_error(g, e))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "full_row"])
def test_attention_matches_torch_autograd(rng, shape, kind):
    q, k, v, dout = draw(rng, *shape)
    mask = masks(rng, *shape[:3])[kind]
    out, cache = attention.attention_forward(q, k, v, mask)
    grads = attention.attention_backward(dout, cache)
    expected = torch_sdpa(q, k, v, mask, dout)
    assert_close(["out", "dq", "dk", "dv"], (out, *grads), expected)


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "full_row"])
def test_attention_matches_torch_scaled_dot_product_attention(rng, kind):
    B, Tq, Tk, d, dv = 3, 5, 5, 4, 3
    q, k, v, dout = draw(rng, B, Tq, Tk, d, dv)
    mask = masks(rng, B, Tq, Tk)[kind]
    out, cache = attention.attention_forward(q, k, v, mask)
    dq, dk, dv_ = attention.attention_backward(dout, cache)
    qt, kt, vt = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    out_t = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=None if mask is None else torch.tensor(mask))
    (out_t * torch.tensor(dout)).sum().backward()
    assert_close(["out", "dq", "dk", "dv"], (out, dq, dk, dv_),
                 (out_t.detach().numpy(), qt.grad.numpy(), kt.grad.numpy(), vt.grad.numpy()))


def test_fully_masked_row_gives_zero_output_and_zero_gradients(rng):
    q, k, v, dout = draw(rng, 2, 3, 4, 5, 2)
    mask = np.ones((2, 3, 4), dtype=bool)
    mask[1, 2] = False
    out, cache = attention.attention_forward(q, k, v, mask)
    dq, dk, dv = attention.attention_backward(dout, cache)
    assert np.all(out[1, 2] == 0) and np.all(cache[-1][1, 2] == 0) and np.all(dq[1, 2] == 0)
    assert np.isfinite(cache[-1]).all()  # no NaN anywhere
    assert np.isfinite(out).all() and np.isfinite(dk).all() and np.isfinite(dv).all()
    rows = cache[-1].sum(-1)
    np.testing.assert_allclose(rows[mask.any(-1)], 1.0, rtol=1e-12)


def test_masked_keys_get_weight_zero_and_change_nothing(rng):
    """Changing a masked key or value leaves the output unchanged."""
    q, k, v, _ = draw(rng, 2, 3, 4, 5, 2)
    mask = causal(3, 4)
    out, cache = attention.attention_forward(q, k, v, mask)
    assert np.all(cache[-1][:, ~mask] == 0)
    k2, v2 = k.copy(), v.copy()
    k2[:, 3] += 10.0
    v2[:, 3] -= 7.0  # key 3 is masked for queries 0 and 1
    out2, _ = attention.attention_forward(q, k2, v2, mask)
    np.testing.assert_array_equal(out2[:, :2], out[:, :2])


def test_scaling_is_one_over_sqrt_d(rng):
    """Scaling q by sqrt(d) undoes the scaling: the weights become softmax(q k^T)."""
    q, k, v, _ = draw(rng, 1, 2, 3, 4, 2)
    _, cache = attention.attention_forward(q * 2.0, k, v)  # d = 4: sqrt(d) = 2
    s = q @ k.transpose(0, 2, 1)
    expected = np.exp(s) / np.exp(s).sum(-1, keepdims=True)
    np.testing.assert_allclose(cache[-1], expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["none", "causal", "full_row"])
def test_attention_backward_matches_central_differences(rng, kind):
    B, Tq, Tk, d, dv = 2, 3, 3, 4, 2
    q, k, v, dout = draw(rng, B, Tq, Tk, d, dv)
    mask = masks(rng, B, Tq, Tk)[kind]
    _, cache = attention.attention_forward(q, k, v, mask)
    dq, dk, dv_ = attention.attention_backward(dout, cache)

    def loss():
        return float((attention.attention_forward(q, k, v, mask)[0] * dout).sum())

    errors = gradcheck.check_gradients(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv_}, eps=EPS)
    assert max(errors.values()) < 1e-7, errors


def torch_additive(q, k, v, W_q, W_k, w, mask, dout):
    ts = [torch.tensor(x, requires_grad=True) for x in (q, k, v, W_q, W_k, w)]
    qt, kt, vt, Wqt, Wkt, wt = ts
    s = torch.tanh((qt @ Wqt.T)[:, :, None, :] + (kt @ Wkt.T)[:, None, :, :]) @ wt
    if mask is not None:
        m = torch.tensor(np.broadcast_to(mask, s.shape))
        s = s.masked_fill(~m, float("-inf"))
        a = torch.softmax(s, dim=-1).nan_to_num(0.0).masked_fill(~m, 0.0)
    else:
        a = torch.softmax(s, dim=-1)
    out = a @ vt
    (out * torch.tensor(dout)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in ts]


def additive_params(rng, A, Dq, Dk):
    return rng.standard_normal((A, Dq)), rng.standard_normal((A, Dk)), rng.standard_normal(A)


@pytest.mark.parametrize("B,Tq,Tk,Dq,Dk,A,dv", [(1, 1, 1, 1, 1, 1, 1), (2, 3, 4, 5, 3, 6, 2), (3, 4, 2, 2, 4, 3, 5)])
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "full_row"])
def test_additive_attention_matches_torch_autograd(rng, B, Tq, Tk, Dq, Dk, A, dv, kind):
    q, k, v = rng.standard_normal((B, Tq, Dq)), rng.standard_normal((B, Tk, Dk)), rng.standard_normal((B, Tk, dv))
    W_q, W_k, w = additive_params(rng, A, Dq, Dk)
    dout = rng.standard_normal((B, Tq, dv))
    mask = masks(rng, B, Tq, Tk)[kind]
    out, cache = attention.additive_attention_forward(q, k, v, W_q, W_k, w, mask)
    grads = attention.additive_attention_backward(dout, cache)
    expected = torch_additive(q, k, v, W_q, W_k, w, mask, dout)
    assert_close(["out", "dq", "dk", "dv", "dW_q", "dW_k", "dw"], (out, *grads), expected)


def test_additive_attention_backward_matches_central_differences(rng):
    B, Tq, Tk, Dq, Dk, A, dv = 2, 3, 4, 3, 2, 5, 2
    q, k, v = rng.standard_normal((B, Tq, Dq)), rng.standard_normal((B, Tk, Dk)), rng.standard_normal((B, Tk, dv))
    W_q, W_k, w = additive_params(rng, A, Dq, Dk)
    dout = rng.standard_normal((B, Tq, dv))
    mask = padding(rng, B, Tk)
    params = {"q": q, "k": k, "v": v, "W_q": W_q, "W_k": W_k, "w": w}
    _, cache = attention.additive_attention_forward(q, k, v, W_q, W_k, w, mask)
    grads = dict(zip(params, attention.additive_attention_backward(dout, cache)))

    def loss():
        return float((attention.additive_attention_forward(q, k, v, W_q, W_k, w, mask)[0] * dout).sum())

    errors = gradcheck.check_gradients(loss, params, grads, eps=EPS)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("args,match", [
    (dict(q=np.zeros((2, 3)), k=np.zeros((2, 4, 5)), v=np.zeros((2, 4, 2))), r"q: expected shape \(\?, \?, \?\), got \(2, 3\)"),
    (dict(q=np.zeros((2, 3, 5)), k=np.zeros((2, 4, 6)), v=np.zeros((2, 4, 2))), r"k: expected shape \(2, \?, 5\), got \(2, 4, 6\)"),
    (dict(q=np.zeros((2, 3, 5)), k=np.zeros((2, 4, 5)), v=np.zeros((2, 3, 2))), r"v: expected shape \(2, 4, \?\), got \(2, 3, 2\)"),
    (dict(q=np.zeros((2, 3, 5)), k=np.zeros((1, 4, 5)), v=np.zeros((2, 4, 2))), r"k: expected shape \(2, \?, 5\)"),
    (dict(q=np.zeros((2, 3, 5), dtype=int), k=np.zeros((2, 4, 5)), v=np.zeros((2, 4, 2))), r"q: expected dtype float32 or float64, got int64"),
    (dict(q=np.zeros((2, 3, 5), np.float32), k=np.zeros((2, 4, 5)), v=np.zeros((2, 4, 2))), r"q=float32, k=float64"),
    (dict(q=np.zeros((2, 3, 5)), k=np.zeros((2, 4, 5)), v=np.zeros((2, 4, 2)), mask=np.ones((3, 4))), r"mask: expected dtype bool"),
    (dict(q=np.zeros((2, 3, 5)), k=np.zeros((2, 4, 5)), v=np.zeros((2, 4, 2)), mask=np.ones((4, 3), bool)),
     r"mask: expected a shape broadcastable to \(B, Tq, Tk\) = \(2, 3, 4\), got \(4, 3\)"),
])
def test_attention_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        attention.attention_forward(**args)


def test_backward_and_additive_reject_bad_arguments(rng):
    q, k, v, dout = draw(rng, 2, 3, 4, 5, 2)
    _, cache = attention.attention_forward(q, k, v)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3, 2\), got \(2, 3, 3\)"):
        attention.attention_backward(np.zeros((2, 3, 3)), cache)
    W_q, W_k, w = additive_params(rng, 6, 5, 5)
    with pytest.raises(ValueError, match=r"W_k: expected shape \(6, 5\), got \(6, 4\)"):
        attention.additive_attention_forward(q, k, v, W_q, np.zeros((6, 4)), w)
    with pytest.raises(ValueError, match=r"W_q: expected shape \(6, 5\), got \(5, 5\)"):
        attention.additive_attention_forward(q, k, v, np.zeros((5, 5)), W_k, w)
