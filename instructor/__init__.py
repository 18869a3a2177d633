"""Instructor tools: the nbgrader course, the student release, class autograding, the
Gradescope bundle and the hw1 experts. None of this ships to students.

    python -m instructor release             # build/release/: what students get
    python -m instructor autograde DIR       # <student>/<hw>/ folders → build/course/grades.csv
    python -m instructor autograde --samples # the same on three made-up students
    python -m instructor gradescope          # build/gradescope/<hw>.zip
    python -m instructor scan PATH...        # fail if PATH holds solution code
    python -m instructor sync-notebooks      # grade cells for new problems, in assignments/
    python -m instructor.experts.train       # train the hw1 MuJoCo experts (make experts)
"""
