"""Sweeps: a grid of runs submitted, followed, cancelled and retried as one (the grid itself: core/sweeps.py)."""
