"""experiments/adding_gated.py in a tiny configuration, and the committed results the chapters read."""
import datetime
import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

from nbgrader_helpers import ROOT

SCRIPT = ROOT / "experiments" / "adding_gated.py"
RESULTS = ROOT / "experiments" / "results" / "adding_gated.json"


@pytest.fixture(scope="module")
def script():
    """The script as a module, imported by name so that its worker processes (spawned) can import it too."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        yield importlib.import_module("adding_gated")
    finally:
        sys.path.remove(str(SCRIPT.parent))


TINY = ["--lengths", "10", "12", "--models", "rnn", "lstm", "gru", "lstm_default", "--hidden", "4", "--steps", "3",
        "--batch", "8", "--val", "16", "--test", "32", "--eval-every", "2", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_cli(tmp_path_factory):
    """The script run from the command line in a tiny configuration, two runs at a time."""
    out = tmp_path_factory.mktemp("gated") / "tiny.json"
    args = TINY + ["--jobs", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return args, proc.stdout, json.loads(out.read_text())


def test_command_line_tiny_run_writes_results_with_provenance(tiny_cli):
    args, stdout, result = tiny_cli
    prov = result["provenance"]
    assert prov["command"] == "python " + " ".join([str(SCRIPT)] + args)
    assert len(prov["git_commit"].split("+")[0]) == 40
    datetime.datetime.fromisoformat(prov["date"])
    assert prov["machine"]["cpu_count"] >= 1 and prov["machine"]["torch_threads"] == 1
    assert result["config"]["steps"] == 3 and result["config"]["jobs"] == 2
    assert result["config"]["variant"] == "hochreiter1997"
    records = result["results"]
    assert [(r["T"], r["model"]) for r in records] == [(T, m) for T in (10, 12)
                                                         for m in ("rnn", "lstm", "gru", "lstm_default")]
    for r in records:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["test_mse"] >= 0.0
        assert r["steps"] <= 3 and r["sequences_seen"] == 8 * r["steps"]
        assert [c[0] for c in r["curve"]] == [16, 24][:len(r["curve"])]
    assert "lstm_default" in stdout and "0." in stdout


def test_runs_are_reproducible_in_one_process_and_in_parallel(script, tiny_cli):
    _, _, result = tiny_cli
    cfg, records = script.run([10, 12], ["rnn", "lstm", "gru", "lstm_default"], hidden=4, steps=3, batch=8, val=16,
                              test=32, eval_every=2, progress=False)
    assert cfg["jobs"] == 1
    assert [r["curve"] for r in records] == [r["curve"] for r in result["results"]]
    assert [r["test_mse"] for r in records] == [r["test_mse"] for r in result["results"]]


def test_gate_biases_start_with_a_long_memory(script):
    H = 4
    lstm = script.AddingNet("lstm", H, gate_bias=5.0).rnn
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    assert np.allclose(b[H:2 * H], 5.0) and np.allclose(b[:H], -5.0)  # forget open, input shut
    gru = script.AddingNet("gru", H, gate_bias=5.0).rnn
    assert np.allclose((gru.bias_ih_l0 + gru.bias_hh_l0).detach().numpy()[H:2 * H], 5.0)  # update gate z
    default = script.AddingNet("lstm_default", H, gate_bias=5.0).rnn
    assert np.abs(default.bias_ih_l0.detach().numpy()).max() <= 1 / np.sqrt(H)  # PyTorch's U(-1/sqrt(H), ...)
    with pytest.raises(ValueError, match="kind"):
        script.AddingNet("transformer", H)


def test_every_model_sees_the_same_training_data(script):
    assert script.data_seed(0, 50, 3, 7) == script.data_seed(0, 50, 3, 7)
    seeds = {script.data_seed(0, T, part, step) for T in (10, 50) for part in (1, 2, 3) for step in (0, 1)}
    assert len(seeds) == 12


def test_committed_results_cover_the_chapters_table():
    result = json.loads(RESULTS.read_text())
    table = {}
    for r in result["results"]:
        table[(r["T"], r["model"])] = r["test_accuracy"]
    for T in (10, 50, 100, 200):
        for model in ("rnn", "lstm", "gru", "lstm_default"):
            assert 0.0 <= table[(T, model)] <= 1.0
    prov = result["provenance"]
    assert prov["command"].startswith("python ") and len(prov["git_commit"]) >= 40 and prov["date"]
    assert prov["machine"]["device"] == "cpu"


def test_long_memory_reaches_every_layer(script):
    torch = pytest.importorskip("torch")
    H = 3
    lstm, gru = torch.nn.LSTM(2, H, num_layers=2), torch.nn.GRU(2, H, num_layers=2)
    script.set_long_memory(lstm, 4.0)
    script.set_long_memory(gru, 4.0)
    for layer in (0, 1):
        b = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach().numpy()
        assert np.allclose(b[H:2 * H], 4.0) and np.allclose(b[:H], -4.0)
        bz = (getattr(gru, f"bias_ih_l{layer}") + getattr(gru, f"bias_hh_l{layer}")).detach().numpy()[H:2 * H]
        assert np.allclose(bz, 4.0)
    with pytest.raises(ValueError, match="rnn"):
        script.set_long_memory(torch.nn.RNN(2, H), 4.0)
