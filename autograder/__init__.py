"""The course autograder.

Pipeline: load the submission in a sandboxed child → run each problem's checks
(Hypothesis in this process, student calls in the child) → score → report.
The process that computes scores never imports student code.
"""
