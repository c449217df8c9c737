"""Benchmarks of the running system (see README.md in this folder)."""
