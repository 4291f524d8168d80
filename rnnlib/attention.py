"""Attention: scaled dot-product (Vaswani et al. 2017) and additive (Bahdanau et al. 2015).

Batch first, row vectors. A batch of queries ``q (B, Tq, d)`` looks at keys ``k (B, Tk, d)`` and
reads values ``v (B, Tk, dv)``. Each query scores every key, a softmax over the keys turns the
scores into weights ``a (B, Tq, Tk)`` (each row sums to 1) and the output is the weighted sum of
the values, ``out = a @ v (B, Tq, dv)``. The two kinds differ only in the score:

    scaled dot-product   s_ij = q_i . k_j / sqrt(d)
    additive             s_ij = w . tanh(W_q q_i + W_k k_j)

The mask. ``mask`` is a boolean array broadcastable to ``(B, Tq, Tk)``; **True where query i may
attend to key j** (the convention of a boolean ``attn_mask`` in
``torch.nn.functional.scaled_dot_product_attention``). A masked score is set to -inf, so its weight
is exactly 0. A *fully masked row* (a query that may attend to nothing) has no softmax; here its
weights are all 0, so its output is 0 and no gradient flows through it: no NaN, and the row is
easy to spot. (Plain softmax of a row of -inf would give 0/0 = NaN.)

Forward functions return ``(out, cache)``; backward functions take ``(dout, cache)``. The last
entry of every cache is the weight matrix ``a``, the alignment a heatmap shows.
"""
import numpy as np

from rnnlib._checks import check_same_dtype, check_shape


def check_mask(mask, B, Tq, Tk):
    """Validate ``mask`` (boolean, broadcastable to ``(B, Tq, Tk)``); return it broadcast, or None."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask: expected dtype bool (True = may attend), got {mask.dtype}")
    try:
        return np.broadcast_to(mask, (B, Tq, Tk))
    except ValueError:
        raise ValueError(f"mask: expected a shape broadcastable to (B, Tq, Tk) = ({B}, {Tq}, {Tk}), "
                         f"got {mask.shape}") from None


def check_qkv(q, k, v, same_width=True):
    """Validate queries, keys and values; return them as arrays.

    q (B, Tq, d), k (B, Tk, d) (any width when ``same_width`` is False), v (B, Tk, dv)."""
    q = check_shape("q", q, (None, None, None))
    B, _, d = q.shape
    k = check_shape("k", k, (B, None, d if same_width else None))
    v = check_shape("v", v, (B, k.shape[1], None))
    check_same_dtype(q=q, k=k, v=v)
    return q, k, v


def masked_softmax(s, mask=None):
    """Softmax of the scores ``s (B, Tq, Tk)`` over the keys (the last axis).

    Entries where ``mask`` (already broadcast to ``s.shape``) is False get weight 0; a row with no
    True entry gets weights 0 everywhere. Returns ``a`` with the shape of ``s``.
    """
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a fully masked row: its max is -inf
    e = np.exp(s - m)  # exp(-inf) = 0: masked entries drop out
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)  # a fully masked row stays 0


def masked_softmax_backward(da, a):
    """Backward of :func:`masked_softmax`: ``ds = a * (da - sum_j da_j a_j)`` row by row.

    Masked entries (and fully masked rows) have ``a = 0``, so their gradient is 0.
    """
    return a * (da - (da * a).sum(axis=-1, keepdims=True))


def attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention, ``softmax(q k^T / sqrt(d)) v`` with an optional mask.

    Inputs:
    - q: queries, shape (B, Tq, d)
    - k: keys, shape (B, Tk, d)
    - v: values, shape (B, Tk, dv)
    - mask: None, or boolean broadcastable to (B, Tq, Tk); True where attending is allowed

    Returns a tuple of:
    - out: shape (B, Tq, dv); a fully masked row gives zeros
    - cache: for :func:`attention_backward`; ``cache[-1]`` is the weights ``a (B, Tq, Tk)``
    """
    q, k, v = check_qkv(q, k, v)
    B, Tq, d = q.shape
    mask = check_mask(mask, B, Tq, k.shape[1])
    s = q @ k.transpose(0, 2, 1) / np.sqrt(d)  # (B, Tq, Tk)
    a = masked_softmax(s, mask)
    out = a @ v
    return out, (q, k, v, a)


def attention_backward(dout, cache):
    """Backward of :func:`attention_forward`.

    Inputs:
    - dout: upstream gradient, shape (B, Tq, dv)
    - cache: from :func:`attention_forward`

    Returns a tuple of:
    - dq: shape (B, Tq, d)
    - dk: shape (B, Tk, d)
    - dv: shape (B, Tk, dv)
    """
    q, k, v, a = cache
    dout = check_shape("dout", dout, (q.shape[0], q.shape[1], v.shape[2]))
    d = q.shape[2]
    dv = a.transpose(0, 2, 1) @ dout  # out = a @ v
    da = dout @ v.transpose(0, 2, 1)
    ds = masked_softmax_backward(da, a) / np.sqrt(d)  # the 1/sqrt(d) of s, moved here
    dq = ds @ k
    dk = ds.transpose(0, 2, 1) @ q
    return dq, dk, dv


def additive_attention_forward(q, k, v, W_q, W_k, w, mask=None):
    """Additive (Bahdanau) attention: ``s_ij = w . tanh(W_q q_i + W_k k_j)``, softmax, ``a @ v``.

    In Bahdanau et al. (2015) the query is the decoder state and the keys and values are both the
    encoder states (pass the same array as ``k`` and ``v``).

    Inputs:
    - q: queries, shape (B, Tq, Dq)
    - k: keys, shape (B, Tk, Dk)
    - v: values, shape (B, Tk, dv)
    - W_q: shape (A, Dq); W_k: shape (A, Dk); w: shape (A,)  (A: the attention width)
    - mask: None, or boolean broadcastable to (B, Tq, Tk); True where attending is allowed

    Returns a tuple of:
    - out: shape (B, Tq, dv); a fully masked row gives zeros
    - cache: for :func:`additive_attention_backward`; ``cache[-1]`` is the weights ``a (B, Tq, Tk)``
    """
    q, k, v = check_qkv(q, k, v, same_width=False)
    B, Tq, Dq = q.shape
    w = check_shape("w", w, (None,))
    A = w.shape[0]
    W_q = check_shape("W_q", W_q, (A, Dq))
    W_k = check_shape("W_k", W_k, (A, k.shape[2]))
    check_same_dtype(q=q, W_q=W_q, W_k=W_k, w=w)
    mask = check_mask(mask, B, Tq, k.shape[1])
    hq = q @ W_q.T  # (B, Tq, A)
    hk = k @ W_k.T  # (B, Tk, A)
    t = np.tanh(hq[:, :, None, :] + hk[:, None, :, :])  # (B, Tq, Tk, A): every query with every key
    s = t @ w  # (B, Tq, Tk)
    a = masked_softmax(s, mask)
    out = a @ v
    return out, (q, k, v, W_q, W_k, w, t, a)


def additive_attention_backward(dout, cache):
    """Backward of :func:`additive_attention_forward`.

    Inputs:
    - dout: upstream gradient, shape (B, Tq, dv)
    - cache: from :func:`additive_attention_forward`

    Returns a tuple ``(dq, dk, dv, dW_q, dW_k, dw)`` with the shapes of ``q, k, v, W_q, W_k, w``.
    """
    q, k, v, W_q, W_k, w, t, a = cache
    dout = check_shape("dout", dout, (q.shape[0], q.shape[1], v.shape[2]))
    dv = a.transpose(0, 2, 1) @ dout
    ds = masked_softmax_backward(dout @ v.transpose(0, 2, 1), a)  # (B, Tq, Tk)
    dw = np.einsum("bij,bija->a", ds, t)
    dpre = ds[..., None] * w * (1.0 - t * t)  # through s = t @ w and t = tanh(pre)
    dhq = dpre.sum(axis=2)  # hq was broadcast over the keys
    dhk = dpre.sum(axis=1)  # hk over the queries
    dq = dhq @ W_q
    dk = dhk @ W_k
    dW_q = np.einsum("bia,bid->ad", dhq, q)
    dW_k = np.einsum("bja,bjd->ad", dhk, k)
    return dq, dk, dv, dW_q, dW_k, dw
