"""experiments/lstm_gates.py in a tiny configuration: the record chapter 7 reads, and the gates it
recomputes from a trained nn.LSTM."""
import json
import subprocess
import sys

import numpy as np
import torch

from experiment_helpers import ROOT

sys.path.insert(0, str(ROOT / "experiments"))
import lstm_gates  # noqa: E402


def test_tiny_run_writes_gates_with_provenance(tmp_path):
    out = tmp_path / "g.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "lstm_gates.py"), "--T", "20", "--steps", "3",
                           "--hidden", "4", "--show", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert "lstm_gates.py" in record["provenance"]["command"] and len(record["provenance"]["git_commit"]) >= 40
    assert record["training"]["steps"] == 3 and len(record["sequences"]) == 2
    for s in record["sequences"]:
        i, f = np.array(s["i"]), np.array(s["f"])
        assert i.shape == f.shape == (20, 4) and (0 <= i).all() and (f <= 1).all()
        assert len(s["marked_steps"]) == 2 and all(s["markers"][m] == 1.0 for m in s["marked_steps"])


def test_recomputed_gates_match_nn_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, 5, batch_first=True)
    x = torch.randn(3, 7, 2)
    g = lstm_gates.lstm_gates(lstm, x)
    with torch.no_grad():
        out, (h_n, c_n) = lstm(x)
    np.testing.assert_allclose(g["h"], out.numpy(), atol=1e-6)
    np.testing.assert_allclose(g["c"][:, -1], c_n[0].numpy(), atol=1e-6)
    # c_t = f c_{t-1} + i g, step by step
    np.testing.assert_allclose(g["c"][:, 1:], g["f"][:, 1:] * g["c"][:, :-1] + g["i"][:, 1:] * g["g"][:, 1:], atol=1e-6)
