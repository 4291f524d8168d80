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

from nbgrader_helpers import ROOT, course_copy, make_submission, nbgrader

from coursegrade import sandbox

pytestmark = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="bubblewrap is not installed (make setup)")


def run_in_sandbox(code, limits=None, timeout=120):
    """Run Python ``code`` as the kernel would run: same binds, namespaces, uid and limits."""
    limits = limits or sandbox.Limits()
    scratch = Path(tempfile.mkdtemp(prefix="cg-scratch-"))
    private = Path(tempfile.mkdtemp(prefix="cg-"))
    uid, lock = sandbox.take_uid() if os.geteuid() == 0 else (os.geteuid(), None)
    try:
        if os.geteuid() == 0:
            os.chown(scratch, uid, uid)
        cmd = sandbox.sandbox_command([sys.executable, "-c", code], str(scratch), str(private), uid, limits)
        proc = subprocess.run(cmd, env=sandbox.sandbox_env(uid, limits), capture_output=True, text=True,
                              timeout=timeout, preexec_fn=sandbox.set_limits(limits, limits.processes))
        # no killing here: only waiting (the pid namespace's SIGKILLs are delivered asynchronously)
        left = sandbox.wait_until_gone(uid, timeout=10) if os.geteuid() == 0 else []
        return proc, left
    finally:
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
    assert report["course_files"] == ["rnnlib"] or set(report["course_files"]) <= {"rnnlib", ".venv"}
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
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
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
