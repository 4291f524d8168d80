"""`make mutation` (benchmarks/mutation.py) in a tiny configuration, so that the command cannot rot: the
mutants of gradcheck.rel_error against tests/test_gradcheck.py, which kills every one of them."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mutmut")


def test_mutation_script_runs_on_one_function(tmp_path):
    out = tmp_path / "mutation.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mutation.py"), "--modules", "gradcheck",
                           "--tests", "test_gradcheck.py", "--mutants", "rnnlib.gradcheck.x_rel_error*",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = json.loads(out.read_text())
    assert {"tool", "command", "commit", "date", "machine", "total", "modules"} <= set(record)
    assert record["tool"].startswith("mutmut 3.")
    entry = record["modules"]["gradcheck"]
    assert entry["mutants"] >= 10  # rel_error has more than ten places to mutate
    assert entry["killed"] == entry["mutants"] and entry["survived"] == 0, entry["not_killed"]
    assert entry["seconds"] > 0 and record["total"]["mutants"] == entry["mutants"]


def test_committed_record_covers_the_numpy_reference():
    record = json.loads((ROOT / "benchmarks" / "results" / "mutation.json").read_text())
    expected = {"cells", "sequence", "fast", "losses", "optim", "gradcheck", "train", "truncated", "stacked",
                "data", "jacobian"}
    assert expected <= set(record["modules"])
    for name, entry in record["modules"].items():
        counted = entry["killed"] + entry["survived"] + entry["timeout"] + sum(entry["other"].values())
        assert counted == entry["mutants"], name
        survivors = [e for e in entry["not_killed"] if e["status"] == "survived"]
        assert len(survivors) == entry["survived"] and all(e["diff"].strip() for e in survivors), name
    total = record["total"]
    assert total["killed"] / (total["mutants"] - total["equivalent"]) >= 0.95


def test_mutation_script_runs_on_the_checks(tmp_path):
    """The same for the hidden-test checks: the mutants of ps02's first_of_pair against the tests that run
    the checks in this process (the slip tests and the solutions) are all killed."""
    out = tmp_path / "mutation_checks.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mutation.py"), "--package", "checks",
                           "--modules", "ps02", "--tests", "test_ps02.py,test_checks_accept_solutions.py",
                           "--mutants", "checks.ps02.x_first_of_pair*", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = json.loads(out.read_text())
    entry = record["modules"]["ps02"]
    assert entry["mutants"] >= 8 and entry["killed"] == entry["mutants"], entry["not_killed"]
    assert "hidden-test checks" in record["what"]


def test_checks_make_no_calls_of_their_own_on_import():
    """mutmut runs a mutant only inside the tests that called the mutated function; a table of slips built
    on import (``SLIPS = {"...": _slip(...)}``) would keep the code as it was before any mutant was
    switched on. The checks therefore build such tables in a function, when a check runs."""
    import ast

    for path in sorted((ROOT / "checks").glob("*.py")):
        tree = ast.parse(path.read_text())
        local = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                continue
            deferred = {id(c) for lam in ast.walk(node) if isinstance(lam, ast.Lambda) for c in ast.walk(lam)}
            calls = [c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                     and c.func.id in local and id(c) not in deferred]
            assert not calls, f"{path.name} line {node.lineno} calls {calls} on import"


def test_committed_record_covers_the_checks():
    """Every module of checks/ was mutation-tested, and every mutant that survived the tests is listed as
    equivalent, with its reason: none is a check that cannot tell a wrong answer from the right one. (A
    mutant that makes the tests run past mutmut's time limit, an endless loop, counts as timed out.) The
    exceptions are the modules the record lists under "open", each with what is left to do."""
    record = json.loads((ROOT / "benchmarks" / "results" / "mutation_checks.json").read_text())
    expected = {"grading", "allowlist"} | {f"ps{n:02d}" for n in range(1, 11)}
    assert expected <= set(record["modules"]) and "hidden-test checks" in record["what"]
    for name, entry in record["modules"].items():
        counted = entry["killed"] + entry["survived"] + entry["timeout"] + sum(entry["other"].values())
        assert counted == entry["mutants"] and entry["mutants"] > 0, name
        unexplained = [e["name"] for e in entry["not_killed"] if e["status"] == "survived" and "equivalent" not in e]
        assert not unexplained or name in record.get("open", {}), (name, unexplained)
        assert all(e["status"] in ("survived", "timeout") for e in entry["not_killed"]), name
    total = record["total"]
    assert total["killed"] / (total["mutants"] - total["equivalent"]) >= 0.95
