"""A class of broken and hostile ps01 submissions, with the score and message each must end with.

ps01's grade cells: test-hand-t0 2, test-hand-t1 2, test-split 2, test-step 3, test-forward 3,
test-padded 2 (14 points). Every hostile piece sits in one answer cell; the other answers are the
worked solution, so "full credit for untouched correct parts" is checkable per case.

Each case: ``CASES[student] = Case(build, score, messages)`` where ``build(course)`` writes the
submission, ``score`` is the expected total (``None``: checked by the test itself), and ``messages``
are texts the grading report must give for that student (and the feedback page must show).
"""
import json
import os
import shutil
import textwrap
from dataclasses import dataclass, field

import nbformat

from nbgrader_helpers import answer_cells, make_submission, solution_answers

PS = "ps01"
FULL = 14
# Limits the test grades with (see tests/test_grading_corpus.py).
CELL_TIMEOUT = 6
NOTEBOOK_TIMEOUT = 30
MEMORY_MB = 2048
KERNEL_MEMORY_MB = 1024
# A wrong or missing rnn_step costs test-step (3) and test-forward (3: the forward calls it).
STEP_COST = 6
FILE_MB = 16


@dataclass
class Case:
    build: object
    score: object
    messages: list = field(default_factory=list)
    note: str = ""


def good():
    return solution_answers(PS)


def with_answers(**changes):
    def build(course, student):
        make_submission(course, PS, student, {**good(), **changes})
    return build


def prepend(grade_id, code):
    """The solution's answer for ``grade_id`` with ``code`` run before it."""
    return textwrap.dedent(code) + "\n" + good()[grade_id]


def append(grade_id, code):
    return good()[grade_id] + "\n" + textwrap.dedent(code)


def edit_notebook(edit):
    """Build from the solved release, then ``edit(nb)`` the notebook node."""
    def build(course, student):
        nb = nbformat.read(course / "exercises" / PS / f"{PS}.ipynb", as_version=4)
        for gid, cell in answer_cells(nb).items():
            cell.source = good()[gid]
        edit(nb)
        make_submission(course, PS, student, notebook=nbformat.writes(nb))
    return build


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


WRONG_STEP = '''def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T)   # forgot b_hh
'''


def tampered(nb):
    _cell(nb, "step").source = WRONG_STEP
    test = _cell(nb, "test-step")
    test.source = "# asserts removed\npass\n"


def deleted_test(nb):
    _cell(nb, "step").source = WRONG_STEP
    nb.cells.remove(_cell(nb, "test-step"))


def deleted_answer(nb):
    nb.cells.remove(_cell(nb, "step"))


def flood_cell(nb):
    """A cell of the student's own (no nbgrader metadata) that prints 100 MB."""
    at = nb.cells.index(_cell(nb, "hand-t0")) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(FLOOD))


def renamed(course, student):
    target = make_submission(course, PS, student, good())
    (target / f"{PS}.ipynb").rename(target / "my_homework.ipynb")


def missing(course, student):
    target = course / "submitted" / student / PS
    target.mkdir(parents=True)
    (target / "README.txt").write_text("I forgot to attach the notebook\n")


def not_json(course, student):
    nb = (course / "exercises" / PS / f"{PS}.ipynb").read_text()
    make_submission(course, PS, student, notebook=nb[: len(nb) // 2])  # cut off in the middle


CALLS_REFERENCE = '''from rnnlib.cells import rnn_step_forward

def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return rnn_step_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)[0]
'''

# Wrong answer + everything a student could do in the kernel to make the hidden tests pass anyway.
MONKEYPATCH = WRONG_STEP + '''
import builtins, numpy.testing, checks.grading
numpy.testing.assert_allclose = lambda *a, **k: None
checks.grading.check_function = lambda *a, **k: 3
checks.grading.compare_arrays = lambda *a, **k: None
checks.grading.compare_outputs = lambda *a, **k: None
class _Never(Exception):
    pass
builtins.AssertionError = _Never
checks.grading.GradingError = _Never
# rewrite every later cell: drop the hidden checks before they run
get_ipython().input_transformers_cleanup.append(lambda lines: [l for l in lines if "checks." not in l])
'''

# Calls the reference and switches the reference-call detector off in the kernel.
REFERENCE_AND_PATCHED_DETECTOR = CALLS_REFERENCE + '''
import contextlib, checks.grading
checks.grading.reference_code = lambda: set()
checks.grading.watch_calls = lambda codes: contextlib.nullcontext([])
'''

SNOOP = '''
import glob, os
found = []
for pattern in ["../../../solutions/*/*.ipynb", "../../../gradebook.db", "../../*/ps01/*.ipynb", "../../../source/*/*.ipynb"]:
    found += glob.glob(pattern)
skip = {"proc", "sys", "usr", "dev", "etc", "site-packages", "lib", "lib64", ".venv", ".pyenv", "node_modules", ".git"}
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if d not in skip]
    for f in files:
        if f == "gradebook.db" or (f.endswith(".ipynb") and "autograded" not in root):
            found.append(os.path.join(root, f))
# its own folder too: nbgrader's copy of the notebook (hidden tests restored) must not be there
for f in glob.glob("*") + glob.glob(".*") + glob.glob("**/*.ipynb", recursive=True):
    try:
        if "HIDDEN TESTS" in open(f, errors="replace").read() or f.endswith(".ipynb"):
            found.append(f)
    except OSError:
        pass
print("SNOOP-FOUND" if found else "SNOOP-NOTHING", found[:5])
_seen_cells = []
get_ipython().events.register("pre_run_cell", lambda info: _seen_cells.append(info.raw_cell))
'''
SNOOP_LATER = '''
seen = [c for c in _seen_cells if ("checks." in c or "HIDDEN TESTS" in c) and "_seen_cells" not in c]
print("HIDDEN-SEEN" if seen else "HIDDEN-NOT-SEEN", seen[:1])
'''

WRITE_GRADEBOOK = '''
import os, sqlite3
written = []
for path in ["../../../gradebook.db", "../../../grades.csv", "../../../solutions/ps01/ps01.ipynb",
             "../../other/ps01/ps01.ipynb", "{canary}"]:
    try:
        with open(path, "a") as f:
            f.write("hacked")
        written.append(path)
    except OSError:
        pass
try:
    db = sqlite3.connect("../../../gradebook.db")
    db.execute("UPDATE grade SET manual_score = 100")
    db.commit()
    written.append("sqlite")
except Exception:
    pass
print("WROTE" if written else "WROTE-NOTHING", written)
'''

NETWORK = '''
import socket, urllib.request
reached = []
for host, port in [("127.0.0.1", {port}), ("127.0.0.1", 22), ("localhost", {port}), ("8.8.8.8", 53)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached.append((host, port))
    except OSError:
        pass
try:
    urllib.request.urlopen("http://example.com", timeout=2)
    reached.append("example.com")
except Exception:
    pass
print("NETWORK-REACHED" if reached else "NETWORK-BLOCKED", reached)
'''

FLOOD = '''
import sys
for _ in range(100):
    sys.stdout.write("x" * (1 << 20))
'''

HUGE_FILE = '''
with open("huge.bin", "wb") as f:
    for _ in range(64):
        f.write(b"0" * (1 << 24))   # 1 GiB in all
'''

FORK_BOMB = '''
import os
while True:
    os.fork()
'''

MEMORY_BOMB = '''
blocks = []
while True:                      # asks for memory faster than it could touch it: the address-space limit stops it
    blocks.append(np.empty(256 << 20, dtype=np.uint8))
    blocks[-1][:: 1 << 20] = 1
'''

STUBBORN_LOOP = '''
import time
while True:            # ignores the interrupt: the kernel must be replaced
    try:
        time.sleep(100)
    except KeyboardInterrupt:
        pass
'''

TIME_HOG = f'''
import time
time.sleep({CELL_TIMEOUT} - 1)
'''


# ---- finding 1: code for the launcher, which runs as root outside the sandbox ------------------------
PLANTED = """import os
try:
    open(os.path.join({canary_dir!r}, "PLANTED-RAN-" + __name__), "w").write("ran as root")
except Exception:
    pass
"""
PLANT_AND_RESTART = '''
import os
for name in ["coursegrade/__init__.py", "coursegrade/sandbox.py", "json.py", "signal.py", "subprocess.py",
             "sitecustomize.py"]:
    os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
    with open(name, "w") as f:
        f.write({planted!r})
os._exit(0)   # the executor restarts the kernel: its launcher must not import what is here
'''


def extra_files(files):
    """The solved release plus extra files ``{relative path: text}`` in the submission folder."""
    def build(course, student):
        target = make_submission(course, PS, student, good())
        for rel, text in files.items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_text(text)
    return build


# ---- finding 2: the kernel's folder and what nbgrader reads back ----------------------------------------
LEAVE_LINKS = '''
import os
made = []
for target, name in [("../../../solutions/ps01/ps01.ipynb", "sol.ipynb"), ("/etc/passwd", "passwd.txt"),
                     ("../../../gradebook.db", "gradebook.db"), ("../../other/ps01/ps01.ipynb", "other.ipynb"),
                     ({canary!r}, "canary.txt"), ("/", "root")]:
    try:
        os.symlink(target, name)
        made.append(name)
    except OSError:
        pass
for name in ["ps01.ipynb", "fifo"]:
    try:
        os.mkfifo(name)
        made.append(name)
    except OSError:
        pass
print("LEFT", made)
'''


def submitted_link(target, name=None):
    """The solved release, plus a symbolic link ``name`` -> ``target`` (``name`` None: the notebook itself)."""
    def build(course, student):
        folder = make_submission(course, PS, student, good())
        link = folder / (name or f"{PS}.ipynb")
        if link.exists():
            link.unlink()
        os.symlink(target.format(course=course), link)
    return build


def submitted_fifo(course, student):
    folder = make_submission(course, PS, student, good())
    (folder / f"{PS}.ipynb").unlink()
    os.mkfifo(folder / f"{PS}.ipynb")


def submitted_hardlink(canary):
    def build(course, student):
        folder = make_submission(course, PS, student, good())
        os.link(canary, folder / "notes.txt")
    return build


def student_folder_link(course, student):
    """The student's whole folder is a link to another student's."""
    other = course / "submitted" / (student + "-target")
    make_submission(course, PS, other.name, good())
    shutil.move(str(other), str(course / "hidden-target"))
    os.symlink(course / "hidden-target", course / "submitted" / student)


# ---- finding 3: bytes from the kernel -------------------------------------------------------------------
RAW_FD_FLOOD = '''
import os, sys
chunk = b"y" * (1 << 20)
fds = {getattr(s, "_original_stdstream_copy", None) for s in (sys.stdout, sys.stderr)} - {None}
for _ in range(100):            # 200 MB to the kernel process's own stdout/stderr (behind ipykernel's back)
    for fd in fds:
        try:
            os.write(fd, chunk)
        except OSError:
            pass
print("RAW-FDS", sorted(fds))
'''
REPLY_BOMB = '''def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    return [[1] * (1 << 15)] * 16      # 512 Ki list items: about 6 MB of JSON, past the cap on an answer
'''
RESULTS_DURING_RPC = '''import sys
_flooded = []
def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh):
    if not _flooded:             # the first call: 40 MB of execute_result messages while the grader waits
        _flooded.append(1)
        for _ in range(40):
            sys.displayhook("z" * (1 << 20))
    return np.tanh(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
'''
DISPLAY_UPDATES = '''
from IPython.display import display
handle = display("start", display_id=True)
for _ in range(30):              # 30 MB of update_display_data rewriting the output above
    handle.update("u" * (1 << 20))
'''
WIDGET_STATE = '''
from ipykernel.comm import Comm
for i in range(30):              # 30 MB of comm/widget state
    Comm(target_name="jupyter.widget", data={"state": {"_model_module": "x", "_model_name": "y",
                                                       "value": "w" * (1 << 20)}, "buffer_paths": []})
'''
MANY_PROCESS_MEMORY = '''
import os, signal, time
kids = []
for i in range(3):               # each child under the per-process limit, together over the kernel's memory
    pid = os.fork()
    if pid == 0:
        block = bytearray(500 << 20)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(2)
        os._exit(0)
    kids.append(pid)
killed, deadline = 0, time.monotonic() + {seconds}
while kids and time.monotonic() < deadline:
    for pid in list(kids):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            kids.remove(pid)
            killed += os.WIFSIGNALED(status)
    time.sleep(0.05)
for pid in kids:                 # not finished in time: stopped here, so that the cell ends cleanly
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("CHILDREN-KILLED", killed, "UNFINISHED", len(kids))
'''.replace("{seconds}", str(CELL_TIMEOUT - 1.5))


def own_cell(code, after="hand-t0"):
    """The solved release with a cell of the student's own (no nbgrader metadata) after ``after``."""
    def edit(nb):
        nb.cells.insert(nb.cells.index(_cell(nb, after)) + 1, nbformat.v4.new_code_cell(code))
    return edit_notebook(edit)

# ---- finding 6: stored XSS ------------------------------------------------------------------------------
XSS_MARKDOWN = ('XSS-MD <script>alert("md")</script> <img src=x onerror=alert("img")> '
                '[click](javascript:alert("link")) <a href="javascript:alert(1)">a</a>')
XSS_OUTPUT = '''
from IPython.display import HTML, Markdown, Javascript, display
display(HTML('<b>XSS-HTML</b><script>alert("html")</script><img src=x onerror=alert("out")>'))
display(Markdown('[m](javascript:alert("mdout"))'))
display(Javascript('alert("js")'))
'''
XSS_NAME = 'x<img src=x onerror=alert(1)>[y](javascript:alert(2)).ipynb'


def xss(course, student):
    nb = nbformat.read(course / "exercises" / PS / f"{PS}.ipynb", as_version=4)
    for gid, cell in answer_cells(nb).items():
        cell.source = good()[gid] + (XSS_OUTPUT if gid == "hand-t0" else "")
    nb.cells.insert(2, nbformat.v4.new_markdown_cell(XSS_MARKDOWN))
    target = make_submission(course, PS, student, notebook=nbformat.writes(nb))
    (target / f"{PS}.ipynb").rename(target / XSS_NAME)


def cases(network_port=5432, canary="/tmp/coursegrade-canary.txt"):
    canary_dir = os.path.dirname(canary)
    refused = "was refused"
    return {
        "correct": Case(with_answers(), FULL),
        "wrong": Case(with_answers(step=WRONG_STEP, split="def split_weights(W, hidden_size):\n    return W[hidden_size:], W[:hidden_size]\n",
                                   **{"hand-t1": "h1 = np.array([0.56, -0.30])\ny1 = 1.30\n"}),
                      4, ["largest error", "split_weights: output W_ih", "h1 (state at t1)"]),
        "blank": Case(lambda course, student: make_submission(course, PS, student), 0, ["is not implemented yet"]),
        "syntax-error": Case(with_answers(step="def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh)\n    return x\n"), FULL - STEP_COST,
                             ["SyntaxError", "name 'rnn_step' is not defined"]),
        "infinite-loop": Case(with_answers(padded=prepend("padded", "while True:\n    pass\n")), FULL - 2,
                              ["CellTimeoutError"]),
        "fork-bomb": Case(with_answers(padded=prepend("padded", FORK_BOMB)), FULL - 2, ["padded (answer cell)"]),
        "memory-bomb": Case(with_answers(padded=prepend("padded", MEMORY_BOMB)), FULL - 2, ["padded (answer cell)"]),
        "os-exit": Case(with_answers(padded=prepend("padded", "import os\nos._exit(0)\n")), FULL - 2, ["KernelDied"]),
        "sys-exit": Case(with_answers(split=prepend("split", "import sys\nsys.exit(1)\n")), FULL - 2, ["SystemExit"]),
        "exit-builtin": Case(with_answers(split=prepend("split", "exit()\n")), FULL - 2, ["KernelDied"]),
        "tampered-test": Case(edit_notebook(tampered), FULL - STEP_COST, ["largest error"]),
        "deleted-test": Case(edit_notebook(deleted_test), FULL - STEP_COST, ["was missing from the submission", "largest error"]),
        "deleted-answer": Case(edit_notebook(deleted_answer), FULL - STEP_COST, ["name 'rnn_step' is not defined"]),
        "renamed": Case(renamed, FULL, ["submitted as my_homework.ipynb"]),
        "missing": Case(missing, 0, ["no ps01.ipynb in the submission"]),
        "not-json": Case(not_json, 0, ["is not a valid notebook"]),
        "calls-reference": Case(with_answers(step=CALLS_REFERENCE), FULL - STEP_COST, ["calls the rnnlib reference"]),
        "monkeypatch": Case(with_answers(step=MONKEYPATCH), FULL - STEP_COST, ["largest error"]),
        "reference-detector-off": Case(with_answers(step=REFERENCE_AND_PATCHED_DETECTOR), FULL - STEP_COST,
                                       ["calls the rnnlib reference"]),
        "snoop": Case(with_answers(**{"hand-t0": append("hand-t0", SNOOP), "padded": append("padded", SNOOP_LATER)}), FULL,
                      [], note="SNOOP-NOTHING and HIDDEN-NOT-SEEN in its outputs"),
        "write-gradebook": Case(with_answers(**{"hand-t0": append("hand-t0", WRITE_GRADEBOOK.replace("{canary}", canary))}), FULL, [],
                                note="WROTE-NOTHING in its outputs"),
        "network": Case(with_answers(**{"hand-t0": append("hand-t0", NETWORK.format(port=network_port))}), FULL, [],
                        note="NETWORK-BLOCKED in its outputs"),
        "output-flood": Case(edit_notebook(flood_cell), FULL, [], note="output cut to the limit (or the cell stopped)"),
        "huge-file": Case(with_answers(padded=append("padded", HUGE_FILE)), FULL, ["File too large"]),
        "stubborn-loop": Case(with_answers(forward=append("forward", STUBBORN_LOOP)), FULL - 3,
                              ["did not stop when interrupted"]),
        # finding 1
        "plant-and-restart": Case(with_answers(padded=prepend("padded", PLANT_AND_RESTART.format(
            planted=PLANTED.format(canary_dir=canary_dir)))), FULL - 2, ["KernelDied"]),
        "extra-file-modules": Case(extra_files({"coursegrade/__init__.py": PLANTED.format(canary_dir=canary_dir),
                                                "coursegrade/sandbox.py": PLANTED.format(canary_dir=canary_dir),
                                                "sitecustomize.py": PLANTED.format(canary_dir=canary_dir)}), FULL),
        # finding 2
        "leave-links": Case(with_answers(**{"hand-t0": append("hand-t0", LEAVE_LINKS.format(canary=canary))}), FULL),
        "submitted-link-solutions": Case(submitted_link("{course}/solutions/ps01/ps01.ipynb"), 0,
                                         [refused, "symbolic link"]),
        "submitted-link-data": Case(submitted_link("../../../gradebook.db", "data.csv"), 0, [refused, "symbolic link"]),
        "submitted-link-device": Case(submitted_link("/dev/zero", "zeros.bin"), 0, [refused, "symbolic link"]),
        "submitted-fifo": Case(submitted_fifo, 0, [refused, "named pipe"]),
        "submitted-hardlink": Case(submitted_hardlink(canary), 0, [refused, "hard link"]),
        "folder-link": Case(student_folder_link, 0, [refused, "the student's folder is a symbolic link"]),
        # finding 3
        "raw-fd-flood": Case(own_cell(RAW_FD_FLOOD), FULL),
        "reply-bomb": Case(with_answers(step=REPLY_BOMB), FULL - STEP_COST, ["more data than the grader accepts"]),
        "results-during-rpc": Case(with_answers(step=RESULTS_DURING_RPC), FULL),
        "display-updates": Case(with_answers(padded=append("padded", DISPLAY_UPDATES)), FULL),
        "widget-state": Case(with_answers(padded=append("padded", WIDGET_STATE)), FULL),
        "many-process-memory": Case(own_cell(MANY_PROCESS_MEMORY), FULL, [], note="CHILDREN-KILLED >= 1"),
        # finding 6
        "xss": Case(xss, FULL, ["submitted as x<img"]),
        "time-hog": Case(with_answers(**{gid: prepend(gid, TIME_HOG) for gid in
                                         ("hand-t0", "hand-t1", "split", "step", "forward", "padded")}), None,
                         ["time limit"]),
    }


def notebook_text(course, student):
    """All outputs of the student's autograded notebook, as text."""
    path = course / "autograded" / student / PS / f"{PS}.ipynb"
    nb = json.loads(path.read_text())
    return "\n".join(json.dumps(c.get("outputs", [])) for c in nb["cells"] if c["cell_type"] == "code")
