"""rnnlib.gradcheck: the relative error is the LARGEST element's, the central difference is second-order."""
import numpy as np
import pytest

from rnnlib import gradcheck


def test_rel_error_is_the_largest_elementwise_error_not_the_mean():
    """One wrong element in 100 must read as wrong: a mean would dilute it to 0.01."""
    a = np.ones(100)
    b = a.copy()
    b[37] = -1.0  # |a - b| / (|a| + |b|) = 2 / 2
    assert gradcheck.rel_error(a, b) == 1.0
    b[37] = 0.5  # 0.5 / 1.5
    assert gradcheck.rel_error(a, b) == pytest.approx(1 / 3, rel=1e-15)
    assert gradcheck.rel_error(b, a) == gradcheck.rel_error(a, b)


def test_rel_error_by_hand_and_its_floor():
    assert gradcheck.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert gradcheck.rel_error([3.0], [1.0]) == pytest.approx(0.5, rel=1e-15)
    # both zero: 0 / floor, not 0 / 0
    assert gradcheck.rel_error([0.0], [0.0]) == 0.0
    # tiny numbers are divided by the floor (1e-12), not by their own size
    assert gradcheck.rel_error([1e-15], [0.0]) == pytest.approx(1e-3, rel=1e-12)
    assert gradcheck.rel_error([1e-15], [0.0], floor=1e-15) == pytest.approx(1.0, rel=1e-12)
    assert isinstance(gradcheck.rel_error([1.0], [2.0]), float)


def test_rel_error_computes_in_float64():
    """Integers that overflow int64 when subtracted, and float32 inputs, are compared as float64."""
    big = np.array([2 ** 62], dtype=np.int64)
    assert gradcheck.rel_error(big, -big) == 1.0
    assert gradcheck.rel_error(-big, big) == 1.0
    lowest = np.array([np.iinfo(np.int64).min])  # abs() of it overflows in int64
    assert gradcheck.rel_error(lowest, [0]) == 1.0
    assert gradcheck.rel_error([0], lowest) == 1.0
    a32 = np.array([1.0], dtype=np.float32)
    b32 = np.array([1.0 + 2 ** -23], dtype=np.float32)
    assert gradcheck.rel_error(a32, b32) == pytest.approx(2 ** -23 / (2 + 2 ** -23), rel=1e-12)


def test_rel_error_of_empty_arrays_and_shape_mismatch():
    assert gradcheck.rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError, match=r"^b: expected shape \(2,\) \(the shape of a\), got \(3,\)$"):
        gradcheck.rel_error(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="b: expected shape"):
        gradcheck.rel_error(np.zeros((1, 2)), np.zeros(2))  # same size, different shape


def test_numerical_gradient_is_central_and_restores_x():
    """For x**3 the central difference is 3x^2 + eps^2 exactly (a one-sided one is off by 3x eps)."""
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    x_before = x.copy()
    for eps in (1e-6, 1e-2):
        grad = gradcheck.numerical_gradient(lambda: float(np.sum(x ** 3)), x, eps)
        np.testing.assert_allclose(grad, 3 * x ** 2 + eps ** 2, rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(x, x_before)
    grad = gradcheck.numerical_gradient(lambda: float(np.sum(x ** 3)), x)  # default eps = 1e-6
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    assert grad.shape == x.shape and grad.dtype == np.float64


def test_numerical_gradient_refuses_float32():
    with pytest.raises(ValueError, match="^x: expected dtype float64 for a gradient check, got float32$"):
        gradcheck.numerical_gradient(lambda: 0.0, np.zeros(2, dtype=np.float32))


def test_check_gradients_compares_each_array_and_passes_eps_on():
    params = {"a": np.array([1.0, 2.0]), "b": np.array([[0.5]])}
    f = lambda: float(np.sum(params["a"] ** 3) + np.sum(params["b"] ** 3))  # noqa: E731
    exact = {k: 3 * v ** 2 for k, v in params.items()}
    errors = gradcheck.check_gradients(f, params, exact)
    assert set(errors) == {"a", "b"} and max(errors.values()) < 1e-8
    # with eps = 0.1 the numerical gradient is 3x^2 + 0.01: a known, eps-dependent error
    errors = gradcheck.check_gradients(f, params, exact, eps=0.1)
    assert errors["a"] == pytest.approx(0.01 / (6 * 1.0 + 0.01), rel=1e-6)
    assert errors["b"] == pytest.approx(0.01 / (6 * 0.25 + 0.01), rel=1e-6)
    wrong = {**exact, "b": exact["b"] + 1.0}
    assert gradcheck.check_gradients(f, params, wrong)["b"] > 0.1


@pytest.mark.parametrize("grads", [{"a": 0}, {"a": 0, "b": 0, "c": 0}, {"a": 0, "c": 0}])
def test_check_gradients_needs_the_same_keys(grads):
    params = {"a": np.zeros(1), "b": np.zeros(1)}
    expected = f"grads: expected the keys of params ['a', 'b'], got {sorted(grads)}"
    with pytest.raises(ValueError) as err:
        gradcheck.check_gradients(lambda: 0.0, params, grads)
    assert str(err.value) == expected
