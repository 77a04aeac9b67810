"""Benchmarks: figures printed as p50/p95 and as ratios to their targets."""
