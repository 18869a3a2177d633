"""Graded problems, one module per homework part."""
