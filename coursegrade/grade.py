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

LOG_TAIL = 64 << 10   # bytes of nbgrader's output kept per command (its logs quote student-controlled text)


def nbgrader_env(unsafe=False):
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if unsafe:
        env["COURSEGRADE_UNSAFE"] = "1"
    return env


def run_nbgrader(course, args, unsafe=False, timeout=3600):
    """Run the nbgrader CLI; its output goes to a file of which only the last :data:`LOG_TAIL` bytes
    are read back (``stdout`` holds that tail, ``stderr`` is empty)."""
    import tempfile
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    with tempfile.TemporaryFile() as out:
        proc = subprocess.run([exe, *args], cwd=course, env=nbgrader_env(unsafe), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        out.seek(max(0, out.seek(0, os.SEEK_END) - LOG_TAIL))
        tail = out.read().decode("utf-8", "replace")
    return subprocess.CompletedProcess(proc.args, proc.returncode, tail, "")


def course_settings(course, db=None):
    """``(gradebook URL, course id)`` as the course's nbgrader_config.py sets them (``db`` overrides)."""
    cfg = course_config(course)
    url = db or cfg.CourseDirectory.get("db_url")
    if not (isinstance(url, str) and url):
        url = "sqlite:///" + os.path.join(course, "gradebook.db")
    course_id = cfg.CourseDirectory.get("course_id")
    return url, course_id if isinstance(course_id, str) else ""


def course_config(course, overrides=None):
    """The course's nbgrader configuration (its ``nbgrader_config.py``) with ``overrides``
    (``{"Section": {"trait": value}}``) on top."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    cfg.merge(Config(overrides or {}))
    return cfg


class _TailHandler:
    """A logging handler that keeps the last :data:`LOG_TAIL` characters."""

    def __new__(cls):
        import logging

        class Handler(logging.Handler):
            def __init__(self):
                super().__init__()
                self.parts, self.size = [], 0

            def emit(self, record):
                try:
                    text = self.format(record)[:LOG_TAIL] + "\n"
                except Exception:
                    return
                self.parts.append(text)
                self.size += len(text)
                while self.size > LOG_TAIL and len(self.parts) > 1:
                    self.size -= len(self.parts.pop(0))

            def text(self):
                return "".join(self.parts)

        handler = Handler()
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        return handler


_CONFIGS = {}


def autograde_in_process(course, assignment, student, overrides):
    """``nbgrader autograde ASSIGNMENT --student STUDENT --force --create`` in this process (a worker
    keeps nbgrader imported and the course's configuration loaded); ``(ok, log tail)``."""
    import json as _json
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from .guard import guard_autograde

    guard_autograde()
    key = (str(course), _json.dumps(overrides, sort_keys=True))
    if key not in _CONFIGS:
        _CONFIGS[key] = course_config(course, overrides)
    cfg = _CONFIGS[key]
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    app = Autograde(coursedir=coursedir, config=cfg)
    app.force, app.create_student = True, True
    handler = _TailHandler()
    app.log.addHandler(handler)
    try:
        app.start()
        ok = True
    except SystemExit as exc:  # the executor's refusal (no sandbox)
        handler.parts.append(f"{exc}\n")
        ok = False
    except Exception as exc:
        import traceback
        handler.parts.append(traceback.format_exc()[-4000:])
        ok = False
        del exc
    finally:
        app.log.removeHandler(handler)
    return ok, handler.text()


def grade_one(course, assignment, student, overrides, unsafe=False, use_intake=False, timeout=3600):
    """One task: autograde one student's submission (nbgrader in this worker's process)."""
    if unsafe:
        os.environ["COURSEGRADE_UNSAFE"] = "1"
    overrides = json.loads(json.dumps(overrides))
    if use_intake:
        overrides.setdefault("CourseDirectory", {})["submitted_directory"] = INTAKE
    start = time.monotonic()
    for attempt in range(3):
        ok, log = autograde_in_process(course, assignment, student, overrides)
        if ok or "database is locked" not in log:
            break
        time.sleep(1 + attempt)
    ok = ok and (Path(course) / "autograded" / student / assignment).is_dir()
    return {"student": student, "ok": ok, "returncode": 0 if ok else 1, "seconds": time.monotonic() - start,
            "log": log[-4000:]}


# ------------------------------------------------------------------------------------- intake --

def release_notebook(course, assignment, name):
    return Path(course) / "exercises" / assignment / f"{name}.ipynb"


def markdown_escape(text):
    """``text`` (file names, error messages: student-controlled) as literal text in a markdown cell:
    HTML-escaped, and markdown's punctuation backslash-escaped (no links, no images, no emphasis)."""
    import html
    import re
    return re.sub(r"([\\`*_{}\[\]()#+!|~>-])", r"\\\1", html.escape(str(text), quote=False))


def _with_note(nb, text):
    import nbformat
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"{NOTE_MARK} {markdown_escape(text)}"))
    return nb


def _blank_intake(course, assignment, student, notebook_names, note):
    import nbformat
    dest = Path(course) / INTAKE / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in notebook_names:
        nb = nbformat.read(release_notebook(course, assignment, name), as_version=4)
        nbformat.write(_with_note(nb, note), dest / f"{name}.ipynb")


def intake(course, assignment, student, notebook_names):
    """Check a submission; return ``(needs_intake_copy, notes)``, writing the intake copy if needed."""
    import nbformat
    from .guard import UnsafeSubmission, check_tree

    src = Path(course) / "submitted" / student / assignment
    try:
        check_tree(src)
    except UnsafeSubmission as exc:
        note = (f"the submission was refused: {exc}; nothing of it was read or run, so it was graded as the blank "
                "assignment (0 points)")
        _blank_intake(course, assignment, student, notebook_names, note + ". Ask your instructor.")
        return True, [note]
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
    p.add_argument("--kernel-memory-mb", type=int,
                   help="memory of the whole kernel, all its processes together (cgroup), MiB; default: --memory-mb")
    p.add_argument("--file-mb", type=int, help="largest file the kernel may write, MiB")
    p.add_argument("--no-feedback", action="store_true", help="skip generate_feedback and export")
    p.add_argument("--regrade", action="store_true",
                   help="grade every submission again (default: skip those an earlier run graded, unchanged since)")
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
    extra, overrides = [], {}
    if args.db:
        extra.append(f"--CourseDirectory.db_url={args.db}")
        overrides.setdefault("CourseDirectory", {})["db_url"] = args.db
    if args.cell_timeout:
        overrides.setdefault("Execute", {})["timeout"] = args.cell_timeout
    for opt, trait, scale in (("notebook_timeout", "notebook_timeout", 1), ("memory_mb", "memory_bytes", 1 << 20),
                              ("kernel_memory_mb", "kernel_memory_bytes", 1 << 20),
                              ("file_mb", "file_bytes", 1 << 20)):
        if getattr(args, opt):
            overrides.setdefault("SandboxedExecute", {})[trait] = getattr(args, opt) * scale
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
    students = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}")
                      if p.is_dir() or p.is_symlink() or p.parent.is_symlink())
    if args.students:
        wanted = set(args.students.split(","))
        students = [s for s in students if s in wanted]
    if not students:
        print(f"coursegrade: no submissions of {assignment} under {submitted}", file=sys.stderr)
        return 1

    # Resuming: a submission graded by an earlier run (and unchanged since) is not graded again.
    digests = {s: submission_digest(course, assignment, s) for s in students}
    done = {} if args.regrade else {s: d for s, d in ((s, read_done(course, assignment, s)) for s in students)
                                     if d is not None and d.get("digest") == digests[s]
                                     and graded_output_exists(course, assignment, s, notebook_names)}
    with Gradebook(db_url, course_id) as gb:
        for s in list(done):
            try:
                gb.find_submission(assignment, s)
            except MissingEntry:
                del done[s]
    todo = [s for s in students if s not in done]
    if done:
        print(f"coursegrade: {len(done)} submission(s) already graded by an earlier run and unchanged since, "
              f"skipped (--regrade grades them again): {', '.join(sorted(done)[:20])}"
              f"{' ...' if len(done) > 20 else ''}")

    notes, use_intake = {}, {}
    for s in students:
        use_intake[s], notes[s] = intake(course, assignment, s, notebook_names) if s in todo else \
            (done[s].get("intake", False), list(done[s].get("notes", [])))
    with Gradebook(db_url, course_id) as gb:  # create students here, one writer at a time, not in the parallel tasks
        for s in todo:
            gb.update_or_create_student(s)

    def finished(r):  # called as each task ends: a killed run keeps what was graded
        s = r["student"]
        if r["ok"]:
            write_done(course, assignment, s, {"digest": digests[s], "intake": use_intake[s], "notes": notes[s],
                                              "seconds": r["seconds"], "status": "graded"})

    results = run_tasks(course, assignment, todo, overrides, args, use_intake, finished) if todo else {}

    # A submission nbgrader still could not grade gets the blank release, with the reason, and a 0.
    for s, r in results.items():
        if not r["ok"]:
            reason = (r["log"].strip().splitlines() or ["nbgrader failed"])[-1][:300]
            _blank_intake(course, assignment, s, notebook_names,
                          f"this submission could not be graded ({reason}); it was recorded as the blank "
                          "assignment (0 points). Ask your instructor.")
            notes[s].append(f"nbgrader could not grade the submission ({reason}): recorded as 0")
            retry = grade_one(course, assignment, s, overrides, args.unsafe, use_intake=True)
            retry["seconds"] += r["seconds"]
            retry["failed_first"] = True
            results[s] = retry
            if retry["ok"]:
                write_done(course, assignment, s, {"digest": digests[s], "intake": True, "notes": notes[s],
                                                  "seconds": retry["seconds"], "status": "recorded as 0"})
    for s in done:
        results[s] = {"student": s, "ok": True, "seconds": 0.0, "skipped": True, "log": "",
                      "failed_first": done[s].get("status") == "recorded as 0"}

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
            if r.get("skipped"):
                status += " (earlier run)"
            msgs = notes[s] + cell_messages(course, s, assignment, notebook_names)
            w.writerow([s, assignment, "" if score is None else f"{score:g}", f"{max_score:g}", status,
                        f"{r['seconds']:.2f}", " | ".join(msgs)])
    wall = time.monotonic() - t_start
    times = [r["seconds"] for r in results.values() if not r.get("skipped")] or [0.0]
    graded = sum(r["ok"] for r in results.values())
    failed = len(results) - graded
    summary = {
        "assignment": assignment, "submissions": len(students), "graded": graded, "failed": failed,
        "skipped_graded_earlier": len(done), "graded_now": len(todo),
        "recorded_as_zero_after_failure": sum(bool(r.get("failed_first")) for r in results.values()),
        "intake_fixed": sum(use_intake.values()),
        "seconds_per_submission_mean": statistics.mean(times), "seconds_per_submission_median": statistics.median(times),
        "seconds_per_submission_max": max(times), "wall_seconds": wall, "workers": args.workers,
        "scheduler": args.scheduler or "LocalCluster", "report": str(report),
    }
    print(f"\ngraded {graded} of {len(students)} submissions of {assignment} ({failed} failed; "
          f"{summary['intake_fixed']} fixed at intake; {len(done)} graded by an earlier run, skipped) in {wall:.1f} s with "
          f"{'scheduler ' + args.scheduler if args.scheduler else f'{args.workers} local workers'}")
    print(f"time per submission: mean {summary['seconds_per_submission_mean']:.1f} s, median "
          f"{summary['seconds_per_submission_median']:.1f} s, max {summary['seconds_per_submission_max']:.1f} s")
    print(f"report: {report}" + ("" if args.no_feedback else f"; grades: {Path(course) / 'grades.csv'}; "
                                 f"feedback: {Path(course) / 'feedback'}"))
    print("COURSEGRADE_SUMMARY " + json.dumps(summary))
    return 0 if failed == 0 else 1


def run_tasks(course, assignment, students, overrides, args, use_intake, finished=None):
    """One Dask task per submission, with a progress bar; ``finished(result)`` is called as each ends.
    Local workers are processes (one thread each) that keep nbgrader imported between submissions."""
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    results = {}
    try:
        futures = {client.submit(grade_one, course, assignment, s, overrides, args.unsafe, use_intake[s],
                                 key=f"grade-{assignment}-{s}", pure=False): s for s in students}
        with tqdm(total=len(futures), desc=f"grading {assignment}", unit="submission", disable=args.quiet) as bar:
            for fut in as_completed(list(futures)):
                try:
                    r = fut.result()
                except Exception as exc:  # the worker itself failed (lost, killed): recorded, not fatal
                    r = {"student": futures[fut], "ok": False, "returncode": None, "seconds": 0.0,
                         "log": f"the grading task failed: {type(exc).__name__}: {str(exc)[:300]}"}
                results[r["student"]] = r
                if finished is not None:
                    finished(r)
                fut.release()
                bar.set_postfix_str(f"{r['student']} {'ok' if r['ok'] else 'FAILED'}")
                bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


# ----------------------------------------------------------------------------------- resuming --

def _done_path(course, assignment, student):
    return Path(course) / ".coursegrade" / "done" / assignment / f"{student}.json"


def read_done(course, assignment, student):
    try:
        data = json.loads(_done_path(course, assignment, student).read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_done(course, assignment, student, record):
    """Record (atomically) that a submission was graded: a re-run skips it while it is unchanged."""
    path = _done_path(course, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def submission_digest(course, assignment, student):
    """sha256 over the submission folder's names, kinds and (regular files only) contents."""
    import hashlib
    import stat as st_
    h = hashlib.sha256()
    root = Path(course) / "submitted" / student / assignment
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            p = os.path.join(dirpath, name)
            info = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)}\0{info.st_mode}\0{info.st_size}\0".encode())
            if st_.S_ISREG(info.st_mode) and info.st_size <= 64 << 20:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
    return h.hexdigest()


def graded_output_exists(course, assignment, student, notebook_names):
    folder = Path(course) / "autograded" / student / assignment
    return all((folder / f"{n}.ipynb").is_file() for n in notebook_names)
