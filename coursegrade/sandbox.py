"""The sandbox that student code runs in, and the kernel launcher that nbgrader starts through it.

nbgrader starts kernels through a kernel spec; the course's spec ``rnn-sandbox`` (installed into the
venv by ``python -m coursegrade --install-kernel``, which ``make`` runs from ``setup.d``) starts::

    python -I -c BOOT /COURSE/coursegrade/sandbox.py -f CONNECTION_FILE [ipykernel arguments]

``-I`` (isolated: no working directory, no ``PYTHONPATH``, no user site on ``sys.path``) and ``BOOT``,
which first changes to ``/`` and then loads this one file by its absolute path, make sure that the
launcher, which runs as root outside the sandbox, imports nothing from a folder a student can write
(this file imports only the standard library). ``launch`` refuses to go on if this file or its folder
can be written by anyone but root. The executor starts the launcher with its working directory in a
root-owned empty folder and tells it (environment, set by the grader) which scratch folder and which
student library to use.

This launcher runs with the grader's own rights, outside the sandbox. It

* takes a free sandbox uid (one per running kernel, so that ``RLIMIT_NPROC``, which the kernel
  counts per uid and does not enforce for root, limits each kernel on its own),
* copies the connection file into a private folder owned by that uid (the kernel talks over ``ipc``
  sockets in that folder: TCP cannot cross ``--unshare-net``),
* sets the resource limits (CPU seconds, address space, processes, file size, open files, no core
  files), and
* puts the kernel in a cgroup of its own (memory and task limits for all its processes together),
* runs ``ipykernel`` inside ``bwrap`` with no network, its own pid/ipc/uts namespaces, an empty root
  holding only read-only system folders, the Python installation (the venv's site-packages; never
  the course root), the problem set's **student library** (the rnnlib functions that set lets
  students call, built by ``checks.allowlist``; first on ``PYTHONPATH``), a small private ``/tmp``,
  and one writable folder: a scratch folder of its own (``/home/student/work`` inside; copies of the
  assignment's data files, deleted afterwards). Not there: the course (``solutions/``, the gradebook,
  ``autograded/``, ``submitted/``, other students' folders), the real ``rnnlib``, ``checks`` and
  ``coursegrade``. Inside, ``setpriv`` drops to the sandbox uid with no capabilities and
  ``no_new_privs``,
* sends the kernel's stdout to ``/dev/null`` and its stderr to a capped log file (never to nbgrader's
  own output, which the grader would read).

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
import stat
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
SCRATCH_ENV = "COURSEGRADE_SCRATCH"      # the kernel's scratch folder (made by the executor)
LIBRARY_ENV = "COURSEGRADE_LIBRARY"      # the problem set's student library (made by the executor)
NO_CGROUP_ENV = "COURSEGRADE_NO_CGROUP"  # 1: run without a cgroup where none can be made (CI), loudly
WORKDIR = "/home/student/work"           # where the scratch folder appears inside the sandbox
LIBDIR = "/opt/course"                   # where the student library appears inside the sandbox
# The kernel spec's program: isolated Python, working directory /, this file loaded by its path.
BOOT = ("import os, sys; os.chdir('/'); import importlib.util as u; "
        "s = u.spec_from_file_location('coursegrade_sandbox_launcher', sys.argv[1]); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m.launch(sys.argv[2:]))")


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here: grading must not go on unsandboxed."""


@dataclass
class Limits:
    """Resource limits of one sandboxed kernel (per kernel, not per cell)."""
    cpu_seconds: int = 300          # RLIMIT_CPU: CPU time of each process in the sandbox
    memory_bytes: int = 4 << 30     # RLIMIT_AS of each process, and memory of the whole kernel (cgroup)
    processes: int = 64             # RLIMIT_NPROC of the sandbox uid, and tasks of the kernel (cgroup)
    file_bytes: int = 64 << 20      # RLIMIT_FSIZE: largest file a process may write
    open_files: int = 256           # RLIMIT_NOFILE
    tmp_bytes: int = 64 << 20       # size of the private /tmp (a tmpfs)
    kernel_memory_bytes: int = 0    # memory of all the kernel's processes together (cgroup); 0: memory_bytes

    def cgroup_memory(self):
        return self.kernel_memory_bytes or self.memory_bytes

    def to_env(self):
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ=os.environ):
        raw = environ.get(LIMITS_ENV)
        if not raw:
            return cls()
        values = json.loads(raw)
        return cls(**{k: int(v) for k, v in values.items() if k in cls.__dataclass_fields__})


def bwrap_path():
    """The bwrap binary (``COURSEGRADE_BWRAP`` overrides, e.g. to test the refusal)."""
    override = os.environ.get("COURSEGRADE_BWRAP")
    if override is not None:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if os.path.exists("/usr/bin/bwrap") else None)


def no_cgroup_allowed():
    return os.environ.get(NO_CGROUP_ENV, "") not in ("", "0")


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
    check_launcher_file()
    why = Cgroup.unavailable()
    if why and not no_cgroup_allowed():
        raise SandboxUnavailable(
            f"no cgroup can be made for a kernel ({why}), so a kernel's memory and tasks cannot be limited "
            f"as a whole. Run the grader as root on a machine with cgroups (v2 with the memory and pids "
            f"controllers, or v1), or set {NO_CGROUP_ENV}=1 to go on with per-process limits only.")
    # The kernel's own Python must start in there (not just `true`): a venv hidden by the sandbox's
    # private /tmp, or under a folder the sandbox uid cannot enter, is caught here with a clear message.
    proc = subprocess.run([bwrap, *base_binds(Limits()), "--unshare-net", "--unshare-pid", "--die-with-parent",
                           "--proc", "/proc", "--dev", "/dev", *drop_rights(UID_BASE + UID_SLOTS),
                           sys.executable, "-c", "import numpy, ipykernel"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    if proc.returncode != 0:
        raise SandboxUnavailable(f"bwrap cannot create a sandbox on this machine: {proc.stderr.strip()[-2000:]}")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise SandboxUnavailable(
            f"the kernel spec {KERNEL_NAME!r} is not installed: run `python -m coursegrade --install-kernel` "
            "(or `make setup`).") from None
    if spec.argv != kernel_spec_argv():
        raise SandboxUnavailable(
            f"the kernel spec {KERNEL_NAME!r} is not this course's isolated launcher ({spec.argv[:4]}...): "
            "run `python -m coursegrade --install-kernel` again.")


def launcher_file():
    return os.path.abspath(__file__)


def kernel_spec_argv():
    return [sys.executable, "-I", "-c", BOOT, launcher_file(), "-f", "{connection_file}"]


def check_launcher_file(path=None):
    """The launcher runs as root: refuse if this file or a folder above it is writable by others."""
    path = os.path.realpath(path or launcher_file())
    if os.geteuid() != 0:
        return
    for p in [path, *[d for d in _parents(path + os.sep + "x") if d]]:
        st = os.stat(p)
        if st.st_uid != 0 or (st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX)):
            raise SandboxUnavailable(f"{p} can be written by others than root: the launcher, which runs as root, "
                                     "must not be loaded from there")


def install_kernel_spec(prefix=sys.prefix):
    """Install the ``rnn-sandbox`` kernel spec into ``prefix`` (the venv); returns its folder."""
    from jupyter_client.kernelspec import KernelSpecManager
    import tempfile

    spec = {
        "argv": kernel_spec_argv(),
        "display_name": "Python 3 (course sandbox)",
        "language": "python",
        "interrupt_mode": "message",  # SIGINT cannot reach the kernel through bwrap; ask over the control channel
        "metadata": {"debugger": False},
    }
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(spec, f, indent=1)
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, prefix=prefix, replace=True)


# ---------------------------------------------------------------------------------------- cgroups --

class Cgroup:
    """A cgroup of one kernel: ``memory_bytes`` of memory (tmpfs pages included) and ``processes`` tasks
    for all its processes together. cgroup v2 (``memory.max``, ``pids.max``) where the memory and pids
    controllers are enabled, else cgroup v1 (``memory.limit_in_bytes``, ``pids.max``)."""
    ROOT = "/sys/fs/cgroup"

    def __init__(self, name, memory_bytes, processes):
        self.dirs, self.procs_files = [], []
        layout = self.layout()
        if layout is None:
            raise SandboxUnavailable(self.unavailable() or "no cgroup")
        try:
            for controller, parent in layout:
                _remove_stale_cgroups(parent)
                d = os.path.join(parent, name)
                os.mkdir(d, 0o755)
                self.dirs.append(d)
                if controller == "v2":
                    _write(os.path.join(d, "memory.max"), memory_bytes)
                    _write(os.path.join(d, "memory.swap.max"), 0, optional=True)
                    _write(os.path.join(d, "pids.max"), processes)
                elif controller == "memory":
                    _write(os.path.join(d, "memory.limit_in_bytes"), memory_bytes)
                    _write(os.path.join(d, "memory.memsw.limit_in_bytes"), memory_bytes, optional=True)
                    _write(os.path.join(d, "memory.swappiness"), 0, optional=True)
                elif controller == "pids":
                    _write(os.path.join(d, "pids.max"), processes)
                self.procs_files.append(os.path.join(d, "cgroup.procs"))
        except OSError as exc:
            self.remove()
            raise SandboxUnavailable(f"cannot make a cgroup: {exc}") from None

    @classmethod
    def own_path(cls, controller):
        """This process's cgroup path for ``controller`` ("" = v2)."""
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if (controller == "" and names == "") or controller in names.split(","):
                    return path
        return None

    @classmethod
    def layout(cls):
        """``[(controller, parent folder), ...]`` where kernel cgroups go, or None."""
        v2 = cls.own_path("")
        unified = cls.ROOT if os.path.exists(os.path.join(cls.ROOT, "cgroup.controllers")) else \
            os.path.join(cls.ROOT, "unified")
        if v2 is not None and os.path.exists(os.path.join(unified, "cgroup.controllers")):
            parent = os.path.join(unified, v2.lstrip("/"))
            try:
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    enabled = f.read().split()
            except OSError:
                enabled = []
            if {"memory", "pids"} <= set(enabled) and os.access(parent, os.W_OK):
                return [("v2", parent)]
        out = []
        for controller in ("memory", "pids"):
            path = cls.own_path(controller)
            parent = os.path.join(cls.ROOT, controller, (path or "/").lstrip("/"))
            if path is None or not os.access(parent, os.W_OK):
                return None
            out.append((controller, parent))
        return out

    @classmethod
    def unavailable(cls):
        """Why no kernel cgroup can be made here ('' if one can)."""
        if os.geteuid() != 0:
            return "the grader does not run as root"
        if cls.layout() is None:
            return "neither cgroup v2 with the memory and pids controllers nor cgroup v1 memory+pids is writable"
        try:
            Cgroup(f"coursegrade-probe-{os.getpid()}", 1 << 30, 8).remove()
        except SandboxUnavailable as exc:
            return str(exc)
        return ""

    def join(self):
        """Move the calling process into the cgroup (called in the child before it execs)."""
        for f in self.procs_files:
            with open(f, "w") as fh:
                fh.write("0")

    def oom_killed(self):
        for d in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            key, _, value = line.partition(" ")
                            if key in ("oom_kill", "oom_kill_count") and int(value or 0) > 0:
                                return True
                except (OSError, ValueError):
                    pass
            try:
                with open(os.path.join(d, "memory.failcnt")) as f:
                    if int(f.read() or 0) > 0:
                        return True
            except (OSError, ValueError):
                pass
        return False

    def remove(self):
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.dirs = []


def _remove_stale_cgroups(parent, age=120):
    """Empty kernel cgroups left by a launcher that was killed before it could remove its own."""
    now = time.time()
    try:
        names = [n for n in os.listdir(parent) if n.startswith("coursegrade-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(parent, name)
        try:
            if now - os.stat(path).st_mtime > age:
                os.rmdir(path)  # fails (EBUSY) while any process is in it
        except OSError:
            pass


def _write(path, value, optional=False):
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError:
        if not optional:
            raise


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
    """Folders the kernel's Python needs, read-only: the installation, the venv and its site-packages
    (never the course root: the real ``rnnlib``, ``checks`` and ``coursegrade`` stay outside; the venv's
    editable-install finder points at the course root, which does not exist in the sandbox)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    paths.update(site.getsitepackages())
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


def sandbox_env(uid, limits):
    keep = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    venv_bin = os.path.dirname(sys.executable)
    env.update({
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp", "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/.ipython", "MPLCONFIGDIR": "/tmp/.matplotlib",
        "MPLBACKEND": "Agg", "PYTHONPATH": LIBDIR, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde"),
        "USER": "student", "LOGNAME": "student",
    })
    # No JPY_PARENT_PID: in a new pid namespace the parent pid means nothing, and ipykernel would exit.
    return env


def _dirs_for(path):
    return [a for d in _parents(path) if d != "/tmp" for a in ("--perms", "0755", "--dir", d)]


def sandbox_command(kernel_argv, scratch, private_dir, uid, limits, library=None):
    """The full ``bwrap`` command line that runs ``kernel_argv`` in the sandbox: ``scratch`` appears
    (writable) at :data:`WORKDIR`, ``library`` (read-only) at :data:`LIBDIR`."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("bwrap is not installed")
    lib = [*_dirs_for(LIBDIR + "/x"), "--ro-bind", library, LIBDIR] if library else \
        [*_dirs_for(LIBDIR + "/x"), "--perms", "0755", "--dir", LIBDIR]
    return [bwrap, *base_binds(limits),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "sandbox", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev",
            *_dirs_for(private_dir), "--bind", private_dir, private_dir,
            *lib,
            *_dirs_for(WORKDIR), "--bind", scratch, WORKDIR, "--chdir", WORKDIR,
            *drop_rights(uid), *kernel_argv]


def set_limits(limits, nproc, cgroup=None):
    def apply():
        if cgroup is not None:
            cgroup.join()
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

def _owned_by_root_dir(path):
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022


def prepare_scratch(scratch, uid):
    """Hand the scratch folder (made by the grader, holding only copies it wrote) to the sandbox uid.
    Nothing in it has been touched by student code yet; links are refused all the same."""
    for dirpath, dirnames, filenames in os.walk(scratch):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or st.st_uid != 0:
                raise SandboxUnavailable(f"the scratch folder holds something the grader did not put there: {path}")
            os.chown(path, uid, uid, follow_symlinks=False)
    os.chown(scratch, uid, uid, follow_symlinks=False)
    os.chmod(scratch, 0o700)


def launch(argv):
    """Entry point of the kernel spec: ``-f CONNECTION_FILE [ipykernel args...]``.

    Runs as the grader (root), outside the sandbox: it reads only what the grader gave it (the
    connection file, the environment) and hands the rest to ``bwrap``."""
    if len(argv) < 2 or argv[0] != "-f":
        print("usage: python -I -c BOOT sandbox.py -f CONNECTION_FILE [kernel args]", file=sys.stderr)
        return 2
    os.chdir("/")
    try:
        check_launcher_file()
    except SandboxUnavailable as exc:
        print(f"coursegrade sandbox: refusing to start: {exc}", file=sys.stderr)
        return 3
    connection_file, extra = argv[1], argv[2:]
    with open(connection_file) as f:
        info = json.load(f)
    if info.get("transport") != "ipc" or not os.path.isabs(info.get("ip", "")):
        print("coursegrade sandbox: the kernel must use the ipc transport with an absolute path "
              "(TCP cannot cross --unshare-net); set c.KernelManager.transport = 'ipc'", file=sys.stderr)
        return 3
    private_dir = os.path.dirname(info["ip"])
    scratch, library = os.environ.get(SCRATCH_ENV, ""), os.environ.get(LIBRARY_ENV) or None
    if not (scratch and os.path.isabs(scratch) and _owned_by_root_dir(scratch)) and os.geteuid() == 0:
        print(f"coursegrade sandbox: no scratch folder given ({SCRATCH_ENV}); refusing to start the kernel "
              "(it must never run in a folder nbgrader reads back)", file=sys.stderr)
        return 3
    if library is not None and not os.path.isdir(library):
        print(f"coursegrade sandbox: the student library {library} does not exist", file=sys.stderr)
        return 3
    limits = Limits.from_env()
    is_root = os.geteuid() == 0
    cgroup = None
    if is_root:
        uid, _lock = take_uid()
        nproc = limits.processes
        try:
            cgroup = Cgroup(f"coursegrade-{uid}-{os.getpid()}", limits.cgroup_memory(), limits.processes)
        except SandboxUnavailable as exc:
            if not no_cgroup_allowed():
                print(f"coursegrade sandbox: refusing to start: {exc}", file=sys.stderr)
                return 3
            print(f"coursegrade sandbox: WARNING: no cgroup ({exc}); {NO_CGROUP_ENV}=1: per-process limits only",
                  file=sys.stderr)
    else:  # RLIMIT_NPROC counts every process of our own uid: allow what already runs, plus the limit
        uid = os.geteuid()
        nproc = len([p for p in os.listdir("/proc") if p.isdigit()]) + limits.processes
    private_conn = os.path.join(private_dir, "connection.json")
    with open(private_conn, "w") as f:
        json.dump(info, f)
    with open(private_dir + ".uid", "w") as f:  # beside the private folder: the kernel cannot change it
        f.write(str(uid))
    if is_root:
        for path in (private_dir, private_conn):
            os.chown(path, uid, uid)
        os.chmod(private_dir, 0o700)
        os.chmod(private_conn, 0o600)
        prepare_scratch(scratch, uid)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", private_conn, *extra]
    cmd = sandbox_command(kernel, scratch, private_dir, uid, limits, library)
    log_path = private_dir + ".log"  # beside the private folder, root's: the kernel cannot reach it
    log = open(log_path, "wb")
    try:
        child = subprocess.Popen(cmd, env=sandbox_env(uid, limits), preexec_fn=set_limits(limits, nproc, cgroup),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd="/")
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        log.close()

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
    if cgroup is not None:
        if cgroup.oom_killed():
            print("coursegrade sandbox: the kernel reached its memory limit and was killed", file=sys.stderr)
        cgroup.remove()
    if status != 0:  # a bounded tail of what the kernel wrote to stderr, for the instructor's log
        try:
            with open(log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(log_path) - 2000))
                sys.stderr.write(f.read().decode("utf-8", "replace"))
        except OSError:
            pass
    try:
        os.remove(log_path)
    except OSError:
        pass
    return status


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:]))
