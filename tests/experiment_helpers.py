"""Shared by the tests of the experiment scripts whose provenance is ``provenance.lm_record``
(experiments/reber.py, experiments/char_lm.py)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tiny(name, tmp_path):
    """Run ``experiments/NAME.py --tiny`` into ``tmp_path``, check that it succeeded and wrote its
    provenance (command, git commit, date, machine); return the result it wrote."""
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--tiny", "--no-progress",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    prov = result["provenance"]
    assert f"{name}.py --tiny" in prov["command"]
    assert len(prov["git_commit"]) == 40 and prov["date_utc"] and prov["machine"]["cpu_count"] >= 1
    return result
