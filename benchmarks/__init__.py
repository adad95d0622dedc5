"""Benchmarks of notifications against baselines; see README.md, "Benchmarks"."""
