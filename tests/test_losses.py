"""rnnlib.losses against torch and central differences, and their behaviour at the edges."""
import numpy as np
import pytest
import torch

from rnnlib import gradcheck, losses


def test_softmax_is_stable_for_large_logits():
    """Without subtracting the max, exp(1000) overflows and the result is NaN."""
    with np.errstate(all="raise", under="ignore"):
        p = losses.softmax(np.array([[1000.0, 0.0], [-1000.0, 0.0], [1000.0, 1000.0]]))
    np.testing.assert_array_equal(p, [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_matches_torch_along_its_axis(rng, axis):
    logits = 3 * rng.standard_normal((4, 5, 6))
    expected = torch.softmax(torch.tensor(logits), dim=axis).numpy()
    p = losses.softmax(logits, axis=axis)
    assert gradcheck.rel_error(p, expected) < 1e-12
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, rtol=1e-14)


def test_softmax_default_axis_is_the_last(rng):
    logits = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(losses.softmax(logits), losses.softmax(logits, axis=-1))


def test_mse_value_and_gradient(rng):
    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    value, grad = losses.mse(pred, target)
    pt = torch.tensor(pred, requires_grad=True)
    expected = torch.nn.functional.mse_loss(pt, torch.tensor(target))
    expected.backward()
    assert isinstance(value, float) and value == pytest.approx(expected.item(), rel=1e-14)
    assert gradcheck.rel_error(grad, pt.grad.numpy()) < 1e-14
    assert losses.mse([1.0, 3.0], [0.0, 0.0])[0] == 5.0  # mean of 1 and 9


def test_mse_checks_its_arguments():
    with pytest.raises(ValueError, match=r"^target: expected shape \(2,\) \(the shape of pred\), got \(3,\)$"):
        losses.mse(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="^pred: expected dtype float32 or float64, got int64$"):
        losses.mse(np.zeros(2, dtype=np.int64), np.zeros(2))
    value, grad = losses.mse(np.ones(2, dtype=np.float32), [0, 0])  # target takes pred's dtype
    assert value == 1.0 and grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 6)])
def test_softmax_cross_entropy_matches_torch(rng, shape):
    logits = 2 * rng.standard_normal(shape)
    targets = rng.integers(0, shape[-1], shape[:-1])
    loss, dlogits = losses.softmax_cross_entropy(logits, targets)
    lt = torch.tensor(logits.reshape(-1, shape[-1]), requires_grad=True)
    expected = torch.nn.functional.cross_entropy(lt, torch.tensor(targets.reshape(-1)))
    expected.backward()
    assert isinstance(loss, float) and loss == pytest.approx(expected.item(), rel=1e-13)
    assert dlogits.shape == logits.shape
    assert gradcheck.rel_error(dlogits.reshape(-1, shape[-1]), lt.grad.numpy()) < 1e-12


def test_softmax_cross_entropy_checks_its_arguments():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"^targets: expected shape \(2,\), got \(3,\)$"):
        losses.softmax_cross_entropy(logits, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="^targets: expected an integer dtype, got float64$"):
        losses.softmax_cross_entropy(logits, np.zeros(2))
    with pytest.raises(ValueError, match=r"^targets: expected classes in \[0, 3\), got values in \[0, 3\]$"):
        losses.softmax_cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"^targets: expected classes in \[0, 3\), got values in \[-1, 2\]$"):
        losses.softmax_cross_entropy(logits, np.array([-1, 2]))
    loss, _ = losses.softmax_cross_entropy(logits, np.array([0, 2]))  # the edges are allowed
    assert loss == pytest.approx(np.log(3), rel=1e-14)


def test_softmax_cross_entropy_edge_cases():
    """Rows far apart in scale (each is shifted by its own max), 3-D logits in the shape message,
    integer logits refused by name."""
    logits = np.array([[1000.0, 0.0], [0.0, 1.0]])
    loss, dlogits = losses.softmax_cross_entropy(logits, np.array([0, 1]))
    expected = np.log1p(np.exp(-1.0)) / 2  # row 0 contributes log(1 + e^-1000) = 0
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(dlogits))
    with pytest.raises(ValueError) as err:
        losses.softmax_cross_entropy(np.zeros((2, 4, 3)), np.zeros((2, 3), dtype=int))
    assert str(err.value) == "targets: expected shape (2, 4), got (2, 3)"
    with pytest.raises(ValueError) as err:
        losses.softmax_cross_entropy(np.zeros((2, 3), dtype=np.int64), np.zeros(2, dtype=int))
    assert str(err.value) == "logits: expected dtype float32 or float64, got int64"
