"""Tabular benchmarks (NAS-Bench-201): a trial is a table lookup."""
