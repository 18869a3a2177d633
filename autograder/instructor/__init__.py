"""Instructor tools: the nbgrader course, the student release, class autograding
and the Gradescope bundle. None of this ships to students.

    python -m autograder.instructor release             # build/release/: what students get
    python -m autograder.instructor autograde DIR       # <student>/<hw>/ folders → build/course/grades.csv
    python -m autograder.instructor autograde --samples # the same on three made-up students
    python -m autograder.instructor gradescope          # build/gradescope/<hw>.zip
    python -m autograder.instructor scan PATH...        # fail if PATH holds solution code
    python -m autograder.instructor sync-notebooks      # grade cells for new problems, in assignments/
"""
