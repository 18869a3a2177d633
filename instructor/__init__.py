"""Instructor-only tools (not shipped to students): e.g. ``python -m instructor.experts.train``."""
