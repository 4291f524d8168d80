"""nbgrader configuration of the course. The course root is the folder that holds this file.

Student code runs sandboxed (see docs/grading.md, "Grading a class"): the autograde step executes
notebooks with ``coursegrade.execute.SandboxedExecute`` in the ``rnn-sandbox`` kernel (bubblewrap: no
network, resource limits, no view of the course), and refuses to run if the sandbox is unavailable
(``COURSEGRADE_UNSAFE=1`` overrides, loudly). ``python -m coursegrade ASSIGNMENT`` grades a class.
Only autograde uses the sandbox: ``nbgrader validate`` (and JupyterLab's Validate button) runs a
student's notebook in the ordinary ``python3`` kernel, so it works without the sandbox installed.
"""
import os
import sys

c = get_config()  # noqa: F821 (provided by nbgrader)
root = os.path.dirname(os.path.abspath(__file__))
if root not in sys.path:
    sys.path.insert(0, root)  # coursegrade/ lives next to this file

c.CourseDirectory.root = root
# A non-empty course id: PostgreSQL enforces the gradebook's foreign key to the course table.
c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(root, "gradebook.db") + "?timeout=120"

# Students see a stub where a solution was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Autograding: the sandboxed executor instead of nbgrader's plain Execute.
c.Autograde.autograde_preprocessors = [
    "coursegrade.execute.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "coursegrade.feedback.SanitizeFeedback",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# The sandbox's kernel spec (python -m coursegrade --install-kernel) for autograde only; validate keeps
# nbgrader's default kernel (a student's own Python).
c.SandboxedExecute.kernel_name = "rnn-sandbox"
c.Execute.timeout = 60                 # seconds per cell
c.Execute.interrupt_on_timeout = True
c.SandboxedExecute.notebook_timeout = 300  # seconds per notebook (and the CPU-time limit)
c.SandboxedExecute.memory_bytes = 4 << 30
c.SandboxedExecute.processes = 64
c.SandboxedExecute.file_bytes = 64 << 20
c.SandboxedExecute.max_output_bytes = 1 << 20
c.LimitOutput.max_lines = 1000
# A deleted test cell is put back (and graded), with a note saying so.
c.OverwriteCells.add_missing_cells = True

# Feedback must not reveal hidden tests: strip them from the feedback notebook. Markdown and HTML a
# student wrote or printed is sanitised (no scripts, no event handlers, no javascript: links).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "coursegrade.feedback.SanitizeFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Plain `nbgrader autograde` refuses a submission folder holding links, FIFOs or devices before it
# copies or reads anything there (coursegrade/guard.py); the run goes on with the next student.
try:
    from coursegrade.guard import guard_autograde
    guard_autograde()
except ImportError:  # a student's copy of the course without nbgrader's converters: nothing to guard
    pass
