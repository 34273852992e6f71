"""Benchmarks; run bench/bench.py."""
