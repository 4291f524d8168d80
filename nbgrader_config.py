"""nbgrader configuration of the course. The course root is the folder that holds this file."""
import os

c = get_config()  # noqa: F821 (provided by nbgrader)
root = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = root
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(root, "gradebook.db")

# Students see a stub where a solution was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Hidden tests call rnnlib.assignments; the notebook kernel must be able to import rnnlib.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# Feedback must not reveal hidden tests: strip them from the feedback notebook.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
