"""Benchmarks a user runs on their own CPU: the determinism matrix and throughput vs peers."""
