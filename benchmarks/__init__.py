"""Benchmark scripts, each printing the ratios of one figure measured side by side (see docs/performance.md). Run
them from the repository root: `python -m benchmarks.<script> [options]`."""
