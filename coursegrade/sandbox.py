"""The sandbox that student code runs in, and the kernel launcher that nbgrader starts through it.

nbgrader starts kernels through a kernel spec; the course's spec ``rnn-sandbox`` (installed into the
venv by ``python -m coursegrade --install-kernel``, which ``make`` runs from ``setup.d``) starts::

    python -m coursegrade.sandbox -f CONNECTION_FILE [ipykernel arguments]

This launcher runs with the grader's own rights, outside the sandbox. It

* takes a free sandbox uid (one per running kernel, so that ``RLIMIT_NPROC``, which the kernel
  counts per uid and does not enforce for root, limits each kernel on its own),
* copies the connection file into a private folder owned by that uid (the kernel talks over ``ipc``
  sockets in that folder: TCP cannot cross ``--unshare-net``),
* sets the resource limits (CPU seconds, address space, processes, file size, open files, no core
  files), and
* runs ``ipykernel`` inside ``bwrap`` with no network, its own pid/ipc/uts namespaces, an empty root
  holding only read-only system folders, the Python installation and the ``rnnlib`` package, a small
  private ``/tmp``, and one writable folder: the kernel's working directory (the submission's
  ``autograded/STUDENT/ASSIGNMENT`` scratch folder). The course (``solutions/``, the gradebook, other
  students' folders) is not in the sandbox at all. Inside, ``setpriv`` drops to the sandbox uid with
  no capabilities and ``no_new_privs``.

The launcher stays alive as the kernel's parent (it holds the uid's lock); ``bwrap
--die-with-parent`` and the pid namespace make sure that killing it kills every process the student
started.
"""
import fcntl
import json
import os
import pwd
import resource
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass

KERNEL_NAME = "rnn-sandbox"
UID_BASE = 62000
UID_SLOTS = 512
LOCK_DIR = "/tmp/coursegrade-sandbox-uids"
LIMITS_ENV = "COURSEGRADE_LIMITS"
UNSAFE_ENV = "COURSEGRADE_UNSAFE"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here: grading must not go on unsandboxed."""


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel (per kernel, not per cell)."""
    cpu_seconds: int = 300          # RLIMIT_CPU: CPU time of each process in the sandbox
    memory_bytes: int = 4 << 30     # RLIMIT_AS: address space of each process
    processes: int = 64             # RLIMIT_NPROC: tasks (processes and threads) of the sandbox uid
    file_bytes: int = 64 << 20      # RLIMIT_FSIZE: largest file a process may write
    open_files: int = 256           # RLIMIT_NOFILE
    tmp_bytes: int = 64 << 20       # size of the private /tmp (a tmpfs)

    def to_env(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=os.environ):
        raw = environ.get(LIMITS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def bwrap_path():
    """The bwrap binary (``COURSEGRADE_BWRAP`` overrides, e.g. to test the refusal)."""
    override = os.environ.get("COURSEGRADE_BWRAP")
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)


def preflight():
    """Raise :class:`SandboxUnavailable` with a clear message unless a sandboxed kernel can start here."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (`bwrap`) is not installed, so student code cannot be sandboxed. Install it "
            "(`apt-get install bubblewrap`, or run `make setup`), or grade unsandboxed at your own risk "
            f"with `--unsafe` / {UNSAFE_ENV}=1.")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        raise SandboxUnavailable("`setpriv` (util-linux) is missing: the kernel cannot drop root rights.")
    # The kernel's own Python must start in there (not just `true`): a venv hidden by the sandbox's
    # private /tmp, or under a folder the sandbox uid cannot enter, is caught here with a clear message.
    proc = subprocess.run([bwrap, *base_binds(Limits()), "--unshare-net", "--unshare-pid", "--die-with-parent",
                           "--proc", "/proc", "--dev", "/dev", *drop_rights(UID_BASE + UID_SLOTS),
                           sys.executable, "-c", "import rnnlib, ipykernel"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SandboxUnavailable(f"bwrap cannot create a sandbox on this machine: {proc.stderr.strip()}")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise SandboxUnavailable(
            f"the kernel spec {KERNEL_NAME!r} is not installed: run `python -m coursegrade --install-kernel` "
            "(or `make setup`).") from None


def install_kernel_spec(prefix=sys.prefix):
    """Install the ``rnn-sandbox`` kernel spec into ``prefix`` (the venv); returns its folder."""
    from jupyter_client.kernelspec import KernelSpecManager
    import tempfile

    spec = {
        "argv": [sys.executable, "-m", "coursegrade.sandbox", "-f", "{connection_file}"],
        "display_name": "Python 3 (course sandbox)",
        "language": "python",
        "interrupt_mode": "message",  # SIGINT cannot reach the kernel through bwrap; ask over the control channel
        "metadata": {"debugger": False},
    }
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(spec, f, indent=1)
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, prefix=prefix, replace=True)


# ----------------------------------------------------------------------------------------- bwrap --

def _system_binds():
    args = []
    for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def python_paths():
    """Folders the kernel's Python needs, read-only: the installation, the venv, site-packages and
    the ``rnnlib`` package itself (never the course root that holds it)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    paths.update(site.getsitepackages())
    user_site = site.getusersitepackages()
    if user_site and os.path.isdir(user_site):
        paths.add(user_site)
    import rnnlib
    paths.add(os.path.dirname(os.path.abspath(rnnlib.__file__)))
    paths = sorted(os.path.realpath(p) for p in paths if p and os.path.isdir(p))
    # keep only the outermost folders
    kept = []
    for p in paths:
        if not any(p == k or p.startswith(k + os.sep) for k in kept):
            kept.append(p)
    return kept


def _parents(path):
    parts = os.path.dirname(path).strip(os.sep).split(os.sep)
    return [os.sep + os.sep.join(parts[:i]) for i in range(1, len(parts) + 1) if parts[0]]


def base_binds(limits):
    """Read-only system folders, a private ``/tmp``, and Python; parent folders made traversable
    (``/root`` is 0700 on the host, and the sandbox uid must reach a Python installed under it).
    The private ``/tmp`` comes before Python's binds: a venv that lives under ``/tmp`` (a CI clone,
    say) must stay visible on top of it."""
    args = _system_binds()
    args += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    paths = [p for p in python_paths() if not (p == "/usr" or p.startswith(("/usr/", "/etc/")))]
    parents = sorted({d for p in paths for d in _parents(p)} - {"/usr", "/etc", "/tmp"})  # /tmp stays 1777
    for d in parents:
        args += ["--perms", "0755", "--dir", d]
    for path in paths:
        args += ["--ro-bind", path, path]
    return args


def drop_rights(uid):
    """Command prefix that runs the rest as ``uid`` without capabilities (only when we are root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


def rnnlib_parent():
    import rnnlib
    return os.path.dirname(os.path.dirname(os.path.abspath(rnnlib.__file__)))


def sandbox_env(uid, limits):
    keep = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    venv_bin = os.path.dirname(sys.executable)
    env.update({
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp", "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython", "MPLCONFIGDIR": "/tmp/.matplotlib",
        "MPLBACKEND": "Agg", "PYTHONPATH": rnnlib_parent(), "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde"),
        "USER": "student", "LOGNAME": "student",
    })
    # No JPY_PARENT_PID: in a new pid namespace the parent pid means nothing, and ipykernel would exit.
    return env


def sandbox_command(kernel_argv, scratch, private_dir, uid, limits):
    """The full ``bwrap`` command line that runs ``kernel_argv`` in the sandbox."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bwrap is not installed")
    return [bwrap, *base_binds(limits),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev",
            *[a for d in _parents(private_dir) if d != "/tmp" for a in ("--perms", "0755", "--dir", d)],
            "--bind", private_dir, private_dir,
            *[a for d in _parents(scratch) if d != "/tmp" for a in ("--perms", "0755", "--dir", d)],
            "--bind", scratch, scratch, "--chdir", scratch,
            *drop_rights(uid), *kernel_argv]


def set_limits(limits, nproc):
    def apply():
        for res, value in ((resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5)),
                           (resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)),
                           (resource.RLIMIT_NPROC, (nproc, nproc)),
                           (resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes)),
                           (resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files)),
                           (resource.RLIMIT_CORE, (0, 0))):
            resource.setrlimit(res, value)
    return apply


# -------------------------------------------------------------------------------------- the uids --

def take_uid():
    """Lock and return a sandbox uid no other running kernel uses (the lock lives as long as we do)."""
    os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    for slot in range(UID_SLOTS):
        uid = UID_BASE + slot
        try:
            pwd.getpwuid(uid)
            continue  # a real account: never borrow it
        except KeyError:
            pass
        fd = os.open(os.path.join(LOCK_DIR, f"uid-{uid}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise SandboxUnavailable("no free sandbox uid")


def processes_of(uid):
    """Pids of the processes running as ``uid`` (all of them are visible only to root)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(pid))
                        break
        except (OSError, ValueError):
            continue  # it ended while we looked
    return pids


def wait_until_gone(uid, timeout=10.0):
    """Wait up to ``timeout`` seconds for every process of ``uid`` to end; return the ones still there.

    When a pid namespace's init dies the kernel sends SIGKILL to the rest, but they end asynchronously:
    right after ``bwrap`` returns, some may still be on their way out."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of(uid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def reap(uid, grace=5.0):
    """Make sure nothing of the sandbox uid outlives its kernel, before the uid is handed to the next."""
    for pid in wait_until_gone(uid, grace):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return wait_until_gone(uid, grace)


# -------------------------------------------------------------------------------------- launcher --

def launch(argv):
    """Entry point of the kernel spec: ``-f CONNECTION_FILE [ipykernel args...]``."""
    if len(argv) < 2 or argv[0] != "-f":
        print("usage: python -m coursegrade.sandbox -f CONNECTION_FILE [kernel args]", file=sys.stderr)
        return 2
    connection_file, extra = argv[1], argv[2:]
    with open(connection_file) as f:
        info = json.load(f)
    if info.get("transport") != "ipc" or not os.path.isabs(info.get("ip", "")):
        print("coursegrade sandbox: the kernel must use the ipc transport with an absolute path "
              "(TCP cannot cross --unshare-net); set c.KernelManager.transport = 'ipc'", file=sys.stderr)
        return 3
    private_dir = os.path.dirname(info["ip"])
    scratch = os.getcwd()
    limits = Limits.from_env()
    is_root = os.geteuid() == 0
    if is_root:
        uid, _lock = take_uid()
        nproc = limits.processes
    else:  # RLIMIT_NPROC counts every process of our own uid: allow what already runs, plus the limit
        uid = os.geteuid()
        nproc = len([p for p in os.listdir("/proc") if p.isdigit()]) + limits.processes
    private_conn = os.path.join(private_dir, "connection.json")
    with open(private_conn, "w") as f:
        json.dump(info, f)
    with open(private_dir + ".uid", "w") as f:  # beside the private folder: the kernel cannot change it
        f.write(str(uid))
    if is_root:
        for path in (private_dir, private_conn, scratch):
            os.chown(path, uid, uid)
        os.chmod(private_dir, 0o700)
        os.chmod(private_conn, 0o600)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", private_conn, *extra]
    cmd = sandbox_command(kernel, scratch, private_dir, uid, limits)
    child = subprocess.Popen(cmd, env=sandbox_env(uid, limits), preexec_fn=set_limits(limits, nproc),
                             stdin=subprocess.DEVNULL)

    def forward(signum, _frame):
        if signum in (signal.SIGTERM, signal.SIGHUP):
            child.kill()  # bwrap does not pass signals on; kill the whole sandbox
        else:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = child.wait()
    if is_root:
        reap(uid)  # the uid's lock is released when we exit: only then may another kernel take it
    return status


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
