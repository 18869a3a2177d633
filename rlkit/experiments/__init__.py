"""Experiment scripts, one module per homework: `main(argv)` runs it."""
