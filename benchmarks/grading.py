"""Grading throughput: the sandboxed grader against plain nbgrader, in the same run.

    python benchmarks/grading.py [--ps ps02] [--class-size 300] [--workers 2] [--plain-size N]

Builds a class of ``--class-size`` correct submissions of ``--ps`` (answers from the solution
notebook), then measures, one after the other on the same machine:

* ``plain``: nbgrader out of the box (its own ``Execute`` in the ordinary ``python3`` kernel, hidden
  tests in the kernel, no sandbox), one ``nbgrader autograde`` process over ``--plain-size``
  submissions (default: the whole class);
* ``coursegrade``: ``python -m coursegrade PS --workers W --no-feedback`` over the whole class (the
  bwrap sandbox with a cgroup per kernel, hidden tests in the grader, nbgrader kept in-process in each
  worker).

Seconds per submission = wall time / submissions. Writes benchmarks/results/grading.json (with
provenance and the machine's load average before and after each measurement: numbers taken on a
busy machine say so) and the "## Grading" section of benchmarks/RESULTS.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from nbgrader_helpers import course_copy, make_submission, nbgrader, solution_answers  # noqa: E402

PLAIN = '''
# benchmark: nbgrader out of the box (no sandbox, hidden tests in the kernel)
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]
c.Execute.kernel_name = "python3"
'''


def load():
    return os.getloadavg()[0]


def env():
    bin_dir = Path(sys.executable).parent
    return dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def make_course(tmp, ps, n):
    course = course_copy(Path(tmp))
    answers = solution_answers(ps)
    for i in range(n):
        make_submission(course, ps, f"s{i:03d}", answers)
    nbgrader(course, "generate_assignment", ps, "--force")
    return course


def plain(ps, n):
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = make_course(tmp, ps, n)
        with open(course / "nbgrader_config.py", "a") as f:
            f.write(PLAIN)
        before, start = load(), time.perf_counter()
        proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", ps, "--force", "--create"],
                              cwd=course, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"plain nbgrader failed\n{proc.stderr[-3000:]}")
        return {"mode": "plain nbgrader (1 process, no sandbox)", "submissions": n, "workers": 1,
                "seconds": seconds, "seconds_per_submission": seconds / n, "load_before": before,
                "load_after": load()}


def sandboxed(ps, n, workers):
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = make_course(tmp, ps, n)
        before, start = load(), time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "coursegrade", ps, "--workers", str(workers), "--quiet",
                               "--no-feedback"], cwd=course, env=env(), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        m = re.search(r"COURSEGRADE_SUMMARY (.*)", proc.stdout)
        if m is None:
            raise SystemExit(f"coursegrade failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        summary = json.loads(m.group(1))
        return {"mode": f"coursegrade (sandbox, {workers} workers)", "submissions": n, "workers": workers,
                "seconds": seconds, "seconds_per_submission": seconds / n, "graded": summary["graded"],
                "failed": summary["failed"], "worker_seconds_per_submission_mean":
                summary["seconds_per_submission_mean"], "load_before": before, "load_after": load()}


def write_results(result):
    out = ROOT / "benchmarks" / "results" / "grading.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    prov = result["provenance"]
    lines = ["## Grading", "",
             f"`{prov['command']}` on {prov['machine']} ({prov['cores']} cores), {prov['date']}, commit "
             f"{prov['commit'][:10]}; raw numbers in `benchmarks/results/grading.json`.", "",
             f"| {result['ps']}, correct submissions | submissions | wall s | s / submission | load avg |",
             "|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['mode']} | {r['submissions']} | {r['seconds']:.1f} | {r['seconds_per_submission']:.2f} | "
                     f"{r['load_before']:.1f} → {r['load_after']:.1f} |")
    lines += ["", "Goal: ≤ 1.0 s wall per submission with the sandbox on 2 cores. On 2 cores a load average "
              "above 2 means the measurement waited for the CPU (the machine was shared)."]
    section = "\n".join(lines) + "\n"
    md = ROOT / "benchmarks" / "RESULTS.md"
    text = md.read_text() if md.exists() else "# Benchmark results\n\n"
    pattern = re.compile(r"^## Grading\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    md.write_text(text)
    print(section)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ps", default="ps02")
    p.add_argument("--class-size", type=int, default=300)
    p.add_argument("--plain-size", type=int, help="submissions for plain nbgrader (default: the class size)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = p.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"provenance": {"command": "python benchmarks/grading.py " + " ".join(argv or sys.argv[1:]),
                             "commit": commit, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                             "machine": platform.node() + " " + platform.machine(), "cores": os.cpu_count()},
              "ps": args.ps, "runs": []}
    result["runs"].append(plain(args.ps, args.plain_size or args.class_size))
    print(result["runs"][-1], flush=True)
    result["runs"].append(sandboxed(args.ps, args.class_size, args.workers))
    print(result["runs"][-1], flush=True)
    if not args.no_write:
        write_results(result)
    return result


if __name__ == "__main__":
    main()
