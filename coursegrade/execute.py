"""nbgrader's Execute preprocessor, hardened for untrusted notebooks.

``SandboxedExecute`` replaces ``nbgrader.preprocessors.Execute`` in ``Autograde.autograde_preprocessors``
(the course's ``nbgrader_config.py`` does that), so plain ``nbgrader autograde`` gets it too. It

* refuses to run anything unless the sandbox works (``coursegrade.sandbox.preflight``), unless told
  ``COURSEGRADE_UNSAFE=1`` (``--unsafe``), which it announces loudly;
* refuses a submission folder holding anything but plain files (:mod:`coursegrade.guard`);
* starts the kernel from the ``rnn-sandbox`` spec over ``ipc`` sockets in a private folder, with the
  resource limits of :class:`coursegrade.sandbox.Limits`, from a root-owned empty folder, in a scratch
  folder of its own: a fresh folder per kernel holding copies of the assignment's data files (never
  the notebook nbgrader wrote, which holds the hidden tests), deleted when the kernel ends; the
  folder nbgrader reads back (``autograded/STUDENT/ASSIGNMENT``) is never in the sandbox;
* gives the kernel the problem set's student library (:func:`student_library`) instead of rnnlib;
* bounds every byte from the kernel: each message (ZeroMQ ``MAXMSGSIZE``; a larger one drops the
  connection), the messages queued, the output kept per cell (streams, displays,
  ``update_display_data``; comm/widget messages are dropped), and the RPC's answer (one value, at most
  :data:`MAX_REPLY` bytes, parsed as JSON only);
* gives every cell ``timeout`` seconds and the whole notebook ``notebook_timeout`` seconds (a cell
  that starts after the notebook's budget is spent is not run);
* keeps at most ``max_output_bytes`` of output per cell (an output flood is cut, with a note);
* when the kernel dies (``os._exit``, ``exit()``, the CPU or memory limit) or a cell leaves the kernel
  unresponsive, or leaves processes behind (a fork bomb), records an error in that cell, starts a
  fresh kernel, replays the cells before it (without the culprit) and goes on, so that untouched parts
  still get their points; after ``max_restarts`` it gives up on the remaining cells, each with a
  message;
* runs the hidden-test block of each grade cell in the grader, not in the kernel (see
  :mod:`coursegrade.remote`), and only the visible asserts in the kernel.
"""
import copy
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time

import nbformat
import zmq
import zmq.asyncio
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute
from nbgrader import utils
from traitlets import Bool, Integer, List, Unicode

from . import guard, remote, sandbox

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS[ \t]*$\n?",
                    re.MULTILINE | re.DOTALL)
_PREFLIGHT_OK = False
MAX_REPLY = 4 << 20          # bytes of one RPC answer (its text/plain repr)
MAX_MESSAGE = 12 << 20       # bytes of one ZeroMQ message part from the kernel
QUEUED_MESSAGES = 16         # messages ZeroMQ may queue per socket before the grader reads them
MAX_DATA_FILES = 64 << 20    # bytes of data files copied into the scratch folder
_BASE_LOCK = threading.RLock()
_BASE = {}


def grader_base():
    """This process's root-owned folder (0700) for scratch folders, ipc sockets and student libraries."""
    with _BASE_LOCK:
        if "dir" not in _BASE:
            _remove_stale_bases()
            base = tempfile.mkdtemp(prefix=f"coursegrade-{os.getpid()}-")
            os.makedirs(os.path.join(base, "empty"), mode=0o555)
            os.makedirs(os.path.join(base, "lib"), mode=0o755)
            _BASE["dir"] = base
            import atexit
            atexit.register(shutil.rmtree, base, True)
        return _BASE["dir"]


def _remove_stale_bases():
    """Folders of grader processes that were killed (their atexit never ran)."""
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.fullmatch(r"coursegrade-(\d+)-\w+", name)
        path = os.path.join(tmp, name)
        if m and not os.path.exists(f"/proc/{m.group(1)}") and os.lstat(path).st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)


def zmq_context():
    """One ZeroMQ context per process whose sockets refuse large messages and queue few."""
    with _BASE_LOCK:
        if "zmq" not in _BASE:
            ctx = zmq.asyncio.Context()
            ctx.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
            ctx.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES)
            _BASE["zmq"] = ctx
        return _BASE["zmq"]


def student_library(assignment):
    """A read-only folder holding the ``rnnlib`` that ``assignment`` lets students call, built once per
    process by ``checks.allowlist.build_student_rnnlib`` (root-owned, outside any student's reach)."""
    with _BASE_LOCK:
        key = ("lib", assignment)
        if key not in _BASE:
            dest = os.path.join(grader_base(), "lib", re.sub(r"[^A-Za-z0-9_.-]", "_", assignment) + "-" +
                                hashlib.sha256(assignment.encode()).hexdigest()[:8])
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest, mode=0o755)
            try:
                from checks.allowlist import build_student_rnnlib
            except ImportError:
                build_student_rnnlib = None
            if build_student_rnnlib is not None:
                build_student_rnnlib(assignment, __import__("pathlib").Path(dest))
            else:  # no allow-list yet: the whole public package (the reference is then callable)
                import rnnlib
                shutil.copytree(os.path.dirname(os.path.abspath(rnnlib.__file__)), os.path.join(dest, "rnnlib"),
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            for dirpath, dirnames, filenames in os.walk(dest):
                os.chmod(dirpath, 0o755)
                for f in filenames:
                    os.chmod(os.path.join(dirpath, f), 0o644)
            _BASE[key] = dest
        return _BASE[key]


def copy_data_files(src, dest, limit=MAX_DATA_FILES):
    """Copy the regular files of ``src`` (not notebooks: nbgrader's copy holds the hidden tests) into
    ``dest``; links and special files are skipped, never followed or opened."""
    total = 0
    if not src or not os.path.isdir(src):
        return
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        target = os.path.normpath(os.path.join(dest, rel))
        os.makedirs(target, mode=0o755, exist_ok=True)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if name.endswith(".ipynb") or not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                continue
            total += st.st_size
            if total > limit:
                return
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fin, open(os.path.join(target, name), "wb") as fout:
                shutil.copyfileobj(fin, fout)


def parse_reply(text, limit=MAX_REPLY):
    """The RPC's answer: the ``repr`` of a JSON string (ASCII). Parsed in time and memory linear in its
    size, which is capped; never evaluated as Python."""
    if not isinstance(text, str) or len(text) > limit:
        raise remote.RemoteError("your code returned more data than the grader accepts")
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "'\"" or not text.isascii():
        raise remote.RemoteError("the grader got a malformed answer from your kernel")
    try:
        body = text[1:-1].encode("ascii").decode("unicode_escape")
        reply = json.loads(body)
    except (ValueError, UnicodeError, RecursionError):
        raise remote.RemoteError("the grader got a malformed answer from your kernel") from None
    if not isinstance(reply, dict):
        raise remote.RemoteError("the grader got a malformed answer from your kernel")
    return reply


def split_hidden(source):
    """``[(is_hidden, code), ...]`` in order."""
    parts, pos = [], 0
    for m in HIDDEN.finditer(source):
        if source[pos:m.start()].strip():
            parts.append((False, source[pos:m.start()]))
        parts.append((True, m.group(1)))
        pos = m.end()
    if source[pos:].strip():
        parts.append((False, source[pos:]))
    return parts


def error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def unsafe_requested():
    return os.environ.get(sandbox.UNSAFE_ENV, "") not in ("", "0")


class _KernelRPC:
    def __init__(self, executor, index):
        self.executor, self.index = executor, index

    def request(self, req):
        return self.executor._rpc(req, self.index)


class SandboxedExecute(Execute):
    kernel_name = Unicode(sandbox.KERNEL_NAME, help="Kernel spec of the sandbox").tag(config=True)
    notebook_timeout = Integer(300, help="Seconds for the whole notebook").tag(config=True)
    max_output_bytes = Integer(1 << 20, help="Output kept per cell, in bytes").tag(config=True)
    max_restarts = Integer(3, help="Fresh kernels per notebook after a crash").tag(config=True)
    hidden_tests_in_grader = Bool(True, help="Run hidden-test blocks in the grader, not in the kernel").tag(config=True)
    in_kernel_tests = List(Unicode(), help="grade_ids whose hidden tests must run in the kernel (objects "
                                           "the grader cannot proxy); they are as weak as plain nbgrader").tag(config=True)
    max_processes_after_cell = Integer(1, help="Processes the sandbox may keep between cells").tag(config=True)
    cpu_seconds = Integer(0, help="RLIMIT_CPU (0: notebook_timeout)").tag(config=True)
    memory_bytes = Integer(4 << 30, help="RLIMIT_AS of each process").tag(config=True)
    kernel_memory_bytes = Integer(0, help="memory of the whole kernel, all its processes (cgroup); "
                                          "0: memory_bytes").tag(config=True)
    processes = Integer(64, help="RLIMIT_NPROC for the sandbox uid").tag(config=True)
    file_bytes = Integer(64 << 20, help="RLIMIT_FSIZE").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._private_dirs, self._scratches = [], []
        self.store_widget_state = False  # widget state would be student-controlled bytes in the notebook

    # ------------------------------------------------------------------ setup

    @property
    def unsafe(self):
        return unsafe_requested()

    def limits(self):
        return sandbox.Limits(cpu_seconds=self.cpu_seconds or self.notebook_timeout, memory_bytes=self.memory_bytes,
                              kernel_memory_bytes=self.kernel_memory_bytes,
                              processes=self.processes, file_bytes=self.file_bytes)

    def create_kernel_manager(self):
        if self.unsafe:
            self.kernel_name = "python3"
        km = super().create_kernel_manager()
        if not self.unsafe:
            private = tempfile.mkdtemp(prefix="cg-", dir=grader_base())
            self._private_dirs.append(private)
            km.transport = "ipc"
            km.ip = os.path.join(private, "k")
        return km

    def _new_scratch(self):
        """A fresh scratch folder for the next kernel: copies of the data files, nothing else."""
        scratch = tempfile.mkdtemp(prefix="scratch-", dir=grader_base())
        os.chmod(scratch, 0o755)
        self._scratches.append(scratch)
        copy_data_files(self.resources.get("metadata", {}).get("path"), scratch)
        return scratch

    def _remove_scratches(self):
        for d in self._scratches:
            shutil.rmtree(d, ignore_errors=True)  # never follows links
        self._scratches = []

    async def async_start_new_kernel(self, **kwargs):
        if not self.unsafe:
            assignment = (self.resources or {}).get("nbgrader", {}).get("assignment", "")
            kwargs["cwd"] = os.path.join(grader_base(), "empty")  # the launcher starts in an empty, root-owned folder
            kwargs["env"] = {**os.environ, sandbox.LIMITS_ENV: self.limits().to_env(),
                             sandbox.SCRATCH_ENV: self._new_scratch(),
                             sandbox.LIBRARY_ENV: student_library(assignment) if assignment else ""}
            kwargs["env"].pop("PYTHONPATH", None)
        return await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds the sync name to its own method

    async def async_start_new_kernel_client(self):
        if self.unsafe:
            return await super().async_start_new_kernel_client()
        from jupyter_core.utils import ensure_async
        try:
            self.kc = self.km.client(context=zmq_context())  # bounded messages and queues
            await ensure_async(self.kc.start_channels())
            await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))
        except Exception as e:
            self.log.error("Error occurred while starting new kernel client: %s", str(e)[:500])
            await self._async_cleanup_kernel()
            raise
        self.kc.allow_stdin = False
        return self.kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _check_submission(self, resources):
        """Refuse (before any kernel starts) a submission folder with links, FIFOs, devices..."""
        info = (resources or {}).get("nbgrader", {})
        if not info.get("student") or not info.get("assignment"):
            return
        from nbgrader.coursedir import CourseDirectory
        coursedir = CourseDirectory(config=self.config)
        folder = guard.submitted_folder(coursedir, info["assignment"], info["student"])
        if os.path.lexists(folder):
            guard.check_tree(folder)

    def preprocess(self, nb, resources=None, km=None):
        global _PREFLIGHT_OK
        if self.unsafe:
            self.log.warning("!" * 78)
            self.log.warning("UNSAFE: %s is set, student code runs UNSANDBOXED with your rights", sandbox.UNSAFE_ENV)
            self.log.warning("!" * 78)
        elif not _PREFLIGHT_OK:
            try:
                sandbox.preflight()
            except sandbox.SandboxUnavailable as exc:
                msg = (f"coursegrade: refusing to run student code: the sandbox is unavailable: {exc}")
                print(msg, file=sys.stderr)
                raise SystemExit(msg)
            _PREFLIGHT_OK = True
        if not self.unsafe:
            self._check_submission(resources)
        self.timeout = min(self.timeout or self.notebook_timeout, self.notebook_timeout)
        self.error_on_timeout = {"ename": "CellTimeoutError",
                                 "evalue": f"this cell ran longer than the limit of {self.timeout} s per cell "
                                           "and was stopped",
                                 "traceback": [f"CellTimeoutError: this cell ran longer than the limit of "
                                               f"{self.timeout} s per cell and was stopped"]}
        self._deadline = time.monotonic() + self.notebook_timeout
        self._executed, self._bad, self._restarts, self._gave_up = [], set(), 0, None
        self._out_bytes, self._rpc_active, self._broken, self._ask_exit = {}, False, None, False
        self._rpc_bytes, self._rpc_result = 0, None
        try:
            return super().preprocess(nb, resources, km)
        finally:
            for d in self._private_dirs:
                shutil.rmtree(d, ignore_errors=True)
                for suffix in (".uid", ".log"):
                    if os.path.exists(d + suffix):
                        os.remove(d + suffix)
            self._private_dirs = []
            self._remove_scratches()

    # ---------------------------------------------------------------- limits

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        remaining = self._deadline - time.monotonic()
        if timeout is None:
            return max(1, int(remaining))
        return max(1, int(min(timeout, remaining)))

    def _count(self, cell_index, msg):
        """Add a message's size to the cell's output budget; False once the budget is spent."""
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._out_bytes.get(cell_index, 0)
        self._out_bytes[cell_index] = used + size
        return used + size <= self.max_output_bytes, used <= self.max_output_bytes

    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type", "")
        if msg_type.startswith("comm"):
            return None  # widgets and comms: not needed for grading, never stored
        if msg_type == "update_display_data" or (
                msg_type in ("display_data", "execute_result")
                and (msg.get("content", {}).get("transient") or {}).get("display_id")):
            if self._rpc_active:
                return None
            within, _ = self._count(cell_index, msg)
            if not within:
                return None  # an update past the cap is dropped (it would rewrite earlier outputs)
            if msg_type == "update_display_data":
                return super().process_message(msg, cell, cell_index)
        return super().process_message(msg, cell, cell_index)

    def output(self, outs, msg, display_id, cell_index):
        if self._rpc_active:
            size = len(json.dumps(msg.get("content", {}), default=str))
            self._rpc_bytes += size
            if msg["msg_type"] == "execute_result" and size <= 2 * MAX_REPLY + 4096:
                self._rpc_result = msg  # only the last one is kept: the helper's answer comes last
            elif msg["msg_type"] == "error" and not outs:
                content = msg.get("content", {})
                outs.append(error_output(str(content.get("ename", ""))[:100], str(content.get("evalue", ""))[:1000]))
            return None  # prints of the student's function while the grader calls it
        within, first_over = (True, True) if display_id else self._count(cell_index, msg)
        if not within:
            if first_over:
                outs.append(nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"\n... output cut: this cell printed more than {self.max_output_bytes} bytes ...\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    # ------------------------------------------------------------- the cells

    def preprocess_cell(self, cell, resources, index):
        self._check_assign_resources(resources)
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, self.resources
        cell.outputs = []
        if self._gave_up:
            cell.outputs.append(error_output("KernelDied", self._gave_up))
            return cell, self.resources
        if time.monotonic() >= self._deadline:
            cell.outputs.append(error_output(
                "NotebookTimeoutError", f"not run: the notebook used up its time limit of {self.notebook_timeout} s"))
            return cell, self.resources
        if self._executed and not self._kernel_alive():
            # the previous cell ended the kernel after it replied (exit(), quit(), a thread calling os._exit)
            culprit = self._executed[-1]
            self.nb.cells[culprit].outputs.append(error_output(
                "KernelDied", "the kernel stopped after this cell ran (exit(), quit(), os._exit, or a limit); "
                              "the cells after it ran in a fresh kernel, without this one"))
            self._restart(culprit, "the kernel died")
            if self._gave_up:
                cell.outputs.append(error_output("KernelDied", self._gave_up))
                return cell, self.resources
        remaining = self._deadline - time.monotonic()
        limit = (f"this cell ran longer than the time limit of {self.timeout} s per cell and was stopped"
                 if remaining >= self.timeout else
                 f"the notebook's time limit of {self.notebook_timeout} s ran out during this cell: it was stopped")
        self.error_on_timeout = {"ename": "CellTimeoutError", "evalue": limit,
                                 "traceback": [f"CellTimeoutError: {limit}"]}
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        parts = split_hidden(cell.source) if (utils.is_grade(cell) and self.hidden_tests_in_grader
                                              and grade_id not in self.in_kernel_tests) else [(False, cell.source)]
        outputs = []
        for hidden, code in parts:
            if hidden:
                failure = self._run_hidden(code, index)
                if failure is not None:
                    outputs.append(failure)
                    break
            else:
                piece = copy.deepcopy(cell)
                piece.source = code
                ok = self._run_in_kernel(piece, index)
                outputs.extend(piece.outputs)
                cell.execution_count = piece.get("execution_count")
                if not ok or any(o.output_type == "error" for o in piece.outputs):
                    break
        if cell.metadata.get("coursegrade", {}).get("note"):
            outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=cell.metadata.coursegrade.note + "\n"))
        cell.outputs = outputs
        self._executed.append(index)
        return cell, self.resources

    def _run_hidden(self, code, index):
        """Run a hidden-test block in this process; an error output if it fails, else None."""
        self._broken = None
        failure = None
        try:
            remote.run_hidden_block(code, _KernelRPC(self, index))
        except remote.RemoteError as exc:
            failure = error_output("GradingError", str(exc))
        except Exception as exc:  # a failed check, or the student's error, as a message
            failure = error_output(type(exc).__name__, str(exc))
        if self._broken:
            ename, why = self._broken
            self._broken = None
            self._restart(self._culprit(index), why)
            return error_output(ename, why)
        return failure

    def _run_in_kernel(self, cell, index, replay=False):
        """Execute ``cell`` in the kernel; False if the kernel had to be replaced."""
        try:
            self._execute(cell, index, store_history=not replay)
        except DeadKernelError:
            if replay:
                raise
            cell.outputs.append(error_output(
                "KernelDied", "the kernel stopped while running this cell (os._exit, exit(), a crash, or the "
                              "CPU/memory limit); the cells after it ran in a fresh kernel, without this one"))
            self._restart(self._culprit(index), "the kernel died")
            return False
        except CellTimeoutError:
            cell.outputs.append(error_output(
                "CellTimeoutError", f"this cell did not stop when interrupted at the time limit of {self.timeout} s: "
                                    "the kernel was replaced by a fresh one, and the cells before it were run again"))
            if not replay:
                self._restart(self._culprit(index), "timeout")
            return False
        if self._ask_exit:  # exit()/quit(): the kernel replied and is about to stop
            self._ask_exit = False
            if replay:
                return True
            cell.outputs.append(error_output(
                "KernelDied", "this cell ended the kernel (exit() or quit()); the cells after it ran in a fresh "
                              "kernel, without this one"))
            self._restart(index, "exit()")
            return False
        if replay:
            return True
        timed_out = any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in cell.outputs)
        if timed_out and not self._responsive():
            cell.outputs.append(error_output(
                "CellTimeoutError", "the kernel did not stop when interrupted: it was replaced by a fresh one, "
                                    "and the cells before this one were run again"))
            self._restart(index, "unresponsive")
            return False
        strays = self._stray_processes()
        if strays:
            cell.outputs.append(error_output(
                "ProcessLimitError", f"this cell left {strays} extra processes running (a fork bomb?): they "
                                     "were stopped with the kernel, and the cells after it ran in a fresh kernel"))
            self._restart(index, "processes left behind")
            return False
        return True

    # --------------------------------------------------------------- kernels

    def on_cell_executed(self, **kwargs):
        reply = kwargs.get("execute_reply") or {}
        content = reply.get("content", {})
        if content.get("status") == "error":  # the kernel writes the reply: keep a bounded copy of its error
            tb = content.get("traceback")
            tb = [str(line)[:2000] for line in tb[:50]] if isinstance(tb, list) else []
            content.update(ename=str(content.get("ename", ""))[:200], evalue=str(content.get("evalue", ""))[:2000],
                           traceback=tb)
        super().on_cell_executed(**kwargs)
        payloads = reply.get("content", {}).get("payload", []) or []
        for payload in payloads[:10] if isinstance(payloads, list) else []:
            if isinstance(payload, dict) and payload.get("source") == "ask_exit" and not payload.get("keepkernel"):
                self._ask_exit = True

    def _execute(self, cell, index, **kwargs):
        """``execute_cell`` on a cell that is not (or not yet) the notebook's own: nbclient stores the
        cell it ran at ``nb.cells[index]``, so put the notebook's cell back afterwards."""
        own = self.nb.cells[index]
        try:
            return self.execute_cell(cell, index, **kwargs)
        finally:
            self.nb.cells[index] = own

    def _responsive(self, timeout=10):
        probe = nbformat.v4.new_code_cell("pass")
        saved, self.timeout = self.timeout, timeout
        try:
            self._execute(probe, 0, store_history=False)
        except (DeadKernelError, CellTimeoutError):
            return False
        finally:
            self.timeout = saved
        return not any(o.output_type == "error" and o.ename == "CellTimeoutError" for o in probe.outputs)

    def _kernel_alive(self):
        try:
            return self.km is not None and bool(run_sync(self.km.is_alive)())
        except Exception:
            return False

    def _sandbox_uid(self):
        if self.unsafe or self.km is None:
            return None
        try:
            with open(os.path.dirname(self.km.ip) + ".uid") as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def _stray_processes(self):
        """Processes of this kernel's sandbox beyond the kernel itself (only visible when we are root)."""
        uid = self._sandbox_uid()
        if uid is None or os.geteuid() != 0:
            return 0
        count = len(sandbox.processes_of(uid))
        return max(0, count - self.max_processes_after_cell)

    def _culprit(self, index):
        """The cell to leave out when replaying: a grade cell's own code is the instructor's, so when the
        kernel dies in one, the student's cell that ran before it is to blame (``exit()`` ends the kernel
        only after its cell replied; a function that kills the kernel is defined there)."""
        if not utils.is_grade(self.nb.cells[index]):
            return index
        for i in reversed(self._executed):
            if i < index and not utils.is_grade(self.nb.cells[i]) and not utils.is_locked(self.nb.cells[i]):
                c = self.nb.cells[i]
                if not any(o.output_type == "error" and o.ename == "KernelDied" for o in c.get("outputs", [])):
                    c.outputs.append(error_output(
                        "KernelDied", "the kernel died right after this cell, or when the grader called code "
                                      "defined here; the cells after it ran in a fresh kernel, without this one"))
                return i
        return index

    def _restart(self, bad_index, why):
        """Replace the kernel and replay the cells run so far, except the ones that broke it."""
        self._bad.add(bad_index)
        self._restarts += 1
        self._cleanup_kernel()
        if self._restarts > self.max_restarts:
            self._gave_up = (f"not run: the kernel had to be restarted more than {self.max_restarts} times "
                             f"(last: {why})")
            return
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        self.wait_for_reply(self.kc.kernel_info())
        for i in self._executed:
            if i in self._bad:
                continue
            cell = copy.deepcopy(self.nb.cells[i])
            if utils.is_grade(cell):
                cell.source = "".join(code for hidden, code in split_hidden(cell.source) if not hidden)
            if not cell.source.strip():
                continue
            try:
                self._run_in_kernel(cell, i, replay=True)
            except DeadKernelError:
                self._cleanup_kernel()
                self._gave_up = "not run: the kernel died again while the earlier cells were replayed"
                return

    def _cleanup_kernel(self):
        if self.km is None:
            return
        try:
            super()._cleanup_kernel()
        except Exception as exc:  # a dead kernel may refuse a clean shutdown
            self.log.warning("kernel cleanup: %s", exc)
            self.km = self.kc = None

    # ------------------------------------------------------------------- RPC

    def _rpc(self, req, index):
        cell = nbformat.v4.new_code_cell(remote.kernel_code(req))
        if self._broken:
            raise remote.RemoteError(self._broken[1])
        self._rpc_active, self._rpc_result, self._rpc_bytes = True, None, 0
        try:
            self._execute(cell, index, store_history=False)
        except (DeadKernelError, CellTimeoutError):
            self._broken = ("KernelDied", "the kernel stopped while the grader was calling your code (os._exit, "
                                          "exit(), a crash, or the CPU/memory limit)")
            raise remote.RemoteError(self._broken[1]) from None
        finally:
            self._rpc_active = False
        result, self._rpc_result = self._rpc_result, None
        if self._ask_exit:
            self._ask_exit = False
            self._broken = ("KernelDied", "your code called exit() when the grader called it")
            raise remote.RemoteError(self._broken[1])
        for out in cell.outputs:
            if out.output_type == "error":
                if out.ename == "CellTimeoutError":
                    self._broken = ("CellTimeoutError", f"your code did not return within {self.timeout} s when "
                                                        "the grader called it")
                    raise remote.RemoteError(self._broken[1])
                raise remote.RemoteError(f"the grader could not call your code: {str(out.ename)[:100]}: "
                                         f"{str(out.evalue)[:1000]}")
        if result is None:
            if self._rpc_bytes > MAX_REPLY:
                raise remote.RemoteError("your code returned more data than the grader accepts")
            raise remote.RemoteError("the grader got no answer from your kernel")
        data = result.get("content", {}).get("data", {})
        reply = parse_reply(data.get("text/plain", "") if isinstance(data, dict) else "")
        if reply.get("status") == "error":
            raise _student_exception(str(reply.get("ename", "Exception"))[:100], str(reply.get("evalue", ""))[:2000])
        return reply


def _student_exception(ename, evalue):
    """An exception of the student's type name (builtin types keep their class, so checks can tell)."""
    cls = getattr(__import__("builtins"), str(ename), None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(str(ename), (Exception,), {})
    try:
        return cls(evalue)
    except Exception:
        return type(str(ename), (Exception,), {})(evalue)
