"""Issue 11, findings 4 and 5: answers that call the rnnlib reference, and answers that fool a check
which trusted the student on both sides, must score 0; the solutions keep full marks.

Finding 4's attacks switched off the kernel-side profiler that used to watch for reference calls
(``sys.setprofile(None)``, replacing ``sys.setprofile``, an input transformer editing the RPC reply) or
called reference modules it did not watch (ps04's ``StandardScaler`` and ``rnnlib.train``, ps05's
``rnnlib.truncated``). Now the kernel's ``rnnlib`` is the restricted package of
:func:`checks.allowlist.build_student_rnnlib`: the reference a set grades is not there to call.

Two ways to run a submission:

* :class:`RestrictedKernel` (always): a Jupyter kernel with the set's restricted rnnlib first on its
  path, the notebook's cells run in it, hidden tests run here in the grader through
  :mod:`coursegrade.remote`, as the course's grader does. No sandbox, so the real rnnlib is still on
  disk behind it (attacks that go looking for it belong to the sandboxed run).
* the real ``nbgrader autograde`` with the course's sandbox (when bubblewrap is installed and the
  sandbox gives the kernel the restricted package): the same attacks, plus one that looks for the real
  rnnlib's files.
"""
import os
import shutil

import nbformat
import pytest

from nbgrader_helpers import ROOT, autograde, course_copy, make_submission, solution_answers
from checks import allowlist
from coursegrade import execute, remote

# ------------------------------------------------------------------------------------------------
# Attacks (answer cells, by grade id)

STEP_ARGS = "x, h_prev, W_ih, W_hh, b_ih, b_hh"
PS01_ATTACKS = {
    # the profiler switched off inside the answer
    "setprofile-none": f'''import sys
from rnnlib.cells import rnn_step_forward

def rnn_step({STEP_ARGS}):
    sys.setprofile(None)
    return rnn_step_forward({STEP_ARGS})[0]
''',
    # sys.setprofile replaced before the grader calls; the reference imported when called
    "setprofile-replaced": f'''import sys
sys.setprofile = lambda *a: None
sys.getprofile = lambda: None

def rnn_step({STEP_ARGS}):
    from rnnlib import cells
    return cells.rnn_step_forward({STEP_ARGS})[0]
''',
    # an input transformer that edits every later cell, the grader's RPC code included
    "transformer": f'''get_ipython().input_transformers_cleanup.append(
    lambda lines: [l.replace('"called"', '"ignored"').replace("setprofile(", "len(") for l in lines])

def rnn_step({STEP_ARGS}):
    import importlib
    return importlib.import_module("rnnlib.cells").rnn_step_forward({STEP_ARGS})[0]
''',
}
# Looks for the real package's files (only the sandbox can stop this one: it hides them).
FIND_REAL = f'''import glob, importlib.util, os, sys
def _real_cells():
    places = [{str(ROOT / "rnnlib" / "cells.py")!r}] + [os.path.join(p, "rnnlib", "cells.py") for p in sys.path]
    for p in sys.path:  # an editable install's finder names the real folder
        for finder in glob.glob(os.path.join(p, "__editable__*rnnlib*finder.py")):
            places.append(os.path.join(open(finder).read().split("'rnnlib': '")[-1].split("'")[0], "cells.py"))
    for path in places:
        if os.path.exists(path) and "restricted" not in open(path).read(200):
            spec = importlib.util.spec_from_file_location("real_cells", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if hasattr(module, "rnn_step_forward"):
                return module
    raise ImportError("no real rnnlib here")

def rnn_step({STEP_ARGS}):
    return _real_cells().rnn_step_forward({STEP_ARGS})[0]
'''

PS03_ATTACKS = {
    # the five-point stencil stands in for rnnlib's; wrapped in a lambda to hide the caller from the probe
    "numgrad": '''import rnnlib.gradcheck as _g

def numerical_gradient(f, x, eps=1e-6):
    return _g.numerical_gradient(lambda: f(), x, eps)
''',
    "step": '''from rnnlib.cells import rnn_step_backward
''',
    "seq": '''import sys

def rnn_backward(dhs, cache):
    sys.setprofile(None)
    from rnnlib import sequence
    return sequence.rnn_backward(dhs, cache)
''',
}
PS04_ATTACKS = {
    "adam": '''from rnnlib import optim

class Adam(optim.Adam):
    pass
''',
    "epoch": '''def train_epoch(step_fn, optimizer, X, y, batch_size, seed):
    from rnnlib.train import iterate_minibatches
    losses = []
    for batch in iterate_minibatches(X, y, batch_size, seed=seed):
        loss, grads = step_fn(optimizer.params, batch)
        optimizer.step(grads)
        losses.append(loss)
    return sum(losses) / len(losses)
''',
    "scale": '''def scale_splits(X_train, X_val, X_test):
    from rnnlib.data import StandardScaler
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train), scaler.transform(X_val), scaler.transform(X_test),
            scaler.mean, scaler.std)
''',
}
PS05_ATTACKS = {
    "clip": '''def clip_grad_norm(grads, max_norm):
    from rnnlib.optim import clip_grad_norm as reference
    return reference(grads, max_norm)
''',
    "tbptt": '''def rnn_backward_truncated(dhs, x, h0, hs, W_ih, W_hh, k):
    from rnnlib import truncated
    return truncated.rnn_backward_truncated(dhs, (x, h0, hs, W_ih, W_hh), k)
''',
}
# Finding 5 (see tests/test_ps09.py for the same answers checked in-process).
PS09_CONSTANT_MODEL = '''class SequenceClassifier(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, seqs):
        return torch.zeros(len(seqs), 2)
'''
PS09_RULE_PREDICT = '''def train_classifier(seqs, labels, seed=0):
    torch.manual_seed(seed)  # keep this line: the grader passes the seed
    return SequenceClassifier(4, 8)


def predict(model, seqs):
    return torch.tensor([int(contains_pattern(s.argmax(1).tolist())) for s in seqs])
'''


# ------------------------------------------------------------------------------------------------
# A kernel with the restricted rnnlib; hidden tests in this process


class RestrictedKernel:
    """A Python kernel whose ``rnnlib`` is ``assignment``'s restricted package (first on its path)."""

    def __init__(self, assignment, tmp_path):
        from jupyter_client.manager import start_new_kernel

        lib = allowlist.build_student_rnnlib(assignment, tmp_path / "lib")
        work = tmp_path / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JPY_PARENT_PID")}
        env.update(PYTHONPATH=str(lib), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(work), env=env)

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def run(self, code, timeout=300):
        """Run ``code``; ``(last execute_result text, error "ename: evalue" or None)``."""
        result, error = [None], [None]

        def hook(msg):
            content = msg["content"]
            if msg["msg_type"] == "execute_result":
                result[0] = content["data"].get("text/plain")
            elif msg["msg_type"] == "error":
                error[0] = f"{content['ename']}: {content['evalue']}"

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout, store_history=False)
        if reply["content"]["status"] == "error" and error[0] is None:
            error[0] = f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}"
        return result[0], error[0]

    def request(self, req):
        """The grader's side of :mod:`coursegrade.remote` (as ``SandboxedExecute._rpc`` does it)."""
        text, error = self.run(remote.kernel_code(req))
        if error:
            raise remote.RemoteError(f"the grader could not call your code: {error}")
        reply = execute.parse_reply(text or "")
        if reply.get("status") == "error":
            raise type(str(reply.get("ename")), (Exception,), {})(reply.get("evalue"))
        return reply


def grade_in_restricted_kernel(assignment, answers, tmp_path):
    """Run the solution notebook of ``assignment`` with ``answers`` ({grade_id: source}) in place of its
    answers; ``{grade_id of each graded test cell: (points scored, points, error)}``."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    kernel = RestrictedKernel(assignment, tmp_path)
    scores = {}
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            meta = cell.metadata.get("nbgrader", {})
            source = answers.get(meta.get("grade_id"), cell.source) if meta.get("solution") else cell.source
            error = None
            for hidden, code in execute.split_hidden(source):
                if hidden:
                    try:
                        remote.run_hidden_block(code, kernel)
                    except BaseException as exc:  # noqa: BLE001 (what the hidden block raised)
                        error = f"{type(exc).__name__}: {exc}"
                else:
                    _, error = kernel.run(code)
                if error:
                    break
            if meta.get("grade") and not meta.get("solution"):
                points = float(meta["points"])
                scores[meta["grade_id"]] = (0.0 if error else points, points, error or "")
    finally:
        kernel.close()
    return scores


def test_solutions_keep_full_marks_with_the_restricted_rnnlib(tmp_path):
    """The given code and visible tests of the sets that import from rnnlib work with its restricted copy."""
    for assignment in ("ps03", "ps04", "ps05"):
        scores = grade_in_restricted_kernel(assignment, {}, tmp_path / assignment)
        lost = {k: v[2] for k, v in scores.items() if v[0] < v[1]}
        assert scores and not lost, (assignment, lost)


@pytest.mark.parametrize("attack", sorted(PS01_ATTACKS))
def test_ps01_switching_the_detector_off_does_not_help(attack, tmp_path):
    scores = grade_in_restricted_kernel("ps01", {"step": PS01_ATTACKS[attack]}, tmp_path)
    assert scores["test-step"][0] == 0 and scores["test-forward"][0] == 0, scores
    assert "calls the rnnlib reference" in scores["test-step"][2], scores
    others = {k: scores[k] for k in ("test-hand-t0", "test-hand-t1", "test-split")}
    assert all(v[0] == v[1] for v in others.values()), others


@pytest.mark.parametrize("assignment, attacks", [("ps03", PS03_ATTACKS), ("ps04", PS04_ATTACKS),
                                                 ("ps05", PS05_ATTACKS)])
def test_calling_the_graded_reference_scores_0(assignment, attacks, tmp_path):
    """ps03 backward, ps04 optimiser/training loop/scaler, ps05 clipping/truncated BPTT: every answer
    that calls the reference scores 0 for its cell (and cells graded through it); the rest full marks."""
    scores = grade_in_restricted_kernel(assignment, attacks, tmp_path)
    lost = {k for k, v in scores.items() if v[0] < v[1]}
    attacked = {f"test-{gid}" for gid in attacks}
    through = {"ps04": {"test-weather"}}.get(assignment, set()) & set(scores)  # trains with the student's Adam
    assert lost == attacked | through, scores
    for gid in attacked - {"test-numgrad"}:
        assert "calls the rnnlib reference" in scores[gid][2], (gid, scores[gid])
    if assignment == "ps03":
        assert "values differ" in scores["test-numgrad"][2], scores["test-numgrad"]


def test_ps09_constant_model_and_rule_predict_score_0(tmp_path):
    """Finding 5 through the grader's proxies: the checks read the model's parameters and reload them
    perturbed (state_dict/load_state_dict across the RPC)."""
    good = solution_answers("ps09")
    scores = grade_in_restricted_kernel("ps09", {"model": PS09_CONSTANT_MODEL, "train": PS09_RULE_PREDICT},
                                        tmp_path / "attack")
    assert scores["test-model"][0] == 0 and "every sequence gets the same logits" in scores["test-model"][2]
    assert scores["test-train"][0] == 0 and "renames the symbols" in scores["test-train"][2]
    assert scores["test-pad"][0] == scores["test-pad"][1] and scores["test-pack"][0] == scores["test-pack"][1]
    scores = grade_in_restricted_kernel("ps09", good, tmp_path / "solution")
    assert all(v[0] == v[1] for v in scores.values()), scores


# ------------------------------------------------------------------------------------------------
# The same through nbgrader and the course's sandbox

needs_sandbox = pytest.mark.skipif(shutil.which("bwrap") is None or not hasattr(execute, "student_library"),
                                   reason="needs bubblewrap and a sandbox that gives kernels the restricted rnnlib")


@needs_sandbox
def test_sandboxed_attacks_on_ps01_score_0(tmp_path):
    course = course_copy(tmp_path)
    good = solution_answers("ps01")
    make_submission(course, "ps01", "solved", good)
    attacks = {**PS01_ATTACKS, "find-real": FIND_REAL}
    for name, source in attacks.items():
        make_submission(course, "ps01", name, {**good, "step": source})
    cells, totals = autograde(course, "ps01")
    full = sum(m for _, m, _ in cells["solved"].values())
    assert totals["solved"] == full
    for name in attacks:
        assert cells[name]["test-step"][0] == 0 and cells[name]["test-forward"][0] == 0, (name, cells[name])
        assert "calls the rnnlib reference" in cells[name]["test-step"][2] or name == "find-real", cells[name]
        assert all(cells[name][k][0] == cells[name][k][1] for k in ("test-hand-t0", "test-hand-t1", "test-split"))


@needs_sandbox
def test_sandboxed_attacks_on_ps04_and_ps05_score_0(tmp_path):
    course = course_copy(tmp_path)
    for assignment, attacks in (("ps04", PS04_ATTACKS), ("ps05", PS05_ATTACKS)):
        make_submission(course, assignment, "attacker", {**solution_answers(assignment), **attacks})
        cells, totals = autograde(course, assignment)
        for gid in (f"test-{k}" for k in attacks):
            assert cells["attacker"][gid][0] == 0 and "the rnnlib reference" in cells["attacker"][gid][2], gid
        assert totals["attacker"] == sum(v[0] for k, v in cells["attacker"].items() if k[5:] not in attacks)

