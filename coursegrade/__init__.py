"""Grading the course's problem sets safely: a sandboxed kernel for nbgrader, hidden tests run outside
the student's kernel, and a parallel grader for a whole class (``python -m coursegrade ASSIGNMENT``).
See docs/grading.md."""
