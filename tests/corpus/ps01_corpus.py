"""A class of broken and hostile ps01 submissions, with the score and message each must end with.

ps01's grade cells: test-hand-t0 2, test-hand-t1 2, test-split 2, test-step 3, test-forward 3,
test-count 2 (14 points). Every hostile piece sits in one answer cell; the other answers are the
worked solution, so "full credit for untouched correct parts" is checkable per case.

Each case: ``CASES[student] = Case(build, score, messages)`` where ``build(course)`` writes the
submission, ``score`` is the expected total (``None``: checked by the test itself), and ``messages``
are texts the grading report must give for that student (and the feedback page must show).
"""
import json
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
own = os.path.realpath(os.getcwd())   # its own scratch folder is no leak
found = [f for f in found if not os.path.realpath(f).startswith(own + os.sep)]
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


def cases(network_port=5432, canary="/tmp/coursegrade-canary.txt"):
    return {
        "correct": Case(with_answers(), FULL),
        "wrong": Case(with_answers(step=WRONG_STEP, split="def split_weights(W, hidden_size):\n    return W[hidden_size:], W[:hidden_size]\n",
                                   **{"hand-t1": "s1 = np.array([0.56, -0.30])\ny1 = 1.30\n"}),
                      4, ["largest error", "split_weights: output W_ih", "s1 (state at t1)"]),
        "blank": Case(lambda course, student: make_submission(course, PS, student), 0, ["is not implemented yet"]),
        "syntax-error": Case(with_answers(step="def rnn_step(x, h_prev, W_ih, W_hh, b_ih, b_hh)\n    return x\n"), FULL - 6,
                             ["SyntaxError", "name 'rnn_step' is not defined"]),
        "infinite-loop": Case(with_answers(count=prepend("count", "while True:\n    pass\n")), FULL - 2,
                              ["CellTimeoutError"]),
        "fork-bomb": Case(with_answers(count=prepend("count", FORK_BOMB)), FULL - 2, ["count (answer cell)"]),
        "memory-bomb": Case(with_answers(count=prepend("count", MEMORY_BOMB)), FULL - 2, ["MemoryError"]),
        "os-exit": Case(with_answers(count=prepend("count", "import os\nos._exit(0)\n")), FULL - 2, ["KernelDied"]),
        "sys-exit": Case(with_answers(split=prepend("split", "import sys\nsys.exit(1)\n")), FULL - 2, ["SystemExit"]),
        "exit-builtin": Case(with_answers(split=prepend("split", "exit()\n")), FULL - 2, ["KernelDied"]),
        "tampered-test": Case(edit_notebook(tampered), FULL - 6, ["largest error"]),
        "deleted-test": Case(edit_notebook(deleted_test), FULL - 6, ["was missing from the submission", "largest error"]),
        "deleted-answer": Case(edit_notebook(deleted_answer), FULL - 6, ["name 'rnn_step' is not defined"]),
        "renamed": Case(renamed, FULL, ["submitted as my_homework.ipynb"]),
        "missing": Case(missing, 0, ["no ps01.ipynb in the submission"]),
        "not-json": Case(not_json, 0, ["is not a valid notebook"]),
        "calls-reference": Case(with_answers(step=CALLS_REFERENCE), FULL - 6, ["calls the rnnlib reference"]),
        "monkeypatch": Case(with_answers(step=MONKEYPATCH), FULL - 6, ["largest error"]),
        "reference-detector-off": Case(with_answers(step=REFERENCE_AND_PATCHED_DETECTOR), FULL - 6,
                                       ["calls the rnnlib reference"]),
        "snoop": Case(with_answers(**{"hand-t0": append("hand-t0", SNOOP), "count": append("count", SNOOP_LATER)}), FULL,
                      [], note="SNOOP-NOTHING and HIDDEN-NOT-SEEN in its outputs"),
        "write-gradebook": Case(with_answers(**{"hand-t0": append("hand-t0", WRITE_GRADEBOOK.replace("{canary}", canary))}), FULL, [],
                                note="WROTE-NOTHING in its outputs"),
        "network": Case(with_answers(**{"hand-t0": append("hand-t0", NETWORK.format(port=network_port))}), FULL, [],
                        note="NETWORK-BLOCKED in its outputs"),
        "output-flood": Case(edit_notebook(flood_cell), FULL, [], note="output cut to the limit (or the cell stopped)"),
        "huge-file": Case(with_answers(count=append("count", HUGE_FILE)), FULL, ["File too large"]),
        "stubborn-loop": Case(with_answers(forward=append("forward", STUBBORN_LOOP)), FULL - 3,
                              ["did not stop when interrupted"]),
        "time-hog": Case(with_answers(**{gid: prepend(gid, TIME_HOG) for gid in
                                         ("hand-t0", "hand-t1", "split", "step", "forward", "count")}), None,
                         ["time limit"]),
    }


def notebook_text(course, student):
    """All outputs of the student's autograded notebook, as text."""
    path = course / "autograded" / student / PS / f"{PS}.ipynb"
    nb = json.loads(path.read_text())
    return "\n".join(json.dumps(c.get("outputs", [])) for c in nb["cells"] if c["cell_type"] == "code")
