"""The checks behind each problem set's hidden tests: one module per problem set, one function per
graded cell. A hidden test cell calls, for example, ``ps01.rnn_step(rnn_step)``; inputs are drawn at
grading time (see :mod:`checks.grading`) and the expected values come from the rnnlib reference.

This package is the grading side: students read ``rnnlib``; the grader imports ``checks``.
"""
