"""benchmarks/lstm_vs_torch.py in a tiny configuration: it runs, and its record has what RESULTS.md and the
appendix on rnnlib.fast read."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_script_runs_in_a_tiny_configuration(tmp_path):
    out = tmp_path / "lstm.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lstm_vs_torch.py"), "--quick", "--threads", "1",
                    "--out", str(out)], check=True, capture_output=True, cwd=ROOT)
    record = json.loads(out.read_text())
    assert {"command", "commit", "date", "machine", "config", "runs"} <= set(record)
    (run,) = record["runs"]
    assert run["threads"] == 1 and set(run["results"]) == {"float32", "float64"}
    for r in run["results"].values():
        assert r["ratio"] > 0 and r["plain_ratio"] > 0
        assert abs(r["ratio"] - r["fast_ms_median"] / r["torch_ms_median"]) < 0.01 * r["ratio"] + 2e-3
        assert abs(r["plain_ratio"] - r["plain_ms_median"] / r["torch_ms_median"]) < 0.01 * r["plain_ratio"] + 2e-3
    assert run["results"]["float64"]["max_rel_difference"] < 1e-7
    assert run["results"]["float64"]["plain_max_rel_difference"] < 1e-7


def test_committed_record_has_both_ratios():
    record = json.loads((ROOT / "benchmarks" / "results" / "lstm_vs_torch.json").read_text())
    one_thread = next(run for run in record["runs"] if run["threads"] == 1)
    for dtype in ("float32", "float64"):
        r = one_thread["results"][dtype]
        assert r["ratio"] > 0 and r["plain_ratio"] > r["ratio"] * 0.8
