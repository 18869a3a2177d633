"""Homework 1: imitation learning (behavioral cloning and DAgger)."""
