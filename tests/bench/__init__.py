"""Benchmarks: each a module run by a `make bench-<what>` target, ours against the stock tool."""
