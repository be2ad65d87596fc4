"""Timing shared by the bench/compare scripts: the median wall time of a call after warm-up runs
(thread pools, allocator caches and lazily built kernels settle in the warm-up)."""

import statistics
import time


def median_seconds_and_result(fn, repeats, warmup):
    """The median of `repeats` timed calls of fn() after `warmup` untimed ones, and the last
    call's result."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def median_seconds(fn, repeats, warmup):
    return median_seconds_and_result(fn, repeats, warmup)[0]
