"""A whole class of broken and hostile ps01 submissions (tests/corpus/ps01_corpus.py), graded in ONE
run of ``python -m coursegrade`` through a real Dask scheduler with two workers on loopback, with
the gradebook on a private PostgreSQL server (initdb/pg_ctl in a temp folder, as a non-root user).

Checked: every submission's score and message (report and feedback page), no grade lost or
duplicated, the gradebook's assignment tables unchanged, no file outside each submission's scratch
folder changed, and the attacks' own reports (no network, nothing found, nothing written)."""
import csv
import hashlib
import html
import json
import os
import pwd
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
import ps01_corpus as corpus  # noqa: E402
from nbgrader_helpers import ROOT, course_copy, nbgrader, no_cgroup_env  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None and not os.path.exists("/usr/bin/bwrap"),
                                reason="bubblewrap is not installed (make setup installs it)")
PY = sys.executable
STATIC_TABLES = ("assignment", "notebook", "base_cells", "grade_cells", "solution_cells", "source_cell", "task_cells")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin():
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "pg_ctl").exists():
            return root
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    pytest.skip("PostgreSQL is not installed (make setup installs it)")


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL server on a loopback port, run as a non-root user; yields its URL."""
    bindir = pg_bin()
    home = Path(tempfile.mkdtemp(prefix="coursegrade-pg-"))
    data, port = home / "data", free_port()
    as_user = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres (or nobody) user
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pw = pwd.getpwnam("nobody")
        os.chown(home, pw.pw_uid, pw.pw_gid)
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]

    def run(*cmd):
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120, cwd=home)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", "start")
    try:
        import psycopg
        conn = psycopg.connect(host="127.0.0.1", port=port, user="grader", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE gradebook")
        conn.close()
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook", port
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real Dask scheduler and two single-threaded workers on loopback; yields the address."""
    work = tmp_path_factory.mktemp("dask")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), DASK_DISTRIBUTED__WORKER__DAEMON="False", **no_cgroup_env())
    procs = [subprocess.Popen([PY, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                              stderr=open(work / "scheduler.log", "w"))]
    address = f"tcp://127.0.0.1:{port}"
    for i in range(2):
        procs.append(subprocess.Popen([PY, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard", "--local-directory", str(work / f"w{i}"),
                                       "--name", f"worker-{i}"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                                      stderr=open(work / f"worker{i}.log", "w")))
    try:
        from dask.distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            worker_pids = list(client.run(os.getpid).values())
        yield {"address": address, "worker_pids": worker_pids}
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def table_digest(url):
    """Row count and an order-independent checksum of each nbgrader table."""
    import psycopg
    conn = psycopg.connect(url)
    cur = conn.cursor()
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    digest = {}
    for (table,) in cur.fetchall():
        cur.execute(f'SELECT * FROM "{table}"')
        rows = sorted(json.dumps(r, default=str) for r in cur.fetchall())
        digest[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    conn.close()
    return digest


def tree_digest(course):
    """sha256 of every course file outside what grading writes (autograded/, feedback/, results)."""
    skip = ("autograded", "feedback", ".coursegrade")
    out = {}
    for p in sorted(course.rglob("*")):
        rel = p.relative_to(course)
        if p.is_file() and rel.parts[0] not in skip and not rel.name.startswith(("grades.csv", "grading_report")):
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory, postgres, dask_cluster):
    url, pg_port = postgres
    tmp = tmp_path_factory.mktemp("class")
    course = course_copy(tmp)
    canary = Path(tempfile.mkdtemp(prefix="coursegrade-canary-")) / "canary.txt"
    canary.write_text("untouched\n")
    cases = corpus.cases(network_port=pg_port, canary=str(canary))
    if os.environ.get("CORPUS_ONLY"):  # debugging: grade only some of the class
        cases = {k: v for k, v in cases.items() if k in os.environ["CORPUS_ONLY"].split(",")}
    for student, case in cases.items():
        case.build(course, student)
    nbgrader(course, "generate_assignment", corpus.PS, "--force", f"--CourseDirectory.db_url={url}")
    before_db, before_tree = table_digest(url), tree_digest(course)
    start = time.monotonic()
    command = [PY, "-m", "coursegrade", corpus.PS, "--scheduler", dask_cluster["address"], "--db", url,
               "--workers", "2", "--cell-timeout", str(corpus.CELL_TIMEOUT), "--notebook-timeout",
               str(corpus.NOTEBOOK_TIMEOUT), "--memory-mb", str(corpus.MEMORY_MB), "--file-mb", str(corpus.FILE_MB),
               "--kernel-memory-mb", str(corpus.KERNEL_MEMORY_MB),
               "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}",
               **no_cgroup_env())
    proc = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=1500, env=env)
    wall = time.monotonic() - start
    # the grader's peak memory: the coursegrade process (our only child so far) and the Dask workers
    peak = {"coursegrade": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10}
    for pid in dask_cluster["worker_pids"]:
        with open(f"/proc/{pid}/status") as f:
            peak[f"worker {pid}"] = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmHWM:"))
    report_file = course / f"grading_report_{corpus.PS}.csv"
    assert report_file.exists(), f"coursegrade wrote no report:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    with open(course / f"grading_report_{corpus.PS}.csv") as f:
        report = {row["student_id"]: row for row in csv.DictReader(f)}
    # resuming: the same command again grades nothing and says why
    rerun = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=900, env=env)
    with open(course / f"grading_report_{corpus.PS}.csv") as f:
        rerun_report = {row["student_id"]: row for row in csv.DictReader(f)}
    yield dict(course=course, url=url, proc=proc, wall=wall, report=report, cases=cases, canary=canary, peak=peak,
               rerun=rerun, rerun_report=rerun_report,
               before_db=before_db, after_db=table_digest(url), before_tree=before_tree, after_tree=tree_digest(course))
    shutil.rmtree(canary.parent, ignore_errors=True)


CASE_NAMES = sorted(k for k in corpus.cases() if not os.environ.get("CORPUS_ONLY")
                    or k in os.environ["CORPUS_ONLY"].split(","))


def test_the_run_grades_everyone(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    n = len(graded["cases"])
    assert f"graded {n} of {n} submissions" in proc.stdout
    summary = json.loads(proc.stdout.split("COURSEGRADE_SUMMARY ", 1)[1].splitlines()[0])
    assert summary["failed"] == 0 and summary["scheduler"].startswith("tcp://127.0.0.1")
    assert len(corpus.cases()) >= 40


@pytest.mark.parametrize("student", CASE_NAMES)
def test_score_and_message(graded, student):
    case, row = graded["cases"][student], graded["report"][student]
    score = float(row["score"])
    if case.score is not None:
        assert score == case.score, f"{student}: {row['messages']}"
    for text in case.messages:
        assert text in row["messages"], f"{student}: {text!r} not in {row['messages']!r}"
    page = (graded["course"] / "feedback" / student / corpus.PS / f"{corpus.PS}.html").read_text()
    shown = html.unescape(page)
    for text in case.messages:
        if "(answer cell)" not in text:
            assert text in shown, f"{student}'s feedback does not say {text!r}"
    html_page = page
    for leak in ("BEGIN HIDDEN", "from checks import", "checks.rnn_step"):
        assert leak not in html_page, f"{student}'s feedback shows hidden tests"


def test_attacks_saw_and_changed_nothing(graded):
    course = graded["course"]
    text = {s: corpus.notebook_text(course, s) for s in ("snoop", "write-gradebook", "network", "output-flood")}
    assert "SNOOP-NOTHING" in text["snoop"] and "SNOOP-FOUND" not in text["snoop"]
    assert "HIDDEN-NOT-SEEN" in text["snoop"]
    assert "WROTE-NOTHING" in text["write-gradebook"]
    assert "NETWORK-BLOCKED" in text["network"] and "NETWORK-REACHED" not in text["network"]
    assert "output cut" in text["output-flood"] or "CellTimeoutError" in text["output-flood"]
    for student in graded["cases"]:  # every byte from the kernel is bounded: no notebook grew past a few MiB
        path = course / "autograded" / student / corpus.PS / f"{corpus.PS}.ipynb"
        assert path.stat().st_size < 4 << 20, (student, path.stat().st_size)
    assert graded["canary"].read_text() == "untouched\n"
    # finding 1: nothing a student planted was imported by the launcher (it would have written here)
    assert sorted(p.name for p in graded["canary"].parent.iterdir()) == ["canary.txt"]
    # no file outside the submissions' scratch folders changed, none appeared
    assert graded["after_tree"] == graded["before_tree"]
    # finding 2: the folder nbgrader reads back holds the notebook nbgrader wrote and copies of the
    # submission's own plain files; nothing the kernel made (links, FIFOs, huge.bin) is there
    extra = {"missing": {"README.txt"}, "extra-file-modules": {"coursegrade", "sitecustomize.py"}}
    for student in graded["cases"]:
        folder = course / "autograded" / student / corpus.PS
        names = {p.name for p in folder.iterdir()}
        assert names == {f"{corpus.PS}.ipynb"} | extra.get(student, set()), (student, names)
        assert all(not p.is_symlink() and (p.is_file() or p.is_dir()) for p in folder.rglob("*")), student
    assert "LEFT" in corpus.notebook_text(course, "leave-links")
    assert "RAW-FDS" in corpus.notebook_text(course, "raw-fd-flood")
    from coursegrade import sandbox
    if not sandbox.Cgroup.unavailable():  # the kernel's cgroup stopped children the rlimits allowed
        import re
        killed = re.search(r"CHILDREN-KILLED (\d+)", corpus.notebook_text(course, "many-process-memory"))
        assert killed and int(killed.group(1)) >= 1


def test_grader_memory_stays_bounded(graded):
    """Finding 3: under the memory attacks (output floods, a 300 MB raw stdout/stderr flood, reply bombs,
    display updates, widget state) the grader's processes stay small."""
    for who, rss in graded["peak"].items():
        assert rss < 1536 << 20, f"{who} peaked at {rss >> 20} MiB"
    print("peak RSS (MiB):", {k: v >> 20 for k, v in graded["peak"].items()})


def test_feedback_runs_no_student_script(graded):
    """Finding 6: markdown, HTML outputs and a file name a student controls are sanitised/escaped."""
    from html.parser import HTMLParser

    class Finder(HTMLParser):
        def __init__(self):
            super().__init__()
            self.bad, self.in_script = [], False

        def handle_starttag(self, tag, attrs):
            self.in_script = tag == "script"
            for name, value in attrs:
                if name.startswith("on") or (value or "").strip().lower().startswith(("javascript:", "data:text")):
                    self.bad.append((tag, name, value))
            if tag in ("iframe", "object", "embed"):
                self.bad.append((tag,))

        def handle_data(self, data):
            if self.in_script and "alert(" in data:
                self.bad.append(("script", data[:80]))

        def handle_endtag(self, tag):
            self.in_script = False

    page = (graded["course"] / "feedback" / "xss" / corpus.PS / f"{corpus.PS}.html").read_text()
    assert "XSS-MD" in page and "XSS-HTML" in page
    finder = Finder()
    finder.feed(page)
    assert finder.bad == []


def test_a_second_run_resumes(graded):
    """Resumable: running the same command again grades only what is missing (here: nothing) and says
    what it skipped; the scores stay."""
    rerun, n = graded["rerun"], len(graded["cases"])
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    summary = json.loads(rerun.stdout.split("COURSEGRADE_SUMMARY ", 1)[1].splitlines()[0])
    assert summary["skipped_graded_earlier"] == n and summary["graded_now"] == 0
    assert "graded by an earlier run" in rerun.stdout
    for s, row in graded["report"].items():
        assert graded["rerun_report"][s]["score"] == row["score"], s


def test_gradebook_intact_no_grade_lost_or_duplicated(graded):
    import psycopg
    before, after = graded["before_db"], graded["after_db"]
    for table in STATIC_TABLES:
        if table in before:
            assert after[table] == before[table], f"gradebook table {table} changed while grading"
    conn = psycopg.connect(graded["url"])
    cur = conn.cursor()
    n = len(graded["cases"])
    cur.execute("SELECT count(*) FROM submitted_assignment")
    assert cur.fetchone()[0] == n
    cur.execute("SELECT count(*), count(DISTINCT (notebook_id, cell_id)) FROM grade")
    rows, distinct = cur.fetchone()
    cur.execute("SELECT count(*) FROM grade_cells")
    cells = cur.fetchone()[0]
    assert rows == distinct == n * cells
    cur.execute("SELECT count(*) FROM grade WHERE manual_score IS NOT NULL")
    assert cur.fetchone()[0] == 0, "a submission wrote grades"
    conn.close()
    with open(graded["course"] / "grades.csv") as f:
        exported = [row for row in csv.DictReader(f) if row["assignment"] == corpus.PS]
    assert sorted(r["student_id"] for r in exported) == sorted(graded["cases"])
    for r in exported:
        assert float(r["score"]) == float(graded["report"][r["student_id"]]["score"])


def test_a_killed_run_resumes(tmp_path):
    """Resumable: a grading run killed halfway (the grader and its workers, SIGKILL) loses nothing;
    the same command again grades only the submissions that were not finished, and says so."""
    import signal
    course = course_copy(tmp_path)
    for student in ("a", "b", "c"):
        corpus.cases()["correct"].build(course, student)
    nbgrader(course, "generate_assignment", corpus.PS, "--force")
    command = [PY, "-m", "coursegrade", corpus.PS, "--workers", "1", "--no-feedback", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}",
               **no_cgroup_env())
    done = course / ".coursegrade" / "done" / corpus.PS
    proc = subprocess.Popen(command, cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not (done.is_dir() and any(done.glob("*.json"))):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = sorted(p.stem for p in done.glob("*.json"))
    assert 1 <= len(first) < 3, first
    rerun = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    summary = json.loads(rerun.stdout.split("COURSEGRADE_SUMMARY ", 1)[1].splitlines()[0])
    assert summary["skipped_graded_earlier"] == len(first) and summary["graded_now"] == 3 - len(first)
    assert summary["graded"] == 3 and summary["failed"] == 0
    with open(course / f"grading_report_{corpus.PS}.csv") as f:
        assert {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)} == \
            {s: corpus.FULL for s in ("a", "b", "c")}
