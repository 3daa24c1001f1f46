"""PruneLab's benchmark suite: `python -m bench` (or `make bench`) writes docs/benchmarks.md.

Every figure is a ratio against a reference measured in the same run, so that a
noisy or shared machine shifts both sides alike.
"""
