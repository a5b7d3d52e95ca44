"""Figures over what the sandbox received, shared by the sandbox's stats, the tests and the
benchmarks, so "the rate held" means one thing everywhere."""

from collections.abc import Iterable


def max_in_any_window(stamps: Iterable[float], width: float = 1.0) -> int:
    """The most stamps inside any half-open window [t, t + width): the sliding-window peak a
    receiver sees, which a per-second bucket count would understate."""
    ordered = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best
