"""experiments/ch06_adding_rnn.py in a tiny configuration, and the pieces chapter 6 relies on."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import ch06_adding_rnn as exp  # noqa: E402


def test_tiny_run_writes_results_with_provenance(tmp_path):
    out = tmp_path / "adding.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "ch06_adding_rnn.py"), "--lengths", "10", "12",
                           "--steps", "4", "--eval-every", "2", "--val", "50", "--test", "60", "--hidden", "4",
                           "--no-progress", "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    prov = result["provenance"]
    assert "ch06_adding_rnn.py --lengths 10 12" in prov["command"]
    assert len(prov["git_commit"].split("+")[0]) == 40 and prov["date"] and prov["machine"]["cpus"] >= 1
    assert result["variant"] == "hochreiter1997" and result["tolerance"] == 0.04
    assert [r["T"] for r in result["results"]] == [10, 12]
    for r in result["results"]:
        assert r["steps"] == 4 and r["sequences_seen"] == 4 * 32 and len(r["curve"]) == 2
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["baseline_accuracy"] <= 1.0
        assert abs(r["baseline_mean_prediction"] - 0.5) < 0.02  # the target's mean is 0.5 by symmetry
        assert r["test_mse"] > 0 and r["baseline_mse"] > 0


def test_training_on_short_sequences_beats_the_mean():
    """A few hundred steps at T = 10 already do better than always predicting the mean."""
    cfg = dict(exp.DEFAULTS, steps=400, eval_every=200, val=200, test=500)
    rec = exp.train_one(10, cfg, progress=False)
    assert rec["test_mse"] < 0.8 * rec["baseline_mse"]
