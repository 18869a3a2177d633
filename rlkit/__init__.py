"""Course library: code students are given and use, but do not edit.

It is written once here and imported by the reference solutions, the generated
starter code, the grader and the experiment scripts alike.
"""
