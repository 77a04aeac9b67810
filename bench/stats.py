"""Percentiles, the one-line report every benchmark prints, the room counts options take."""

import statistics


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(name: str, values_ms: list[float], target_ms: float | None = None) -> str:
    """`name: p50 X ms, p95 Y ms (n=N)`, with p95 as a ratio of the target when there is one."""
    p50, p95 = percentile(values_ms, 50), percentile(values_ms, 95)
    line = f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={len(values_ms)})"
    if target_ms:
        line += f"; p95/target {p95 / target_ms:.2f} (target {target_ms:.0f} ms)"
    return line


def counts(text: str) -> list[int]:
    """A comma list of counts ("1,5,10"), each once, in order."""
    return sorted({int(n) for n in text.split(",") if n.strip()})
