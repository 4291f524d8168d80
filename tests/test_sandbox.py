"""The sandbox itself (coursegrade.sandbox): what a kernel sees and may do, the limits, and that
grading refuses to run student code when the sandbox is unavailable."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nbgrader_helpers import ROOT, course_copy, make_submission, nbgrader, no_cgroup_env

from coursegrade import execute, sandbox

pytestmark = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not installed (make setup)")


def run_in_sandbox(code, limits=None, timeout=120, cgroup=False):
    """Run Python ``code`` as the kernel would run: same binds, namespaces, uid, student library and
    limits (and, with ``cgroup``, the kernel's cgroup)."""
    limits = limits or sandbox.Limits()
    scratch = Path(tempfile.mkdtemp(prefix="cg-scratch-"))
    private = Path(tempfile.mkdtemp(prefix="cg-"))
    uid, lock = sandbox.take_uid() if os.geteuid() == 0 else (os.geteuid(), None)
    group = sandbox.Cgroup(f"coursegrade-test-{os.getpid()}", limits.cgroup_memory(), limits.processes) if cgroup else None
    try:
        if os.geteuid() == 0:
            os.chown(scratch, uid, uid)
        cmd = sandbox.sandbox_command([sys.executable, "-c", code], str(scratch), str(private), uid, limits,
                                      execute.student_library("ps01"))
        proc = subprocess.run(cmd, env=sandbox.sandbox_env(uid, limits), capture_output=True, text=True,
                              timeout=timeout, preexec_fn=sandbox.set_limits(limits, limits.processes, group))
        # no killing here: only waiting (the pid namespace's SIGKILLs are delivered asynchronously)
        left = sandbox.wait_until_gone(uid, timeout=10) if os.geteuid() == 0 else []
        if group is not None:
            proc.oom_killed = group.oom_killed()
        return proc, left
    finally:
        if group is not None:
            group.remove()
        if lock is not None:
            os.close(lock)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)


VIEW = f'''
import json, os, resource, socket
report = {{"uid": os.getuid(), "env_parent": "JPY_PARENT_PID" in os.environ}}
report["course_files"] = sorted(os.listdir({str(ROOT)!r}))
report["solutions_visible"] = os.path.exists({str(ROOT / "solutions")!r})
report["gradebook_visible"] = os.path.exists({str(ROOT / "gradebook.db")!r})
try:
    open({str(ROOT / "rnnlib" / "hacked.py")!r}, "w")
    report["rnnlib_writable"] = True
except OSError:
    report["rnnlib_writable"] = False
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    report["network"] = True
except OSError:
    report["network"] = False
report["interfaces"] = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
report["limits"] = {{name: resource.getrlimit(getattr(resource, name))[0]
                    for name in ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE")}}
import numpy, rnnlib
report["imports"] = True
report["rnnlib_from"] = rnnlib.__file__
report["cwd"] = os.getcwd()
hidden = []
for name in ("checks", "coursegrade", "checks.grading"):
    try:
        __import__(name)
        hidden.append(name)
    except ImportError:
        pass
report["grading_side_importable"] = hidden
with open("scratch.txt", "w") as f:
    f.write("ok")
print(json.dumps(report))
'''


def test_what_a_kernel_sees_and_may_do():
    limits = sandbox.Limits(cpu_seconds=30, memory_bytes=2 << 30, processes=40, file_bytes=8 << 20)
    proc, _ = run_in_sandbox(VIEW, limits)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["uid"] != 0 and not report["env_parent"]
    assert set(report["course_files"]) <= {".venv"}  # the venv is bound; the course root is not
    assert report["rnnlib_from"].startswith(sandbox.LIBDIR + "/") and report["cwd"] == sandbox.WORKDIR
    assert report["grading_side_importable"] == []
    assert not report["solutions_visible"] and not report["gradebook_visible"]
    assert not report["rnnlib_writable"] and not report["network"]
    assert report["limits"] == {"RLIMIT_CPU": 30, "RLIMIT_AS": 2 << 30, "RLIMIT_NPROC": 40, "RLIMIT_FSIZE": 8 << 20}
    assert report["imports"]


FORK_BOMB = '''
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as exc:
    print("stopped after", n, type(exc).__name__)
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="a per-kernel uid needs root")
def test_fork_bomb_is_stopped_and_cleaned_up():
    proc, left = run_in_sandbox(FORK_BOMB, sandbox.Limits(processes=32), timeout=60)
    assert "stopped after" in proc.stdout, proc.stdout + proc.stderr
    assert int(proc.stdout.split()[2]) < 32
    assert left == [], "processes of the sandbox survived it"


def test_memory_and_file_limits():
    code = '''
try:
    blocks = [bytearray(256 << 20) for _ in range(64)]
    print("memory: no limit")
except MemoryError:
    print("memory: stopped")
try:
    with open("big.bin", "wb") as f:
        f.write(b"0" * (32 << 20))
    print("file: no limit")
except OSError as exc:
    print("file: stopped", exc.errno)
'''
    proc, _ = run_in_sandbox(code, sandbox.Limits(memory_bytes=1 << 30, file_bytes=4 << 20))
    assert "memory: stopped" in proc.stdout and "file: stopped 27" in proc.stdout, proc.stdout + proc.stderr


def test_grading_refuses_without_the_sandbox(tmp_path):
    course = course_copy(tmp_path)
    marker = tmp_path / "student-code-ran"
    answers = {"hand-t0": f"open({str(marker)!r}, 'w').write('ran')\na0 = s0 = y0 = 0\n"}
    make_submission(course, "ps01", "someone", answers)
    nbgrader(course, "generate_assignment", "ps01", "--force")
    env = dict(os.environ, COURSEGRADE_BWRAP="/nonexistent/bwrap", PYTHONPATH=str(ROOT),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **no_cgroup_env())
    plain = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "ps01", "--force"],
                           cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0
    assert "refusing to run student code" in plain.stdout + plain.stderr
    ours = subprocess.run([sys.executable, "-m", "coursegrade", "ps01", "--quiet"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert ours.returncode == 3 and "refusing to grade" in ours.stderr and "bubblewrap" in ours.stderr
    assert not marker.exists(), "student code ran unsandboxed"
    # --unsafe goes on, loudly (here the student code does run, with the grader's rights)
    unsafe = subprocess.run([sys.executable, "-m", "coursegrade", "ps01", "--quiet", "--unsafe", "--workers", "1",
                             "--no-feedback"], cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert unsafe.returncode == 0, unsafe.stdout + unsafe.stderr
    assert "WARNING: --unsafe" in unsafe.stderr and marker.exists()


PLANT = """import os
open(os.environ.get("COURSEGRADE_MARKER", "/tmp/coursegrade-planted"), "a").write(__name__ + "\\n")
"""


@pytest.mark.parametrize("module", ["coursegrade/__init__.py", "coursegrade/sandbox.py", "json.py", "signal.py",
                                    "subprocess.py", "fcntl.py", "dataclasses.py", "importlib/__init__.py"])
def test_launcher_imports_nothing_from_its_working_folder(tmp_path, module):
    """Finding 1: the kernel spec's launcher runs as root outside the sandbox; a module planted in the
    folder it is started from (or on PYTHONPATH) must never be imported by it."""
    from jupyter_client.kernelspec import KernelSpecManager
    argv = KernelSpecManager().get_kernel_spec(sandbox.KERNEL_NAME).argv
    assert argv == sandbox.kernel_spec_argv() and argv[1] == "-I"
    planted = tmp_path / "student"
    (planted / module).parent.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "marker"
    (planted / module).write_text(PLANT)
    env = dict(os.environ, PYTHONPATH=str(planted), COURSEGRADE_MARKER=str(marker))
    conn = tmp_path / "conn.json"
    conn.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1"}))  # refused early: exit 3
    proc = subprocess.run([a.replace("{connection_file}", str(conn)) for a in argv], cwd=planted, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert not marker.exists(), f"the launcher imported the planted {module}"


def test_launcher_refuses_without_a_scratch_folder(tmp_path):
    """Finding 2: the launcher never starts a kernel in the folder it was started from."""
    from jupyter_client.kernelspec import KernelSpecManager
    argv = KernelSpecManager().get_kernel_spec(sandbox.KERNEL_NAME).argv
    conn = tmp_path / "conn.json"
    conn.write_text(json.dumps({"transport": "ipc", "ip": str(tmp_path / "k")}))
    env = {k: v for k, v in os.environ.items() if k != sandbox.SCRATCH_ENV}
    proc = subprocess.run([a.replace("{connection_file}", str(conn)) for a in argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    if os.geteuid() == 0:
        assert proc.returncode == 3 and "no scratch folder" in proc.stderr, proc.stderr


MANY_PROCESSES_MEMORY = """
import os, time
kids = []
for i in range(6):
    pid = os.fork()
    if pid == 0:
        try:
            block = bytearray(400 << 20)   # each under the per-process limit; together over the kernel's
            block[::4096] = b"x" * len(block[::4096])
            time.sleep(20)
        finally:
            os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("all children ran")
"""


@pytest.mark.skipif(os.geteuid() != 0 or bool(sandbox.Cgroup.unavailable()), reason="needs root and a cgroup")
def test_kernel_memory_is_limited_as_a_whole():
    """Finding 3: RLIMIT_AS is per process; the kernel's cgroup bounds all its processes together."""
    limits = sandbox.Limits(memory_bytes=1 << 30, processes=32)
    proc, left = run_in_sandbox(MANY_PROCESSES_MEMORY, limits, timeout=120, cgroup=True)
    assert proc.oom_killed, proc.stdout + proc.stderr
    assert left == []


def test_cgroup_refusal_is_clear(monkeypatch):
    monkeypatch.setattr(sandbox.Cgroup, "layout", classmethod(lambda cls: None))
    monkeypatch.delenv(sandbox.NO_CGROUP_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="cgroup"):
        sandbox.preflight()


@pytest.mark.parametrize("where", ["course", "own folder"])
def test_validate_works_without_the_sandbox_kernel(tmp_path, where):
    """Issue 16 item 4: ``nbgrader validate`` (JupyterLab's Validate button) runs in the student's own
    kernel, in the course folder and in a folder of their own: it passes an answered notebook and fails
    the blank one, with no kernel error. Only autograde uses the sandbox."""
    from nbgrader_helpers import solution_answers
    course = course_copy(tmp_path)
    answered = make_submission(course, "ps01", "someone", solution_answers("ps01")) / "ps01.ipynb"
    blank = course / "exercises" / "ps01" / "ps01.ipynb"
    folder = course
    if where == "own folder":
        folder = tmp_path / "mine"
        folder.mkdir()
        shutil.copy(answered, folder / "answered.ipynb")
        shutil.copy(blank, folder / "blank.ipynb")
        answered, blank = folder / "answered.ipynb", folder / "blank.ipynb"
    env = dict(os.environ, COURSEGRADE_BWRAP="/nonexistent/bwrap",  # no sandbox at all
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    results = {}
    for name, path in (("answered", answered), ("blank", blank)):
        proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", str(path)], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert "NoSuchKernel" not in out and "rnn-sandbox" not in out and "refusing" not in out, out[-3000:]
        results[name] = out
    assert "Success! Your notebook passes all the tests." in results["answered"], results["answered"][-3000:]
    assert "VALIDATION FAILED" in results["blank"] and "NotImplementedError" in results["blank"], results["blank"][-3000:]
