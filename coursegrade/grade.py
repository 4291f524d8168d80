"""Grade a whole class: ``python -m coursegrade ASSIGNMENT [--workers N] [--scheduler ADDR] [--db URL]``.

nbgrader stays the engine: one task per submission runs ``nbgrader autograde ASSIGNMENT --student
S`` (in the sandbox the course's ``nbgrader_config.py`` selects); the tasks run on a Dask cluster (a
``LocalCluster`` with N workers by default, or the scheduler at ``--scheduler``); then ``nbgrader
generate_feedback`` and ``nbgrader export`` write the feedback HTML and ``grades.csv``, and a report
(``grading_report_ASSIGNMENT.csv``) gives every student's score with the reasons for lost points.

Submissions nbgrader cannot take as they are get a recorded score with a reason instead of a gap:
a notebook under another name is graded under the right one; a missing or unreadable notebook is
replaced, in an intake copy (``.coursegrade/intake``; ``submitted/`` is never changed), by the blank
release with a note saying why, which scores 0.
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

INTAKE = os.path.join(".coursegrade", "intake")
NOTE_MARK = "**Grading note.**"


# ----------------------------------------------------------------------------------- nbgrader --

def nbgrader_env(unsafe=False):
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if unsafe:
        env["COURSEGRADE_UNSAFE"] = "1"
    return env


def run_nbgrader(course, args, unsafe=False, timeout=3600):
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    return subprocess.run([exe, *args], cwd=course, env=nbgrader_env(unsafe), capture_output=True, text=True,
                          timeout=timeout)


def course_settings(course, db=None):
    """``(gradebook URL, course id)`` as the course's nbgrader_config.py sets them (``db`` overrides)."""
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    url = db or cfg.CourseDirectory.get("db_url")
    if not (isinstance(url, str) and url):
        url = "sqlite:///" + os.path.join(course, "gradebook.db")
    course_id = cfg.CourseDirectory.get("course_id")
    return url, course_id if isinstance(course_id, str) else ""


def grade_one(course, assignment, student, extra_args, unsafe=False, use_intake=False, timeout=3600):
    """One task: autograde one student's submission with the nbgrader CLI. Runs on a Dask worker."""
    args = ["autograde", assignment, "--student", student, "--force", *extra_args]
    if use_intake:
        args.append(f"--CourseDirectory.submitted_directory={INTAKE}")
    start = time.monotonic()
    for attempt in range(3):
        try:
            proc = run_nbgrader(course, args, unsafe=unsafe, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"student": student, "ok": False, "returncode": None, "seconds": time.monotonic() - start,
                    "log": f"nbgrader autograde did not finish within {timeout} s"}
        log = proc.stdout + proc.stderr
        if proc.returncode == 0 or "database is locked" not in log:
            break
        time.sleep(1 + attempt)
    ok = proc.returncode == 0 and (Path(course) / "autograded" / student / assignment).is_dir()
    return {"student": student, "ok": ok, "returncode": proc.returncode, "seconds": time.monotonic() - start,
            "log": log[-4000:]}


# ------------------------------------------------------------------------------------- intake --

def release_notebook(course, assignment, name):
    return Path(course) / "exercises" / assignment / f"{name}.ipynb"


def _with_note(nb, text):
    import nbformat
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"{NOTE_MARK} {text}"))
    return nb


def intake(course, assignment, student, notebook_names):
    """Check a submission; return ``(needs_intake_copy, notes)``, writing the intake copy if needed."""
    import nbformat

    src = Path(course) / "submitted" / student / assignment
    fixed, notes = {}, []
    present = {p.stem: p for p in src.glob("*.ipynb")}
    unknown = [p for stem, p in present.items() if stem not in notebook_names]
    for name in notebook_names:
        path = present.get(name)
        if path is None and len(unknown) == 1 and len(notebook_names) == 1:
            path = unknown[0]
            notes.append(f"the notebook was submitted as {path.name} instead of {name}.ipynb; it was graded as "
                         f"{name}.ipynb")
        if path is None:
            why = f"no {name}.ipynb in the submission"
        else:
            try:
                nb = nbformat.read(path, as_version=4)
                nbformat.validate(nb)
                if path.stem != name:
                    fixed[name] = _with_note(nb, notes[-1] + ".")
                continue
            except Exception as exc:  # unreadable: not JSON, not a notebook
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                why = f"{path.name} is not a valid notebook ({first[:200]})"
        notes.append(f"{why}: nothing of it could be run, so it was graded as the blank assignment (0 points)")
        blank = nbformat.read(release_notebook(course, assignment, name), as_version=4)
        fixed[name] = _with_note(blank, notes[-1] + ". Ask your instructor if you think this is wrong.")
    if not fixed:
        return False, notes
    dest = Path(course) / INTAKE / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file() and p.suffix != ".ipynb":
            shutil.copy(p, dest / p.name)
    for name, nb in fixed.items():
        nbformat.write(nb, dest / f"{name}.ipynb")
    for p in src.glob("*.ipynb"):
        if p.stem not in fixed and p.stem in notebook_names:
            shutil.copy(p, dest / p.name)
    return True, notes


# ------------------------------------------------------------------------------------- report --

def cell_messages(course, student, assignment, notebook_names):
    """Why points were lost, from the autograded notebooks: ``grade_id: Error: message``."""
    import nbformat
    msgs = []
    for name in notebook_names:
        path = Path(course) / "autograded" / student / assignment / f"{name}.ipynb"
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and cell.source.startswith(NOTE_MARK):
                continue
            if cell.cell_type == "code" and meta.get("grade") and cell.source.lstrip().startswith("# This cell (id:"):
                msgs.append(f"{meta['grade_id']}: this test cell was missing from the submission and was put back")
            if cell.cell_type == "code" and (meta.get("grade") or meta.get("solution")):
                errors = [f"{out.ename}: {' '.join(str(out.evalue).split())[:300]}".rstrip(": ")
                          for out in cell.get("outputs", []) if out.output_type == "error"]
                if errors:
                    where = meta["grade_id"] + ("" if meta.get("grade") else " (answer cell)")
                    msgs.append(f"{where}: {'; '.join(errors)}")
    return msgs


def scores(db_url, course_id, assignment, students):
    from nbgrader.api import Gradebook, MissingEntry
    result = {}
    with Gradebook(db_url, course_id) as gb:
        max_score = gb.find_assignment(assignment).max_score
        for s in students:
            try:
                sub = gb.find_submission(assignment, s)
                result[s] = (sub.score, max_score, sub.needs_manual_grade)
            except MissingEntry:
                result[s] = (None, max_score, None)
    return result


# --------------------------------------------------------------------------------------- main --

def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m coursegrade", description=__doc__.split("\n\n")[0])
    p.add_argument("assignment", nargs="?", help="assignment to grade, e.g. ps01")
    p.add_argument("--course", default=".", help="course root (holds nbgrader_config.py); default: here")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel gradings (default: cores)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (tcp://host:port); default: a LocalCluster")
    p.add_argument("--db", help="gradebook URL (e.g. postgresql://user@host/db); default: the course's")
    p.add_argument("--students", help="comma-separated student ids (default: every submission)")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell")
    p.add_argument("--notebook-timeout", type=int, help="seconds per notebook (also the CPU-time limit)")
    p.add_argument("--memory-mb", type=int, help="address-space limit of the kernel, MiB")
    p.add_argument("--file-mb", type=int, help="largest file the kernel may write, MiB")
    p.add_argument("--no-feedback", action="store_true", help="skip generate_feedback and export")
    p.add_argument("--unsafe", action="store_true", help="run student code WITHOUT the sandbox (dangerous)")
    p.add_argument("--install-kernel", action="store_true", help="install the rnn-sandbox kernel spec and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from . import sandbox
    if args.install_kernel:
        print("installed", sandbox.install_kernel_spec())
        return 0
    if not args.assignment:
        print("usage: python -m coursegrade ASSIGNMENT [--workers N] [--scheduler ADDR] [--db URL]", file=sys.stderr)
        return 2
    course = os.path.abspath(args.course)
    if not os.path.exists(os.path.join(course, "nbgrader_config.py")):
        print(f"coursegrade: {course} is not a course root (no nbgrader_config.py)", file=sys.stderr)
        return 2
    if args.unsafe:
        bar = "!" * 78
        print(f"{bar}\nWARNING: --unsafe: student code will run WITHOUT the sandbox, with YOUR rights:\n"
              f"it can read and change every file you can, reach the network, and fork-bomb this machine.\n{bar}",
              file=sys.stderr)
    else:
        try:
            sandbox.preflight()
        except sandbox.SandboxUnavailable as exc:
            print(f"coursegrade: refusing to grade: the sandbox is unavailable: {exc}", file=sys.stderr)
            return 3
    assignment = args.assignment
    extra = []
    if args.db:
        extra.append(f"--CourseDirectory.db_url={args.db}")
    if args.cell_timeout:
        extra.append(f"--Execute.timeout={args.cell_timeout}")
    if args.notebook_timeout:
        extra.append(f"--SandboxedExecute.notebook_timeout={args.notebook_timeout}")
    if args.memory_mb:
        extra.append(f"--SandboxedExecute.memory_bytes={args.memory_mb << 20}")
    if args.file_mb:
        extra.append(f"--SandboxedExecute.file_bytes={args.file_mb << 20}")
    db_url, course_id = course_settings(course, args.db)

    from nbgrader.api import Gradebook, MissingEntry
    t_start = time.monotonic()
    with Gradebook(db_url, course_id) as gb:
        try:
            notebook_names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            notebook_names = []
    if not notebook_names:
        print(f"coursegrade: {assignment} is not in the gradebook yet: nbgrader generate_assignment {assignment}")
        proc = run_nbgrader(course, ["generate_assignment", assignment, "--force", *extra])
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return 1
        with Gradebook(db_url, course_id) as gb:
            notebook_names = [nb.name for nb in gb.find_assignment(assignment).notebooks]

    submitted = Path(course) / "submitted"
    students = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())
    if args.students:
        wanted = set(args.students.split(","))
        students = [s for s in students if s in wanted]
    if not students:
        print(f"coursegrade: no submissions of {assignment} under {submitted}", file=sys.stderr)
        return 1

    notes, use_intake = {}, {}
    for s in students:
        use_intake[s], notes[s] = intake(course, assignment, s, notebook_names)
    with Gradebook(db_url, course_id) as gb:  # create students here, one writer at a time, not in the parallel tasks
        for s in students:
            gb.update_or_create_student(s)

    results = run_tasks(course, assignment, students, extra, args, use_intake)

    # A submission nbgrader still could not grade gets the blank release, with the reason, and a 0.
    for s, r in results.items():
        if not r["ok"]:
            reason = (r["log"].strip().splitlines() or ["nbgrader failed"])[-1][:300]
            dest = Path(course) / INTAKE / s / assignment
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            import nbformat
            for name in notebook_names:
                nb = nbformat.read(release_notebook(course, assignment, name), as_version=4)
                note = (f"this submission could not be graded ({reason}); it was recorded as the blank "
                        "assignment (0 points). Ask your instructor.")
                nbformat.write(_with_note(nb, note), dest / f"{name}.ipynb")
            notes[s].append(f"nbgrader could not grade the submission ({reason}): recorded as 0")
            retry = grade_one(course, assignment, s, extra, args.unsafe, use_intake=True)
            retry["seconds"] += r["seconds"]
            retry["failed_first"] = True
            results[s] = retry

    if not args.no_feedback:
        for step in (["generate_feedback", assignment, "--force", *extra], ["export", *extra]):
            proc = run_nbgrader(course, step)
            if proc.returncode != 0:
                print(f"coursegrade: nbgrader {step[0]} failed:\n{proc.stdout}{proc.stderr}", file=sys.stderr)

    table = scores(db_url, course_id, assignment, students)
    report = Path(course) / f"grading_report_{assignment}.csv"
    with open(report, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "assignment", "score", "max_score", "status", "seconds", "messages"])
        for s in students:
            score, max_score, _ = table[s]
            r = results[s]
            status = ("failed" if not r["ok"] else "recorded as 0" if r.get("failed_first") else
                      "intake" if use_intake[s] else "graded")
            msgs = notes[s] + cell_messages(course, s, assignment, notebook_names)
            w.writerow([s, assignment, "" if score is None else f"{score:g}", f"{max_score:g}", status,
                        f"{r['seconds']:.2f}", " | ".join(msgs)])
    wall = time.monotonic() - t_start
    times = [r["seconds"] for r in results.values()]
    graded = sum(r["ok"] for r in results.values())
    failed = len(results) - graded
    summary = {
        "assignment": assignment, "submissions": len(students), "graded": graded, "failed": failed,
        "recorded_as_zero_after_failure": sum(bool(r.get("failed_first")) for r in results.values()),
        "intake_fixed": sum(use_intake.values()),
        "seconds_per_submission_mean": statistics.mean(times), "seconds_per_submission_median": statistics.median(times),
        "seconds_per_submission_max": max(times), "wall_seconds": wall, "workers": args.workers,
        "scheduler": args.scheduler or "LocalCluster", "report": str(report),
    }
    print(f"\ngraded {graded} of {len(students)} submissions of {assignment} ({failed} failed; "
          f"{summary['intake_fixed']} fixed at intake) in {wall:.1f} s with "
          f"{'scheduler ' + args.scheduler if args.scheduler else f'{args.workers} local workers'}")
    print(f"time per submission: mean {summary['seconds_per_submission_mean']:.1f} s, median "
          f"{summary['seconds_per_submission_median']:.1f} s, max {summary['seconds_per_submission_max']:.1f} s")
    print(f"report: {report}" + ("" if args.no_feedback else f"; grades: {Path(course) / 'grades.csv'}; "
                                 f"feedback: {Path(course) / 'feedback'}"))
    print("COURSEGRADE_SUMMARY " + json.dumps(summary))
    return 0 if failed == 0 else 1


def run_tasks(course, assignment, students, extra, args, use_intake):
    """One Dask task per submission, with a progress bar."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=False,
                               dashboard_address=None)
        client = Client(cluster)
    results = {}
    try:
        task_timeout = 2 * (args.notebook_timeout or 300) + 600  # a stuck nbgrader must not stop the class
        futures = {client.submit(grade_one, course, assignment, s, extra, args.unsafe, use_intake[s], task_timeout,
                                 key=f"grade-{assignment}-{s}", pure=False): s for s in students}
        with tqdm(total=len(futures), desc=f"grading {assignment}", unit="submission", disable=args.quiet) as bar:
            for fut in as_completed(list(futures)):
                try:
                    r = fut.result()
                except Exception as exc:  # the worker itself failed (lost, killed): recorded, not fatal
                    r = {"student": futures[fut], "ok": False, "returncode": None, "seconds": 0.0,
                         "log": f"the grading task failed: {type(exc).__name__}: {exc}"}
                results[r["student"]] = r
                bar.set_postfix_str(f"{r['student']} {'ok' if r['ok'] else 'FAILED'}")
                bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results
