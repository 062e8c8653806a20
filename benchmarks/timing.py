"""Side-by-side timing shared by the benchmark scripts: variants run interleaved, so that a change in the machine's
load hits all of them alike; each figure is reported as the median and the minimum over the repetitions."""

import statistics
import time
from collections.abc import Callable


def interleaved(variants: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each variant: `warmup` untimed rounds, then `repeats` rounds that run every variant once,
    in turn."""
    for _ in range(warmup):
        for function in variants.values():
            function()
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, function in variants.items():
            started = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def summary(values: list[float]) -> tuple[float, float]:
    """(median, minimum)."""
    return statistics.median(values), min(values)


def ratio(numerator: list[float], denominator: list[float]) -> tuple[float, float]:
    """Median and best-case ratio of two timings measured in the same rounds (median of the per-round ratios, ratio
    of the minima)."""
    per_round = [a / b for a, b in zip(numerator, denominator)]
    return statistics.median(per_round), min(numerator) / min(denominator)


def print_table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """A plain fixed-width table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    print(f"\n{title}")
    for row in (header, tuple("-" * width for width in widths), *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
