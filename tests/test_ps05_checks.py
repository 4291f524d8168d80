"""ps05's checks on answers the notebook's tests cannot show: copiers, answers just outside or inside a
tolerance, and a clip that rescales even below max_norm. Seeds fixed; messages reviewed."""
import numpy as np
import pytest

from checks import ps05 as checks
from checks.grading import GradingError
from visible_helpers import fixed_grading_seeds, solution_namespace  # noqa: F401 (a fixture)

COPIED = r"calls the rnnlib reference \(.+\) instead of computing the answer itself: this part scores 0$"


@pytest.fixture(scope="module")
def ns():
    return solution_namespace("ps05")


def test_copiers_score_0(fixed_grading_seeds):
    from rnnlib import optim, truncated

    with pytest.raises(GradingError, match=r"^clip_grad_norm " + COPIED):
        checks.clip_grad_norm(optim.clip_grad_norm)
    with pytest.raises(GradingError, match=r"^rnn_backward_truncated " + COPIED):
        checks.rnn_backward_truncated(
            lambda dhs, x, h0, hs, W_ih, W_hh, k: truncated.rnn_backward_truncated(dhs, (x, h0, hs, W_ih, W_hh), k))


def test_clip_as_torch_writes_it_passes(fixed_grading_seeds):
    """torch.nn.utils.clip_grad_norm_ scales by max_norm / (norm + 1e-6): graded to 1e-5, that passes."""
    def clip(grads, max_norm):
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
        if norm > max_norm:
            for g in grads.values():
                g *= max_norm / (norm + 1e-6)
        return norm

    checks.clip_grad_norm(clip)


def test_a_clip_that_always_rescales_fails_below_max_norm(fixed_grading_seeds):
    def always(grads, max_norm):
        norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
        for g in grads.values():
            g *= max_norm / norm
        return norm

    with pytest.raises(GradingError, match=r"^for clip_grad_norm \(global norm below max_norm: nothing changes\)"):
        checks.clip_grad_norm(always)


@pytest.mark.parametrize("name, relative", [("rnn_backward_truncated", 3e-7), ("jacobian_norms", 3e-7),
                                            ("spectral_radius", 3e-7)])
def test_answers_just_outside_the_tolerance_fail(ns, name, relative, fixed_grading_seeds):
    """Graded to 1e-7 relative: the same arithmetic agrees to rounding."""
    solution = ns[name]

    def off(*args):
        out = solution(*args)
        return tuple(o * (1 + relative) for o in out) if isinstance(out, tuple) else out * (1 + relative)

    with pytest.raises(GradingError, match="values differ"):
        getattr(checks, name)(off)
