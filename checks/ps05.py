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


def truncated_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
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
        allow_reference=True, slips=truncated_slips()))


# ----------------------------------------------------------------------------------------------
# 3. How far back the gradient reaches: ||dh_T / dh_t|| and the spectral radius


def _jacobian_norms(order="right", derivative_at="after", transposed=False):
    """The norms of the Jacobian product; ``order`` "left" multiplies each new factor on the left,
    ``derivative_at`` "before" takes 1 - h**2 at the earlier state, "none" leaves it out."""
    def norms(hs, W_hh):
        T, H = hs.shape
        W = W_hh.T if transposed else W_hh
        J, out = np.eye(H), [1.0]
        for s in range(T - 1, 0, -1):
            d = {"after": 1.0 - hs[s] ** 2, "before": 1.0 - hs[s - 1] ** 2, "none": np.ones(H)}[derivative_at]
            step = d[:, None] * W
            J = J @ step if order == "right" else step @ J
            out.append(np.linalg.norm(J, 2))
        return np.array(out)
    return norms


def jacobian_slips():
    """Made when a check runs, not on import (so that a mutation test can change the slips' code)."""
    return {
        "the tanh derivative taken at the state before the step (1 - hs[s - 1]**2)": _jacobian_norms(derivative_at="before"),
        "the tanh derivative left out (W_hh**k)": _jacobian_norms(derivative_at="none"),
        "each new factor multiplied on the left": _jacobian_norms(order="left"),
        "W_hh transposed": _jacobian_norms(transposed=True),
        "the entries in time order (entry t) instead of by distance (entry k = T - 1 - t)":
            lambda hs, W_hh: _jacobian_norms()(hs, W_hh)[::-1],
    }


def _jacobian_inputs(rng):
    """States of one random tanh RNN (so that 1 - h**2 varies) and its W_hh."""
    T, H, D = int(rng.integers(2, 12)), int(rng.integers(1, 7)), int(rng.integers(1, 4))
    W_hh = rng.standard_normal((H, H)) * rng.uniform(0.3, 1.5) / np.sqrt(H)
    W_ih, b = rng.standard_normal((H, D)), rng.standard_normal(H) * 0.3
    hs, _ = sequence.rnn_forward(rng.standard_normal((1, T, D)), None, W_ih, W_hh, b, np.zeros(H))
    return [("hs", hs[0]), ("W_hh", W_hh)]


def jacobian_norms(jacobian_norms):
    check_function(jacobian_norms, _jacobian_norms(), _jacobian_inputs, name="jacobian_norms",
                   output_names=("norms",), trials=4, rtol=1e-7, atol=1e-12, slips=jacobian_slips())


def _square_inputs(rng):
    H = int(rng.integers(2, 7))
    W = rng.standard_normal((H, H))
    if rng.random() < 0.5:  # a non-normal matrix: its largest singular value is far from its spectral radius
        W = np.triu(W) * np.array([1.0] + [3.0] * (H - 1))
    return [("W", W)]


def spectral_radius(spectral_radius):
    check_function(spectral_radius, lambda W: float(np.max(np.abs(np.linalg.eigvals(W)))), _square_inputs,
                   name="spectral_radius", output_names=("radius",), trials=6, rtol=1e-7, atol=1e-12,
                   slips={"the largest singular value (np.linalg.norm(W, 2)) instead of the largest |eigenvalue|":
                          lambda W: float(np.linalg.norm(W, 2)),
                          "the largest real part instead of the largest absolute value":
                          lambda W: float(np.max(np.linalg.eigvals(W).real))})
