"""Checks for problem set 5 (chapter 6, vanishing and exploding gradients): clipping the gradient norm,
and truncated backpropagation through time.

As in ps04, only plain data (arrays, numbers, a dict of arrays) is passed to the student's functions,
and the checks also refuse answers that call ``rnnlib.truncated`` (besides the modules that
:func:`checks.grading.check_function` watches).
"""
import numpy as np

from rnnlib import optim, sequence, truncated
from checks.ps04 import forbid_reference_calls, reraise_reference_calls
from checks.grading import check_function

# ----------------------------------------------------------------------------------------------
# 1. Clipping the global gradient norm


def run_clip(clip_fn, W_ih, W_hh, b, max_norm):
    """Call ``clip_fn({"W_ih": W_ih, "W_hh": W_hh, "b": b}, max_norm)``; return what it returned and the
    three arrays that were passed in (clipping must scale them in place)."""
    grads = {"W_ih": W_ih, "W_hh": W_hh, "b": b}
    norm = clip_fn(grads, max_norm)
    return norm, W_ih, W_hh, b


def _clip_inputs(clipped):
    """Three gradient arrays with a global norm between 1 and 100, and a threshold below it (``clipped``)
    or above it."""

    def inputs(rng):
        H, D = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        arrays = [rng.standard_normal((H, D)), rng.standard_normal((H, H)), rng.standard_normal(H)]
        total = np.sqrt(sum(float(np.sum(a * a)) for a in arrays))
        scale = 10.0 ** rng.uniform(0, 2) / total
        arrays = [a * scale for a in arrays]
        factor = rng.uniform(0.05, 0.9) if clipped else rng.uniform(1.1, 5.0)
        max_norm = float(np.sqrt(sum(float(np.sum(a * a)) for a in arrays)) * factor)
        return [("W_ih", arrays[0]), ("W_hh", arrays[1]), ("b", arrays[2]), ("max_norm", max_norm)]

    return inputs


CLIP_OUTPUTS = ("returned norm (before clipping)", "grads['W_ih'] after the call (scaled in place)",
                "grads['W_hh'] after the call (scaled in place)", "grads['b'] after the call (scaled in place)")


def _clip_each_array(W_ih, W_hh, b, max_norm):
    norms = [float(np.linalg.norm(a)) for a in (W_ih, W_hh, b)]
    for a, n in zip((W_ih, W_hh, b), norms):
        if n > max_norm:
            a *= max_norm / (n + 1e-6)
    return float(np.sqrt(sum(n * n for n in norms))), W_ih, W_hh, b


def _norm_after(W_ih, W_hh, b, max_norm):
    run_clip(optim.clip_grad_norm, W_ih, W_hh, b, max_norm)
    return float(np.sqrt(sum(float(np.sum(a * a)) for a in (W_ih, W_hh, b)))), W_ih, W_hh, b


CLIP_SLIPS = {"each array clipped by its own norm (not one global norm for all)": _clip_each_array,
              "the norm returned after clipping, not before": _norm_after}


def clip_grad_norm(clip_grad_norm):
    student = forbid_reference_calls(lambda *a: run_clip(clip_grad_norm, *a), "clip_grad_norm", ["rnnlib.optim"])
    reference = lambda *a: run_clip(optim.clip_grad_norm, *a)  # noqa: E731
    for clipped, label in [(True, "clip_grad_norm (global norm above max_norm)"),
                           (False, "clip_grad_norm (global norm below max_norm: nothing changes)")]:
        reraise_reference_calls(lambda: check_function(
            student, reference, _clip_inputs(clipped), name=label, output_names=CLIP_OUTPUTS, trials=3,
            rtol=1e-5, atol=1e-12, allow_reference=True, slips=CLIP_SLIPS))


# ----------------------------------------------------------------------------------------------
# 2. Truncated BPTT


def rnn_backward_truncated_reference(dhs, x, h0, hs, W_ih, W_hh, k):
    """:func:`rnnlib.truncated.rnn_backward_truncated` with the cache spelled out as arguments."""
    return truncated.rnn_backward_truncated(dhs, (x, h0, hs, W_ih, W_hh), k)


def _truncated_slip(*, cut=lambda t, k: t % k == 0, wrap=False):
    """Truncated BPTT that cuts before the steps where ``cut(t, k)``, or takes hs[:, -1] as the state
    entering step 0 (``wrap``)."""
    def backward(dhs, x, h0, hs, W_ih, W_hh, k):
        B, T, H = hs.shape
        da, dh_next, dh0 = np.zeros_like(hs), np.zeros((B, H)), None
        for t in reversed(range(T)):
            da[:, t] = (dhs[:, t] + dh_next) * (1.0 - hs[:, t] ** 2)
            dh_next = da[:, t] @ W_hh
            if t == 0:
                dh0 = dh_next
            if cut(t, k):
                dh_next = np.zeros((B, H))
        h_prev = np.concatenate([(hs[:, -1] if wrap else h0)[:, None], hs[:, :-1]], axis=1)
        db = da.sum(axis=(0, 1))
        return (da @ W_ih, dh0, np.einsum("bth,btd->hd", da, x), np.einsum("bth,btk->hk", da, h_prev), db, db)
    return backward


TRUNCATED_SLIPS = {
    "nothing cut (full BPTT)": _truncated_slip(cut=lambda t, k: False),
    "the cuts one step early (before the steps where t % k == k - 1)": _truncated_slip(cut=lambda t, k: t % k == k - 1),
    "the cuts one step late (before the steps where t % k == 1)": _truncated_slip(cut=lambda t, k: t % k == 1 % k),
    "the state entering step 0 taken as hs[:, -1] instead of h0": _truncated_slip(wrap=True),
}


def _truncated_inputs(rng):
    """A random RNN run forward (states from rnnlib), upstream gradients at every step, and 1 <= k < T."""
    B, T, D, H = int(rng.integers(1, 5)), int(rng.integers(3, 13)), int(rng.integers(1, 5)), int(rng.integers(1, 7))
    x, h0 = rng.standard_normal((B, T, D)), rng.standard_normal((B, H)) * 0.5
    W_ih, W_hh = rng.standard_normal((H, D)) * 0.5, rng.standard_normal((H, H)) * 0.5
    b = rng.standard_normal(H) * 0.1
    hs, _ = sequence.rnn_forward(x, h0, W_ih, W_hh, b, np.zeros(H))
    return [("dhs", rng.standard_normal((B, T, H))), ("x", x), ("h0", h0), ("hs", hs), ("W_ih", W_ih),
            ("W_hh", W_hh), ("k", int(rng.integers(1, T)))]


def rnn_backward_truncated(rnn_backward_truncated):
    student = forbid_reference_calls(rnn_backward_truncated, "rnn_backward_truncated", ["rnnlib.truncated"])
    reraise_reference_calls(lambda: check_function(
        student, rnn_backward_truncated_reference, _truncated_inputs, name="rnn_backward_truncated",
        output_names=("dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh"), trials=4, rtol=1e-7, atol=1e-10,
        allow_reference=True, slips=TRUNCATED_SLIPS))
