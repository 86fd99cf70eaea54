"""Benchmark pieces kept for the record, not product: see benchmarks/archive/README.md."""
