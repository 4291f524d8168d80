"""nbgrader's Execute preprocessor, hardened for untrusted notebooks.

``SandboxedExecute`` replaces ``nbgrader.preprocessors.Execute`` in ``Autograde.autograde_preprocessors``
(the course's ``nbgrader_config.py`` does that), so plain ``nbgrader autograde`` gets it too. It

* refuses to run anything unless the sandbox works (``coursegrade.sandbox.preflight``), unless told
  ``COURSEGRADE_UNSAFE=1`` (``--unsafe``), which it announces loudly;
* starts the kernel from the ``rnn-sandbox`` spec over ``ipc`` sockets in a private folder, with the
  resource limits of :class:`coursegrade.sandbox.Limits`;
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
import ast
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import time

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute
from nbgrader import utils
from traitlets import Bool, Integer, List, Unicode

from . import remote, sandbox

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS[ \t]*$\n?",
                    re.MULTILINE | re.DOTALL)
_PREFLIGHT_OK = False


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
    memory_bytes = Integer(4 << 30, help="RLIMIT_AS").tag(config=True)
    processes = Integer(64, help="RLIMIT_NPROC for the sandbox uid").tag(config=True)
    file_bytes = Integer(64 << 20, help="RLIMIT_FSIZE").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._private_dirs = []

    # ------------------------------------------------------------------ setup

    @property
    def unsafe(self):
        return unsafe_requested()

    def limits(self):
        return sandbox.Limits(cpu_seconds=self.cpu_seconds or self.notebook_timeout, memory_bytes=self.memory_bytes,
                              processes=self.processes, file_bytes=self.file_bytes)

    def create_kernel_manager(self):
        if self.unsafe:
            self.kernel_name = "python3"
        km = super().create_kernel_manager()
        if not self.unsafe:
            private = tempfile.mkdtemp(prefix="cg-", dir="/tmp")
            self._private_dirs.append(private)
            km.transport = "ipc"
            km.ip = os.path.join(private, "k")
        return km

    async def async_start_new_kernel(self, **kwargs):
        if not self.unsafe:
            kwargs["env"] = {**os.environ, sandbox.LIMITS_ENV: self.limits().to_env()}
        return await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds the sync name to its own method

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
        self.timeout = min(self.timeout or self.notebook_timeout, self.notebook_timeout)
        self.error_on_timeout = {"ename": "CellTimeoutError",
                                 "evalue": f"this cell ran longer than the limit of {self.timeout} s per cell "
                                           "and was stopped",
                                 "traceback": [f"CellTimeoutError: this cell ran longer than the limit of "
                                               f"{self.timeout} s per cell and was stopped"]}
        self._deadline = time.monotonic() + self.notebook_timeout
        self._executed, self._bad, self._restarts, self._gave_up = [], set(), 0, None
        self._out_bytes, self._rpc_active, self._broken, self._ask_exit = {}, False, None, False
        try:
            return super().preprocess(nb, resources, km)
        finally:
            for d in self._private_dirs:
                shutil.rmtree(d, ignore_errors=True)
                if os.path.exists(d + ".uid"):
                    os.remove(d + ".uid")
            self._private_dirs = []

    # ---------------------------------------------------------------- limits

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        remaining = self._deadline - time.monotonic()
        if timeout is None:
            return max(1, int(remaining))
        return max(1, int(min(timeout, remaining)))

    def output(self, outs, msg, display_id, cell_index):
        if self._rpc_active:
            if msg["msg_type"] == "execute_result":
                return super().output(outs, msg, display_id, cell_index)
            return None  # prints of the student's function while the grader calls it
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._out_bytes.get(cell_index, 0)
        self._out_bytes[cell_index] = used + size
        if used + size > self.max_output_bytes:
            if used <= self.max_output_bytes:
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
        super().on_cell_executed(**kwargs)
        reply = kwargs.get("execute_reply") or {}
        for payload in reply.get("content", {}).get("payload", []) or []:
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
        self._rpc_active = True
        try:
            self._execute(cell, index, store_history=False)
        except (DeadKernelError, CellTimeoutError):
            self._broken = ("KernelDied", "the kernel stopped while the grader was calling your code (os._exit, "
                                          "exit(), a crash, or the CPU/memory limit)")
            raise remote.RemoteError(self._broken[1]) from None
        finally:
            self._rpc_active = False
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
                raise remote.RemoteError(f"the grader could not call your code: {out.ename}: {out.evalue}")
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        if not results:
            raise remote.RemoteError("the grader got no answer from your kernel")
        text = results[-1].get("data", {}).get("text/plain", "")
        if len(text) > remote.MAX_REPLY:
            raise remote.RemoteError("your code returned more data than the grader accepts")
        try:
            reply = json.loads(ast.literal_eval(text))
        except (ValueError, SyntaxError, TypeError):
            raise remote.RemoteError("the grader got a malformed answer from your kernel") from None
        if not isinstance(reply, dict):
            raise remote.RemoteError("the grader got a malformed answer from your kernel")
        if reply.get("status") == "error":
            raise _student_exception(reply.get("ename", "Exception"), reply.get("evalue", ""))
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
