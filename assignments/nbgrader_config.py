"""nbgrader configuration of the course. nbgrader reads it from the course directory:
`make release` and `make autograde` copy it into the working course build/course/.

The handout notebooks hold no student code: students write the modules next to
them (hw2/returns.py, …), and every grade cell calls
``autograder.notebook.check``, which grades those modules in the sandbox.
"""

from instructor.course import execute_timeout, graded_files

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "rl-homework-kit"

# Per-cell limit: the longest problem's own time budget (the sandbox enforces it per problem)
# plus start-up. A cell that hangs anyway is interrupted and loses only its own points.
c.Execute.timeout = execute_timeout()
c.Execute.interrupt_on_timeout = True

# Autograde copies the source's non-notebook files over the submission; the modules students
# write (those with solution regions in solutions/) must be kept as submitted.
c.Autograde.exclude_overwriting = graded_files()

# Feedback shows hidden-test cells (nbgrader #917): drop their source as the release does, and
# the tracebacks that quote it (failed checks keep the grader's message).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

from instructor.feedback import ShortenTracebacks  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ShortenTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
