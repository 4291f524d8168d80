"""Run the real nbgrader CLI on a temporary copy of the course.

The course root is copied (``nbgrader_config.py``, ``solutions/``, ``exercises/``) into a temporary
folder, submissions are built from the released notebook with chosen answers, and ``nbgrader
autograde`` / ``generate_feedback`` / ``export`` run there exactly as an instructor runs them.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.MULTILINE)


def nbgrader(course, *args, check=True):
    """Run ``nbgrader ARGS`` in ``course``; the venv's bin/ goes first on PATH (nbgrader calls alembic)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT))
    env.update(no_cgroup_env())
    proc = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def no_cgroup_env():
    """Where no kernel cgroup can be made (tests run as an ordinary user, a CI runner without cgroups),
    the tests grade with per-process limits only (COURSEGRADE_NO_CGROUP=1; each kernel logs a warning)."""
    from coursegrade import sandbox
    why = sandbox.Cgroup.unavailable()
    if why:
        print(f"WARNING: no cgroup for the grading sandbox ({why}): tests grade with {sandbox.NO_CGROUP_ENV}=1")
        return {sandbox.NO_CGROUP_ENV: "1"}
    return {}


def course_copy(tmp_path):
    """A copy of the course in ``tmp_path/course``: config, sources and committed releases."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    return course


def answer_cells(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def solution_answers(ps):
    """``{grade_id: source}`` of every answer cell of the solution notebook, markers removed."""
    nb = nbformat.read(ROOT / "solutions" / ps / f"{ps}.ipynb", as_version=4)
    return {gid: SOLUTION_MARKERS.sub("", c.source) for gid, c in answer_cells(nb).items()}


def run_answers(*sources):
    """The namespace that answer cells' ``sources`` define when run one after the other, as in the notebook
    (after ``import numpy as np``), for calling the hidden checks directly on a solution or a wrong answer."""
    import numpy as np

    namespace = {"np": np}
    exec("\n".join(sources), namespace)  # noqa: S102 (our own solutions and the tests' wrong answers)
    return namespace


def make_submission(course, ps, student, answers=None, notebook=None):
    """Submit the released notebook of ``ps`` for ``student``, with ``answers`` ({grade_id: source})
    written into its answer cells (None: the release as it is). ``notebook`` (raw text) replaces the
    whole file, for broken submissions."""
    target = course / "submitted" / student / ps
    target.mkdir(parents=True)
    if notebook is not None:
        (target / f"{ps}.ipynb").write_text(notebook)
        return target
    nb = nbformat.read(course / "exercises" / ps / f"{ps}.ipynb", as_version=4)
    cells = answer_cells(nb)
    for gid, source in (answers or {}).items():
        cells[gid].source = source
    nbformat.write(nb, target / f"{ps}.ipynb")
    return target


def autograde(course, ps):
    """Generate the assignment into the gradebook, autograde every submission, write feedback and
    grades.csv. Returns ``{student: {grade_id: (score, max_score, error text)}}`` and the totals."""
    nbgrader(course, "generate_assignment", ps, "--force")
    nbgrader(course, "autograde", ps, "--create", "--force")
    nbgrader(course, "generate_feedback", ps, "--force")
    nbgrader(course, "export")
    cells = {}
    for student_dir in sorted((course / "autograded").iterdir()):
        nb = nbformat.read(student_dir / ps / f"{ps}.ipynb", as_version=4)
        per_cell = {}
        for c in nb.cells:
            meta = c.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):  # a manually graded answer waits for a person
                errors = [o for o in c.get("outputs", []) if o.output_type == "error"]
                text = "\n".join(f"{o.ename}: {o.evalue}" for o in errors)
                per_cell[meta["grade_id"]] = (0.0 if errors else float(meta["points"]), float(meta["points"]), text)
        cells[student_dir.name] = per_cell
    with open(course / "grades.csv") as f:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f) if row["assignment"] == ps}
    return cells, totals


def feedback_html(course, student, ps):
    return (course / "feedback" / student / ps / f"{ps}.html").read_text()


def notebook_json(path):
    return json.loads(Path(path).read_text())
