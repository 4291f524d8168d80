"""The grader's messages under fixed seeds, compared with a reviewed copy (tests/golden/grading_messages.json).

A hidden check's message is what a student reads instead of a score: which call, which inputs, which
output, how far off, and which known slip it looks like. The tests that grade wrong answers with fixed
seeds (the ``fixed_grading_seeds`` fixture) record every message raised during the test, and the
sequence must equal the reviewed one. So a change of wording, of a label, of the inputs drawn or of the
slip named shows up as a failing test and a diff to review, not silently in a class's feedback.

After a deliberate change, write the new messages and review the diff of the JSON file:

    GRADING_MESSAGES=update python -m pytest tests/test_ps*.py tests/test_checks_accept_solutions.py

Numbers are kept to 3 significant digits (float32 sums may differ in the last places from one CPU to
another) and the text after "raised <Error>:" is dropped (NumPy's or torch's wording; a GradingError's is kept).
"""
import json
import os
import re
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden" / "grading_messages.json"
NUMBER = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+|\d+)(?:e[+-]?\d+)?(?![\w.])")
RAISED = re.compile(r"(raised (?!GradingError)\w+): .*?(?=\n|$)")
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
TOOK = re.compile(r"took \d+(?:\.\d+)? s")


def _number(match):
    text = match.group(0)
    if re.fullmatch(r"-?\d+", text):
        return text  # shapes, counts, indices, seeds
    value = float(text)
    return "0" if abs(value) < 1e-9 else f"{value:.3g}"


def normalise(message):
    message = RAISED.sub(r"\1: ...", message)
    message = ADDRESS.sub("", message)
    message = TOOK.sub("took ... s", message)
    return NUMBER.sub(_number, message)


class Recorder:
    """Records the message of every GradingError made while it is installed (the internal comparisons of
    the slip search, whose label is empty, are left out)."""

    def __init__(self, monkeypatch):
        from checks.grading import GradingError

        self.messages = []
        original = GradingError.__init__

        def init(error, *args):
            original(error, *args)
            text = str(args[0]) if args else ""
            if not text.startswith(": "):
                self.messages.append(normalise(text))

        monkeypatch.setattr(GradingError, "__init__", init)

    def compare(self, test_id):
        """Check the recorded messages against the reviewed ones (or write them, with GRADING_MESSAGES=update)."""
        if not self.messages:
            return
        if os.environ.get("GRADING_MESSAGES") == "update":
            from filelock import FileLock

            GOLDEN.parent.mkdir(exist_ok=True)
            with FileLock(os.path.join(tempfile.gettempdir(), "grading_messages.json.lock")):
                golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
                golden[test_id] = self.messages
                GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=1, ensure_ascii=False) + "\n")
            return
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        assert test_id in golden, (f"no reviewed grading messages for {test_id}: write them with "
                                   "GRADING_MESSAGES=update (see tests/grading_messages.py) and review the diff")
        expected = golden[test_id]
        for k, (got, want) in enumerate(zip(self.messages, expected)):
            assert got == want, f"grading message {k} of {test_id} changed:\n--- reviewed\n{want}\n+++ now\n{got}"
        assert len(self.messages) == len(expected), (
            f"{test_id}: {len(self.messages)} grading messages, the reviewed copy has {len(expected)}")
