"""Benchmarks: each runs as `python -m bench.NAME` from the repository root and writes its figures as JSON.

Run as modules, not files: a file's own directory comes first on the import path, where bench/coordinator.py and
bench/trainer.py would stand in for the packages of the same names.
"""
