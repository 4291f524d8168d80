"""benchmarks/weather_seed_task.py: its per-sample loop (written like seed 004's program) computes the same
gradients as rnnlib, and the script's record has what RESULTS.md needs."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnnlib import train

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "weather_seed_task.py"


def load_script():
    spec = importlib.util.spec_from_file_location("weather_seed_task", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_post_loop_and_rnnlib_compute_the_same_gradients():
    w = load_script()
    X, y = w.seed_windows(5, seed=0)
    params = train.rnn_regression_params(3, 7, seed=1)           # non-zero biases: b_ih + b_hh is bh
    loop_params = w.to_loop_params(params)
    for i in range(len(X)):
        loss, g = w.loop_window(loop_params, X[i], y[i])
        ref_loss, ref = train.rnn_regression_step(params, (X[i:i + 1], y[i:i + 1]))
        assert np.isclose(loss, ref_loss, rtol=1e-12)           # one window, one output: sum == mean
        for mine, theirs in (("Wxh", "W_ih"), ("Whh", "W_hh"), ("Why", "W_out")):
            np.testing.assert_allclose(g[mine], ref[theirs], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g["bh"].ravel(), ref["b_ih"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g["bh"].ravel(), ref["b_hh"], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g["by"].ravel(), ref["b_out"], rtol=1e-10, atol=1e-14)
    pred = w.loop_predict(loop_params, X)
    np.testing.assert_allclose(pred, train.rnn_regression_forward(params, X)[0], rtol=1e-12)


def test_the_seed_data_and_initial_weights():
    w = load_script()
    X, y = w.seed_windows(20000, seed=3)
    assert X.shape == (20000, 3, 3) and y.shape == (20000, 1) and X.min() >= 0 and X.max() < 1
    noise = y[:, 0] - X[:, :, 0].mean(axis=1)
    assert abs(noise.std() - 0.1) < 0.003 and abs(noise.mean()) < 0.003
    np.testing.assert_array_equal(X, w.seed_windows(20000, seed=3)[0])
    p = w.seed_init(3, 64, 1, seed=0)
    assert p["W_hh"].shape == (64, 64) and abs(p["W_hh"].std() - 0.01) < 0.001
    assert not p["b_ih"].any() and not p["b_out"].any()


def test_the_script_runs_in_a_tiny_configuration(tmp_path):
    out = tmp_path / "weather.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-progress", "--out", str(out)],
                          check=True, capture_output=True, text=True, cwd=ROOT)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) >= {"loop_seconds", "loop_test_mse", "rnnlib_seconds", "rnnlib_test_mse", "speedup",
                            "speedup_float64"}
    assert summary.pop("rnnlib_dtype") == "float32"
    assert all(np.isfinite(v) and v > 0 for v in summary.values())
    assert np.isclose(summary["speedup"], summary["loop_seconds"] / summary["rnnlib_seconds"])
    record = json.loads(out.read_text())
    assert record["summary"]["rnnlib_seconds"] == summary["rnnlib_seconds"]
    assert record["loop"]["adam_steps"] == 3 * 60 and record["rnnlib"]["adam_steps"] == 3 * 1
    assert len(record["loop"]["train_loss"]) == len(record["rnnlib"]["train_loss"]) == 3
    assert record["rnnlib"]["dtype"] == "float32" and record["rnnlib_float64"]["dtype"] == "float64"
    assert {"command", "commit", "date", "machine"} <= set(record["provenance"])
