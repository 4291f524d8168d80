"""experiments/ch06_adding_rnn.py in its --quick configuration, and the pieces chapter 6 relies on."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import ch06_adding_rnn as exp  # noqa: E402


def test_quick_grid_writes_results_with_provenance(tmp_path):
    out = tmp_path / "adding.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "ch06_adding_rnn.py"), "--quick",
                           "--seeds", "3", "4", "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    prov = result["provenance"]
    assert "ch06_adding_rnn.py --quick --seeds 3 4" in prov["command"]
    assert len(prov["git_commit"].split("+")[0]) == 40 and prov["date"] and prov["machine"]["cpus"] >= 1
    assert result["variant"] == "hochreiter1997" and result["tolerance"] == 0.04 and result["complete"]
    cfg = result["config"]
    assert cfg["seeds"] == [3, 4] and cfg["lengths"] == exp.QUICK["lengths"] and cfg["steps"] == 4  # override
    runs = [(r["T"], r["lr"], r["seed"]) for r in result["results"]]
    assert runs == [(T, lr, s) for T in cfg["lengths"] for lr in cfg["lrs"] for s in (3, 4)]
    for r in result["results"]:
        assert r["steps"] == 4 and r["sequences_seen"] == 4 * cfg["batch"] and len(r["curve"]) == 2
        assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.0 <= r["baseline_accuracy"] <= 1.0
        assert abs(r["baseline_mean_prediction"] - 0.5) < 0.02  # the target's mean is 0.5 by symmetry
        assert r["test_mse"] > 0 and r["baseline_mse"] > 0 and r["solved"] is False


def test_learning_rates_of_one_seed_start_from_the_same_weights_and_data():
    cfg = dict(exp.QUICK, steps=2, eval_every=1)
    a, b = exp.train_one(10, 0.0, 5, cfg, progress=False), exp.train_one(10, 0.0, 5, cfg, progress=False)
    assert a["curve"] == b["curve"]  # lr = 0: nothing moves, the same start gives the same curve
    c = exp.train_one(10, 0.0, 6, cfg, progress=False)
    assert c["curve"] != a["curve"]  # another seed, another start


def test_training_on_short_sequences_beats_the_mean():
    """A few hundred steps at T = 10 already do better than always predicting the mean."""
    cfg = dict(exp.DEFAULTS, steps=400, eval_every=200, val=200, test=500)
    rec = exp.train_one(10, 3e-3, 0, cfg, progress=False)
    assert rec["test_mse"] < 0.8 * rec["baseline_mse"]


def test_parts_of_a_grid_merge_into_one_record(tmp_path):
    paths = []
    for name, extra in (("a", ["--seeds", "0", "1", "--lengths", "10"]), ("b", ["--seeds", "0", "1", "--lengths", "12"])):
        paths.append(tmp_path / f"{name}.json")
        exp.main(["--quick", *extra, "--no-progress", "--out", str(paths[-1])])
    merged = exp.main(["--merge", *map(str, paths), "--out", str(tmp_path / "m.json")])
    assert merged["complete"] and merged["config"]["lengths"] == [10, 12] and merged["config"]["seeds"] == [0, 1]
    parts = [json.loads(p.read_text()) for p in paths]
    assert merged["results"] == parts[0]["results"] + parts[1]["results"]
    assert [p["lengths"] for p in merged["provenance"]["parts"]] == [[10], [12]]
    assert "--merge" in merged["provenance"]["command"]
    other = json.loads(paths[1].read_text())
    other["config"]["hidden"] = 99  # another network: refused
    paths[1].write_text(json.dumps(other))
    with pytest.raises(ValueError, match="configuration differs"):
        exp.merge(paths, [])
