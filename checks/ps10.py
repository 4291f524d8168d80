"""Checks for problem set 10 (chapter 11): attention forward/backward, a decoder step, beam search.

Students write ``attention_forward(q, k, v, mask=None) -> (out, cache)`` and
``attention_backward(dout, cache) -> (dq, dk, dv)`` (graded through their own forward, like the
cells of ps06); ``decoder_step(y_prev, h_prev, enc, enc_mask, E, W_ih, W_hh, b_ih, b_hh, W_out,
b_out) -> (logits, h, a)``, one step of a GRU decoder with scaled dot-product attention whose query
is the new state ``h``; and ``beam_search(step, state, beam_size, max_len, sos, eos) -> (tokens,
score)``. References:
:mod:`rnnlib.attention`, :func:`rnnlib.cells.gru_step_forward`,
:func:`rnnlib.torch.seq2seq.beam_search`. Every input is drawn when grading runs; wrong answers
that match a usual slip (no 1/sqrt(d), softmax over the queries, mask inverted or applied after the
softmax, ...) are told so.
"""
import numpy as np

from checks.grading import (GradingError, check_backward_through_forward, check_function, check_returned,
                            definition_code, forbid_calls)
from rnnlib import attention, cells
from rnnlib.torch import seq2seq

FORWARD_OUTPUTS = ("out", "cache")
BACKWARD_OUTPUTS = ("dq", "dk", "dv")


def random_mask(rng, B, Tq, Tk, kind):
    """A boolean mask of one ``kind``: causal (Tq, Tk), padding (B, 1, Tk), or random (B, Tq, Tk)
    with one fully masked row."""
    if kind == "causal":
        return np.tril(np.ones((Tq, Tk), dtype=bool), k=Tk - Tq)
    if kind == "padding":
        lengths = rng.integers(1, Tk + 1, size=B)
        return (np.arange(Tk) < lengths[:, None])[:, None, :]
    mask = rng.random((B, Tq, Tk)) < 0.6
    mask[rng.integers(B), rng.integers(Tq)] = False
    return mask


def random_qkv(rng, masked=False, with_upstream=False):
    """Random ``q, k, v`` (float64) of random shapes with ``d >= 2``, a mask when ``masked``, and the
    upstream gradient ``dout`` when ``with_upstream``."""
    B, Tq, Tk, d, dv = (int(rng.integers(lo, hi)) for lo, hi in ((1, 4), (1, 6), (2, 7), (2, 7), (1, 5)))
    args = [("q", rng.standard_normal((B, Tq, d))), ("k", rng.standard_normal((B, Tk, d))),
            ("v", rng.standard_normal((B, Tk, dv)))]
    kinds = ("causal", "padding", "random")
    args.append(("mask", random_mask(rng, B, Tq, Tk, kinds[rng.integers(3)]) if masked else None))
    if with_upstream:
        args.append(("dout", rng.standard_normal((B, Tq, dv))))
    return args


def _weights(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _slip_forward(scale=True, axis=-1, invert=False, after=False):
    """``attention_forward`` with one usual slip; returns ``out`` only."""
    def forward(q, k, v, mask=None):
        s = q @ k.transpose(0, 2, 1) / (np.sqrt(q.shape[-1]) if scale else 1.0)
        if mask is None:
            return _weights(s, axis) @ v
        m = np.broadcast_to(mask, s.shape)
        m = ~m if invert else m
        if after:  # weights of the unmasked softmax, masked entries zeroed, not renormalised
            return (_weights(s, axis) * m) @ v
        a = _weights(np.where(m, s, -1e30), axis) * m  # a fully masked row -> 0
        return a @ v
    return forward


def forward_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "no 1/sqrt(d) scaling of the scores": _slip_forward(scale=False),
        "the softmax over the queries (axis 1) instead of the keys (the last axis)": _slip_forward(axis=1),
        "the mask inverted (True must mean: may attend)": _slip_forward(invert=True),
        "the mask applied after the softmax (masked weights zeroed, the rest no longer sums to 1)":
            _slip_forward(after=True),
    }


def _out_of(attention_forward):
    def forward(*args):
        return check_returned("attention_forward", attention_forward(*args), FORWARD_OUTPUTS)[0]
    return forward


def forward(attention_forward):
    """``out`` without a mask."""
    check_function(_out_of(attention_forward), lambda *a: attention.attention_forward(*a)[0], random_qkv, name="attention_forward",
                   output_names=("out",), slips=forward_slips())


def forward_mask(attention_forward):
    """``out`` with causal, padding and random masks (one row fully masked: its output is 0)."""
    check_function(_out_of(attention_forward), lambda *a: attention.attention_forward(*a)[0],
                   lambda rng: random_qkv(rng, masked=True),
                   name="attention_forward", output_names=("out",), trials=4, slips=forward_slips())


def _slip_backward(no_scale=False, no_row_sum=False):
    def backward(dout, cache):
        q, k, v, a = cache
        da = dout @ v.transpose(0, 2, 1)
        ds = a * da if no_row_sum else a * (da - (da * a).sum(-1, keepdims=True))
        ds = ds if no_scale else ds / np.sqrt(q.shape[-1])
        return ds @ k, ds.transpose(0, 2, 1) @ q, a.transpose(0, 2, 1) @ dout
    return backward


def backward(attention_forward, attention_backward):
    """``dq, dk, dv`` on the cache of the student's own forward, with and without masks."""
    def check_forward():
        forward(attention_forward)
        forward_mask(attention_forward)

    check_backward_through_forward(
        attention_forward, attention_backward, attention.attention_forward, attention.attention_backward,
        lambda rng: random_qkv(rng, masked=bool(rng.integers(2)), with_upstream=True),
        check_forward=check_forward, n_upstream=1, output_names=BACKWARD_OUTPUTS, keep=(0, 1, 2),
        slips={"the 1/sqrt(d) left out of dq and dk": _slip_backward(no_scale=True),
               "the softmax's Jacobian without its row-sum term (ds = a * da)": _slip_backward(no_row_sum=True)})


def random_decoder_args(rng):
    """A batch for one decoder step: ``y_prev (B,)`` int, ``h_prev (B, H)``, encoder outputs
    ``enc (B, S, H)``, a padding mask ``(B, 1, S)``, then the parameters: embedding ``E (V, D)``,
    GRU ``W_ih (3H, D), W_hh (3H, H), b_ih, b_hh (3H,)``, output layer ``W_out (V, 2H), b_out (V,)``."""
    B, S, D, H, V = (int(rng.integers(lo, hi)) for lo, hi in ((1, 4), (1, 7), (1, 5), (2, 6), (3, 8)))
    lengths = rng.integers(1, S + 1, size=B)
    return [("y_prev", rng.integers(V, size=B)), ("h_prev", 0.5 * rng.standard_normal((B, H))),
            ("enc", rng.standard_normal((B, S, H))), ("enc_mask", (np.arange(S) < lengths[:, None])[:, None, :]),
            ("E", rng.standard_normal((V, D))), ("W_ih", 0.5 * rng.standard_normal((3 * H, D))),
            ("W_hh", 0.5 * rng.standard_normal((3 * H, H))), ("b_ih", 0.1 * rng.standard_normal(3 * H)),
            ("b_hh", 0.1 * rng.standard_normal(3 * H)), ("W_out", rng.standard_normal((V, 2 * H))),
            ("b_out", rng.standard_normal(V))]


def reference_decoder_step(y_prev, h_prev, enc, enc_mask, E, W_ih, W_hh, b_ih, b_hh, W_out, b_out,
                           query_prev=False, context_first=False):
    """The reference step (and two slips): GRU step, attention with the new state as query, output layer."""
    h, _ = cells.gru_step_forward(E[y_prev], h_prev, W_ih, W_hh, b_ih, b_hh)
    query = h_prev if query_prev else h
    c, cache = attention.attention_forward(query[:, None, :], enc, enc, enc_mask)
    c, a = c[:, 0], cache[-1][:, 0]
    features = np.concatenate([c, h] if context_first else [h, c], axis=1)
    return features @ W_out.T + b_out, h, a


def decoder_step(decoder_step, attention_forward=None):
    """``logits, h, a`` of one decoder step. When it is wrong and the student's ``attention_forward``
    (which the step may call) is wrong too, the message says so."""
    def student(*args):
        return check_returned("decoder_step", decoder_step(*args), ("logits", "h", "a"))

    try:
        check_function(student, reference_decoder_step, random_decoder_args,
                       name="decoder_step", output_names=("logits", "h", "a"),
                       slips={"the previous state h_prev as the query (the query is the new state h)":
                              lambda *a: reference_decoder_step(*a, query_prev=True),
                              "[c, h] instead of [h, c] before the output layer":
                              lambda *a: reference_decoder_step(*a, context_first=True)})
    except GradingError as err:
        if attention_forward is not None:
            try:
                forward_mask(attention_forward)
            except GradingError:
                raise GradingError(f"{err}\n(Your attention_forward is not right yet either: if decoder_step "
                                   "calls it, fix it first.)") from None
        raise


def make_gru_step(E, W_ih, W_hh, b_ih, b_hh, W_out, b_out):
    """A small GRU language model as a one-step function ``step(token, h) -> (log_probs (V,), h (1, H))``:
    the reference twin of the notebook's ``make_gru_step`` (which the student's beam search is given,
    built in the student's kernel: a function cannot be sent there)."""
    def step(token, h):
        h, _ = cells.gru_step_forward(E[token][None], h, W_ih, W_hh, b_ih, b_hh)
        s = h[0] @ W_out.T + b_out
        return s - s.max() - np.log(np.exp(s - s.max()).sum()), h
    return step


def random_beam_args(rng):
    """The weights of a random small GRU language model (``E, W_ih, W_hh, b_ih, b_hh, W_out, b_out``),
    its initial state ``h0 (1, H)``, ``beam_size``, ``max_len``, ``sos`` = 1 and ``eos`` = 2; drawn
    again until beam search and greedy decoding disagree on it, so that every trial tells them apart."""
    for _ in range(100):
        V, H = int(rng.integers(4, 8)), int(rng.integers(2, 6))
        b_out = rng.standard_normal(V)
        b_out[2] += 1.0  # EOS a little more likely, so that hypotheses end
        args = [("E", rng.standard_normal((V, H))), ("W_ih", rng.standard_normal((3 * H, H))),
                ("W_hh", rng.standard_normal((3 * H, H))), ("b_ih", 0.1 * rng.standard_normal(3 * H)),
                ("b_hh", 0.1 * rng.standard_normal(3 * H)), ("W_out", 2.0 * rng.standard_normal((V, H))),
                ("b_out", b_out), ("h0", rng.standard_normal((1, H))), ("beam_size", int(rng.integers(2, 5))),
                ("max_len", int(rng.integers(3, 9))), ("sos", 1), ("eos", 2)]
        values = [v for _, v in args]
        if reference_beam(*values)[0] != reference_beam(*values[:8], 1, *values[9:])[0]:
            break
    return args


def reference_beam(E, W_ih, W_hh, b_ih, b_hh, W_out, b_out, h0, beam_size, max_len, sos, eos):
    """:func:`rnnlib.torch.seq2seq.beam_search` on the model of these weights."""
    step = make_gru_step(E, W_ih, W_hh, b_ih, b_hh, W_out, b_out)
    return seq2seq.beam_search(step, h0, beam_size, max_len, sos, eos)


def _greedy(*args):
    return reference_beam(*args[:8], 1, *args[9:])


def beam(beam_search, make_gru_step):
    """``(tokens, score)`` of the student's beam search on random small GRU models (built in the
    student's kernel by the notebook's ``make_gru_step``), against the reference; the tokens are
    compared as a list (length first)."""
    def student(E, W_ih, W_hh, b_ih, b_hh, W_out, b_out, h0, beam_size, max_len, sos, eos):
        step = make_gru_step(E, W_ih, W_hh, b_ih, b_hh, W_out, b_out)
        tokens, score = check_returned("beam_search", beam_search(step, h0, beam_size, max_len, sos, eos),
                                       ("tokens", "score"))
        return [int(t) for t in tokens], float(score)

    # the reference that would answer this part is rnnlib's beam search: watched here (rnnlib's
    # attention and cells are no answer to it)
    watched = forbid_calls(student, "beam_search", definition_code(seq2seq, seq2seq.beam_search))
    check_function(watched, reference_beam, random_beam_args, name="beam_search", output_names=("tokens", "score"),
                   trials=6, rtol=1e-9, atol=1e-9, allow_reference=True,
                   slips={"greedy decoding (a beam of 1)": _greedy})
