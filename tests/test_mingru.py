"""minGRU (rnnlib.torch.models): the parallel scan against the step-by-step loop, streaming, budgets."""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_compare  # noqa: E402
from rnnlib.torch.models import (MinGRU, RecurrentLM, count_params, flops_per_token,  # noqa: E402
                           linear_recurrence_loop, linear_recurrence_scan, matched_models)

TOL = 1e-7
# (B, T, D): T of 1, odd, a power of two, one more and one less than a power of two
SHAPES = [(1, 1, 1), (2, 2, 3), (3, 5, 4), (2, 8, 2), (4, 17, 3), (2, 31, 5), (1, 64, 2), (3, 100, 6), (2, 1000, 3)]


def rel_err(x, y):
    """Largest |x - y| / (|x| + |y|), as rnnlib.gradcheck.rel_error (floor 1e-12)."""
    return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-12)).max().item()


def random_steps(B, T, D, seed):
    """a in (0, 1) (a forget factor, as 1 - z), b and h0 of both signs, all float64 leaves."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(B, T, D, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(B, T, D, generator=g, dtype=torch.float64).requires_grad_()
    h0 = torch.randn(B, D, generator=g, dtype=torch.float64).requires_grad_()
    dh = torch.randn(B, T, D, generator=g, dtype=torch.float64)
    return a, b, h0, dh


@pytest.mark.parametrize("B,T,D", SHAPES)
@pytest.mark.parametrize("with_h0", [False, True])
def test_scan_equals_loop_forward_and_gradients(B, T, D, with_h0):
    a, b, h0, dh = random_steps(B, T, D, seed=T)
    inputs = (a, b, h0) if with_h0 else (a, b)
    outs, grads = [], []
    for recurrence in (linear_recurrence_loop, linear_recurrence_scan):
        h = recurrence(a, b, h0 if with_h0 else None)
        assert h.shape == (B, T, D)
        outs.append(h.detach())
        grads.append(torch.autograd.grad((h * dh).sum(), inputs, materialize_grads=True))
    assert rel_err(*outs) < TOL
    for name, g_loop, g_scan in zip(["da", "db", "dh0"], *grads):
        assert rel_err(g_loop, g_scan) < TOL, name


def test_loop_is_the_recurrence():
    """h_t = a_t * h_{t-1} + b_t written out for three steps."""
    a = torch.tensor([[[0.5], [0.25], [2.0]]], dtype=torch.float64)
    b = torch.tensor([[[1.0], [-1.0], [3.0]]], dtype=torch.float64)
    h0 = torch.tensor([[4.0]], dtype=torch.float64)
    expected = [0.5 * 4 + 1, 0.25 * 3 - 1, 2.0 * -0.25 + 3]
    for recurrence in (linear_recurrence_loop, linear_recurrence_scan):
        assert recurrence(a, b, h0).flatten().tolist() == pytest.approx(expected, rel=1e-15)


def test_mingru_layer_follows_the_equations():
    """z = sigmoid(W_z x + b_z), h~ = W_h x + b_h, h_t = (1 - z) h_{t-1} + z h~, layer by layer."""
    torch.manual_seed(0)
    B, T, D, H = 2, 6, 3, 4
    m = MinGRU(D, H, num_layers=2).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    h0 = torch.randn(2, B, H, dtype=torch.float64)
    out, h_n = m(x, h0)
    inp = x
    for layer, lin in enumerate(m.linears):
        W_z, W_h = lin.weight[:H], lin.weight[H:]
        b_z, b_h = lin.bias[:H], lin.bias[H:]
        h, hs = h0[layer], []
        for t in range(T):
            z = torch.sigmoid(inp[:, t] @ W_z.T + b_z)
            h = (1 - z) * h + z * (inp[:, t] @ W_h.T + b_h)
            hs.append(h)
        inp = torch.stack(hs, dim=1)
        torch.testing.assert_close(h_n[layer], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, inp, rtol=0, atol=1e-12)
    assert count_params(m) == (D + 1) * 2 * H + (H + 1) * 2 * H


@pytest.mark.parametrize("T", [7, 32])
def test_model_scan_equals_model_loop_with_parameter_gradients(T):
    torch.manual_seed(1)
    scan = RecurrentLM("mingru", vocab=11, d_model=8, n_layers=2).double()
    loop = RecurrentLM("mingru_loop", vocab=11, d_model=8, n_layers=2).double()
    loop.load_state_dict(scan.state_dict())
    tokens = torch.randint(0, 11, (3, T))
    h0 = torch.randn(2, 3, 8, dtype=torch.float64)
    results = []
    for model in (scan, loop):
        logits, h_n = model(tokens, h0, return_state=True)
        grads = torch.autograd.grad(logits.square().sum() + h_n.sum(), list(model.parameters()))
        results.append((logits.detach(), h_n.detach(), grads))
    assert rel_err(results[0][0], results[1][0]) < TOL
    assert rel_err(results[0][1], results[1][1]) < TOL
    for (name, _), g_scan, g_loop in zip(scan.named_parameters(), results[0][2], results[1][2]):
        assert rel_err(g_scan, g_loop) < TOL, name


@pytest.mark.parametrize("extra", [dict(vocab=256), dict(vocab=1, input_dim=2, out_dim=1)])
def test_full_config_budget_matches_within_10_percent(extra):
    cfg = gpu_compare.FULL
    models = matched_models(cfg["budget"], names=("gru", "mingru", "mingru_loop"), max_len=4096,
                            multiple=cfg["multiple"], rnn_layers=cfg["rnn_layers"],
                            tf_layers=cfg["tf_layers"], head_dim=cfg["head_dim"],
                            head_multiple=cfg["head_multiple"], **extra)
    for name, m in models.items():
        assert abs(count_params(m) / cfg["budget"] - 1) <= 0.10, (name, count_params(m))
    # a minGRU layer has 2 weight matrices where a GRU layer has 6: at one budget it is wider
    assert models["mingru"].d_model > models["gru"].d_model
    assert models["mingru"].d_model == models["mingru_loop"].d_model
    assert flops_per_token(models["mingru"], 64) == flops_per_token(models["mingru_loop"], 64)
